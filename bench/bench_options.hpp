// Shared by the trainer benchmarks: the options of a bare timed fit.
#pragma once

#include <hookline/core/trainer.hpp>

#include <cstdint>

namespace hookline_bench {

/// One epoch of `steps` training batches and nothing else: no validation, sanity check,
/// checkpoints, progress bar, model summary or logger; one torch thread.
inline hookline::TrainerOptions bare_fit_options(std::int64_t steps) {
  return hookline::TrainerOptions()
      .max_epochs(1)
      .limit_train_batches(steps)
      .limit_val_batches(0)
      .num_sanity_val_steps(0)
      .enable_checkpointing(false)
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .logger(false)
      .num_threads(1);
}

}  // namespace hookline_bench
