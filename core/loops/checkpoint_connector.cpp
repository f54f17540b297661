// hookline: saving a run's state into a checkpoint and restoring it (Lightning's
// trainer/connectors/checkpoint_connector.py).
//
// Save: "epoch", "global_step", "hookline_version", "format_version", "state_dict" (parameters and
// buffers by name), "loops" (fit-loop progress, the train loader's position, the RNG), then unless
// weights_only: "callbacks" (state_dict of every callback: StateDict), "optimizer_states" (plain
// values, optimizer_state.hpp), "lr_schedulers"; "hyper_parameters"; the data module's state; then
// on_save_checkpoint for the callbacks (not weights_only) and the module. That is Lightning 2.2's
// order (docs/lightning-hook-order.md).
//
// Restore, in two steps like Lightning's: after configure_model, the module's on_load_checkpoint,
// its weights, the data module's state, and (when fitting) the callbacks' on_load_checkpoint and
// load_state_dict; after on_fit_start, the optimizers, schedulers and loop progress. Everything
// that can be checked is checked before the first of these changes anything; what can only be
// checked later (the optimizers' parameter groups) rolls the module and callbacks back on failure,
// so a bad checkpoint never leaves the live objects half-loaded.
#include "hookline/core/loops/checkpoint_connector.hpp"

#include "hookline/core/checkpoint_callback.hpp"
#include "hookline/core/console.hpp"

#include "hookline/core/checkpoint_io.hpp"
#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/loops/checkpoint_values.hpp"
#include "hookline/core/loops/optimizer_state.hpp"
#include "hookline_version.hpp"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <ATen/core/grad_mode.h>
#include <spdlog/spdlog.h>
#include <torch/optim/optimizer.h>

#include <filesystem>
#include <map>
#include <set>

namespace hookline {

using detail::bool_field;
using detail::cuda_generators;
using detail::deep_copy;
using detail::dict_field;
using detail::field;
using detail::int_field;
using detail::module_tensors;
using detail::new_dict;
using detail::rethrow_as_checkpoint_error;
using Dict = c10::impl::GenericDict;

// What restore_modules_and_callbacks read, kept until the fit loop reaches the saved position.
struct CheckpointConnector::Restore {
  std::string path;
  Checkpoint checkpoint;
  c10::impl::GenericDict fit_loop = new_dict();
  EpochProgress progress;
  data::DataLoaderState loader;
  at::Tensor rng;
  std::vector<at::Tensor> cuda_rng;
  // For rolling back when a later part does not fit.
  std::vector<std::pair<at::Tensor, at::Tensor>> weights;  // live tensor, copy before loading
  std::vector<std::pair<Callback*, Checkpoint>> callbacks;
  std::optional<Checkpoint> data_module;
  bool loop_reached = false;
  bool committed = false;  // past the point where a failure rolls the restore back
};

CheckpointConnector::CheckpointConnector(const Parts& parts) : p_(parts) {}
CheckpointConnector::~CheckpointConnector() = default;

void CheckpointConnector::end_run() {
  restore_.reset();
}

bool CheckpointConnector::resumes_after_epoch_end() const {
  return restore_ && restore_->progress.epoch_end_done;
}

void CheckpointConnector::commit() {
  if (restore_) restore_->committed = true;
}

// ---- saving ---------------------------------------------------------------------------------

Checkpoint CheckpointConnector::dump(bool weights_only) {
  if (!p_.hooks.module())
    throw std::logic_error(
        "Trainer::save_checkpoint needs a module: call it from a hook during a run");
  Checkpoint ckpt;
  ckpt.set("epoch", p_.progress.current_epoch);
  ckpt.set("global_step", p_.progress.global_step);
  ckpt.set("hookline_version", std::string(HOOKLINE_VERSION));
  ckpt.set("format_version", static_cast<std::int64_t>(kCheckpointFormatVersion));

  c10::Dict<std::string, at::Tensor> weights;
  for (const auto& [name, tensor] : module_tensors(*p_.hooks.module()))
    weights.insert(name, tensor.detach());
  ckpt.set("state_dict", weights);

  Dict progress = new_dict();
  progress.insert("batches_done", p_.epoch.batches_done);
  progress.insert("tail_pending", p_.epoch.tail_pending);
  progress.insert("last_ran_step", p_.epoch.last_ran_step);
  progress.insert("last_stepped", p_.epoch.last_stepped);
  progress.insert("validated", p_.epoch.validated);
  progress.insert("reached_last_batch", p_.epoch.reached_last_batch);
  progress.insert("epoch_end_done", p_.epoch.epoch_end_done);
  Dict fit_loop = new_dict();
  fit_loop.insert("current_epoch", p_.progress.current_epoch);
  fit_loop.insert("global_step", p_.progress.global_step);
  fit_loop.insert("batches_that_stepped", p_.progress.batches_that_stepped);
  fit_loop.insert("should_stop", p_.state.should_stop);
  fit_loop.insert("stop_reason", p_.state.stop_reason);
  fit_loop.insert("epoch_progress", progress);
  fit_loop.insert("metrics", p_.metrics.state());
  if (p_.data.has_train_loader()) {
    // The position is what the loop finished, not what the loader fetched ahead.
    const data::DataLoaderState state = p_.data.train_loader().state();
    Dict loader = new_dict();
    loader.insert("epoch", p_.progress.current_epoch);
    loader.insert("batches_yielded",
                  p_.epoch.epoch_end_done ? state.batches_yielded : p_.epoch.batches_done);
    loader.insert("seed", static_cast<std::int64_t>(state.seed));
    fit_loop.insert("train_loader", loader);
  }
  Dict rng = new_dict();
  rng.insert("cpu", at::detail::getDefaultCPUGenerator().get_state());
  c10::List<at::Tensor> cuda;
  for (auto& generator : cuda_generators()) cuda.push_back(generator.get_state());
  rng.insert("cuda", cuda);
  fit_loop.insert("rng", rng);
  Dict loops = new_dict();
  loops.insert("fit_loop", fit_loop);
  ckpt.set("loops", loops);

  if (!weights_only) {
    ckpt.set("callbacks", new_dict());
    c10::impl::GenericList optimizer_states(c10::AnyType::get());
    for (const auto& optimizer : p_.optimizers.optimizers)
      optimizer_states.push_back(detail::optimizer_state(*optimizer));
    ckpt.set("optimizer_states", optimizer_states);
    c10::impl::GenericList schedulers(c10::AnyType::get());
    for (const SchedulerConfig& config : p_.optimizers.schedulers)
      schedulers.push_back(config.state_dict ? config.state_dict() : c10::IValue());
    ckpt.set("lr_schedulers", schedulers);
  }
  if (!p_.hooks.module()->hparams().empty())
    ckpt.set("hyper_parameters", p_.hooks.module()->hparams().to_ivalue());

  // Callbacks' state_dict (when not weights_only), then the data module's.
  StateDict state;
  state.checkpoint = &ckpt;
  if (weights_only) {
    if (data_) {
      Checkpoint mine;
      data_->state_dict(mine);
      if (!mine.empty()) ckpt.set(data_->name(), mine.to_ivalue());
    }
  } else {
    p_.hooks.emit(state);
  }
  SaveCheckpoint save;
  save.checkpoint = &ckpt;
  if (weights_only) {
    // Lightning calls only the module's on_save_checkpoint for a weights-only checkpoint.
    p_.hooks.module()->on_save_checkpoint(ckpt);
  } else {
    p_.hooks.emit(save);
  }
  return ckpt;
}

void CheckpointConnector::save(const std::string& path, bool weights_only) {
  if (path.empty())
    throw std::invalid_argument("Trainer::save_checkpoint: the path is empty; name a file");
  if (p_.strategy.distributed()) {
    // Lightning: every rank runs the save hooks, rank 0 alone writes, then all wait for it.
    const Checkpoint state = dump(weights_only);
    std::exception_ptr failed;
    if (p_.strategy.is_global_zero()) try {
        write_checkpoint_file(path, state.to_ivalue());
      } catch (...) {
        failed = std::current_exception();
      }
    const bool ok = p_.strategy.reduce_boolean_decision(failed == nullptr, true);
    if (failed) std::rethrow_exception(failed);
    if (!ok) throw std::runtime_error("saving checkpoint '" + path + "' failed on rank 0");
    return;
  }
  if (!p_.options.async_checkpointing()) {
    write_checkpoint_file(path, dump(weights_only).to_ivalue());
    return;
  }
  // Asynchronous: everything is copied now (training changes it right after); the file is
  // serialized and written on a background thread.
  wait();
  c10::IValue state = deep_copy(dump(weights_only).to_ivalue());
  pending_path_ = path;
  pending_write_ = std::async(
      std::launch::async, [path, state = std::move(state)] { write_checkpoint_file(path, state); });
}

void CheckpointConnector::wait() {
  if (!pending_write_.valid()) return;
  std::future<void> pending = std::move(pending_write_);
  pending.get();  // rethrows a failed write
}

// ---- restoring ------------------------------------------------------------------------------

std::string CheckpointConnector::resolve(const std::string& ckpt_path,
                                         const Trainer& trainer) const {
  if (ckpt_path == "best") {
    const std::vector<CheckpointCallback*> callbacks = p_.callbacks.checkpoint_callbacks();
    CheckpointCallback* callback = callbacks.empty() ? nullptr : callbacks.front();
    if (!callback)
      throw std::invalid_argument(
          "ckpt_path=\"best\" needs a checkpoint callback (ModelCheckpoint); add one or pass a "
          "file");
    if (callbacks.size() > 1)
      console().warn(
          "ckpt_path=\"best\" with several checkpoint callbacks uses the first one's "
          "best_model_path");
    const std::string best = callback->best_model_path();
    if (best.empty())
      throw std::invalid_argument(
          "ckpt_path=\"best\": checkpoint callback '" + callback->name() +
          "' has no best model yet (does it monitor a metric that was logged?); pass a file");
    return best;
  }
  if (ckpt_path == "last") {
    std::string newest;
    std::filesystem::file_time_type newest_time{};
    for (CheckpointCallback* callback : p_.callbacks.checkpoint_callbacks())
      for (const std::string& candidate : callback->last_checkpoint_candidates(trainer)) {
        std::error_code error;
        const auto time = std::filesystem::last_write_time(candidate, error);
        if (error) continue;
        if (newest.empty() || time > newest_time) {
          newest = candidate;
          newest_time = time;
        }
      }
    if (newest.empty())
      console().warn(
          "ckpt_path=\"last\" is set, but there is no last checkpoint; training starts "
          "from scratch (hint: ModelCheckpointOptions().save_last(SaveLast::yes))");
    return newest;
  }
  return ckpt_path;
}

void CheckpointConnector::restore_modules_and_callbacks(const std::string& path) {
  auto restore = std::make_unique<Restore>();
  restore->path = path;
  const bool fitting = p_.state.stage == Stage::fit;
  const c10::IValue root = read_checkpoint_file(path);
  Checkpoint& ckpt = restore->checkpoint;
  try {
    ckpt = Checkpoint::from_ivalue(root, "the checkpoint");
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(path, e.what());
  }
  const Dict top = root.toGenericDict();

  // 1. Everything that can be checked before changing anything.
  const c10::IValue& weights_value = field(top, "state_dict", "the checkpoint ", path);
  if (!weights_value.isGenericDict())
    throw CheckpointError(path, "'state_dict' is not a dictionary of tensors");
  std::map<std::string, at::Tensor> saved;
  for (const auto& entry : weights_value.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor())
      throw CheckpointError(path, "'state_dict' holds something that is not a named tensor");
    saved.emplace(entry.key().toStringRef(), entry.value().toTensor());
  }
  const auto live = module_tensors(*p_.hooks.module());
  std::vector<std::string> missing, unexpected;
  std::set<std::string> live_names;
  for (const auto& [name, tensor] : live) {
    live_names.insert(name);
    auto it = saved.find(name);
    if (it == saved.end()) {
      missing.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      throw CheckpointError(path, "'" + name + "' has shape " + c10::str(it->second.sizes()) +
                                      " in the checkpoint but " + c10::str(tensor.sizes()) +
                                      " in " + p_.hooks.module()->module_name() +
                                      "; the checkpoint is of another model configuration");
    } else if (it->second.scalar_type() != tensor.scalar_type()) {
      throw CheckpointError(
          path, "'" + name + "' is " + std::string(c10::toString(it->second.scalar_type())) +
                    " in the checkpoint but " + std::string(c10::toString(tensor.scalar_type())) +
                    " in " + p_.hooks.module()->module_name());
    }
  }
  for (const auto& [name, tensor] : saved)
    if (!live_names.count(name)) unexpected.push_back(name);
  if (!missing.empty() || !unexpected.empty()) {
    auto join = [](const std::vector<std::string>& names) {
      std::string out;
      for (std::size_t i = 0; i < names.size() && i < 8; ++i) out += (i ? ", " : "") + names[i];
      if (names.size() > 8) out += ", ... (" + std::to_string(names.size()) + " in all)";
      return out;
    };
    std::string problem =
        "its parameter names do not match " + p_.hooks.module()->module_name() + ":";
    if (!missing.empty()) problem += " missing from the checkpoint: " + join(missing) + ";";
    if (!unexpected.empty()) problem += " not in the module: " + join(unexpected) + ";";
    throw CheckpointError(path, problem + " the checkpoint is of another model");
  }
  if (fitting) {
    for (const char* key : {"optimizer_states", "lr_schedulers", "callbacks"})
      if (!top.contains(key))
        throw CheckpointError(path, std::string("it has no '") + key +
                                        "': it holds only the model's weights (was it saved "
                                        "with save_weights_only?); resume from a full "
                                        "checkpoint, or load the weights without resuming");
    const Dict loops = dict_field(top, "loops", "the checkpoint's ", path);
    restore->fit_loop = dict_field(loops, "fit_loop", "'loops' ", path);
    const Dict& fit_loop = restore->fit_loop;
    const std::string where = "'loops.fit_loop' ";
    for (const char* key : {"current_epoch", "global_step", "batches_that_stepped"})
      if (int_field(fit_loop, key, where, path) < 0)
        throw CheckpointError(path, where + "'" + key + "' is negative");
    if (bool_field(fit_loop, "should_stop", where, path) &&
        !field(fit_loop, "stop_reason", where, path).isString())
      throw CheckpointError(path, where + "'stop_reason' is not a string");
    const Dict progress = dict_field(fit_loop, "epoch_progress", where, path);
    EpochProgress& p = restore->progress;
    p.batches_done = int_field(progress, "batches_done", "'epoch_progress' ", path);
    p.tail_pending = bool_field(progress, "tail_pending", "'epoch_progress' ", path);
    p.last_ran_step = bool_field(progress, "last_ran_step", "'epoch_progress' ", path);
    p.last_stepped = bool_field(progress, "last_stepped", "'epoch_progress' ", path);
    p.validated = bool_field(progress, "validated", "'epoch_progress' ", path);
    p.reached_last_batch = bool_field(progress, "reached_last_batch", "'epoch_progress' ", path);
    p.epoch_end_done = bool_field(progress, "epoch_end_done", "'epoch_progress' ", path);
    if (fit_loop.contains("train_loader")) {
      const Dict loader = dict_field(fit_loop, "train_loader", where, path);
      restore->loader.epoch = int_field(loader, "epoch", "'train_loader' ", path);
      restore->loader.batches_yielded =
          int_field(loader, "batches_yielded", "'train_loader' ", path);
      restore->loader.seed =
          static_cast<std::uint64_t>(int_field(loader, "seed", "'train_loader' ", path));
    }
    if (fit_loop.contains("metrics")) {
      MetricStore probe;
      try {
        probe.load_state(fit_loop.at("metrics"));
      } catch (...) {
        rethrow_as_checkpoint_error(path, "'loops.fit_loop.metrics'");
      }
    }
    const Dict rng = dict_field(fit_loop, "rng", where, path);
    const c10::IValue& cpu = field(rng, "cpu", "'rng' ", path);
    if (!cpu.isTensor()) throw CheckpointError(path, "'rng.cpu' is not a tensor");
    restore->rng = cpu.toTensor();
    try {
      at::Generator scratch = at::detail::createCPUGenerator();
      scratch.set_state(restore->rng);
    } catch (const std::exception& e) {
      throw CheckpointError(path,
                            std::string("'rng.cpu' is not a CPU generator state: ") + e.what());
    }
    const c10::IValue& cuda = field(rng, "cuda", "'rng' ", path);
    if (!cuda.isList()) throw CheckpointError(path, "'rng.cuda' is not a list");
    for (const c10::IValue& state : cuda.toListRef()) {
      if (!state.isTensor()) throw CheckpointError(path, "'rng.cuda' holds a non-tensor");
      restore->cuda_rng.push_back(state.toTensor());
    }
    const c10::IValue& schedulers = field(top, "lr_schedulers", "the checkpoint ", path);
    const c10::IValue& optimizers = field(top, "optimizer_states", "the checkpoint ", path);
    if (!schedulers.isList() || !optimizers.isList())
      throw CheckpointError(path, "'optimizer_states' or 'lr_schedulers' is not a list");
    if (!top.at("callbacks").isGenericDict())
      throw CheckpointError(path, "'callbacks' is not a dictionary");
  }

  // 2. Backups, so a part that turns out not to fit later can be undone.
  {
    at::NoGradGuard no_grad;
    for (const auto& [name, tensor] : live) restore->weights.emplace_back(tensor, tensor.clone());
  }
  for (const auto& callback : p_.callbacks.all()) {
    Checkpoint before;
    callback->state_dict(before);
    restore->callbacks.emplace_back(callback.get(), std::move(before));
  }
  if (data_) {
    Checkpoint before;
    data_->state_dict(before);
    restore->data_module = std::move(before);
  }
  restore_ = std::move(restore);

  // 3. Hooks and weights, in Lightning's order: module.on_load_checkpoint, the weights, the data
  // module's state, the callbacks' on_load_checkpoint, their load_state_dict.
  try {
    LoadCheckpoint load;
    load.checkpoint = &ckpt;
    load.fitting = fitting;
    p_.hooks.emit(load);
    {
      at::NoGradGuard no_grad;
      for (const auto& [name, tensor] : live) const_cast<at::Tensor&>(tensor).copy_(saved.at(name));
    }
    if (fitting) {
      std::set<std::string> known;
      for (const auto& callback : p_.callbacks.all()) known.insert(callback->checkpoint_key());
      for (const auto& entry : top.at("callbacks").toGenericDict())
        if (!known.count(entry.key().toStringRef()))
          console().warn(
              "checkpoint '{}' has state for callback '{}', which this trainer does "
              "not have; add that callback to restore it (its state is ignored)",
              path, entry.key().toStringRef());
      LoadStateDict state;
      state.checkpoint = &ckpt;
      p_.hooks.emit(state);
    }
  } catch (...) {
    rollback();
    rethrow_as_checkpoint_error(path, "loading it into the module and callbacks failed");
  }
}

void CheckpointConnector::restore_training_state() {
  if (!restore_ || p_.state.stage != Stage::fit) return;
  Restore& r = *restore_;
  const Dict top = r.checkpoint.to_ivalue().toGenericDict();
  const auto optimizers = top.at("optimizer_states").toListRef();
  const auto schedulers = top.at("lr_schedulers").toListRef();
  auto& live_optimizers = p_.optimizers.optimizers;
  auto& live_schedulers = p_.optimizers.schedulers;
  if (optimizers.size() != live_optimizers.size())
    throw CheckpointError(r.path, "it has " + std::to_string(optimizers.size()) +
                                      " optimizer states but configure_optimizers() returned " +
                                      std::to_string(live_optimizers.size()) +
                                      "; configure the same optimizers as the saved run");
  if (schedulers.size() != live_schedulers.size())
    throw CheckpointError(r.path, "it has " + std::to_string(schedulers.size()) +
                                      " LR scheduler states but configure_optimizers() returned " +
                                      std::to_string(live_schedulers.size()) + " schedulers");
  std::vector<std::function<void()>> load_optimizers;
  for (std::size_t i = 0; i < optimizers.size(); ++i)
    load_optimizers.push_back(
        detail::prepare_optimizer_load(optimizers[i], *live_optimizers[i], i, r.path));
  for (std::size_t i = 0; i < schedulers.size(); ++i)
    if (!schedulers[i].isNone() && !live_schedulers[i].load_state_dict)
      throw CheckpointError(r.path, "LR scheduler " + std::to_string(i) + " ('" +
                                        live_schedulers[i].name() +
                                        "') has saved state but no way to load it; give it one "
                                        "with SchedulerConfig::state(save, load)");
  // Everything fits: load.
  try {
    for (const auto& load : load_optimizers) load();
    for (std::size_t i = 0; i < schedulers.size(); ++i)
      if (!schedulers[i].isNone()) live_schedulers[i].load_state_dict(schedulers[i]);
  } catch (...) {
    rethrow_as_checkpoint_error(r.path, "loading the optimizer and scheduler states failed");
  }
  for (std::size_t i = 0; i < schedulers.size(); ++i)
    if (schedulers[i].isNone() && live_schedulers[i].state_dict)
      console().warn("checkpoint '{}' has no state for LR scheduler {}; it restarts", r.path, i);
  const Dict& loop = r.fit_loop;
  p_.progress.current_epoch = loop.at("current_epoch").toInt();
  p_.progress.global_step = loop.at("global_step").toInt();
  p_.progress.batches_that_stepped = loop.at("batches_that_stepped").toInt();
  const std::int64_t max_epochs = p_.options.effective_max_epochs();
  if (max_epochs >= 0 && p_.progress.current_epoch > max_epochs)
    throw CheckpointError(r.path, "it was saved at epoch " +
                                      std::to_string(p_.progress.current_epoch) +
                                      ", past TrainerOptions::max_epochs(" +
                                      std::to_string(max_epochs) + "); raise max_epochs");
}

// The train loader's saved position, applied once the loader exists.
void CheckpointConnector::resume_loader() {
  if (!restore_ || p_.state.stage != Stage::fit || !p_.data.has_train_loader()) return;
  Restore& r = *restore_;
  if (!r.fit_loop.contains("train_loader")) return;
  data::DataLoader& loader = p_.data.train_loader();
  if (r.loader.batches_yielded > loader.size())
    throw CheckpointError(
        r.path, "it was saved after batch " + std::to_string(r.loader.batches_yielded) +
                    " of an epoch, but the train loader has only " + std::to_string(loader.size()) +
                    " batches now; resume with the same data and batch size");
  loader.load_state(r.loader);
}

// Called where the fit loop reaches the saved position: restores the rest of the loop state and
// the random generators. Returns whether the current epoch resumes part-way.
bool CheckpointConnector::resume_epoch() {
  if (!restore_ || restore_->loop_reached) return false;
  Restore& r = *restore_;
  r.loop_reached = true;
  p_.epoch = r.progress;
  const Dict& loop = r.fit_loop;
  try {
    if (loop.contains("metrics")) p_.metrics.load_state(loop.at("metrics"));
    if (loop.at("should_stop").toBool())
      p_.state.set_should_stop(true, loop.at("stop_reason").toStringRef());
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    cpu.set_state(r.rng);
    auto cuda = cuda_generators();
    for (std::size_t i = 0; i < cuda.size() && i < r.cuda_rng.size(); ++i)
      cuda[i].set_state(r.cuda_rng[i]);
  } catch (...) {
    rethrow_as_checkpoint_error(r.path, "restoring the loop's position failed");
  }
  return true;
}

void CheckpointConnector::finish_restore() {
  if (!restore_) return;
  console().info("restored all states from the checkpoint at {}", restore_->path);
  restore_.reset();
}

void CheckpointConnector::rollback() noexcept {
  if (!restore_ || restore_->committed) {
    restore_.reset();
    return;
  }
  try {
    at::NoGradGuard no_grad;
    for (auto& [live, before] : restore_->weights) live.copy_(before);
    for (auto& [callback, before] : restore_->callbacks) callback->load_state_dict(before);
    if (data_ && restore_->data_module) data_->load_state_dict(*restore_->data_module);
  } catch (const std::exception& e) {
    console().error("rolling back a failed checkpoint restore failed too: {}", e.what());
  }
  restore_.reset();
}

}  // namespace hookline
