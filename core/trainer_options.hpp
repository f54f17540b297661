// hookline: TrainerOptions, Lightning's Trainer arguments as a value with chainable setters.
//
//   Trainer trainer(TrainerOptions().max_epochs(10).limit_val_batches(0.25).gradient_clip_val(1));
//
// Batch limits and val_check_interval take a count (integer) or a fraction (floating point), as
// in Lightning: limit_train_batches(2) is two batches, limit_train_batches(0.5) half the loader.
// validate() rejects bad values with a message naming the option; the Trainer calls it before
// any hook runs.
#pragma once

#include "hookline/core/chained_options.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "hookline/hooks/hooks.hpp"

namespace hookline {

/// A number of batches (count) or a fraction of a loader.
class BatchAmount {
 public:
  BatchAmount() : value_(1.0) {}
  BatchAmount(std::int64_t count) : value_(count) {}  // NOLINT: implicit by design
  BatchAmount(int count) : value_(static_cast<std::int64_t>(count)) {}  // NOLINT
  BatchAmount(double fraction) : value_(fraction) {}                    // NOLINT
  bool is_count() const { return std::holds_alternative<std::int64_t>(value_); }
  std::int64_t count() const { return std::get<std::int64_t>(value_); }
  double fraction() const { return std::get<double>(value_); }
  /// How many of `available` batches this amount selects (fractions round down, at least 1
  /// when the fraction is > 0 and a batch exists).
  std::int64_t of(std::int64_t available) const;
  /// Whether the amount selects anything at all (a count or fraction above zero).
  bool positive() const { return is_count() ? count() > 0 : fraction() > 0; }
  std::string describe() const;

 private:
  std::variant<std::int64_t, double> value_;
};

class Logger;

enum class Precision { fp32, bf16_mixed };

#define HOOKLINE_OPTION(type, name, init) HOOKLINE_CHAINED_OPTION(TrainerOptions, type, name, init)

class TrainerOptions {
  /// Stop after this many epochs (default: 1000 when max_steps is -1, else unlimited).
  HOOKLINE_OPTION(std::optional<std::int64_t>, max_epochs, std::nullopt)
  /// Run at least this many epochs before a stop request is honoured.
  HOOKLINE_OPTION(std::optional<std::int64_t>, min_epochs, std::nullopt)
  /// Stop after this many optimizer steps (-1: no limit).
  HOOKLINE_OPTION(std::int64_t, max_steps, -1)
  /// Run at least this many optimizer steps before a stop request is honoured (-1: none).
  HOOKLINE_OPTION(std::int64_t, min_steps, -1)
  /// Stop at the first batch boundary after this much training time.
  HOOKLINE_OPTION(std::optional<std::chrono::milliseconds>, max_time, std::nullopt)
  HOOKLINE_OPTION(BatchAmount, limit_train_batches, BatchAmount(1.0))
  HOOKLINE_OPTION(BatchAmount, limit_val_batches, BatchAmount(1.0))
  HOOKLINE_OPTION(BatchAmount, limit_test_batches, BatchAmount(1.0))
  HOOKLINE_OPTION(BatchAmount, limit_predict_batches, BatchAmount(1.0))
  /// Validate every n training batches (count) or this fraction of an epoch.
  HOOKLINE_OPTION(BatchAmount, val_check_interval, BatchAmount(1.0))
  /// Validate every n epochs.
  HOOKLINE_OPTION(std::int64_t, check_val_every_n_epoch, 1)
  /// Validation batches per loader before training (-1: all, 0: no sanity check).
  HOOKLINE_OPTION(std::int64_t, num_sanity_val_steps, 2)
  HOOKLINE_OPTION(std::int64_t, accumulate_grad_batches, 1)
  HOOKLINE_OPTION(std::optional<double>, gradient_clip_val, std::nullopt)
  HOOKLINE_OPTION(std::optional<ClipAlgorithm>, gradient_clip_algorithm, std::nullopt)
  /// Send training step metrics to the loggers every n batches that stepped (0: never); the
  /// metric maps get them at every batch end regardless.
  HOOKLINE_OPTION(std::int64_t, log_every_n_steps, 50)
  /// Run n batches of every loop once, with no sanity check (0: off).
  HOOKLINE_OPTION(std::int64_t, fast_dev_run, 0)
  /// Train and validate on the first n (or this fraction of) training batches, unshuffled.
  HOOKLINE_OPTION(BatchAmount, overfit_batches, BatchAmount(std::int64_t{0}))
  HOOKLINE_OPTION(std::int64_t, reload_dataloaders_every_n_epochs, 0)
  /// Deterministic algorithms (torch) for reproducible runs.
  HOOKLINE_OPTION(bool, deterministic, false)
  /// Seed torch's global generator at the start of every run.
  HOOKLINE_OPTION(std::optional<std::uint64_t>, seed, std::nullopt)
  HOOKLINE_OPTION(std::string, default_root_dir, ".")
  HOOKLINE_OPTION(Precision, precision, Precision::fp32)
  /// Evaluate (validate/test/predict) under torch inference mode instead of no_grad.
  HOOKLINE_OPTION(bool, inference_mode, true)
  /// Torch intra-op threads (default: the machine's cores).
  HOOKLINE_OPTION(std::optional<int>, num_threads, std::nullopt)
  /// Device the module and batches live on.
  HOOKLINE_OPTION(c10::Device, device, c10::Device(c10::kCPU))
  /// Lightning's accelerator: "auto" (the device() option), "cpu" or "cuda".
  HOOKLINE_OPTION(std::string, accelerator, "auto")
  /// Lightning's devices: processes per node under DDP (CPU: that many processes here).
  HOOKLINE_OPTION(std::int64_t, devices, 1)
  HOOKLINE_OPTION(std::int64_t, num_nodes, 1)
  /// Lightning's strategy: "auto" (DDP when devices x num_nodes > 1 or a launcher set
  /// WORLD_SIZE > 1, else one device), "single_device" or "ddp" (strategies/).
  HOOKLINE_OPTION(std::string, strategy, "auto")
  /// DDP: how long a collective may wait (a dead rank fails the others after this long).
  HOOKLINE_OPTION(std::chrono::milliseconds, process_group_timeout, std::chrono::minutes(30))
  /// DDP: each rank trains and validates on its own shard of every loader (Lightning's
  /// use_distributed_sampler / DistributedSampler).
  HOOKLINE_OPTION(bool, use_distributed_sampler, true)
  /// Add a default ModelCheckpoint when no checkpoint callback is given (Lightning's default).
  HOOKLINE_OPTION(bool, enable_checkpointing, true)
  /// Write checkpoint files on a background thread (Lightning's AsyncCheckpointIO): the state is
  /// copied synchronously, the file written while training goes on.
  HOOKLINE_OPTION(bool, async_checkpointing, false)
  /// Turn SIGTERM/SIGINT during a run into a resumable stop (see RunInterrupted).
  HOOKLINE_OPTION(bool, handle_signals, true)
  /// Show a progress bar (a TQDMProgressBar unless the callbacks hold one), as Lightning does.
  HOOKLINE_OPTION(bool, enable_progress_bar, true)
  /// Print a ModelSummary at fit start (one is added unless the callbacks hold one), as Lightning.
  HOOKLINE_OPTION(bool, enable_model_summary, true)
  /// hookline's own (Lightning has none): on glibc, raise malloc's mmap and trim thresholds while
  /// a run lasts, so a CPU step reuses its freed memory instead of faulting it back in from the
  /// kernel, and set them back afterwards (core/allocator_tuning.hpp). Off: malloc is untouched.
  HOOKLINE_OPTION(bool, tune_allocator, true)

 public:
  /// Lightning's `logger`: true (the default) gives a TensorBoardLogger under default_root_dir
  /// (Lightning's default when tensorboard is installed; hookline writes TensorBoard natively),
  /// false none; or the loggers to use.
  TrainerOptions& logger(bool on) {
    logger_on_ = on;
    loggers_.clear();
    return *this;
  }
  TrainerOptions& logger(std::shared_ptr<Logger> logger) {
    loggers_ = {std::move(logger)};
    logger_on_ = true;
    return *this;
  }
  TrainerOptions& logger(std::vector<std::shared_ptr<Logger>> loggers) {
    loggers_ = std::move(loggers);
    logger_on_ = !loggers_.empty();
    return *this;
  }
  /// Whether any logger is used (the given ones, or the default one).
  bool logger() const { return logger_on_; }
  /// The loggers given (empty: the default one, when logger() is true).
  const std::vector<std::shared_ptr<Logger>>& loggers() const { return loggers_; }

  /// Throws std::invalid_argument naming the first bad option and how to fix it.
  void validate() const;
  /// The max_epochs in force, or -1 for none: 1 under fast_dev_run, else max_epochs, else
  /// Lightning's default (1000 when max_steps is -1, no limit otherwise).
  std::int64_t effective_max_epochs() const;

 private:
  bool logger_on_ = true;
  std::vector<std::shared_ptr<Logger>> loggers_;
};

#undef HOOKLINE_OPTION

}  // namespace hookline
