// hookline: LearningRateFinder, Lightning 2.2's callback that runs a learning-rate range test at
// the start of a fit and starts training at the rate it suggests.
//
//   trainer.add_callback(std::make_shared<LearningRateFinder>(
//       LearningRateFinderOptions().min_lr(1e-6).max_lr(1).num_training_steps(100)));
//
// The test (lr_find, at on_fit_start; a subclass may call it from other hooks, as Lightning's
// docs do at milestone epochs):
// - saves the module's parameters and buffers, the optimizer's state and the random state;
// - sets every parameter group's rate to min_lr and runs up to num_training_steps training steps
//   (training_step through the bus, backward, optimizer step) over the training batches, epoch
//   after epoch within max_epochs. The rate of step k (0-based) is min_lr, then
//   min_lr * (max_lr / min_lr)^((k + 1) / n) ("exponential") or
//   min_lr + (k + 1) / n * (max_lr - min_lr) ("linear"), as Lightning's _ExponentialLR / _LinearLR;
// - records each step's rate and its loss smoothed as Lightning does (running average with
//   beta 0.98, divided by 1 - beta^(global step + 1)); stops early once a smoothed loss exceeds
//   early_stop_threshold times the best one (not before the second step; nullopt: never);
// - restores everything saved, forgets what the steps logged, and suggests the rate at the
//   steepest descent of the smoothed loss (suggestion(skip_begin = 10, skip_end = 1)).
// With update_attr the optimizer's parameter groups start the fit at the suggested rate (the C++
// stand-in for setting the module's `lr` attribute), and the hyperparameter attr_name ("lr" or
// "learning_rate" when empty) is set too when the module has it; an attr_name the module's
// hparams do not have is refused, as Lightning refuses an unknown attribute.
//
// Unlike Lightning, the search runs the steps itself: the other hooks of a training batch, gradient
// accumulation and clipping, and validation are not run during it.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/chained_options.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

class LearningRateFinderOptions {
  HOOKLINE_CHAINED_OPTION(LearningRateFinderOptions, double, min_lr, 1e-8)
  HOOKLINE_CHAINED_OPTION(LearningRateFinderOptions, double, max_lr, 1.0)
  HOOKLINE_CHAINED_OPTION(LearningRateFinderOptions, std::int64_t, num_training_steps, 100)
  /// "exponential" or "linear" (any case).
  HOOKLINE_CHAINED_OPTION(LearningRateFinderOptions, std::string, mode, "exponential")
  HOOKLINE_CHAINED_OPTION(LearningRateFinderOptions, std::optional<double>, early_stop_threshold,
                          4.0)
  HOOKLINE_CHAINED_OPTION(LearningRateFinderOptions, bool, update_attr, true)
  HOOKLINE_CHAINED_OPTION(LearningRateFinderOptions, std::string, attr_name, "")
};

/// The results of a range test (Lightning's _LRFinder).
struct LRFinderResult {
  std::string mode;
  double lr_min = 0;
  double lr_max = 0;
  std::int64_t num_training = 0;
  std::vector<double> lr;    ///< the rate of each step
  std::vector<double> loss;  ///< the smoothed loss after each step (NaN without a loss)

  /// The rate at the steepest negative gradient of the losses, leaving out the first skip_begin
  /// and the last skip_end of them (Python's loss[skip_begin:-skip_end], so skip_end 0 leaves
  /// nothing) and the non-finite ones; nullopt when fewer than two remain.
  std::optional<double> suggestion(std::int64_t skip_begin = 10, std::int64_t skip_end = 1) const;
  /// The index of the suggestion's step after a call to suggestion().
  mutable std::optional<std::size_t> optimal_idx;
};

class LearningRateFinder : public Callback {
 public:
  /// Throws std::invalid_argument for a mode other than exponential / linear.
  explicit LearningRateFinder(LearningRateFinderOptions options = {});
  const LearningRateFinderOptions& options() const { return options_; }

  /// The last range test's results (Lightning's `optimal_lr`), if one ran.
  const std::optional<LRFinderResult>& optimal_lr() const { return result_; }

  /// Runs the range test now. Throws std::invalid_argument for not exactly one optimizer or an
  /// attr_name the module's hparams lack.
  void lr_find(Trainer& trainer, Module& module);

  void on_fit_start(Trainer& trainer, Module& module) override;

 private:
  LearningRateFinderOptions options_;
  std::optional<LRFinderResult> result_;
};

}  // namespace hookline
