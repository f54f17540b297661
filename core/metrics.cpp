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
                      const EventInfo& hook, Phase phase, std::int64_t default_batch_size,
                      std::optional<std::int64_t> dataloader_idx) {
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
  // Several evaluation dataloaders: Lightning appends the index after the _step/_epoch fork.
  const bool suffixed = dataloader_idx && options.add_dataloader_idx_;
  const std::string suffix =
      suffixed ? "/dataloader_idx_" + std::to_string(*dataloader_idx) : std::string();
  const std::string step_key = (on_epoch ? name + "_step" : name) + suffix;
  const std::string epoch_key = (on_step ? name + "_epoch" : name) + suffix;
  const std::string alias = name + suffix;
  if (on_step) {
    callback_[step_key] = value;
    if (on_epoch) callback_[alias] = value;
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
      acc.alias = on_step ? alias : "";
      acc.max = value;
      acc.min = value;
      acc.dataloader_idx = dataloader_idx.value_or(-1);
      acc.from_epoch_end = hook.log == LogRule::epoch;
    } else if (acc.reduce != options.reduce_fx_) {
      throw std::invalid_argument("log('" + name +
                                  "'): reduce_fx changed within an epoch; log a metric with one "
                                  "reduce_fx, or use another name");
    } else if (acc.dataloader_idx != dataloader_idx.value_or(-1)) {
      // Lightning rejects this too: one name would mix the values of two dataloaders.
      throw std::invalid_argument(
          "log('" + name + "', add_dataloader_idx=False) was called from dataloader " +
          std::to_string(acc.dataloader_idx) + " and dataloader " +
          std::to_string(dataloader_idx.value_or(-1)) + " in '" + std::string(hook.name) +
          "'; log a different name per dataloader, or keep add_dataloader_idx on");
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

std::vector<MetricMap> MetricStore::end_epoch(Phase phase, std::size_t num_dataloaders) {
  std::vector<MetricMap> results(std::max<std::size_t>(num_dataloaders, 1));
  MetricMap from_epoch_end;
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
    if (acc.logger) {
      logged_[acc.key] = v;
      if (acc.from_epoch_end)
        from_epoch_end[acc.key] = v;
      else
        results[acc.dataloader_idx >= 0 &&
                        static_cast<std::size_t>(acc.dataloader_idx) < results.size()
                    ? static_cast<std::size_t>(acc.dataloader_idx)
                    : 0][acc.key] = v;
    }
    if (acc.prog_bar) progress_bar_[acc.key] = v;
    it = epoch_.erase(it);
  }
  for (MetricMap& result : results) result.insert(from_epoch_end.begin(), from_epoch_end.end());
  return results;
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

namespace {

c10::impl::GenericDict map_to_dict(const std::map<std::string, double>& map) {
  c10::impl::GenericDict out(c10::StringType::get(), c10::FloatType::get());
  for (const auto& [key, value] : map) out.insert(key, value);
  return out;
}

std::map<std::string, double> dict_to_map(const c10::IValue& value) {
  std::map<std::string, double> out;
  for (const auto& entry : value.toGenericDict())
    out[entry.key().toStringRef()] = entry.value().toDouble();
  return out;
}

}  // namespace

c10::IValue MetricStore::state() const {
  c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
  out.insert("callback", map_to_dict(callback_));
  out.insert("logged", map_to_dict(logged_));
  out.insert("progress_bar", map_to_dict(progress_bar_));
  out.insert("pending_steps", map_to_dict(pending_steps_));
  c10::impl::GenericDict epoch(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [key, acc] : epoch_) {
    c10::impl::GenericDict a(c10::StringType::get(), c10::AnyType::get());
    a.insert("reduce", static_cast<std::int64_t>(acc.reduce));
    a.insert("weighted_sum", acc.weighted_sum);
    a.insert("weight", acc.weight);
    a.insert("sum", acc.sum);
    a.insert("max", acc.max);
    a.insert("min", acc.min);
    a.insert("count", acc.count);
    a.insert("prog_bar", acc.prog_bar);
    a.insert("logger", acc.logger);
    a.insert("phase", static_cast<std::int64_t>(acc.phase));
    a.insert("key", acc.key);
    a.insert("alias", acc.alias);
    a.insert("dataloader_idx", acc.dataloader_idx);
    a.insert("from_epoch_end", acc.from_epoch_end);
    epoch.insert(key, a);
  }
  out.insert("epoch", epoch);
  return out;
}

void MetricStore::load_state(const c10::IValue& state) {
  try {
    const auto d = state.toGenericDict();
    std::map<std::string, Accumulator> epoch;
    for (const auto& entry : d.at("epoch").toGenericDict()) {
      const auto a = entry.value().toGenericDict();
      Accumulator acc;
      acc.reduce = static_cast<Reduce>(a.at("reduce").toInt());
      acc.weighted_sum = a.at("weighted_sum").toDouble();
      acc.weight = a.at("weight").toDouble();
      acc.sum = a.at("sum").toDouble();
      acc.max = a.at("max").toDouble();
      acc.min = a.at("min").toDouble();
      acc.count = a.at("count").toInt();
      acc.prog_bar = a.at("prog_bar").toBool();
      acc.logger = a.at("logger").toBool();
      acc.phase = static_cast<Phase>(a.at("phase").toInt());
      acc.key = a.at("key").toStringRef();
      acc.alias = a.at("alias").toStringRef();
      if (a.contains("dataloader_idx")) acc.dataloader_idx = a.at("dataloader_idx").toInt();
      if (a.contains("from_epoch_end")) acc.from_epoch_end = a.at("from_epoch_end").toBool();
      epoch.emplace(entry.key().toStringRef(), std::move(acc));
    }
    auto callback = dict_to_map(d.at("callback"));
    auto logged = dict_to_map(d.at("logged"));
    auto progress_bar = dict_to_map(d.at("progress_bar"));
    auto pending = dict_to_map(d.at("pending_steps"));
    epoch_ = std::move(epoch);
    callback_ = std::move(callback);
    logged_ = std::move(logged);
    progress_bar_ = std::move(progress_bar);
    pending_steps_ = std::move(pending);
  } catch (const c10::Error& e) {
    throw std::invalid_argument(std::string("the saved metrics are malformed: ") +
                                e.what_without_backtrace());
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
