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
  const std::string dir = loggers_.empty() ? std::string() : loggers_.front()->log_dir();
  return dir.empty() ? options_.default_root_dir() : dir;
}

void Trainer::post_to_loggers(std::function<void(Logger&)> call, const char* what) {
  if (loggers_.empty()) return;
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
  post_to_loggers(
      [metrics = std::move(metrics), step](Logger& logger) {
        logger.log_metrics(metrics, step);
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
  for (const auto& logger : loggers_) logger->init_experiment();
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
