#include "hookline/core/loops/logger_connector.hpp"

#include <ATen/ops/tensor.h>

#include <stdexcept>
#include <utility>

namespace hookline {

void LoggerConnector::log(const std::string& name, double value, const LogOptions& options) {
  const EventInfo* hook = hooks_.current_hook();
  if (hook == nullptr)
    throw std::logic_error("log('" + name +
                           "') was called outside any hook; call it from a step or a hook");
  if (options.sync_dist() && strategy_.distributed()) {  // Lightning's sync_dist
    at::Tensor t = at::tensor({value}, at::kDouble);
    switch (options.reduce_fx()) {
      case Reduce::sum:
        strategy_.all_reduce(t, ReduceOp::sum);
        break;
      case Reduce::max:
        strategy_.all_reduce(t, ReduceOp::max);
        break;
      case Reduce::min:
        strategy_.all_reduce(t, ReduceOp::min);
        break;
      default:
        strategy_.all_reduce(t, ReduceOp::mean);
    }
    value = t.item<double>();
  }
  metrics_.log(name, value, options, *hook, state_.logging_phase(), batch_size_);
}

void LoggerConnector::update_train_step_metrics(bool accumulating) {
  metrics_.on_batch_end(Phase::train);
  if (accumulating) return;
  if (should_update_logs() || options_.fast_dev_run() > 0)
    log_metrics(metrics_.logger_values(Phase::train));
}

std::string LoggerConnector::log_dir() const {
  if (!log_dir_.empty()) return log_dir_;
  const std::string dir = loggers_.empty() ? std::string() : loggers_.front()->log_dir();
  return dir.empty() ? options_.default_root_dir() : dir;
}

void LoggerConnector::post_to_loggers(std::function<void(Logger&)> call, const char* what) {
  post_pending_rows();  // the loggers see every call in the order the trainer made it
  post_to_lane(std::move(call), what);
}

void LoggerConnector::post_to_lane(std::function<void(Logger&)> call, const char* what) {
  if (loggers_.empty() || !strategy_.is_global_zero()) return;  // loggers write on rank 0
  AsyncLane& lane = hooks_.bus().async_lane();
  if (!strand_) strand_ = lane.make_strand();
  lane.post(
      *strand_,
      [loggers = loggers_, call = std::move(call)] {
        for (const auto& logger : loggers) call(*logger);
      },
      what);
}

void LoggerConnector::log_metrics_at(MetricMap metrics, std::optional<std::int64_t> step,
                                     std::int64_t default_step) {
  if (loggers_.empty() || metrics.empty()) return;
  metrics_.add_logged(metrics);
  if (!strategy_.is_global_zero()) return;  // loggers write on rank 0
  if (!step) {
    if (auto it = metrics.find("step"); it != metrics.end()) {
      step = static_cast<std::int64_t>(it->second);
      metrics.erase(it);
    }
  }
  if (!step) {
    metrics.try_emplace("epoch", static_cast<double>(progress_.current_epoch));
    step = default_step;
  }
  // Rows are handed to the loggers' thread in bunches: waking it costs more than a fast training
  // step. A row waits at most for kRowsPerPost rows, one second, the end of the epoch or
  // evaluation, or the trainer's next call to the loggers (a stop, the end of the run, an
  // exception), whichever comes first.
  pending_rows_.push_back({std::move(metrics), *step});
  const auto now = std::chrono::steady_clock::now();
  if (pending_rows_.size() >= kRowsPerPost || now - rows_posted_at_ >= std::chrono::seconds(1))
    post_pending_rows();
}

void LoggerConnector::post_pending_rows() {
  if (pending_rows_.empty()) return;
  rows_posted_at_ = std::chrono::steady_clock::now();
  std::vector<Row> rows;
  rows.swap(pending_rows_);
  post_to_lane(
      [rows = std::move(rows)](Logger& logger) {
        // As Lightning's logger connector: save() after log_metrics (once for the bunch).
        for (const Row& row : rows) logger.log_metrics(row.metrics, row.step);
        logger.save();
      },
      "loggers: log_metrics");
}

void LoggerConnector::log_to_loggers(MetricMap metrics, std::int64_t step) {
  if (loggers_.empty() || metrics.empty()) return;
  post_to_loggers(
      [metrics = std::move(metrics), step](Logger& logger) { logger.log_metrics(metrics, step); },
      "loggers: log_metrics from a callback");
}

void LoggerConnector::start() {
  log_dir_.clear();
  if (strategy_.is_global_zero())
    for (const auto& logger : loggers_) logger->init_experiment();
  if (strategy_.distributed()) log_dir_ = strategy_.broadcast(log_dir());
}

void LoggerConnector::log_hyperparams(const Module& module) {
  if (loggers_.empty()) return;
  Checkpoint params = module.hparams();
  post_to_loggers(
      [params = std::move(params)](Logger& logger) {
        logger.log_hyperparams(params);
        logger.save();
      },
      "loggers: log_hyperparams");
}

void LoggerConnector::finalize(const std::string& status) {
  post_to_loggers([status](Logger& logger) { logger.finalize(status); }, "loggers: finalize");
}

}  // namespace hookline
