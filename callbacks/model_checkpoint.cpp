#include "hookline/callbacks/model_checkpoint.hpp"
#include "hookline/core/console.hpp"
#include "hookline/core/lightning_layout.hpp"

#include "hookline/core/logger.hpp"
#include "hookline/core/trainer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>

namespace hookline {

namespace fs = std::filesystem;

namespace {

// A value the way Python's format() writes it with `spec` (the part after ':'): the common specs
// of checkpoint names ("", ".2f", "03d", ".3e", ".4g", "d") are supported.
std::string format_value(double value, bool is_int, const std::string& spec) {
  if (spec.empty()) {
    if (is_int) return std::to_string(static_cast<long long>(value));
    char buffer[64];
    auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
    std::string out(buffer, error == std::errc() ? end : buffer);
    if (out.find_first_of(".einf") == std::string::npos) out += ".0";  // Python prints 1.0
    return out;
  }
  std::string conversion = spec;
  char type = conversion.back();
  if (std::string("dfeEgG%").find(type) == std::string::npos)
    type = 0;
  else
    conversion.pop_back();
  char buffer[128];
  if (type == 'd') {
    std::snprintf(buffer, sizeof buffer, ("%" + conversion + "lld").c_str(),
                  static_cast<long long>(std::llround(value)));
  } else if (type == '%') {
    std::snprintf(buffer, sizeof buffer, ("%" + conversion + "f%%").c_str(), value * 100);
  } else {
    std::snprintf(buffer, sizeof buffer, ("%" + conversion + (type ? type : 'g')).c_str(), value);
  }
  return buffer;
}

std::string python_repr(const std::string& s) {
  return "'" + s + "'";
}

}  // namespace

ModelCheckpoint::ModelCheckpoint(ModelCheckpointOptions options)
    : CheckpointCallback("model_checkpoint"), options_(std::move(options)) {
  const auto& o = options_;
  if (o.mode() != "min" && o.mode() != "max")
    throw std::invalid_argument("ModelCheckpoint: `mode` can be min, max but got " + o.mode());
  kth_value_ = o.mode() == "min" ? std::numeric_limits<double>::infinity()
                                 : -std::numeric_limits<double>::infinity();
  if (!o.every_n_train_steps() && !o.every_n_epochs() && !o.train_time_interval()) {
    every_n_epochs_ = 1;
  } else {
    every_n_epochs_ = o.every_n_epochs().value_or(0);
    every_n_train_steps_ = o.every_n_train_steps().value_or(0);
  }
  if (o.save_top_k() < -1)
    throw std::invalid_argument("ModelCheckpoint: invalid value for save_top_k=" +
                                std::to_string(o.save_top_k()) + ". Must be >= -1");
  if (every_n_train_steps_ < 0)
    throw std::invalid_argument("ModelCheckpoint: invalid value for every_n_train_steps=" +
                                std::to_string(every_n_train_steps_) + ". Must be >= 0");
  if (every_n_epochs_ < 0)
    throw std::invalid_argument("ModelCheckpoint: invalid value for every_n_epochs=" +
                                std::to_string(every_n_epochs_) + ". Must be >= 0");
  const int triggers = (every_n_train_steps_ >= 1) + (every_n_epochs_ >= 1) +
                       (o.train_time_interval().has_value() ? 1 : 0);
  if (triggers > 1)
    throw std::invalid_argument(
        "ModelCheckpoint: every_n_train_steps, every_n_epochs and train_time_interval are "
        "mutually exclusive; set only one of them");
  if (o.monitor().empty() && o.save_top_k() != -1 && o.save_top_k() != 0 && o.save_top_k() != 1)
    throw std::invalid_argument("ModelCheckpoint(save_top_k=" + std::to_string(o.save_top_k()) +
                                ", monitor=None) is not a valid configuration: there is no "
                                "quantity for top_k to track; set monitor");
  if (!o.dirpath().empty()) dirpath_ = fs::weakly_canonical(fs::absolute(o.dirpath())).string();
}

std::string ModelCheckpoint::state_key() const {
  std::string interval = "None";
  if (options_.train_time_interval()) {
    const auto ms = options_.train_time_interval()->count();
    interval = "datetime.timedelta(seconds=" + std::to_string(ms / 1000) +
               (ms % 1000 ? ", microseconds=" + std::to_string((ms % 1000) * 1000) : "") + ")";
  }
  return "ModelCheckpoint{'monitor': " +
         (options_.monitor().empty() ? std::string("None") : python_repr(options_.monitor())) +
         ", 'mode': " + python_repr(options_.mode()) +
         ", 'every_n_train_steps': " + std::to_string(every_n_train_steps_) +
         ", 'every_n_epochs': " + std::to_string(every_n_epochs_) +
         ", 'train_time_interval': " + interval + "}";
}

// The option; else, as in Lightning, `checkpoints` inside the first logger's version directory
// (<save_dir or default_root_dir>/<name>/<version>), or <default_root_dir>/checkpoints without a
// logger.
std::string ModelCheckpoint::resolve_dirpath(const Trainer& trainer) const {
  if (!options_.dirpath().empty()) return dirpath_;
  const fs::path root(trainer.options().default_root_dir());
  if (trainer.loggers().empty()) return (root / "checkpoints").string();
  Logger& logger = *trainer.loggers().front();
  const std::string save_dir = logger.save_dir();
  return ((save_dir.empty() ? root : fs::path(save_dir)) / logger.name() /
          version_dirname(logger.version()) / "checkpoints")
      .string();
}

std::vector<std::string> ModelCheckpoint::last_checkpoint_candidates(const Trainer& trainer) const {
  std::vector<std::string> out;
  std::error_code error;
  const std::string dir = resolve_dirpath(trainer);
  if (fs::is_directory(dir, error))
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      const fs::path& p = entry.path();
      if (p.extension() == kExtension && p.stem().string().rfind(kNameLast, 0) == 0)
        out.push_back(p.string());
    }
  if (!last_model_path_.empty() && std::find(out.begin(), out.end(), last_model_path_) == out.end())
    out.push_back(last_model_path_);
  return out;
}

std::string ModelCheckpoint::format_checkpoint_name(const std::map<std::string, double>& metrics,
                                                    const std::string& filename,
                                                    std::optional<int> ver) const {
  std::string pattern = !filename.empty() ? filename : options_.filename();
  if (pattern.empty()) pattern = "{epoch}-{step}";
  std::string name;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern[i] != '{') {
      name += pattern[i++];
      continue;
    }
    const std::size_t close = pattern.find('}', i);
    if (close == std::string::npos) {
      name += pattern.substr(i);
      break;
    }
    std::string field = pattern.substr(i + 1, close - i - 1);
    std::string spec;
    if (auto colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    auto it = metrics.find(field);
    const bool is_int = field == "epoch" || field == "step" || it == metrics.end();
    const double value = it == metrics.end() ? 0.0 : it->second;
    if (options_.auto_insert_metric_name()) name += field + "=";
    name += format_value(value, is_int, spec);
    i = close + 1;
  }
  if (ver) name += "-v" + std::to_string(*ver);
  name += kExtension;
  return dirpath_.empty() ? name : (fs::path(dirpath_) / name).string();
}

void ModelCheckpoint::setup(Trainer& trainer, Module&, Stage stage) {
  dirpath_ = resolve_dirpath(trainer);
  std::error_code error;
  if (stage == Stage::fit && options_.save_top_k() != 0 && fs::is_directory(dirpath_, error) &&
      !fs::is_empty(dirpath_, error))
    console().warn("checkpoint directory {} exists and is not empty", dirpath_);
}

void ModelCheckpoint::on_train_start(Trainer&, Module&) {
  validation_ran_ = false;
  last_time_checked_ = std::chrono::steady_clock::now();
  time_checked_ = true;
}

void ModelCheckpoint::on_train_batch_end(Trainer& trainer, Module&, const StepOutput&, const Batch&,
                                         std::int64_t) {
  if (should_skip_saving(trainer)) return;
  const bool skip_batch =
      every_n_train_steps_ < 1 || trainer.global_step() % every_n_train_steps_ != 0;
  bool skip_time = true;
  std::chrono::steady_clock::time_point now;  // read only when a time interval is set
  if (options_.train_time_interval()) {
    now = std::chrono::steady_clock::now();
    skip_time = !time_checked_ || now - last_time_checked_ < *options_.train_time_interval();
  }
  if (skip_batch && skip_time) return;
  if (!skip_time) last_time_checked_ = now;
  const auto candidates = monitor_candidates(trainer);
  save_topk(trainer, candidates);
  save_last(trainer, candidates);
}

void ModelCheckpoint::on_train_epoch_end(Trainer& trainer, Module&) {
  if (should_skip_saving(trainer) || !should_save_on_train_epoch_end(trainer)) return;
  const auto candidates = monitor_candidates(trainer);
  if (every_n_epochs_ >= 1 && (trainer.current_epoch() + 1) % every_n_epochs_ == 0)
    save_topk(trainer, candidates);
  save_last(trainer, candidates);
}

void ModelCheckpoint::on_validation_end(Trainer& trainer, Module&) {
  if (!trainer.sanity_checking() && trainer.stage() == Stage::fit) validation_ran_ = true;
  if (should_skip_saving(trainer) || should_save_on_train_epoch_end(trainer)) return;
  const auto candidates = monitor_candidates(trainer);
  if (every_n_epochs_ >= 1 && (trainer.current_epoch() + 1) % every_n_epochs_ == 0)
    save_topk(trainer, candidates);
  save_last(trainer, candidates);
}

std::map<std::string, double> ModelCheckpoint::monitor_candidates(const Trainer& trainer) const {
  std::map<std::string, double> out(trainer.callback_metrics().begin(),
                                    trainer.callback_metrics().end());
  out.try_emplace("epoch", static_cast<double>(trainer.current_epoch()));
  out.try_emplace("step", static_cast<double>(trainer.global_step()));
  return out;
}

bool ModelCheckpoint::should_skip_saving(const Trainer& trainer) const {
  return trainer.options().fast_dev_run() > 0 || trainer.stage() != Stage::fit ||
         trainer.sanity_checking() || last_global_step_saved_ == trainer.global_step();
}

bool ModelCheckpoint::should_save_on_train_epoch_end(const Trainer& trainer) const {
  if (options_.save_on_train_epoch_end()) return *options_.save_on_train_epoch_end();
  if (trainer.options().check_val_every_n_epoch() != 1) return false;
  std::int64_t val_batches = 0;
  for (std::int64_t n : trainer.num_val_batches()) val_batches += n;
  if (val_batches == 0) return true;
  const BatchAmount& interval = trainer.options().val_check_interval();
  // Lightning compares val_check_interval == 1.0, which an integer 1 passes too.
  return interval.is_count() ? interval.count() == 1 : interval.fraction() == 1.0;
}

void ModelCheckpoint::save_topk(Trainer& trainer, const std::map<std::string, double>& candidates) {
  if (options_.save_top_k() == 0) return;
  if (options_.monitor().empty()) {
    const std::string path = free_name(candidates, {}, best_model_path_);
    const std::string previous = std::exchange(best_model_path_, path);
    save(trainer, path);
    if (options_.save_top_k() == 1 && !previous.empty()) remove_if_ours(trainer, previous, path);
    return;
  }
  auto it = candidates.find(options_.monitor());
  if (it == candidates.end()) {
    std::string keys;
    for (const auto& [k, v] : candidates) keys += (keys.empty() ? "" : ", ") + python_repr(k);
    const std::string message = "ModelCheckpoint(monitor=" + python_repr(options_.monitor()) +
                                ") could not find the monitored key in the returned metrics: [" +
                                keys + "]. HINT: Did you call log(" +
                                python_repr(options_.monitor()) + ", value) in the Module?";
    // Lightning raises once a validation has run (the metric should exist by then), else warns.
    if (validation_ran_) throw std::invalid_argument(message);
    console().warn("{}", message);
    return;
  }
  const double current = it->second;
  auto kth = best_k_models_.find(kth_best_model_path_);
  const bool better_than_kth =
      kth != best_k_models_.end() &&
      (options_.mode() == "min" ? current < kth->second : current > kth->second);
  if (options_.save_top_k() == -1 ||
      static_cast<std::int64_t>(best_k_models_.size()) < options_.save_top_k() || better_than_kth) {
    update_best_and_save(current, trainer, candidates);
  } else if (options_.verbose()) {
    console().info("Epoch {}, global step {}: '{}' was not in top {}", trainer.current_epoch(),
                   trainer.global_step(), options_.monitor(), options_.save_top_k());
  }
}

void ModelCheckpoint::update_best_and_save(double current, Trainer& trainer,
                                           const std::map<std::string, double>& candidates) {
  const auto k = options_.save_top_k() == -1 ? static_cast<std::int64_t>(best_k_models_.size()) + 1
                                             : options_.save_top_k();
  std::string del_path;
  if (static_cast<std::int64_t>(best_k_models_.size()) == k && k > 0) {
    del_path = kth_best_model_path_;
    best_k_models_.erase(del_path);
  }
  const bool min = options_.mode() == "min";
  if (std::isnan(current))
    current =
        min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  const std::string path = free_name(candidates, {}, del_path);
  current_score_ = current;
  best_k_models_[path] = current;
  auto by_score = [](const auto& a, const auto& b) { return a.second < b.second; };
  if (static_cast<std::int64_t>(best_k_models_.size()) == k) {
    auto kth = min ? std::max_element(best_k_models_.begin(), best_k_models_.end(), by_score)
                   : std::min_element(best_k_models_.begin(), best_k_models_.end(), by_score);
    kth_best_model_path_ = kth->first;
    kth_value_ = kth->second;
  }
  auto best = min ? std::min_element(best_k_models_.begin(), best_k_models_.end(), by_score)
                  : std::max_element(best_k_models_.begin(), best_k_models_.end(), by_score);
  best_model_path_ = best->first;
  best_model_score_ = best->second;
  if (options_.verbose())
    console().info(
        "Epoch {}, global step {}: '{}' reached {:.5f} (best {:.5f}), saving model to '{}' "
        "as top {}",
        trainer.current_epoch(), trainer.global_step(), options_.monitor(), current,
        *best_model_score_, path, k);
  save(trainer, path);
  if (!del_path.empty()) remove_if_ours(trainer, del_path, path);
}

void ModelCheckpoint::save_last(Trainer& trainer, const std::map<std::string, double>& candidates) {
  if (options_.save_last() == SaveLast::no) return;
  const std::string path = free_name(candidates, kNameLast, last_model_path_);
  const std::string previous = std::exchange(last_model_path_, path);
  if (options_.save_last() == SaveLast::link && !last_checkpoint_saved_.empty() &&
      options_.save_top_k() != 0) {
    std::error_code error;
    if (trainer.is_global_zero()) fs::remove(path, error);
    if (trainer.is_global_zero())
      fs::create_symlink(fs::relative(last_checkpoint_saved_, fs::path(path).parent_path()), path,
                         error);
    if (error && trainer.is_global_zero())
      fs::copy_file(last_checkpoint_saved_, path, fs::copy_options::overwrite_existing);
  } else {
    save(trainer, path);
  }
  if (!previous.empty()) remove_if_ours(trainer, previous, path);
}

// The file name for `candidates`, with "-v<n>" while a file other than `keep` has that name.
std::string ModelCheckpoint::free_name(const std::map<std::string, double>& candidates,
                                       const std::string& filename, const std::string& keep) const {
  std::string path = format_checkpoint_name(candidates, filename);
  if (!options_.enable_version_counter()) return path;
  std::error_code error;
  for (int ver = 1; fs::exists(fs::symlink_status(path, error)) && path != keep; ++ver)
    path = format_checkpoint_name(candidates, filename, ver);
  return path;
}

void ModelCheckpoint::save(Trainer& trainer, const std::string& path) {
  trainer.save_checkpoint(path, options_.save_weights_only());
  last_global_step_saved_ = trainer.global_step();
  last_checkpoint_saved_ = path;
}

// Deletes `previous` unless it is `current`, the file the run resumed from, or outside dirpath.
void ModelCheckpoint::remove_if_ours(const Trainer& trainer, const std::string& previous,
                                     const std::string& current) {
  if (previous == current || !trainer.is_global_zero()) return;  // rank 0 owns the files
  const fs::path prev = fs::absolute(previous).lexically_normal();
  if (!trainer.ckpt_path().empty() && prev == fs::absolute(trainer.ckpt_path()).lexically_normal())
    return;
  const fs::path dir = fs::absolute(dirpath_).lexically_normal();
  const auto [d, p] = std::mismatch(dir.begin(), dir.end(), prev.begin(), prev.end());
  if (d != dir.end() || p == prev.end()) return;  // not inside dirpath
  std::error_code error;
  fs::remove(prev, error);
}

void ModelCheckpoint::state_dict(Checkpoint& state) const {
  // Scores are one-element tensors, as Lightning keeps them.
  auto score = [](const std::optional<double>& v) {
    return v ? detail::score_to_file(*v) : c10::IValue();
  };
  state.set("monitor",
            options_.monitor().empty() ? c10::IValue() : c10::IValue(options_.monitor()));
  state.set("best_model_score", score(best_model_score_));
  state.set("best_model_path", best_model_path_);
  state.set("current_score", score(current_score_));
  state.set("dirpath", dirpath_);
  c10::impl::GenericDict best_k(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [path, value] : best_k_models_)
    best_k.insert(path, detail::score_to_file(value));
  state.set("best_k_models", best_k);
  state.set("kth_best_model_path", kth_best_model_path_);
  state.set("kth_value", detail::score_to_file(kth_value_));
  state.set("last_model_path", last_model_path_);
}

void ModelCheckpoint::load_state_dict(const Checkpoint& state) {
  auto score = [](const c10::IValue& v) {
    return v.isNone() ? std::optional<double>() : std::optional<double>(detail::score_from_file(v));
  };
  const std::string saved_dir =
      state.contains("dirpath") ? state.at("dirpath").toStringRef() : dirpath_;
  if (saved_dir == dirpath_) {
    best_model_score_ = score(state.at("best_model_score"));
    if (state.contains("kth_best_model_path"))
      kth_best_model_path_ = state.at("kth_best_model_path").toStringRef();
    if (state.contains("kth_value")) kth_value_ = detail::score_from_file(state.at("kth_value"));
    if (state.contains("best_k_models")) {
      best_k_models_.clear();
      for (const auto& entry : state.at("best_k_models").toGenericDict())
        best_k_models_[entry.key().toStringRef()] = detail::score_from_file(entry.value());
    }
    if (state.contains("last_model_path"))
      last_model_path_ = state.at("last_model_path").toStringRef();
  } else {
    console().warn(
        "the dirpath has changed from '{}' to '{}', therefore best_model_score, "
        "kth_best_model_path, kth_value, last_model_path and best_k_models won't be reloaded; "
        "only best_model_path will be",
        saved_dir, dirpath_);
  }
  best_model_path_ = state.at("best_model_path").toStringRef();
}

}  // namespace hookline
