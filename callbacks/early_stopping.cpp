#include "hookline/callbacks/early_stopping.hpp"
#include "hookline/core/console.hpp"
#include "hookline/core/lightning_layout.hpp"

#include "hookline/core/trainer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace hookline {

EarlyStopping::EarlyStopping(EarlyStoppingOptions options)
    : Callback("early_stopping"), options_(std::move(options)) {
  if (options_.monitor().empty())
    throw std::invalid_argument(
        "EarlyStopping: `monitor` is empty; name the logged metric to watch, e.g. "
        "EarlyStoppingOptions().monitor(\"val_loss\")");
  if (options_.mode() != "min" && options_.mode() != "max")
    throw std::invalid_argument("EarlyStopping: `mode` can be min, max, got " + options_.mode());
  const bool max = options_.mode() == "max";
  min_delta_ = static_cast<float>(max ? options_.min_delta() : -options_.min_delta());
  patience_ = options_.patience();
  best_score_ =
      max ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
}

std::string EarlyStopping::state_key() const {
  return "EarlyStopping{'monitor': '" + options_.monitor() + "', 'mode': '" + options_.mode() +
         "'}";
}

bool EarlyStopping::better(float a, float b) const {
  return options_.mode() == "max" ? a > b : a < b;
}

void EarlyStopping::setup(Trainer& trainer, Module&, Stage) {
  const TrainerOptions& o = trainer.options();
  // Lightning compares the option with 1.0, which an integer 1 also equals.
  const BatchAmount& interval = o.val_check_interval();
  const bool once_per_epoch_end =
      interval.is_count() ? interval.count() == 1 : interval.fraction() == 1.0;
  check_on_train_epoch_end_ = options_.check_on_train_epoch_end().value_or(
      once_per_epoch_end && o.check_val_every_n_epoch() == 1);
}

bool EarlyStopping::skip_check(const Trainer& trainer) const {
  return trainer.stage() != Stage::fit || trainer.sanity_checking();
}

void EarlyStopping::on_train_epoch_end(Trainer& trainer, Module&) {
  if (!check_on_train_epoch_end_ || skip_check(trainer)) return;
  run_check(trainer);
}

void EarlyStopping::on_validation_end(Trainer& trainer, Module&) {
  if (check_on_train_epoch_end_ || skip_check(trainer)) return;
  run_check(trainer);
}

void EarlyStopping::run_check(Trainer& trainer) {
  if (trainer.options().fast_dev_run() > 0) return;
  const MetricMap& logs = trainer.callback_metrics();
  const auto it = logs.find(options_.monitor());
  if (it == logs.end()) {
    std::string available;
    for (const auto& [key, value] : logs) available += (available.empty() ? "`" : "`, `") + key;
    const std::string message = "Early stopping conditioned on metric `" + options_.monitor() +
                                "` which is not available. Pass in or modify your EarlyStopping "
                                "callback to use any of the following: " +
                                (available.empty() ? "(nothing was logged)" : available + "`");
    if (options_.strict()) throw std::runtime_error(message);
    if (options_.verbose()) console().warn("{}", message);
    return;
  }
  const float current = static_cast<float>(it->second);
  const std::string& name = options_.monitor();
  const char* order = options_.mode() == "max" ? ">" : "<";
  bool stop = false;
  std::string reason;
  if (options_.check_finite() && !std::isfinite(current)) {
    stop = true;
    reason = fmt::format(
        "Monitored metric {} = {} is not finite. Previous best value was {:.3f}. Signaling "
        "Trainer to stop.",
        name, current, best_score_);
  } else if (options_.stopping_threshold() &&
             better(current, static_cast<float>(*options_.stopping_threshold()))) {
    stop = true;
    reason = fmt::format("Stopping threshold reached: {} = {} {} {}. Signaling Trainer to stop.",
                         name, current, order, *options_.stopping_threshold());
  } else if (options_.divergence_threshold() &&
             better(-current, -static_cast<float>(*options_.divergence_threshold()))) {
    stop = true;
    reason = fmt::format("Divergence threshold reached: {} = {} {} {}. Signaling Trainer to stop.",
                         name, current, order, *options_.divergence_threshold());
  } else if (better(current - min_delta_, best_score_)) {
    reason = std::isfinite(best_score_)
                 ? fmt::format(
                       "Metric {} improved by {:.3f} >= min_delta = {}. New best score: "
                       "{:.3f}",
                       name, std::fabs(best_score_ - current), std::fabs(min_delta_), current)
                 : fmt::format("Metric {} improved. New best score: {:.3f}", name, current);
    best_score_ = current;
    wait_count_ = 0;
  } else {
    ++wait_count_;
    if (wait_count_ >= patience_) {
      stop = true;
      reason = fmt::format(
          "Monitored metric {} did not improve in the last {} records. Best score: {:.3f}. "
          "Signaling Trainer to stop.",
          name, wait_count_, best_score_);
    }
  }
  if (stop) {
    stopped_epoch_ = trainer.current_epoch();
    veto(Action::StopFit, reason);
  }
  if (!reason.empty() && options_.verbose() &&
      (!options_.log_rank_zero_only() || trainer.bus().rank() == 0))
    console().info("{}", reason);
}

void EarlyStopping::state_dict(Checkpoint& state) const {
  state.set("wait_count", wait_count_);
  state.set("stopped_epoch", stopped_epoch_);
  state.set("best_score", detail::score_to_file(best_score_));  // a tensor, as Lightning's
  state.set("patience", patience_);
}

void EarlyStopping::load_state_dict(const Checkpoint& state) {
  wait_count_ = state.at("wait_count").toInt();
  stopped_epoch_ = state.at("stopped_epoch").toInt();
  best_score_ = static_cast<float>(detail::score_from_file(state.at("best_score")));
  patience_ = state.at("patience").toInt();
}

}  // namespace hookline
