// hookline: LoggerConnector, where logged values go and when (Lightning's _LoggerConnector).
//
// Module::log records into the MetricStore (metrics.hpp); this connector decides when the values
// reach the loggers (every log_every_n_steps steps, at epoch and evaluation ends) and hands them
// to the loggers' strand of the async lane, in bunches. Callbacks reach it through
// Trainer::logger_connector(), as Lightning's call trainer._logger_connector.
#pragma once

#include "hookline/core/hook_emitter.hpp"
#include "hookline/core/logger.hpp"
#include "hookline/core/loops/progress.hpp"
#include "hookline/core/metrics.hpp"
#include "hookline/core/module.hpp"
#include "hookline/core/strategy.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/core/trainer_state.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

class LoggerConnector {
 public:
  LoggerConnector(const TrainerOptions& options, const TrainerState& state, HookEmitter& hooks,
                  Strategy& strategy, MetricStore& metrics, const FitProgress& progress,
                  std::vector<std::shared_ptr<Logger>> loggers)
      : options_(options),
        state_(state),
        hooks_(hooks),
        strategy_(strategy),
        metrics_(metrics),
        progress_(progress),
        loggers_(std::move(loggers)) {}

  const std::vector<std::shared_ptr<Logger>>& loggers() const { return loggers_; }
  void set_loggers(std::vector<std::shared_ptr<Logger>> loggers) { loggers_ = std::move(loggers); }
  /// Lightning's trainer.log_dir: rank 0's first logger's log_dir, else default_root_dir.
  std::string log_dir() const;

  // ---- what callbacks use -------------------------------------------------------------------
  /// Lightning's should_update_logs during training: the next step is a logging step
  /// (log_every_n_steps) or a stop was requested.
  bool should_update_logs() const {
    const std::int64_t every = options_.log_every_n_steps();
    if (every == 0) return false;
    return (progress_.batches_that_stepped + 1) % every == 0 || state_.should_stop;
  }
  /// Lightning's log_metrics(metrics, step): into logged_metrics, then to every logger on the
  /// async lane. Without `step`, a logged "step" is the step, else "epoch" is added and the step
  /// is batches_that_stepped. Does nothing without loggers.
  void log_metrics(MetricMap metrics, std::optional<std::int64_t> step = std::nullopt) {
    log_metrics_at(std::move(metrics), step, progress_.batches_that_stepped);
  }
  /// `metrics` at `step` to every logger, as Lightning's callbacks call logger.log_metrics: on
  /// the loggers' strand, in order with the trainer's own calls; not added to logged_metrics.
  void log_to_loggers(MetricMap metrics, std::int64_t step);
  /// Lightning's `trainer.callback_metrics.update(...)` (LearningRateMonitor).
  void update_callback_metrics(const MetricMap& metrics) { metrics_.add_callback_metrics(metrics); }
  /// Forgets what training steps logged so far (results and the metric maps), as after the
  /// sanity check: for callbacks that run training steps outside the loop (LearningRateFinder).
  void reset_train_results() {
    metrics_.reset_results(Phase::train);
    metrics_.reset_metrics();
  }

  // ---- what the loops use -------------------------------------------------------------------
  /// Module::log: checks the hook, reduces across ranks with sync_dist, records.
  void log(const std::string& name, double value, const LogOptions& options);
  /// The size of the batch in progress (log()'s default batch_size).
  void set_batch_size(std::int64_t size) { batch_size_ = size; }
  /// After on_train_batch_end: the step values into the maps, and to the loggers on a logging
  /// step (not while a batch only accumulates gradients).
  void update_train_step_metrics(bool accumulating);
  /// After on_train_epoch_end: the epoch values, at the step of the epoch's last batch.
  void update_train_epoch_metrics() {
    log_metrics_at(metrics_.logger_values(Phase::train), std::nullopt,
                   progress_.batches_that_stepped - 1);
  }
  /// Lightning's logger.save() after a stop was requested.
  void save_on_stop() {
    post_to_loggers([](Logger& logger) { logger.save(); }, "loggers: save");
  }
  /// Hands the rows held back by log_metrics to the loggers' strand.
  void post_pending_rows();
  /// Before the setup hooks (Lightning touches logger.experiment there): directories and
  /// versions are fixed from then on; every rank uses rank 0's directory.
  void start();
  void log_hyperparams(const Module& module);
  void finalize(const std::string& status);

 private:
  void log_metrics_at(MetricMap metrics, std::optional<std::int64_t> step,
                      std::int64_t default_step);
  /// Runs `call` on every logger, on the loggers' strand of the async lane, after the rows
  /// log_metrics holds back.
  void post_to_loggers(std::function<void(Logger&)> call, const char* what);
  /// Runs `call` on every logger on their strand, without the held-back rows (rank 0 only).
  void post_to_lane(std::function<void(Logger&)> call, const char* what);

  struct Row {
    MetricMap metrics;
    std::int64_t step;
  };
  static constexpr std::size_t kRowsPerPost = 16;

  const TrainerOptions& options_;
  const TrainerState& state_;
  HookEmitter& hooks_;
  Strategy& strategy_;
  MetricStore& metrics_;
  const FitProgress& progress_;
  std::vector<std::shared_ptr<Logger>> loggers_;
  std::shared_ptr<AsyncLane::Strand> strand_;
  std::vector<Row> pending_rows_;  // log_metrics' rows not yet posted (rank 0)
  std::chrono::steady_clock::time_point rows_posted_at_{};
  std::string log_dir_;  // rank 0's log_dir, agreed at the start of a run (DDP)
  std::int64_t batch_size_ = 1;
};

}  // namespace hookline
