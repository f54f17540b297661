#include "hookline/core/metrics.hpp"

#include <algorithm>
#include <stdexcept>

namespace hookline {

namespace {

struct Defaults {
  bool allowed_step[2];  // [false, true] allowed?
  bool allowed_epoch[2];
  bool on_step, on_epoch;
};

Defaults defaults_for(LogRule rule) {
  switch (rule) {
    case LogRule::step:
      return {{true, true}, {true, true}, true, false};
    case LogRule::eval_step:
      return {{true, true}, {true, true}, false, true};
    case LogRule::epoch:
      return {{true, false}, {false, true}, false, true};
    default:
      return {{false, false}, {false, false}, false, false};
  }
}

const char* yes_no(bool b) {
  return b ? "True" : "False";
}

}  // namespace

void MetricStore::log(const std::string& name, double value, const LogOptions& options,
                      const EventInfo& hook, Phase phase, std::int64_t default_batch_size) {
  if (name.empty()) throw std::invalid_argument("log(): the metric name is empty");
  if (hook.log == LogRule::forbidden || hook.log == LogRule::inherit)
    throw std::logic_error("log('" + name + "') was called from '" + std::string(hook.name) +
                           "', where logging is not supported (as in Lightning 2.2); log from "
                           "training_step, validation_step, test_step or the batch/epoch hooks");
  const Defaults d = defaults_for(hook.log);
  const bool on_step = options.on_step_.value_or(d.on_step);
  const bool on_epoch = options.on_epoch_.value_or(d.on_epoch);
  if (!d.allowed_step[on_step ? 1 : 0] || !d.allowed_epoch[on_epoch ? 1 : 0])
    throw std::logic_error("log('" + name + "', on_step=" + yes_no(on_step) + ", on_epoch=" +
                           yes_no(on_epoch) + ") is not allowed in '" + std::string(hook.name) +
                           "': it only supports on_step=False, on_epoch=True");
  if (!on_step && !on_epoch)
    throw std::invalid_argument("log('" + name +
                                "'): on_step and on_epoch are both false, so the value would "
                                "never be used; set one of them");
  // NaN and inf are recorded as they are: monitors must be able to see a diverged loss.
  const std::string step_key = on_epoch ? name + "_step" : name;
  const std::string epoch_key = on_step ? name + "_epoch" : name;
  if (on_step) {
    callback_[step_key] = value;
    if (on_epoch) callback_[name] = value;
    if (options.prog_bar_) progress_bar_[step_key] = value;
    if (options.logger_) pending_steps_[step_key] = value;
  }
  if (on_epoch) {
    auto [it, fresh] = epoch_.try_emplace(epoch_key);
    Accumulator& acc = it->second;
    if (fresh) {
      acc.reduce = options.reduce_fx_;
      acc.prog_bar = options.prog_bar_;
      acc.logger = options.logger_;
      acc.phase = phase;
      acc.key = epoch_key;
      acc.alias = on_step ? name : "";
      acc.max = value;
      acc.min = value;
    } else if (acc.reduce != options.reduce_fx_) {
      throw std::invalid_argument("log('" + name +
                                  "'): reduce_fx changed within an epoch; log a metric with one "
                                  "reduce_fx, or use another name");
    }
    const double w = static_cast<double>(
        options.batch_size_.value_or(std::max<std::int64_t>(default_batch_size, 1)));
    acc.weighted_sum += value * w;
    acc.weight += w;
    acc.sum += value;
    acc.max = std::max(acc.max, value);
    acc.min = std::min(acc.min, value);
    ++acc.count;
  }
}

void MetricStore::end_epoch(Phase phase) {
  for (auto it = epoch_.begin(); it != epoch_.end();) {
    const Accumulator& acc = it->second;
    if (acc.phase != phase) {
      ++it;
      continue;
    }
    double v = 0;
    switch (acc.reduce) {
      case Reduce::mean:
        v = acc.weight > 0 ? acc.weighted_sum / acc.weight : 0;
        break;
      case Reduce::sum:
        v = acc.sum;
        break;
      case Reduce::max:
        v = acc.max;
        break;
      case Reduce::min:
        v = acc.min;
        break;
    }
    callback_[acc.key] = v;
    if (!acc.alias.empty()) callback_[acc.alias] = v;
    if (acc.logger) logged_[acc.key] = v;
    if (acc.prog_bar) progress_bar_[acc.key] = v;
    it = epoch_.erase(it);
  }
}

void MetricStore::flush_steps() {
  for (const auto& [key, value] : pending_steps_) logged_[key] = value;
  pending_steps_.clear();
}

void MetricStore::reset(Phase phase) {
  std::erase_if(epoch_, [&](const auto& kv) { return kv.second.phase == phase; });
  if (phase == Phase::validation) {
    callback_.clear();
    logged_.clear();
    progress_bar_.clear();
    pending_steps_.clear();
  }
}

void MetricStore::clear() {
  epoch_.clear();
  pending_steps_.clear();
  callback_.clear();
  logged_.clear();
  progress_bar_.clear();
}

}  // namespace hookline
