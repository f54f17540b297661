// hookline: one training step under automatic optimization (Lightning's _AutomaticOptimization:
// the closure of training_step, zero_grad, backward and clipping, run by optimizer_step, with
// gradient accumulation) and under manual optimization (training_step alone; the module steps
// its optimizers itself).
#pragma once

#include "hookline/core/hook_emitter.hpp"
#include "hookline/core/loops/progress.hpp"
#include "hookline/core/optimization.hpp"
#include "hookline/core/strategy.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/hooks/hooks.hpp"

#include <cstdint>

namespace hookline {

class AutomaticOptimization {
 public:
  AutomaticOptimization(const TrainerOptions& options, HookEmitter& hooks, Strategy& strategy,
                        OptimizerConfig& optimizers, FitProgress& progress)
      : options_(options),
        hooks_(hooks),
        strategy_(strategy),
        optimizers_(optimizers),
        progress_(progress) {}

  /// Runs training_step on `batch` (lent to it and given back) and the hooks around it; steps the
  /// optimizer at the end of an accumulation window (or the epoch). `outputs` receives the step's
  /// outputs, detached, with the loss divided by accumulate_grad_batches as Lightning's
  /// on_train_batch_end sees it. Returns whether the optimizer stepped.
  bool run(Batch& batch, std::int64_t batch_idx, bool is_last, StepOutput& outputs);
  /// A batch a verdict skipped (SkipBatch) adds nothing to its accumulation window. With
  /// accumulate_grad_batches > 1 the window keeps its bounds: a skipped batch that opens one
  /// zeroes the gradients (the previous window's, so the next trained batch starts afresh), and
  /// one that closes a window drops it: the gradients are zeroed and nothing steps, so none are
  /// left behind. Zeroing runs on_before_zero_grad and optimizer_zero_grad, as a window's start.
  void skip(std::int64_t batch_idx, bool is_last);

 private:
  void zero_grad(torch::optim::Optimizer& optimizer, std::int64_t batch_idx);

  const TrainerOptions& options_;
  HookEmitter& hooks_;
  Strategy& strategy_;
  OptimizerConfig& optimizers_;
  FitProgress& progress_;
};

class ManualOptimization {
 public:
  ManualOptimization(const TrainerOptions& options, HookEmitter& hooks)
      : options_(options), hooks_(hooks) {}

  /// Runs training_step on `batch`; `outputs` receives its outputs, detached.
  void run(Batch& batch, std::int64_t batch_idx, StepOutput& outputs);

 private:
  const TrainerOptions& options_;
  HookEmitter& hooks_;
};

}  // namespace hookline
