#include "hookline/hooks/hooks.hpp"

namespace hookline {

std::string_view to_string(Stage stage) {
  switch (stage) {
    case Stage::fit:
      return "fit";
    case Stage::validate:
      return "validate";
    case Stage::test:
      return "test";
    case Stage::predict:
      return "predict";
    case Stage::none:
      return "none";
  }
  return "unknown";
}

std::string_view to_string(ClipAlgorithm algorithm) {
  return algorithm == ClipAlgorithm::norm ? "norm" : "value";
}

namespace detail {

std::string describe_batch(const Batch& batch) {
  return "batch(n=" + std::to_string(batch.batch_size()) + ")";
}

std::string describe_outputs(const StepOutput& outputs) {
  std::string keys;
  for (const auto& [key, value] : outputs) keys += (keys.empty() ? "" : ",") + key;
  return "outputs{" + keys + "}";
}

std::string describe_eval_index(std::int64_t batch_idx, std::int64_t dataloader_idx,
                                bool several_loaders) {
  std::string out = "batch_idx=" + std::to_string(batch_idx);
  if (several_loaders) out += ", dataloader_idx=" + std::to_string(dataloader_idx);
  return out;
}

namespace {
std::string describe_loss(const at::Tensor& loss) {
  return loss.defined() ? "loss" : "loss=none";
}
std::string describe_clip(const std::optional<double>& val,
                          const std::optional<ClipAlgorithm>& algorithm) {
  return "gradient_clip_val=" + (val ? std::to_string(*val) : std::string("none")) +
         ", gradient_clip_algorithm=" +
         (algorithm ? std::string(to_string(*algorithm)) : std::string("none"));
}
}  // namespace

}  // namespace detail

std::string BeforeBatchTransfer::describe() const {
  return detail::describe_batch(batch) + ", dataloader_idx=" + std::to_string(dataloader_idx);
}
std::string TransferBatchToDevice::describe() const {
  return detail::describe_batch(batch) + ", device=" + device.str() +
         ", dataloader_idx=" + std::to_string(dataloader_idx);
}
std::string AfterBatchTransfer::describe() const {
  return detail::describe_batch(batch) + ", dataloader_idx=" + std::to_string(dataloader_idx);
}
std::string TrainBatchStart::describe() const {
  return detail::describe_batch(batch) + ", batch_idx=" + std::to_string(batch_idx);
}
std::string TrainBatchEnd::describe() const {
  return detail::describe_outputs(outputs) + ", " + detail::describe_batch(batch) +
         ", batch_idx=" + std::to_string(batch_idx);
}
std::string TrainingStep::describe() const {
  return detail::describe_batch(batch) + ", batch_idx=" + std::to_string(batch_idx);
}
std::string OptimizerZeroGrad::describe() const {
  return "epoch=" + std::to_string(epoch) + ", batch_idx=" + std::to_string(batch_idx) +
         ", optimizer=" + std::to_string(optimizer_idx);
}
std::string BeforeBackward::describe() const {
  return detail::describe_loss(loss);
}
std::string Backward::describe() const {
  return detail::describe_loss(loss);
}
std::string ConfigureGradientClipping::describe() const {
  return "optimizer=" + std::to_string(optimizer_idx) + ", " +
         detail::describe_clip(gradient_clip_val, gradient_clip_algorithm);
}
std::string OptimizerStep::describe() const {
  return "epoch=" + std::to_string(epoch) + ", batch_idx=" + std::to_string(batch_idx) +
         ", optimizer=" + std::to_string(optimizer_idx) + ", closure";
}
std::string LrSchedulerStep::describe() const {
  return "scheduler=" + std::to_string(scheduler_idx) +
         ", metric=" + (metric ? std::to_string(*metric) : std::string("none"));
}

}  // namespace hookline
