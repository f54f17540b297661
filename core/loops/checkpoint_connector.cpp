// hookline: saving a run's state into a checkpoint and restoring it (Lightning's
// trainer/connectors/checkpoint_connector.py).
//
// Save: "epoch", "global_step", "hookline_version", "format_version", "pytorch-lightning_version",
// "state_dict" (the module's state_dict(): parameters and buffers by name unless it is
// overridden), "loops" (Lightning's progress counters, and hookline's own fit-loop state under
// "hookline": the train loader's position, the RNG, the gradients of an accumulation window;
// lightning_layout.hpp), then unless weights_only: "callbacks" (state_dict of every callback),
// "optimizer_states" (optimizer_state.hpp), "lr_schedulers"; "hyper_parameters"; the data
// module's state; then on_save_checkpoint for the callbacks (not weights_only) and the module:
// Lightning 2.2's order (docs/lightning-hook-order.md).
//
// Restore, in two steps like Lightning's: after configure_model, the module's on_load_checkpoint,
// its load_state_dict, the data module's state, and (when fitting) the callbacks'
// on_load_checkpoint and load_state_dict; after on_fit_start, the optimizers, schedulers and loop
// progress. Every field of the file is checked before the first of these changes anything; what
// can only be checked later (the optimizers' parameter groups, the train loader's length) puts
// the module's parameters and buffers back on failure (copies taken directly, no hook called),
// and no checkpoint is written for the rest of that run. Until the loop reaches the saved
// position, a save (an exception checkpoint after SIGTERM in the sanity check, say) writes the
// file's state for what the run has not loaded yet, so it never mixes two states.
#include "hookline/core/loops/checkpoint_connector.hpp"

#include "hookline/core/checkpoint_callback.hpp"
#include "hookline/core/checkpoint_io.hpp"
#include "hookline/core/console.hpp"
#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/lightning_layout.hpp"
#include "hookline/core/loops/checkpoint_values.hpp"
#include "hookline/core/loops/optimizer_state.hpp"
#include "hookline/core/module.hpp"
#include "hookline_version.hpp"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <ATen/core/grad_mode.h>
#include <spdlog/spdlog.h>
#include <torch/optim/optimizer.h>

#include <algorithm>
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
using detail::libtorch_failure;
using detail::LoopPosition;
using detail::module_tensors;
using detail::new_dict;
using detail::read_grads;
using detail::read_loop_position;
using detail::rethrow_as_checkpoint_error;
using detail::set_grads;
using Dict = c10::impl::GenericDict;

// What restore_modules_and_callbacks read, kept until the fit loop reaches the saved position.
struct CheckpointConnector::Restore {
  std::string path;
  Checkpoint checkpoint;
  c10::impl::GenericDict fit_loop = new_dict();
  EpochProgress progress;
  std::optional<data::DataLoaderState> loader;
  at::Tensor rng;
  std::vector<at::Tensor> cuda_rng;
  std::vector<std::pair<std::string, at::Tensor>> grads;  // accumulated, by parameter name
  // For rolling back when a later part does not fit.
  std::vector<std::pair<at::Tensor, at::Tensor>> weights;  // live tensor, copy before loading
  bool weights_loaded = false;                             // the module has the file's state_dict
  bool training_loaded = false;  // the optimizers, schedulers and counters are the file's
  bool loop_reached = false;
  bool committed = false;       // past the point where a failure of the file rolls the restore back
  bool undo = false;            // a part of the file did not fit: roll back
  bool from_lightning = false;  // the loop state was rebuilt from Lightning's counters
};

CheckpointConnector::CheckpointConnector(const Parts& parts) : p_(parts) {}
CheckpointConnector::~CheckpointConnector() = default;

void CheckpointConnector::end_run() {
  restore_.reset();
  refused_.clear();
}

bool CheckpointConnector::resumes_after_epoch_end() const {
  return restore_ && restore_->progress.epoch_end_done;
}

void CheckpointConnector::commit() {
  if (restore_) restore_->committed = true;
}

// ---- saving ---------------------------------------------------------------------------------

// The gradients accumulated so far, when the next batch adds to them instead of zeroing them:
// inside an accumulation window (automatic optimization), or any time under manual optimization.
c10::impl::GenericDict CheckpointConnector::accumulated_grads() const {
  Dict grads = new_dict();
  Module& module = *p_.hooks.module();
  const std::int64_t n =
      module.automatic_optimization() ? p_.options.accumulate_grad_batches() : std::int64_t{1};
  const bool inside_window = n > 1 && p_.epoch.batches_done % n != 0 && !p_.epoch.epoch_end_done;
  if (!inside_window && module.automatic_optimization()) return grads;
  for (const auto& item : module.named_parameters(true))
    if (item.value().grad().defined()) grads.insert(item.key(), item.value().grad().detach());
  return grads;
}

Checkpoint CheckpointConnector::dump(bool weights_only) {
  if (!p_.hooks.module())
    throw std::logic_error(
        "Trainer::save_checkpoint needs a module: call it from a hook during a run");
  // Restoring, before the loop reached the saved position: what the run has not loaded yet is
  // the file's, so it is saved as the file has it.
  const Restore* pending = restore_ && p_.state.stage == Stage::fit && !restore_->loop_reached
                               ? restore_.get()
                               : nullptr;
  const Dict file = pending ? pending->checkpoint.to_ivalue().toGenericDict() : new_dict();
  Checkpoint ckpt;
  if (pending) {
    ckpt.set("epoch", pending->fit_loop.at("current_epoch"));
    ckpt.set("global_step", pending->fit_loop.at("global_step"));
  } else {
    ckpt.set("epoch", p_.progress.current_epoch);
    ckpt.set("global_step", p_.progress.global_step);
  }
  ckpt.set("hookline_version", std::string(HOOKLINE_VERSION));
  ckpt.set("pytorch-lightning_version", std::string(detail::kLightningLayoutVersion));
  ckpt.set("format_version", static_cast<std::int64_t>(kCheckpointFormatVersion));

  c10::Dict<std::string, at::Tensor> weights;
  if (pending && !pending->weights_loaded) {
    for (const auto& entry : file.at("state_dict").toGenericDict())
      weights.insert(entry.key().toStringRef(), entry.value().toTensor());
  } else {
    for (const auto& entry : p_.hooks.module()->state_dict())
      weights.insert(entry.key(), entry.value().detach());
  }
  ckpt.set("state_dict", weights);

  Dict fit_loop = new_dict();
  if (pending) {
    fit_loop = deep_copy(pending->fit_loop).toGenericDict();  // hooks may edit the checkpoint
  } else {
    fit_loop.insert("current_epoch", p_.progress.current_epoch);
    fit_loop.insert("global_step", p_.progress.global_step);
    fit_loop.insert("batches_that_stepped", p_.progress.batches_that_stepped);
    fit_loop.insert("should_stop", p_.state.should_stop);
    fit_loop.insert("stop_reason", p_.state.stop_reason);
    fit_loop.insert("epoch_progress", detail::epoch_progress_dict(p_.epoch));
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
    const Dict grads = accumulated_grads();
    if (!grads.empty()) fit_loop.insert("grads", grads);
  }
  ckpt.set("loops", detail::lightning_loops(fit_loop));

  if (!weights_only && pending && !pending->training_loaded) {
    ckpt.set("callbacks", new_dict());
    ckpt.set("optimizer_states", file.at("optimizer_states"));
    ckpt.set("lr_schedulers", file.at("lr_schedulers"));
  } else if (!weights_only) {
    ckpt.set("callbacks", new_dict());
    c10::impl::GenericList optimizer_states(c10::AnyType::get());
    for (const auto& optimizer : p_.optimizers.optimizers)
      optimizer_states.push_back(detail::optimizer_state(*optimizer));
    ckpt.set("optimizer_states", optimizer_states);
    c10::impl::GenericList schedulers(c10::AnyType::get());
    for (const SchedulerConfig& config : p_.optimizers.schedulers)
      schedulers.push_back(config.state_dict ? detail::scheduler_state_to_file(config.state_dict())
                                             : c10::IValue());
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
  if (!refused_.empty()) {
    // Write none rather than a mix of the file's state and the run's.
    console().warn(
        "checkpoint '{}' is not saved: this run failed to restore '{}', so it has no whole state "
        "to save",
        path, refused_);
    return;
  }
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
  try {
    load_modules_and_callbacks(path);
  } catch (...) {
    refused_ = path;  // whatever was loaded is rolled back: no save would be whole
    throw;
  }
}

void CheckpointConnector::load_modules_and_callbacks(const std::string& path) {
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
  Module& module = *p_.hooks.module();

  // 1. Everything that can be checked before changing anything.
  const c10::IValue& weights_value = field(top, "state_dict", "the checkpoint ", path);
  if (!weights_value.isGenericDict())
    throw CheckpointError(path, "'state_dict' is not a dictionary of tensors");
  TensorDict saved;
  for (const auto& entry : weights_value.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor())
      throw CheckpointError(path, "'state_dict' holds something that is not a named tensor");
    saved.insert(entry.key().toStringRef(), entry.value().toTensor());
  }
  // An overridden load_state_dict decides itself what it accepts (it may rename or skip keys).
  if (!detail::overrides_load_state_dict(module)) {
    const std::string problem = module.state_dict_mismatch(saved);
    if (!problem.empty()) throw CheckpointError(path, problem);
  }
  if (fitting) check_training_state(top, *restore);

  // 2. Copies of the parameters and buffers (taken directly: no hook runs), so a part that turns
  // out not to fit later can be undone.
  {
    at::NoGradGuard no_grad;
    for (const auto& [name, tensor] : module_tensors(module))
      restore->weights.emplace_back(tensor, tensor.clone());
  }
  restore_ = std::move(restore);

  // 3. Hooks and weights, in Lightning's order: module.on_load_checkpoint, its load_state_dict,
  // the data module's state, the callbacks' on_load_checkpoint, their load_state_dict.
  try {
    LoadCheckpoint load;
    load.checkpoint = &ckpt;
    load.fitting = fitting;
    p_.hooks.emit(load);
    module.load_state_dict(saved);
    restore_->weights_loaded = true;
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
    restore_->undo = true;
    rollback();
    rethrow_as_checkpoint_error(path, "loading it into the module and callbacks failed");
  }
}

// The parts of a checkpoint a fit resumes from, checked before anything is loaded.
void CheckpointConnector::check_training_state(const Dict& top, Restore& restore) const {
  const std::string& path = restore.path;
  for (const char* key : {"optimizer_states", "lr_schedulers", "callbacks"})
    if (!top.contains(key))
      throw CheckpointError(path, std::string("it has no '") + key +
                                      "': it holds only the model's weights (was it saved "
                                      "with save_weights_only?); resume from a full "
                                      "checkpoint, or load the weights without resuming");
  restore.fit_loop = detail::hookline_fit_loop(top, path, restore.from_lightning);
  const Dict& fit_loop = restore.fit_loop;
  const std::string where = "'loops.fit_loop' ";
  for (const char* key : {"current_epoch", "global_step", "batches_that_stepped"})
    if (int_field(fit_loop, key, where, path) < 0)
      throw CheckpointError(path, where + "'" + key + "' is negative");
  for (const auto& [key, top_key] :
       {std::pair{"current_epoch", "epoch"}, std::pair{"global_step", "global_step"}}) {
    const std::int64_t value = fit_loop.at(key).toInt();
    const std::int64_t outside = int_field(top, top_key, "the checkpoint ", path);
    if (value != outside)
      throw CheckpointError(path, where + "'" + key + "' is " + std::to_string(value) +
                                      " but the checkpoint's '" + top_key + "' is " +
                                      std::to_string(outside) + "; they must agree");
  }
  if (bool_field(fit_loop, "should_stop", where, path) &&
      !field(fit_loop, "stop_reason", where, path).isString())
    throw CheckpointError(path, where + "'stop_reason' is not a string");
  LoopPosition position = read_loop_position(fit_loop, fit_loop.at("current_epoch").toInt(), path);
  restore.progress = position.progress;
  restore.loader = position.loader;
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
  restore.rng = cpu.toTensor();
  try {
    at::Generator scratch = at::detail::createCPUGenerator();
    scratch.set_state(restore.rng);
  } catch (const std::exception& e) {
    throw CheckpointError(path, "'rng.cpu' is not a CPU generator state: " + libtorch_failure(e));
  }
  const c10::IValue& cuda = field(rng, "cuda", "'rng' ", path);
  if (!cuda.isList()) throw CheckpointError(path, "'rng.cuda' is not a list");
  for (const c10::IValue& state : cuda.toListRef()) {
    if (!state.isTensor()) throw CheckpointError(path, "'rng.cuda' holds a non-tensor");
    restore.cuda_rng.push_back(state.toTensor());
  }
  restore.grads = read_grads(fit_loop, *p_.hooks.module(), p_.hooks.module()->module_name(), path);
  const c10::IValue& schedulers = field(top, "lr_schedulers", "the checkpoint ", path);
  const c10::IValue& optimizers = field(top, "optimizer_states", "the checkpoint ", path);
  if (!schedulers.isList() || !optimizers.isList())
    throw CheckpointError(path, "'optimizer_states' or 'lr_schedulers' is not a list");
  if (!top.at("callbacks").isGenericDict())
    throw CheckpointError(path, "'callbacks' is not a dictionary");
}

// A part of the file that does not fit, found after the module and callbacks were loaded: the
// restore is undone (rollback) and no checkpoint is written for the rest of the run.
template <class F>
void CheckpointConnector::or_undo(F&& f) {
  try {
    f();
  } catch (...) {
    if (restore_ && !restore_->committed) {
      restore_->undo = true;
      refused_ = restore_->path;
    }
    throw;
  }
}

void CheckpointConnector::restore_training_state() {
  if (!restore_ || p_.state.stage != Stage::fit) return;
  or_undo([this] { load_training_state(); });
  restore_->training_loaded = true;
}

void CheckpointConnector::load_training_state() {
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
  const Dict& loop = r.fit_loop;
  const std::int64_t max_epochs = p_.options.effective_max_epochs();
  if (max_epochs >= 0 && loop.at("current_epoch").toInt() > max_epochs)
    throw CheckpointError(r.path, "it was saved at epoch " +
                                      std::to_string(loop.at("current_epoch").toInt()) +
                                      ", past TrainerOptions::max_epochs(" +
                                      std::to_string(max_epochs) + "); raise max_epochs");
  // Everything fits: load.
  try {
    for (const auto& load : load_optimizers) load();
    for (std::size_t i = 0; i < schedulers.size(); ++i)
      if (!schedulers[i].isNone())
        live_schedulers[i].load_state_dict(detail::scheduler_state_from_file(
            schedulers[i],
            live_schedulers[i].state_dict ? live_schedulers[i].state_dict() : c10::IValue()));
  } catch (...) {
    rethrow_as_checkpoint_error(r.path, "loading the optimizer and scheduler states failed");
  }
  for (std::size_t i = 0; i < schedulers.size(); ++i)
    if (schedulers[i].isNone() && live_schedulers[i].state_dict)
      console().warn("checkpoint '{}' has no state for LR scheduler {}; it restarts", r.path, i);
  p_.progress.current_epoch = loop.at("current_epoch").toInt();
  p_.progress.global_step = loop.at("global_step").toInt();
  p_.progress.batches_that_stepped = loop.at("batches_that_stepped").toInt();
}

// The train loader's saved position, applied once the loader exists.
void CheckpointConnector::resume_loader() {
  if (!restore_ || p_.state.stage != Stage::fit || !p_.data.has_train_loader()) return;
  or_undo([this] {
    Restore& r = *restore_;
    data::DataLoader& loader = p_.data.train_loader();
    const std::int64_t batches =
        std::max(r.progress.batches_done, r.loader ? r.loader->batches_yielded : 0);
    if (batches > loader.size())
      throw CheckpointError(r.path, "it was saved after batch " + std::to_string(batches) +
                                        " of an epoch ('batches_done'), but the train loader "
                                        "has only " +
                                        std::to_string(loader.size()) +
                                        " batches now; resume with the same data and batch size");
    if (r.loader) {
      loader.load_state(*r.loader);
    } else if (r.from_lightning && r.progress.batches_done > 0 && !r.progress.epoch_end_done) {
      // Lightning saved no position of its loader: hookline's resumes after the batches done.
      loader.load_state(data::DataLoaderState{r.fit_loop.at("current_epoch").toInt(),
                                              r.progress.batches_done, loader.state().seed});
    }
  });
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
    set_grads(*p_.hooks.module(), r.grads);  // inside an accumulation window
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
  // A failure that is not the file's (SIGTERM in the sanity check, a hook's error) keeps the
  // restore: a save in on_exception still takes what the run has not loaded yet from the file.
  if (!restore_ || !restore_->undo || restore_->committed) return;
  try {
    at::NoGradGuard no_grad;
    for (auto& [live, before] : restore_->weights) live.copy_(before);
  } catch (const std::exception& e) {
    console().error("rolling back a failed checkpoint restore failed too: {}", e.what());
  }
  refused_ = restore_->path;
  restore_.reset();
}

}  // namespace hookline
