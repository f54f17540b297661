// Test helpers for the logging suites (core/logging_tests.cpp, loggers/logger_tests.cpp): the
// options of a run that has loggers and nothing else, and a model whose steps log what a test asks.
#pragma once

#include "trace_recorder.hpp"  // BoringModel

#include <hookline/core/trainer.hpp>

#include <cstdint>
#include <functional>
#include <utility>

namespace test_support {

/// No sanity check, validation, checkpoints, progress bar or model summary; the loggers stay.
inline hookline::TrainerOptions logging_options() {
  return hookline::TrainerOptions()
      .num_sanity_val_steps(0)
      .limit_val_batches(0)
      .enable_checkpointing(false)
      .enable_progress_bar(false)
      .enable_model_summary(false);
}

// A BoringModel whose training and validation steps first run `train` / `val` (when set) with the
// model and the batch index: the logging a test needs.
class LoggingModel final : public BoringModel {
 public:
  using Step = std::function<void(hookline::Module&, std::int64_t)>;
  explicit LoggingModel(Step train, Step val = nullptr)
      : train_(std::move(train)), val_(std::move(val)) {}
  hookline::StepOutput training_step(const hookline::Batch& b, std::int64_t i) override {
    if (train_) train_(*this, i);
    return BoringModel::training_step(b, i);
  }
  hookline::StepOutput validation_step(const hookline::Batch& b, std::int64_t i,
                                       std::int64_t d) override {
    if (val_) val_(*this, i);
    return BoringModel::validation_step(b, i, d);
  }

 private:
  Step train_, val_;
};

}  // namespace test_support
