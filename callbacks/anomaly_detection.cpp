#include "hookline/callbacks/anomaly_detection.hpp"

#include "hookline/core/trainer.hpp"

namespace hookline {

namespace {

// "nan", "inf" or "nan and inf" for a tensor that has non-finite values.
std::string kinds(const at::Tensor& t) {
  const bool nan = t.isnan().any().item<bool>();
  const bool inf = t.isinf().any().item<bool>();
  if (nan && inf) return "nan and inf";
  return nan ? "nan" : "inf";
}

}  // namespace

AnomalyDetection::AnomalyDetection(AnomalyDetectionOptions options)
    : Callback("AnomalyDetection", band::callback), options_(std::move(options)) {}

void AnomalyDetection::on_train_start(Trainer&, Module&) {
  finding_.clear();
  reported_ = false;
}

void AnomalyDetection::on_train_batch_start(Trainer&, Module&, const Batch&,
                                            std::int64_t batch_idx) {
  batch_idx_ = batch_idx;
}

std::string AnomalyDetection::where(const Trainer& trainer) const {
  return "at epoch " + std::to_string(trainer.current_epoch()) + ", batch " +
         std::to_string(batch_idx_);
}

void AnomalyDetection::on_before_backward(Trainer& trainer, Module&, const at::Tensor& loss) {
  if (!options_.check_loss() || !finding_.empty() || !loss.defined()) return;
  if (loss.detach().isfinite().all().item<bool>()) return;
  finding_ = "loss is " + kinds(loss.detach()) + " " + where(trainer);
}

void AnomalyDetection::on_before_optimizer_step(Trainer& trainer, Module& module,
                                                torch::optim::Optimizer&) {
  if (!options_.check_gradients() && finding_.empty()) return;
  if (finding_.empty()) {
    for (const auto& item : module.named_parameters()) {
      const at::Tensor& grad = item.value().grad();
      if (!grad.defined()) continue;
      const at::Tensor finite = grad.isfinite();
      if (finite.all().item<bool>()) continue;
      const auto bad = grad.numel() - finite.sum().item<std::int64_t>();
      finding_ = "gradient of '" + item.key() + "' has " + std::to_string(bad) +
                 " non-finite value" + (bad == 1 ? "" : "s") + " (" + kinds(grad) + ") " +
                 where(trainer);
      break;
    }
    if (finding_.empty()) return;
  }
  // Drop every gradient: optimizers skip parameters without one, so this step changes nothing.
  for (auto& parameter : module.parameters()) parameter.mutable_grad() = at::Tensor();
}

void AnomalyDetection::on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                                          std::int64_t) {
  if (finding_.empty() || reported_) return;
  reported_ = true;
  veto(Action::StopFit, finding_);
}

}  // namespace hookline
