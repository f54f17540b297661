#include "hookline/core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
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

namespace {

// torch.maximum / torch.minimum: NaN wins.
double nan_max(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<double>::quiet_NaN() : std::max(a, b);
}
double nan_min(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<double>::quiet_NaN() : std::min(a, b);
}

double initial_value(Reduce reduce) {
  if (reduce == Reduce::max) return -std::numeric_limits<double>::infinity();
  if (reduce == Reduce::min) return std::numeric_limits<double>::infinity();
  return 0;
}

const char* reduce_name(Reduce r) {
  switch (r) {
    case Reduce::sum:
      return "sum";
    case Reduce::max:
      return "max";
    case Reduce::min:
      return "min";
    default:
      return "mean";
  }
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
  const bool on_step = options.on_step().value_or(d.on_step);
  const bool on_epoch = options.on_epoch().value_or(d.on_epoch);
  if (!d.allowed_step[on_step ? 1 : 0] || !d.allowed_epoch[on_epoch ? 1 : 0])
    throw std::logic_error("log('" + name + "', on_step=" + yes_no(on_step) + ", on_epoch=" +
                           yes_no(on_epoch) + ") is not allowed in '" + std::string(hook.name) +
                           "': it only supports on_step=False, on_epoch=True");
  if (!on_step && !on_epoch)
    throw std::invalid_argument("log('" + name +
                                "'): on_step and on_epoch are both false, so the value would "
                                "never be used; set one of them");
  Results& results = results_[index(phase)];
  // Several evaluation dataloaders: Lightning appends the index after the _step/_epoch fork.
  const bool suffixed = results.dataloader_idx >= 0 && options.add_dataloader_idx();
  const std::int64_t key_dataloader = suffixed ? results.dataloader_idx : -1;
  Result* found = nullptr;
  for (Result& item : results.items)
    if (item.hook == &hook && item.key_dataloader() == key_dataloader && item.name == name) {
      found = &item;
      break;
    }
  bool fresh = false;
  Result& r = found != nullptr ? *found
                               : find_or_add(name, options, hook, results, on_step, on_epoch,
                                             key_dataloader, fresh);
  // A hook logging for the first time in an epoch starts from fresh values (Lightning resets the
  // tensors of that hook when the hook name changes during the first batch or outside batches).
  if (first_loop_iter_ != 0 && current_fx_ != hook.name) {
    for (Result& item : results.items)
      if (item.fx == hook.name) reset(item);
    current_fx_ = hook.name;
  }
  if (!fresh) {
    if (r.dataloader_idx != results.dataloader_idx && !options.add_dataloader_idx())
      // Lightning rejects this too: one name would mix the values of two dataloaders.
      throw std::invalid_argument(
          "log('" + name + "', add_dataloader_idx=False) was called from dataloader " +
          std::to_string(r.dataloader_idx) + " and dataloader " +
          std::to_string(results.dataloader_idx) + " in '" + std::string(hook.name) +
          "'; log a different name per dataloader, or keep add_dataloader_idx on");
    if (r.prog_bar != options.prog_bar() || r.logger != options.logger() || r.on_step != on_step ||
        r.on_epoch != on_epoch || r.reduce != options.reduce_fx() ||
        r.add_dataloader_idx != options.add_dataloader_idx() ||
        r.sync_dist != options.sync_dist() || r.dataloader_idx != results.dataloader_idx)
      throw std::invalid_argument(
          "log('" + name + "') was called twice in '" + std::string(hook.name) +
          "' with different arguments (first: prog_bar=" + yes_no(r.prog_bar) +
          ", logger=" + yes_no(r.logger) + ", on_step=" + yes_no(r.on_step) +
          ", on_epoch=" + yes_no(r.on_epoch) + ", reduce_fx=" + reduce_name(r.reduce) +
          "); log a name with one set of options per hook, or use another name");
  }
  r.has_reset = false;
  if (on_step) {
    r.cache = value;
    r.has_cache = true;
    if (!on_epoch) {
      r.value = value;
      return;
    }
  }
  switch (r.reduce) {
    case Reduce::mean: {
      const std::int64_t bs =
          options.batch_size().value_or(std::max<std::int64_t>(default_batch_size, 1));
      r.value += value * static_cast<double>(bs);
      r.cumulated_batch_size += static_cast<double>(bs);
      break;
    }
    case Reduce::sum:
      r.value += value;
      break;
    case Reduce::max:
      r.value = nan_max(r.value, value);
      break;
    case Reduce::min:
      r.value = nan_min(r.value, value);
      break;
  }
}

MetricStore::Result& MetricStore::find_or_add(const std::string& name, const LogOptions& options,
                                              const EventInfo& hook, Results& results, bool on_step,
                                              bool on_epoch, std::int64_t key_dataloader,
                                              bool& fresh) {
  if (name.find("/dataloader_idx_") != std::string::npos)
    throw std::invalid_argument("log('" + name +
                                "'): the name must not contain '/dataloader_idx_'; the trainer "
                                "adds it with several evaluation dataloaders");
  const std::string idx = key_dataloader >= 0 ? std::to_string(key_dataloader) : std::string();
  std::string key = std::string(hook.name) + '.' + name;
  if (key_dataloader >= 0) key += '.' + idx;
  auto [it, added] = results.by_key.try_emplace(std::move(key), results.items.size());
  fresh = added;
  if (fresh) {
    Result r;
    r.fx = std::string(hook.name) + (key_dataloader >= 0 ? "." + idx : std::string());
    r.name = name;
    const std::string suffix = key_dataloader >= 0 ? "/dataloader_idx_" + idx : std::string();
    r.bare = name + suffix;
    r.step_name = (on_epoch ? name + "_step" : name) + suffix;
    r.epoch_name = (on_step ? name + "_epoch" : name) + suffix;
    r.prog_bar = options.prog_bar();
    r.logger = options.logger();
    r.on_step = on_step;
    r.on_epoch = on_epoch;
    r.add_dataloader_idx = options.add_dataloader_idx();
    r.sync_dist = options.sync_dist();
    r.reduce = options.reduce_fx();
    r.dataloader_idx = results.dataloader_idx;
    r.value = initial_value(r.reduce);
    results.items.push_back(std::move(r));
  }
  Result& r = results.items[it->second];
  r.hook = &hook;
  return r;
}

void MetricStore::on_batch_start(Phase phase, std::optional<std::int64_t> dataloader_idx) {
  first_loop_iter_ = first_loop_iter_ == -1 ? 1 : 0;
  results_[index(phase)].dataloader_idx = dataloader_idx.value_or(-1);
}

void MetricStore::write_values(Phase phase, MetricMap* callback, MetricMap* log,
                               MetricMap* pbar) const {
  const bool on_step = first_loop_iter_ != -1;  // batches running: step values, else epoch values
  const Results& results = results_[index(phase)];
  const bool training = phase == Phase::train;
  for (const Result& r : results.items) {
    if (r.has_reset || r.dataloader_idx != results.dataloader_idx) continue;
    double v = 0;
    if (on_step) {
      if (!r.on_step || !r.has_cache) continue;
      v = r.cache;
    } else {
      if (!r.on_epoch) continue;
      v = r.reduce == Reduce::mean ? r.value / r.cumulated_batch_size : r.value;
    }
    const std::string& forked = on_step ? r.step_name : r.epoch_name;
    // Step values are written at every batch end: into the store's own maps through the slots
    // found the first time (a std::map keeps its elements in place until they are erased).
    if (on_step && r.step_slots_gen != maps_gen_) {
      std::fill(std::begin(r.step_slots), std::end(r.step_slots), nullptr);
      r.step_slots_gen = maps_gen_;
    }
    const auto put = [&](MetricMap& map, const MetricMap& own, const std::string& key, int slot) {
      if (!on_step || &map != &own) {
        map[key] = v;
        return;
      }
      double*& where = r.step_slots[slot];
      if (where == nullptr) where = &map[key];
      *where = v;
    };
    // Step values of evaluation loops are not callback metrics.
    if (callback != nullptr && (training || (r.on_epoch && !on_step))) {
      put(*callback, callback_, r.bare, 0);
      put(*callback, callback_, forked, 1);
    }
    if (log != nullptr && r.logger) put(*log, logged_, forked, 2);
    if (pbar != nullptr && r.prog_bar) put(*pbar, progress_bar_, forked, 3);
  }
}

MetricStore::Values MetricStore::values(Phase phase) const {
  Values out;
  write_values(phase, &out.callback, &out.log, &out.pbar);
  return out;
}

namespace {
void update(MetricMap& into, const MetricMap& from) {
  for (const auto& [key, value] : from) into[key] = value;
}
}  // namespace

void MetricStore::merge(const Values& v) const {
  update(progress_bar_, v.pbar);
  update(callback_, v.callback);
  update(logged_, v.log);
}

void MetricStore::on_batch_end(Phase phase) {
  write_values(phase, &callback_, &logged_, &progress_bar_);
}

void MetricStore::on_epoch_end(Phase phase) {
  write_values(phase, &callback_, &logged_, &progress_bar_);
  current_fx_.clear();
}

MetricMap MetricStore::update_eval_epoch_metrics(Phase phase) {
  Values v = values(phase);
  merge(v);
  return std::move(v.log);
}

void MetricStore::add_logged(const MetricMap& metrics) {
  update(logged_, metrics);
}

void MetricStore::add_callback_metrics(const MetricMap& metrics) {
  update(callback_, metrics);
}

void MetricStore::reset(Result& r) {
  r.value = initial_value(r.reduce);
  r.cumulated_batch_size = 0;
  r.has_cache = false;
  r.has_reset = true;
}

void MetricStore::reset_results(Phase phase) {
  for (Result& r : results_[index(phase)].items) reset(r);
  first_loop_iter_ = -1;
  current_fx_.clear();
}

void MetricStore::reset_metrics() {
  ++maps_gen_;
  callback_.clear();
  logged_.clear();
  progress_bar_.clear();
}

const MetricMap& MetricStore::callback_metrics(std::optional<Phase> active) const {
  if (active) write_values(*active, &callback_, nullptr, nullptr);
  return callback_;
}

const MetricMap& MetricStore::logged_metrics(std::optional<Phase> active) const {
  if (active) write_values(*active, nullptr, &logged_, nullptr);
  return logged_;
}

const MetricMap& MetricStore::progress_bar_metrics(std::optional<Phase> active) const {
  if (active) write_values(*active, nullptr, nullptr, &progress_bar_);
  return progress_bar_;
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
  // Inside a validation within a training epoch, a checkpoint resumes after that validation:
  // save the state the store will have then (validation results reset, the training loop's
  // first_loop_iter back, no current hook).
  const bool nested = outer_first_loop_iter_.has_value();
  out.insert("first_loop_iter",
             static_cast<std::int64_t>(nested ? *outer_first_loop_iter_ : first_loop_iter_));
  out.insert("current_fx", nested ? std::string() : current_fx_);
  c10::impl::GenericList phases(c10::AnyType::get());
  for (std::size_t phase = 0; phase < 3; ++phase) {
    Results results = results_[phase];
    if (nested && phase == index(Phase::validation))
      for (Result& r : results.items) reset(r);
    c10::impl::GenericDict p(c10::StringType::get(), c10::AnyType::get());
    p.insert("dataloader_idx", results.dataloader_idx);
    c10::impl::GenericList items(c10::AnyType::get());
    for (const Result& r : results.items) {
      c10::impl::GenericDict a(c10::StringType::get(), c10::AnyType::get());
      a.insert("fx", r.fx);
      a.insert("name", r.name);
      a.insert("bare", r.bare);
      a.insert("step_name", r.step_name);
      a.insert("epoch_name", r.epoch_name);
      a.insert("prog_bar", r.prog_bar);
      a.insert("logger", r.logger);
      a.insert("on_step", r.on_step);
      a.insert("on_epoch", r.on_epoch);
      a.insert("add_dataloader_idx", r.add_dataloader_idx);
      a.insert("sync_dist", r.sync_dist);
      a.insert("reduce", static_cast<std::int64_t>(r.reduce));
      a.insert("dataloader_idx", r.dataloader_idx);
      a.insert("value", r.value);
      a.insert("cumulated_batch_size", r.cumulated_batch_size);
      a.insert("has_cache", r.has_cache);
      a.insert("cache", r.cache);
      a.insert("has_reset", r.has_reset);
      items.push_back(a);
    }
    p.insert("items", items);
    phases.push_back(p);
  }
  out.insert("results", phases);
  return out;
}

void MetricStore::load_state(const c10::IValue& state) {
  try {
    const auto d = state.toGenericDict();
    if (!d.contains("results"))
      throw std::invalid_argument(
          "the saved metrics come from an older hookline (no 'results'); resume from a "
          "checkpoint written by this version");
    Results results[3];
    const auto phases = d.at("results").toList();
    if (phases.size() != 3)
      throw std::invalid_argument("the saved metrics hold " + std::to_string(phases.size()) +
                                  " loops instead of 3");
    for (std::size_t i = 0; i < 3; ++i) {
      const auto p = phases.get(i).toGenericDict();
      results[i].dataloader_idx = p.at("dataloader_idx").toInt();
      for (const auto& item : p.at("items").toList()) {
        const auto a = item.get().toGenericDict();
        Result r;
        r.fx = a.at("fx").toStringRef();
        r.name = a.at("name").toStringRef();
        r.bare = a.at("bare").toStringRef();
        r.step_name = a.at("step_name").toStringRef();
        r.epoch_name = a.at("epoch_name").toStringRef();
        r.prog_bar = a.at("prog_bar").toBool();
        r.logger = a.at("logger").toBool();
        r.on_step = a.at("on_step").toBool();
        r.on_epoch = a.at("on_epoch").toBool();
        r.add_dataloader_idx = a.at("add_dataloader_idx").toBool();
        r.sync_dist = a.at("sync_dist").toBool();
        r.reduce = static_cast<Reduce>(a.at("reduce").toInt());
        r.dataloader_idx = a.at("dataloader_idx").toInt();
        r.value = a.at("value").toDouble();
        r.cumulated_batch_size = a.at("cumulated_batch_size").toDouble();
        r.has_cache = a.at("has_cache").toBool();
        r.cache = a.at("cache").toDouble();
        r.has_reset = a.at("has_reset").toBool();
        std::string key = r.fx.substr(0, r.fx.find('.')) + "." + r.name;
        if (r.fx.find('.') != std::string::npos) key += r.fx.substr(r.fx.find('.'));
        results[i].by_key.emplace(std::move(key), results[i].items.size());
        results[i].items.push_back(std::move(r));
      }
    }
    auto callback = dict_to_map(d.at("callback"));
    auto logged = dict_to_map(d.at("logged"));
    auto progress_bar = dict_to_map(d.at("progress_bar"));
    const int first = static_cast<int>(d.at("first_loop_iter").toInt());
    std::string current_fx = d.at("current_fx").toStringRef();
    for (std::size_t i = 0; i < 3; ++i) results_[i] = std::move(results[i]);
    ++maps_gen_;
    callback_ = std::move(callback);
    logged_ = std::move(logged);
    progress_bar_ = std::move(progress_bar);
    first_loop_iter_ = first;
    current_fx_ = std::move(current_fx);
  } catch (const c10::Error&) {  // LibTorch's text (a type check, an assertion) stays out
    throw std::invalid_argument("the saved metrics are malformed: a value has the wrong type");
  } catch (const std::out_of_range& e) {  // c10::Dict::at: a key is missing
    throw std::invalid_argument(std::string("the saved metrics are malformed: ") + e.what());
  }
}

void MetricStore::begin_nested_evaluation() {
  outer_first_loop_iter_ = first_loop_iter_;
}

void MetricStore::end_nested_evaluation() {
  if (outer_first_loop_iter_) first_loop_iter_ = *outer_first_loop_iter_;
  outer_first_loop_iter_.reset();
}

void MetricStore::clear() {
  for (Results& results : results_) results = Results{};
  first_loop_iter_ = -1;
  outer_first_loop_iter_.reset();
  current_fx_.clear();
  reset_metrics();
}

}  // namespace hookline
