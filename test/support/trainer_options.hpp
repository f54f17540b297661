// Test helper: TrainerOptions for a silent run whose files go under a test directory.
#pragma once

#include <hookline/core/trainer.hpp>

#include <filesystem>

namespace test_support {

/// No progress bar, model summary, checkpoints, logger or sanity check; default_root_dir `root`.
inline hookline::TrainerOptions silent_options(const std::filesystem::path& root) {
  return hookline::TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false)
      .logger(false)
      .num_sanity_val_steps(0)
      .default_root_dir(root.string());
}

}  // namespace test_support
