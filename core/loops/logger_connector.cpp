// hookline: the logger connector: where logged values go (Lightning's _LoggerConnector). The
// metric maps themselves are MetricStore's; this file feeds the loggers.
#include "hookline/core/trainer.hpp"

#include "hookline/core/console.hpp"

#include <utility>

namespace hookline {

void Trainer::log_metric(const std::string& name, double value, const LogOptions& options) {
  if (current_hook_ == nullptr)
    throw std::logic_error("log('" + name +
                           "') was called outside any hook; call it from a step or a hook");
  Phase phase = Phase::train;
  if (sanity_checking_ || validating_)
    phase = Phase::validation;
  else if (stage_ == Stage::validate)
    phase = Phase::validation;
  else if (stage_ == Stage::test)
    phase = Phase::test;
  if (options.sync_dist_ && strategy_->distributed()) {  // Lightning's sync_dist
    at::Tensor t = at::tensor({value}, at::kDouble);
    switch (options.reduce_fx_) {
      case Reduce::sum:
        strategy_->all_reduce(t, ReduceOp::sum);
        break;
      case Reduce::max:
        strategy_->all_reduce(t, ReduceOp::max);
        break;
      case Reduce::min:
        strategy_->all_reduce(t, ReduceOp::min);
        break;
      default:
        strategy_->all_reduce(t, ReduceOp::mean);
    }
    value = t.item<double>();
  }
  metrics_.log(name, value, options, *current_hook_, phase, current_batch_size_);
}

// Lightning's trainer._active_loop: whose results the metric properties merge.
std::optional<Phase> Trainer::active_phase() const {
  if (!running_) return std::nullopt;
  if (training_) return Phase::train;
  if (sanity_checking_ || validating_ || stage_ == Stage::validate) return Phase::validation;
  if (stage_ == Stage::test) return Phase::test;
  return std::nullopt;
}

std::string Trainer::log_dir() const {
  if (!log_dir_.empty()) return log_dir_;
  const std::string dir = loggers_.empty() ? std::string() : loggers_.front()->log_dir();
  return dir.empty() ? options_.default_root_dir() : dir;
}

void Trainer::post_to_loggers(std::function<void(Logger&)> call, const char* what) {
  post_pending_rows();  // the loggers see every call in the order the trainer made it
  post_to_lane(std::move(call), what);
}

void Trainer::post_to_lane(std::function<void(Logger&)> call, const char* what) {
  if (loggers_.empty() || !strategy_->is_global_zero()) return;  // loggers write on rank 0
  AsyncLane& lane = bus_.async_lane();
  if (!logger_strand_) logger_strand_ = lane.make_strand();
  lane.post(
      *logger_strand_,
      [loggers = loggers_, call = std::move(call)] {
        for (const auto& logger : loggers) call(*logger);
      },
      what);
}

void Trainer::send_metrics(MetricMap metrics, std::optional<std::int64_t> step) {
  if (loggers_.empty() || metrics.empty()) return;
  metrics_.add_logged(metrics);
  if (!strategy_->is_global_zero()) return;  // loggers write on rank 0
  if (!step) {
    if (auto it = metrics.find("step"); it != metrics.end()) {
      step = static_cast<std::int64_t>(it->second);
      metrics.erase(it);
    }
  }
  if (!step) {
    metrics.try_emplace("epoch", static_cast<double>(current_epoch_));
    step = batches_that_stepped_;
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

void Trainer::post_pending_rows() {
  if (pending_rows_.empty()) return;
  rows_posted_at_ = std::chrono::steady_clock::now();
  std::vector<LoggerRow> rows;
  rows.swap(pending_rows_);
  post_to_lane(
      [rows = std::move(rows)](Logger& logger) {
        // As Lightning's logger connector: save() after log_metrics (once for the bunch).
        for (const LoggerRow& row : rows) logger.log_metrics(row.metrics, row.step);
        logger.save();
      },
      "loggers: log_metrics");
}

void Trainer::log_to_loggers(MetricMap metrics, std::int64_t step) {
  if (loggers_.empty() || metrics.empty()) return;
  post_to_loggers(
      [metrics = std::move(metrics), step](Logger& logger) { logger.log_metrics(metrics, step); },
      "loggers: log_metrics from a callback");
}

bool Trainer::should_update_logs() const {
  const std::int64_t every = options_.log_every_n_steps();
  if (every == 0) return false;
  return (batches_that_stepped_ + 1) % every == 0 || should_stop_;
}

// As Lightning touches logger.experiment before the setup hooks: directories and files exist
// (and versions are fixed) from then on.
void Trainer::start_loggers() {
  log_dir_.clear();
  if (strategy_->is_global_zero())
    for (const auto& logger : loggers_) logger->init_experiment();
  // Every rank uses rank 0's directory (ModelCheckpoint's default dirpath is under it).
  if (strategy_->distributed()) log_dir_ = strategy_->broadcast(log_dir());
}

void Trainer::log_hyperparams() {
  if (loggers_.empty()) return;
  Checkpoint params = module_->hparams();
  post_to_loggers(
      [params = std::move(params)](Logger& logger) {
        logger.log_hyperparams(params);
        logger.save();
      },
      "loggers: log_hyperparams");
}

void Trainer::finalize_loggers(const std::string& status) {
  post_to_loggers([status](Logger& logger) { logger.finalize(status); }, "loggers: finalize");
}

}  // namespace hookline
