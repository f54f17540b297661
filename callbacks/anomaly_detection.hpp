// hookline: AnomalyDetection, a guard that stops a fit at the first non-finite loss or gradient.
//
//   trainer.add_callback(std::make_shared<AnomalyDetection>());
//
// - The loss is checked before backward, every gradient before each optimizer step.
// - On the first NaN/Inf gradient, every gradient of the module is dropped (set undefined) so
//   the optimizer step changes no weight: the weights stay those of the last good step, and a
//   checkpoint written afterwards holds no NaN.
// - The fit then stops with a StopFit verdict at that batch's on_train_batch_end, its reason
//   naming what was found: "loss is nan at epoch 0, batch 3" or "gradient of 'fc1.weight' has
//   4 non-finite values (nan) at epoch 0, batch 3". The verdict is on the bus (traces show it)
//   and in Trainer::stop_reason().
// - check_loss / check_gradients turn the two checks on and off (both on by default).
// A Lightning user gets close with `Trainer(detect_anomaly=True)`, which raises inside autograd;
// this one leaves the run resumable instead.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/chained_options.hpp"

#include <string>

namespace hookline {

class AnomalyDetectionOptions {
  HOOKLINE_CHAINED_OPTION(AnomalyDetectionOptions, bool, check_loss, true)
  HOOKLINE_CHAINED_OPTION(AnomalyDetectionOptions, bool, check_gradients, true)
};

class AnomalyDetection : public Callback {
 public:
  explicit AnomalyDetection(AnomalyDetectionOptions options = {});
  const AnomalyDetectionOptions& options() const { return options_; }

  /// What stopped the fit ("" while nothing was found).
  const std::string& finding() const { return finding_; }

  void on_train_start(Trainer& trainer, Module& module) override;
  void on_train_batch_start(Trainer& trainer, Module& module, const Batch& batch,
                            std::int64_t batch_idx) override;
  void on_before_backward(Trainer& trainer, Module& module, const at::Tensor& loss) override;
  void on_before_optimizer_step(Trainer& trainer, Module& module,
                                torch::optim::Optimizer& optimizer) override;
  void on_train_batch_end(Trainer& trainer, Module& module, const StepOutput& outputs,
                          const Batch& batch, std::int64_t batch_idx) override;

 private:
  std::string where(const Trainer& trainer) const;

  AnomalyDetectionOptions options_;
  std::string finding_;
  bool reported_ = false;
  std::int64_t batch_idx_ = 0;
};

}  // namespace hookline
