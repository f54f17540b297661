#include "hookline/core/loops/fit_loop.hpp"

#include "hookline/core/console.hpp"
#include "hookline/core/loops/checkpoint_connector.hpp"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>

namespace hookline {

bool FitLoop::done() const {
  if (c_.options.max_steps() >= 0 && c_.progress.global_step >= c_.options.max_steps()) return true;
  const std::int64_t max_epochs = c_.options.effective_max_epochs();
  if (max_epochs >= 0 && c_.progress.current_epoch >= max_epochs) return true;
  return c_.state.should_stop && epoch_loop_.can_stop_early();
}

void FitLoop::run_sanity_check() {
  const bool val_limited_away = !c_.options.limit_val_batches().positive();
  if (c_.options.num_sanity_val_steps() == 0 || c_.options.fast_dev_run() > 0 || val_limited_away)
    return;
  c_.state.sanity_checking = true;
  c_.metrics.reset_results(Phase::validation);
  c_.metrics.reset_metrics();
  // The sanity check must not change the random stream training will see.
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  const at::Tensor rng_state = generator.get_state();
  SanityCheckStart start;
  c_.hooks.emit(start);
  c_.evaluation.run(EvalKind::validation, true);
  SanityCheckEnd end;
  c_.hooks.emit(end);
  generator.set_state(rng_state);
  c_.metrics.reset_results(Phase::validation);
  c_.metrics.reset_metrics();
  c_.state.sanity_checking = false;
}

void FitLoop::run() {
  c_.data.ensure_train_loader();
  c_.checkpoint.resume_loader();
  c_.checkpoint.commit();  // from here on a failure is the run's, not the file's
  // A checkpoint saved during on_train_epoch_end resumes after that epoch's hooks: the rest of
  // its end (epoch schedulers, epoch values to the loggers, the epoch count) runs before
  // on_train_start, where Lightning's current_epoch already counts the saved epoch.
  if (c_.checkpoint.resumes_after_epoch_end() && c_.data.num_training_batches() > 0) {
    c_.state.training = true;
    c_.checkpoint.resume_epoch();
    c_.checkpoint.finish_restore();
    epoch_loop_.end_epoch();
    c_.state.training = false;
  }
  if (done() || c_.data.num_training_batches() == 0) {
    c_.checkpoint.finish_restore();
    return;
  }
  if (!c_.data.val_loaders_requested() && epoch_loop_.should_check_val_epoch() &&
      c_.options.limit_val_batches().positive()) {
    // Lightning requests them here to show them in the progress bar, validating meanwhile.
    c_.state.validating = true;
    c_.data.ensure_val_loaders();
    c_.state.validating = false;
  }
  epoch_loop_.start();
  c_.state.training = true;
  TrainStart start;
  c_.hooks.emit(start);
  while (!done()) epoch_loop_.run();
  if (c_.options.max_steps() >= 0 && c_.progress.global_step >= c_.options.max_steps())
    console().info("`Trainer.fit` stopped: `max_steps={}` reached.", c_.options.max_steps());
  else if (c_.options.effective_max_epochs() >= 0 &&
           c_.progress.current_epoch >= c_.options.effective_max_epochs())
    console().info("`Trainer.fit` stopped: `max_epochs={}` reached.",
                   c_.options.effective_max_epochs());
  TrainEnd end;
  c_.hooks.emit(end);
  c_.state.training = false;
}

}  // namespace hookline
