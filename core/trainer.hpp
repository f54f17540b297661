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
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/callback_pack.hpp"
#include "hookline/core/checkpoint_callback.hpp"
#include "hookline/core/data_module.hpp"
#include "hookline/core/logger.hpp"
#include "hookline/core/metrics.hpp"
#include "hookline/core/module.hpp"
#include "hookline/core/signals.hpp"
#include "hookline/core/strategy.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/events/bus.hpp"
#include "hookline/hooks/hooks.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

/// Where a run is: Lightning's TrainerStatus.
enum class Status { initializing, running, finished, interrupted };

class Trainer {
 public:
  /// The defaults Lightning adds (progress bar, model summary, ModelCheckpoint) are added only
  /// when neither `callbacks` nor `packs` hold one.
  explicit Trainer(TrainerOptions options = {},
                   std::vector<std::shared_ptr<Callback>> callbacks = {},
                   std::vector<std::shared_ptr<CallbackPack>> packs = {});
  ~Trainer();
  /// A trainer made from a recipe file (recipe/recipe.hpp): its trainer options, tracing,
  /// callbacks and packs. Throws RecipeError naming the file, line and key of a problem.
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
  /// Every callback of this trainer (packs' callbacks too, in the order added); a copy.
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
  const std::string& ckpt_path() const { return ckpt_path_; }

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
  Status status() const { return status_; }
  Stage stage() const { return stage_; }
  bool training() const { return training_; }
  bool sanity_checking() const { return sanity_checking_; }
  bool validating() const { return validating_; }
  bool testing() const { return stage_ == Stage::test && running_; }
  bool predicting() const { return stage_ == Stage::predict && running_; }
  /// Epochs completed (Lightning's current_epoch).
  std::int64_t current_epoch() const { return current_epoch_; }
  /// Optimizer steps taken.
  std::int64_t global_step() const { return global_step_; }
  bool should_stop() const { return should_stop_; }
  void set_should_stop(bool stop, std::string reason = "set_should_stop");
  /// Lightning's `trainer.accumulate_grad_batches = n`: the accumulation factor from the next
  /// batch on (GradientAccumulationScheduler sets it at each epoch start). Throws
  /// std::invalid_argument for n < 1.
  void set_accumulate_grad_batches(std::int64_t n);
  /// Who asked the run to stop, and why (empty if nobody did).
  const std::string& stop_reason() const { return stop_reason_; }
  std::int64_t num_training_batches() const { return num_training_batches_; }
  const std::vector<std::int64_t>& num_val_batches() const { return num_val_batches_; }
  const std::vector<std::int64_t>& num_sanity_val_batches() const { return num_sanity_batches_; }
  const std::vector<std::int64_t>& num_test_batches() const { return num_test_batches_; }
  const std::vector<std::int64_t>& num_predict_batches() const { return num_predict_batches_; }

  /// Lightning's three metric dicts (see metrics.hpp): what callbacks may monitor, what was
  /// sent (or is due) to the loggers, what the progress bar shows. Read during a run, they also
  /// hold what the running loop has logged so far, as Lightning's properties do.
  const MetricMap& callback_metrics() const { return metrics_.callback_metrics(active_phase()); }
  const MetricMap& logged_metrics() const { return metrics_.logged_metrics(active_phase()); }
  const MetricMap& progress_bar_metrics() const {
    return metrics_.progress_bar_metrics(active_phase());
  }

  // ---- loggers ------------------------------------------------------------------------------
  /// The loggers (TrainerOptions::logger; the default is one TensorBoardLogger).
  const std::vector<std::shared_ptr<Logger>>& loggers() const { return loggers_; }
  /// The first logger, or null.
  Logger* logger() const { return loggers_.empty() ? nullptr : loggers_.front().get(); }
  /// Lightning's trainer.log_dir: the first logger's log_dir, else default_root_dir.
  std::string log_dir() const;
  /// `metrics` at `step` to every logger, as Lightning's callbacks call logger.log_metrics: on
  /// the loggers' strand of the async lane, in order with the trainer's own calls; not added to
  /// logged_metrics.
  void log_to_loggers(MetricMap metrics, std::int64_t step);
  /// Lightning's `_logger_connector.should_update_logs` during training: the next step is a
  /// logging step (log_every_n_steps) or a stop was requested.
  bool should_update_logs() const;
  /// Lightning's `trainer._logger_connector.log_metrics(metrics, step)` from a callback
  /// (ThroughputMonitor): into logged_metrics and to every logger; without `step`, "epoch" is
  /// added and the step is batches_that_stepped(). Does nothing without loggers.
  void log_metrics(MetricMap metrics, std::optional<std::int64_t> step = std::nullopt) {
    if (loggers_.empty() || metrics.empty()) return;
    send_metrics(std::move(metrics), step);
  }
  /// The training dataloaders of the current fit, requested now (train_dataloader hook) if they
  /// have not been yet; the fit loop then uses these. For callbacks that run training steps
  /// before the loop does (LearningRateFinder).
  const DataLoaders& request_train_dataloaders() {
    ensure_train_loader();
    return train_loaders_;
  }
  /// Forgets what training steps logged so far (results and the metric maps), as after the
  /// sanity check: for callbacks that run training steps outside the loop (LearningRateFinder).
  void reset_train_results() {
    metrics_.reset_results(Phase::train);
    metrics_.reset_metrics();
  }
  /// Optimizer steps taken, as counted for logging (Lightning's _batches_that_stepped).
  std::int64_t batches_that_stepped() const { return batches_that_stepped_; }
  /// Lightning's `trainer.callback_metrics.update(...)` from a callback (LearningRateMonitor).
  void update_callback_metrics(const MetricMap& metrics) { metrics_.add_callback_metrics(metrics); }

  Module& module() const;
  DataModule* data_module() const { return data_; }
  /// The optimizers and schedulers of the current (or last) fit.
  OptimizerConfig& optimizer_config() { return optimizer_config_; }
  const OptimizerConfig& optimizer_config() const { return optimizer_config_; }

  /// Emits `event` with this trainer's context, tracking the hook for log() and should_stop.
  template <Event E>
  Outcome emit(E& event) {
    if constexpr (std::is_base_of_v<HookEvent, E>) {
      event.trainer = this;
      event.module = module_;
    }
    return emit_hook(event_info<E>(), Bus::any(event));
  }

 private:
  friend class Module;
  friend class ManualOptimizer;

  // The hook being dispatched (innermost), for log() checks; a stack because hooks nest.
  class HookScope {
   public:
    HookScope(Trainer& t, const EventInfo& info) : trainer_(t), previous_(t.current_hook_) {
      if (info.log != LogRule::inherit) t.current_hook_ = &info;
    }
    ~HookScope() { trainer_.current_hook_ = previous_; }
    HookScope(const HookScope&) = delete;
    HookScope& operator=(const HookScope&) = delete;

   private:
    Trainer& trainer_;
    const EventInfo* previous_;
  };

  /// emit(event) for a hook whose default has work (Module::handle): emitted when a tracer or a
  /// subscriber other than the module's default would see it; when only that default would, the
  /// module runs it directly, the same work without the dispatch; when nobody would, nothing.
  template <Event E>
  Outcome emit_or_default(E& event) {
    switch (bus_.audience<E>()) {
      case Bus::Audience::others:
        return emit(event);
      case Bus::Audience::defaults:
        module_->handle(event);
        return {};
      case Bus::Audience::nobody:
        break;
    }
    return {};
  }
  /// emit(event) without the event's type (one copy of this code for every hook).
  Outcome emit_hook(const EventInfo& info, const Bus::AnyEvent& event);
  struct RunGuard;
  void run(Stage stage, Module& module, DataModule* data, const std::string& ckpt_path);
  void run_stage(Stage stage);
  void attach(Module& module, DataModule* data);
  void detach();
  void connect_callback(Callback& callback, const void* owner);
  /// Whether `callback` is one of this trainer's (callbacks_mutex_ held).
  bool has_callback(const Callback* callback) const;
  /// The callbacks of the trainer and of the current run (configure_callbacks), a copy.
  std::vector<std::shared_ptr<Callback>> all_callbacks() const;
  /// setup() for a callback added while a run is set up, teardown() for one removed then.
  void late_setup(const std::vector<std::shared_ptr<Callback>>& added);
  void early_teardown(const std::vector<std::shared_ptr<Callback>>& removed);
  /// Attaches the tracer a pack asked for (CallbackPack::trace), if any is pending.
  void apply_pack_tracing();
  void handle_exception(std::exception_ptr error);

  // fit
  void fit_loop();
  void train_epoch();
  bool run_training_batch(Batch& batch, std::int64_t batch_idx, bool is_last);
  void automatic_step(Batch& batch, std::int64_t batch_idx, bool is_last, StepOutput& outputs);
  void manual_step(Batch& batch, std::int64_t batch_idx, StepOutput& outputs);
  void update_lr_schedulers(Interval interval, std::int64_t batch_idx, bool plateau_pass);
  bool fit_done() const;
  bool can_stop_early() const;
  bool time_is_up() const;
  bool should_check_val_epoch() const;
  void run_sanity_check();

  // evaluation
  enum class EvalKind { validation, test, predict };
  void evaluation_loop(EvalKind kind, bool sanity);
  DataLoaders request_loaders(EvalKind kind);
  void ensure_train_loader();
  void ensure_val_loaders();
  Batch transfer(Batch batch, std::int64_t dataloader_idx);
  /// DDP with use_distributed_sampler: each rank gets its shard of every loader.
  void shard(const DataLoaders& loaders) const;
  std::vector<std::int64_t> limit_batches(const DataLoaders& loaders,
                                          const BatchAmount& limit) const;

  // checkpoints (checkpoint_connector.cpp)
  /// Where the current training epoch is, at the granularity a checkpoint may be taken at.
  struct EpochProgress {
    std::int64_t batches_done = 0;    ///< batches past on_train_batch_end (or skipped)
    bool tail_pending = false;        ///< the last of them has not finished its tail yet
    bool last_ran_step = false;       ///< it ran training_step (not skipped)
    bool last_stepped = false;        ///< it made an optimizer step
    bool validated = false;           ///< its validation check already ran
    bool reached_last_batch = false;  ///< the epoch's last batch was reached
    bool epoch_end_done = false;      ///< on_train_epoch_end ran
  };
  struct Restore;
  Checkpoint dump_checkpoint(bool weights_only);
  std::string resolve_ckpt_path(const std::string& ckpt_path) const;
  void restore_modules_and_callbacks(const std::string& path);
  void restore_training_state();
  void resume_loader();
  bool resume_epoch();
  void finish_restore();
  void rollback_restore() noexcept;
  void finish_training_batch(std::int64_t batch_idx);
  bool end_of_batch(std::int64_t batch_idx);
  void end_epoch();
  void check_signal();
  /// DDP: every rank's verdict `action`, should_stop flag and pending signal, reduced (the
  /// strongest wins) so all ranks act alike; throws RunInterrupted on every rank when one got a
  /// signal. Returns the agreed action. Single process: `action`, at no cost.
  Action agree(Action action = Action::Continue);

  // logging from Module::log, and the logger connector (core/loops/logger_connector.cpp)
  void log_metric(const std::string& name, double value, const LogOptions& options);
  std::optional<Phase> active_phase() const;
  /// Lightning's _LoggerConnector.log_metrics: into logged_metrics, then to every logger on the
  /// async lane. Without `step`, a logged "step" is the step, else "epoch" is added and the step
  /// is the number of batches that stepped.
  void send_metrics(MetricMap metrics, std::optional<std::int64_t> step = std::nullopt);
  /// Runs `call` on every logger, on the loggers' strand of the async lane, after the rows
  /// send_metrics holds back.
  void post_to_loggers(std::function<void(Logger&)> call, const char* what);
  /// Runs `call` on every logger on their strand, without the held-back rows (rank 0 only).
  void post_to_lane(std::function<void(Logger&)> call, const char* what);
  /// Hands the rows held back by send_metrics to the loggers' strand.
  void post_pending_rows();
  void start_loggers();
  void log_hyperparams();
  void finalize_loggers(const std::string& status);
  void after_optimizer_step();

  TrainerOptions options_;
  std::shared_ptr<Strategy> strategy_;
  std::string log_dir_;  // rank 0's log_dir, agreed at the start of a run (DDP)
  // Guards callbacks_, run_callbacks_, packs_, retired_ and pending_trace_spec_ (add/remove may
  // come from any thread). Recursive: a late setup() may add or look up callbacks.
  mutable std::recursive_mutex callbacks_mutex_;
  std::vector<std::shared_ptr<Callback>> callbacks_;      // packs' callbacks included
  std::vector<std::shared_ptr<Callback>> run_callbacks_;  // from configure_callbacks()
  std::vector<std::shared_ptr<CallbackPack>> packs_;
  std::vector<std::shared_ptr<const void>> retired_;  // removed during a run, freed at its end
  std::string pending_trace_spec_;   // a pack's trace spec, applied when no run is going on
  std::atomic<bool> set_up_{false};  // between the run's setup and teardown (for late_setup)
  Bus bus_;
  MetricStore metrics_;
  OptimizerConfig optimizer_config_;

  Module* module_ = nullptr;
  DataModule* data_ = nullptr;
  const EventInfo* current_hook_ = nullptr;
  Status status_ = Status::initializing;
  Stage stage_ = Stage::fit;
  std::atomic<bool> running_{false};  // read by add_pack on other threads
  bool training_ = false;
  bool sanity_checking_ = false;
  bool validating_ = false;
  bool should_stop_ = false;
  std::string stop_reason_;
  std::int64_t current_epoch_ = 0;
  std::int64_t global_step_ = 0;
  std::int64_t batches_that_stepped_ = 0;
  std::int64_t current_batch_size_ = 1;
  std::vector<std::shared_ptr<Logger>> loggers_;
  std::shared_ptr<AsyncLane::Strand> logger_strand_;
  struct LoggerRow {
    MetricMap metrics;
    std::int64_t step;
  };
  static constexpr std::size_t kRowsPerPost = 16;
  std::vector<LoggerRow> pending_rows_;  // send_metrics' rows not yet posted (rank 0)
  std::chrono::steady_clock::time_point rows_posted_at_{};
  // Evaluation batches seen per dataloader since the loaders were requested: the step of
  // evaluation step metrics sent to loggers.
  std::vector<std::int64_t> seen_eval_batches_;
  bool min_stop_warned_ = false;         // "Trainer was signaled to stop but ..." said once per run
  std::vector<MetricMap> eval_results_;  // what validate()/test() return
  std::int64_t num_training_batches_ = 0;
  std::int64_t val_check_batch_ = 1;
  std::vector<std::int64_t> num_val_batches_;
  std::vector<std::int64_t> num_sanity_batches_;
  std::vector<std::int64_t> num_test_batches_;
  std::vector<std::int64_t> num_predict_batches_;
  DataLoaders train_loaders_;
  DataLoaders val_loaders_;
  bool val_loaders_requested_ = false;
  std::vector<StepOutput> predictions_;
  std::chrono::steady_clock::time_point fit_started_;
  EpochProgress progress_;
  SignalWatch* signals_ = nullptr;    // the current run's, when handle_signals
  std::unique_ptr<Restore> restore_;  // a checkpoint being restored, until the loop reaches it
  std::string ckpt_path_;
  std::future<void> pending_write_;
  std::string pending_write_path_;
};

}  // namespace hookline
