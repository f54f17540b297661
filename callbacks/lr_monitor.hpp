// hookline: LearningRateMonitor, Lightning 2.2's callback that logs the learning rate (and
// optionally momentum and weight decay) of every optimizer's parameter groups to the loggers.
//
//   trainer.add_callback(std::make_shared<LearningRateMonitor>(
//       LearningRateMonitorOptions().logging_interval("step").log_momentum(true)));
//
// Names are Lightning's: "lr-<Optimizer>" (the optimizer's class, e.g. lr-SGD, lr-AdamW) or the
// scheduler's name(); "-1", "-2" after the second and later unnamed optimizers of one class;
// "/pg1", "/pg2" per parameter group when there are several; "-momentum" (Adam's beta1, SGD's
// and RMSprop's momentum, else 0) and "-weight_decay" after a name.
//
// When: at each train-epoch start and, on logging steps (log_every_n_steps, or a requested stop),
// at each train-batch start. With logging_interval "" (Lightning's None) a scheduler's rates are
// logged at its own interval (step schedulers at batch starts, epoch schedulers at epoch starts);
// "step" or "epoch" logs all of them at that point only. Optimizers without a scheduler are
// logged at both points. Values go to every logger at the step "batches that stepped" and into
// callback_metrics; lrs() keeps every learning rate logged, by name.
//
// A fit without a logger is refused at train start, as in Lightning.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/chained_options.hpp"

#include <map>
#include <string>
#include <vector>

namespace torch::optim {
class Optimizer;
}

namespace hookline {

class LearningRateMonitorOptions {
  /// "" (Lightning's None), "step" or "epoch".
  HOOKLINE_CHAINED_OPTION(LearningRateMonitorOptions, std::string, logging_interval, "")
  HOOKLINE_CHAINED_OPTION(LearningRateMonitorOptions, bool, log_momentum, false)
  HOOKLINE_CHAINED_OPTION(LearningRateMonitorOptions, bool, log_weight_decay, false)
};

class LearningRateMonitor : public Callback {
 public:
  /// Throws std::invalid_argument for a logging_interval other than "", "step" or "epoch".
  explicit LearningRateMonitor(LearningRateMonitorOptions options = {});
  const LearningRateMonitorOptions& options() const { return options_; }
  /// Every learning rate logged so far, by name.
  const std::map<std::string, std::vector<double>>& lrs() const { return lrs_; }

  void on_train_start(Trainer& trainer, Module& module) override;
  void on_train_batch_start(Trainer& trainer, Module& module, const Batch& batch,
                            std::int64_t batch_idx) override;
  void on_train_epoch_start(Trainer& trainer, Module& module) override;

 private:
  /// The values to log now; `interval` "step", "epoch" or "any".
  std::map<std::string, double> extract(Trainer& trainer, const std::string& interval);
  void log(Trainer& trainer, const std::string& interval);

  LearningRateMonitorOptions options_;
  std::map<std::string, std::vector<double>> lrs_;
};

/// The class name of an optimizer without namespaces ("SGD", "AdamW").
std::string optimizer_class_name(const torch::optim::Optimizer& optimizer);

}  // namespace hookline
