// hookline: Trainer, the loops of fit / validate / test / predict.
//
// The trainer knows no particular callback: every hook is an event on its bus, and the module,
// the data module and the callbacks are subscribers in their priority bands. With default
// options the sequence of hooks equals Lightning 2.2's (docs/lightning-hook-order.md).
//
//   Trainer trainer(TrainerOptions().max_epochs(3), {std::make_shared<MyCallback>()});
//   trainer.fit(model, data);            // or fit(model) with the module's own dataloaders
//   trainer.callback_metrics().at("val_loss");
//
// Verdicts (see README "Verdicts"): SkipBatch and SkipRestOfEpoch from on_train_batch_start,
// StopFit from the events that accept it (it sets should_stop).
//
// Errors: options are validated before any hook runs; an exception inside a run is sent to the
// on_exception hook and then rethrown with its original type and message.
//
// This header is the user's API. The loops and connectors that do the work are objects of their
// own in core/loops/ (FitLoop, TrainingEpochLoop, EvaluationLoop, the connectors), each owning
// its state; the Trainer owns them.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/callback_pack.hpp"
#include "hookline/core/checkpoint_callback.hpp"
#include "hookline/core/data_module.hpp"
#include "hookline/core/hook_emitter.hpp"
#include "hookline/core/logger.hpp"
#include "hookline/core/metrics.hpp"
#include "hookline/core/module.hpp"
#include "hookline/core/optimization.hpp"
#include "hookline/core/signals.hpp"  // RunInterrupted
#include "hookline/core/strategy.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/core/trainer_state.hpp"
#include "hookline/events/bus.hpp"
#include "hookline/hooks/hooks.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

class DataConnector;
class LoggerConnector;

class Trainer {
 public:
  /// The defaults Lightning adds (progress bar, model summary, ModelCheckpoint) are added only
  /// when neither `callbacks` nor `packs` hold one.
  explicit Trainer(TrainerOptions options = {},
                   std::vector<std::shared_ptr<Callback>> callbacks = {},
                   std::vector<std::shared_ptr<CallbackPack>> packs = {});
  ~Trainer();
  /// A trainer made from a recipe file: its trainer options, tracing, callbacks and packs. Throws
  /// RecipeError naming the file, line and key of a problem. Defined in recipe/recipe.cpp (link
  /// with the library; include recipe/recipe.hpp for RecipeError).
  static std::unique_ptr<Trainer> from_recipe(const std::string& path);
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // ---- runs ---------------------------------------------------------------------------------
  /// Trains `module`. With `ckpt_path` (a file, "last" or "best") the run first restores
  /// everything from that checkpoint and continues exactly where it was saved, also in the
  /// middle of an epoch (the sanity check runs again, as in Lightning). A bad checkpoint throws
  /// CheckpointError before anything is changed. A SIGTERM/SIGINT ends the run with
  /// RunInterrupted after on_exception (see handle_signals).
  void fit(Module& module, DataModule* data = nullptr, const std::string& ckpt_path = {});
  void fit(Module& module, DataModule& data, const std::string& ckpt_path = {}) {
    fit(module, &data, ckpt_path);
  }
  /// Validates, tests or predicts. With `ckpt_path` (a file, "last" or "best") the module's
  /// weights (and the data module's state) are loaded from that checkpoint first, as in
  /// Lightning; a weights-only checkpoint is enough.
  /// validate/test return, as Lightning does, one map per dataloader: the epoch values logged
  /// for loggers from that dataloader's steps (named "<name>/dataloader_idx_N" when there are
  /// several) plus those logged from the epoch-end hooks. Empty when no batch ran.
  std::vector<MetricMap> validate(Module& module, DataModule* data = nullptr,
                                  const std::string& ckpt_path = {});
  std::vector<MetricMap> validate(Module& module, DataModule& data,
                                  const std::string& ckpt_path = {}) {
    return validate(module, &data, ckpt_path);
  }
  std::vector<MetricMap> test(Module& module, DataModule* data = nullptr,
                              const std::string& ckpt_path = {});
  std::vector<MetricMap> test(Module& module, DataModule& data, const std::string& ckpt_path = {}) {
    return test(module, &data, ckpt_path);
  }
  /// Returns every predict_step output, loader by loader.
  std::vector<StepOutput> predict(Module& module, DataModule* data = nullptr,
                                  const std::string& ckpt_path = {});
  std::vector<StepOutput> predict(Module& module, DataModule& data,
                                  const std::string& ckpt_path = {}) {
    return predict(module, &data, ckpt_path);
  }

  // ---- callbacks and packs ------------------------------------------------------------------
  // All four may be called at any time: between runs, from inside any hook (of another callback
  // or of the one being removed), and from another thread while a run goes on.
  // - An added callback (or pack) sees every event from the next emission on: not the one being
  //   dispatched when it was added. If it is added while a run is set up (after `setup`, before
  //   `teardown`), its setup(trainer, module, stage) is called first, in the adding thread, so
  //   it is ready for the events that follow; if that throws, nothing is added.
  // - A removed callback (or pack) sees nothing from that moment on, not even the rest of the
  //   emission in progress (a hook already running in another thread finishes); if a run is set
  //   up, its teardown(...) is then called in the removing thread. The trainer keeps it alive
  //   until the run ends, so removing a callback from its own hook is safe.
  // - State keys: callbacks on their own must have distinct state_key()s; a pack's callbacks
  //   are keyed "<pack path>/<state_key>" (see CallbackPack), so packs only need distinct names.
  /// Adds a callback. Throws std::invalid_argument for null, one added twice, or a state_key
  /// another callback of this trainer already has.
  void add_callback(std::shared_ptr<Callback> callback);
  /// Removes a callback and all its subscriptions; returns false if it was not added. Throws
  /// std::invalid_argument for a callback added as part of a pack (remove the pack).
  bool remove_callback(const Callback& callback);
  /// Adds a pack (and its nested packs) as one owner on the bus. Throws std::invalid_argument
  /// for null, a pack already in use (here or by another trainer), a pack name this trainer
  /// already has, or a callback that is already in this trainer; nothing is added then.
  void add_pack(std::shared_ptr<CallbackPack> pack);
  /// Removes a pack added with add_pack (all its callbacks at once); false if it is not here.
  bool remove_pack(const CallbackPack& pack);
  /// The added pack named `name`, or null.
  std::shared_ptr<CallbackPack> pack(const std::string& name) const;
  /// Lightning's trainer.callbacks, a copy: every callback of this trainer (packs' callbacks too)
  /// in the order added, checkpoint callbacks last; during a run, those configure_callbacks
  /// replaced are left out and the module's are added (before the checkpoint callbacks).
  std::vector<std::shared_ptr<Callback>> callbacks() const;
  /// The packs added, in order; a copy.
  std::vector<std::shared_ptr<CallbackPack>> packs() const;

  // ---- checkpoints --------------------------------------------------------------------------
  /// Saves the run's state to `path` atomically (temporary file, fsync, rename), firing
  /// state_dict / on_save_checkpoint as Lightning does. `weights_only` keeps the module's
  /// parameters and buffers, progress and hyperparameters, without optimizer, scheduler and
  /// callback state. With async_checkpointing the state is copied now and the file written in the
  /// background; the previous write is waited for first. Call from a hook or between runs.
  void save_checkpoint(const std::string& path, bool weights_only = false);
  /// Waits for the background checkpoint write in progress, if any; rethrows its failure.
  void wait_for_checkpoint();
  /// The checkpoint callbacks of the trainer and the current run, in order.
  std::vector<CheckpointCallback*> checkpoint_callbacks() const;
  /// The first checkpoint callback, or null.
  CheckpointCallback* checkpoint_callback() const;
  /// The file the current (or last) fit resumed from ("" if none).
  const std::string& ckpt_path() const;

  // ---- processes (strategies/) -------------------------------------------------------------
  /// Where the model lives and how the processes of a run talk (TrainerOptions::strategy).
  Strategy& strategy() { return *strategy_; }
  const Strategy& strategy() const { return *strategy_; }
  int world_size() const { return strategy_->world_size(); }
  int global_rank() const { return strategy_->global_rank(); }
  int local_rank() const { return strategy_->local_rank(); }
  int node_rank() const { return strategy_->node_rank(); }
  bool is_global_zero() const { return strategy_->is_global_zero(); }

  // ---- state --------------------------------------------------------------------------------
  const TrainerOptions& options() const { return options_; }
  Bus& bus() { return bus_; }
  Status status() const { return state_.status; }
  Stage stage() const { return state_.stage; }
  bool training() const { return state_.training; }
  bool sanity_checking() const { return state_.sanity_checking; }
  bool validating() const { return state_.validating; }
  bool testing() const { return state_.stage == Stage::test && state_.running; }
  bool predicting() const { return state_.stage == Stage::predict && state_.running; }
  /// Epochs completed (Lightning's current_epoch).
  std::int64_t current_epoch() const;
  /// Optimizer steps taken.
  std::int64_t global_step() const;
  /// Optimizer steps taken, as counted for logging (Lightning's _batches_that_stepped).
  std::int64_t batches_that_stepped() const;
  bool should_stop() const { return state_.should_stop; }
  void set_should_stop(bool stop, std::string reason = "set_should_stop") {
    state_.set_should_stop(stop, std::move(reason));
  }
  /// Who asked the run to stop, and why (empty if nobody did).
  const std::string& stop_reason() const { return state_.stop_reason; }
  /// Lightning's `trainer.accumulate_grad_batches = n`: the accumulation factor from the next
  /// batch on (GradientAccumulationScheduler sets it at each epoch start). Throws
  /// std::invalid_argument for n < 1.
  void set_accumulate_grad_batches(std::int64_t n);
  std::int64_t num_training_batches() const;
  const std::vector<std::int64_t>& num_val_batches() const;
  const std::vector<std::int64_t>& num_sanity_val_batches() const;
  const std::vector<std::int64_t>& num_test_batches() const;
  const std::vector<std::int64_t>& num_predict_batches() const;

  /// Lightning's three metric dicts (see metrics.hpp): what callbacks may monitor, what was
  /// sent (or is due) to the loggers, what the progress bar shows. Read during a run, they also
  /// hold what the running loop has logged so far, as Lightning's properties do.
  const MetricMap& callback_metrics() const {
    return metrics_.callback_metrics(state_.active_phase());
  }
  const MetricMap& logged_metrics() const { return metrics_.logged_metrics(state_.active_phase()); }
  const MetricMap& progress_bar_metrics() const {
    return metrics_.progress_bar_metrics(state_.active_phase());
  }

  // ---- loggers ------------------------------------------------------------------------------
  /// The loggers (TrainerOptions::logger; the default is one TensorBoardLogger).
  const std::vector<std::shared_ptr<Logger>>& loggers() const;
  /// The first logger, or null.
  Logger* logger() const;
  /// Lightning's trainer.log_dir: the first logger's log_dir, else default_root_dir.
  std::string log_dir() const;

  // ---- for callbacks that drive the loops' parts (Lightning's trainer._*_connector) ----------
  /// When logged values reach the loggers; log_metrics and log_to_loggers for callbacks
  /// (ThroughputMonitor, LearningRateMonitor); core/loops/logger_connector.hpp.
  LoggerConnector& logger_connector();
  /// The dataloaders of the run; train_dataloaders() for callbacks that run training steps
  /// before the loop does (LearningRateFinder); core/loops/data_connector.hpp.
  DataConnector& data_connector();

  Module& module() const;
  DataModule* data_module() const { return data_; }
  /// The optimizers and schedulers of the current (or last) fit.
  OptimizerConfig& optimizer_config() { return optimizer_config_; }
  const OptimizerConfig& optimizer_config() const { return optimizer_config_; }

  /// Emits `event` with this trainer's context, tracking the hook for log() and should_stop.
  template <Event E>
  Outcome emit(E& event) {
    return hooks_.emit(event);
  }

 private:
  friend class Module;
  friend class ManualOptimizer;
  struct Loops;  // the loops and connectors (trainer.cpp)

  void run(Stage stage, Module& module, DataModule* data, const std::string& ckpt_path);
  void run_stage(Stage stage);
  void attach(Module& module, DataModule* data);
  void detach();
  void handle_exception(std::exception_ptr error);
  /// Module::log.
  void log_metric(const std::string& name, double value, const LogOptions& options);
  /// ManualOptimizer::step: one more optimizer step.
  void after_optimizer_step();

  TrainerOptions options_;
  std::shared_ptr<Strategy> strategy_;
  Bus bus_;
  TrainerState state_;
  HookEmitter hooks_{bus_, *this, state_};
  MetricStore metrics_;
  OptimizerConfig optimizer_config_;
  DataModule* data_ = nullptr;
  std::unique_ptr<Loops> loops_;
};

}  // namespace hookline
