// hookline: StochasticWeightAveraging, Lightning 2.2's SWA callback (Izmailov et al., 2018):
// averages the weights of the last epochs of a fit and ends the fit with that average.
//
//   trainer.add_callback(std::make_shared<StochasticWeightAveraging>(
//       1e-2, StochasticWeightAveragingOptions().swa_epoch_start(0.75).annealing_epochs(5)));
//
// - swa_epoch_start: an epoch number >= 1 (averaging starts at that 1-based epoch) or a fraction
//   in [0, 1] of max_epochs (int(fraction * max_epochs)); the averaging window is the 0-based
//   epochs swa_start = max(start - 1, 0) .. swa_end = max_epochs - 1.
// - At the start of every epoch of the window (once each, also after a resume) the module's
//   parameters are folded into the running average (avg_fn, default the equal-weight mean), kept
//   on `device` (default CPU; nullopt: the module's). So, as in Lightning, the average is of the
//   weights each of those epochs starts from.
// - From the window's first epoch the optimizer runs on PyTorch's SWALR schedule: each epoch end
//   moves the learning rate from its value then towards swa_lrs (one value, or one per parameter
//   group), reaching it after annealing_epochs epochs, along a cosine ("cos") or a straight line
//   ("linear"). It replaces the module's scheduler (one at most; Lightning warns when that one
//   was not stepping every epoch) or is added.
// - When the fit completes the window, the averaged parameters are copied into the module and, if
//   it has BatchNorm layers, their running statistics are computed again: running mean / var
//   reset, cumulative averaging (momentum none), one pass of training_step over the training
//   batches without gradients, momenta restored. (Lightning runs that pass as an extra training
//   epoch without backward; here it runs inside on_train_end.)
// - State ("StochasticWeightAveraging"): n_averaged, latest_update_epoch, the schedule's step
//   count and the averaged parameters, so a resumed fit continues the same average.
// - Refused (std::invalid_argument): swa_epoch_start < 1 or outside [0, 1]; a swa_lr <= 0;
//   annealing_epochs < 0; a strategy other than cos / linear; at fit start, not exactly one
//   optimizer, more than one scheduler, or no max_epochs.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/chained_options.hpp"

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace hookline {

class StochasticWeightAveragingOptions {
  HOOKLINE_CHAINED_OPTION(StochasticWeightAveragingOptions, std::int64_t, annealing_epochs, 10)
  /// "cos" or "linear".
  HOOKLINE_CHAINED_OPTION(StochasticWeightAveragingOptions, std::string, annealing_strategy, "cos")
  /// (averaged parameter, current parameter, number averaged so far) -> new average; empty:
  /// the equal-weight running mean.
  HOOKLINE_CHAINED_OPTION(
      StochasticWeightAveragingOptions,
      std::function<at::Tensor(const at::Tensor&, const at::Tensor&, std::int64_t)>, avg_fn,
      nullptr)
  /// Where the average lives; nullopt: the module's device.
  HOOKLINE_CHAINED_OPTION(StochasticWeightAveragingOptions, std::optional<c10::Device>, device,
                          c10::Device(c10::kCPU))

 public:
  /// An epoch number (>= 1) ...
  StochasticWeightAveragingOptions& swa_epoch_start(std::int64_t epoch) {
    swa_epoch_start_ = epoch;
    return *this;
  }
  StochasticWeightAveragingOptions& swa_epoch_start(int epoch) {
    return swa_epoch_start(static_cast<std::int64_t>(epoch));
  }
  /// ... or a fraction of max_epochs in [0, 1] (default 0.8).
  StochasticWeightAveragingOptions& swa_epoch_start(double fraction) {
    swa_epoch_start_ = fraction;
    return *this;
  }
  const std::variant<std::int64_t, double>& swa_epoch_start() const { return swa_epoch_start_; }

 private:
  std::variant<std::int64_t, double> swa_epoch_start_ = 0.8;
};

class StochasticWeightAveraging : public Callback {
 public:
  /// One SWA learning rate for every parameter group, or one per group. Throws
  /// std::invalid_argument for invalid options (see above).
  explicit StochasticWeightAveraging(double swa_lr, StochasticWeightAveragingOptions options = {});
  explicit StochasticWeightAveraging(std::vector<double> swa_lrs,
                                     StochasticWeightAveragingOptions options = {});

  std::string state_key() const override { return "StochasticWeightAveraging"; }
  const StochasticWeightAveragingOptions& options() const { return options_; }

  /// 0-based first and last epoch of the averaging window (known from fit start).
  std::int64_t swa_start() const;
  std::int64_t swa_end() const { return max_epochs_ - 1; }
  std::int64_t n_averaged() const { return n_averaged_.value_or(init_n_averaged_); }
  std::int64_t latest_update_epoch() const { return latest_update_epoch_; }
  /// The averaged parameters, by name (empty before the window).
  const std::map<std::string, at::Tensor>& average() const { return average_; }

  void on_fit_start(Trainer& trainer, Module& module) override;
  void on_train_epoch_start(Trainer& trainer, Module& module) override;
  void on_train_end(Trainer& trainer, Module& module) override;
  void state_dict(Checkpoint& state) const override;
  void load_state_dict(const Checkpoint& state) override;

  /// The default avg_fn: averaged + (current - averaged) / (n + 1).
  static at::Tensor mean_update(const at::Tensor& averaged, const at::Tensor& current,
                                std::int64_t n_averaged);

 private:
  void validate() const;
  void install_scheduler(Trainer& trainer);
  void schedule_step(Trainer& trainer);
  void update_average(Module& module);
  void transfer_weights(Module& module) const;
  void recompute_batch_norm(Trainer& trainer, Module& module);

  std::vector<double> swa_lrs_;
  StochasticWeightAveragingOptions options_;
  std::int64_t max_epochs_ = 0;
  std::int64_t start_epoch_ = 0;  // swa_epoch_start resolved to an epoch number
  bool single_lr_ = false;        // one swa_lr for every parameter group
  bool initialized_ = false;
  bool swa_installed_ = false;  // the SWA schedule is among the trainer's schedulers
  bool has_batch_norm_ = false;
  std::optional<std::int64_t> n_averaged_;
  std::int64_t init_n_averaged_ = 0;
  std::int64_t latest_update_epoch_ = -1;
  std::int64_t step_count_ = 0;                    // the SWALR schedule's _step_count
  std::optional<std::int64_t> loaded_step_count_;  // from a checkpoint
  std::map<std::string, at::Tensor> average_;
};

}  // namespace hookline
