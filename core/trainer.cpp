#include "hookline/core/trainer.hpp"

#include "hookline/core/allocator_tuning.hpp"
#include "hookline/core/console.hpp"
#include "hookline/core/defaults.hpp"
#include "hookline/core/loops/callback_connector.hpp"
#include "hookline/core/loops/checkpoint_connector.hpp"
#include "hookline/core/loops/data_connector.hpp"
#include "hookline/core/loops/evaluation_loop.hpp"
#include "hookline/core/loops/fit_loop.hpp"
#include "hookline/core/loops/logger_connector.hpp"
#include "hookline/core/loops/progress.hpp"
#include "hookline/core/loops/signal_connector.hpp"

#include <spdlog/spdlog.h>
#include <torch/utils.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace hookline {

namespace {

std::string describe_exception(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace

// The loops and connectors, in the order they are built: each takes the parts it uses.
struct Trainer::Loops {
  explicit Loops(Trainer& t)
      : callbacks(t, t.state_, t.hooks_),
        signals(*t.strategy_, t.state_),
        data(t.options_, t.state_, t.hooks_, *t.strategy_),
        logger(t.options_, t.state_, t.hooks_, *t.strategy_, t.metrics_, progress, {}),
        checkpoint({parts(t), callbacks}),
        evaluation(t.options_, t.state_, t.hooks_, t.metrics_, data, logger, signals),
        fit({parts(t), logger, signals, checkpoint, evaluation}) {}

  // What every loop and connector shares (the members it names are built before their users).
  RunParts parts(Trainer& t) {
    return {t.options_,          t.state_, t.hooks_, *t.strategy_, t.metrics_,
            t.optimizer_config_, data,     progress, epoch};
  }

  // The fit's counters: written by the fit and epoch loops, saved and logged by the connectors.
  FitProgress progress;
  EpochProgress epoch;
  CallbackConnector callbacks;
  SignalConnector signals;
  DataConnector data;
  LoggerConnector logger;
  CheckpointConnector checkpoint;
  EvaluationLoop evaluation;
  FitLoop fit;
};

// ---- construction -----------------------------------------------------------------------------

Trainer::Trainer(TrainerOptions options, std::vector<std::shared_ptr<Callback>> callbacks,
                 std::vector<std::shared_ptr<CallbackPack>> packs)
    : options_(std::move(options)) {
  options_.validate();
  strategy_ = make_strategy(options_);
  loops_ = std::make_unique<Loops>(*this);
  const int threads = options_.num_threads().value_or(
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
  for (auto& callback : callbacks) add_callback(std::move(callback));
  for (auto& pack : packs) add_pack(std::move(pack));
  TrainerDefaults defaults = trainer_defaults(options_, loops_->callbacks.all());
  for (auto& callback : defaults.callbacks) add_callback(std::move(callback));
  loops_->logger.set_loggers(std::move(defaults.loggers));
  trace_from_environment(*this);  // HOOKLINE_TRACE
}

Trainer::~Trainer() {
  try {
    bus_.flush();
  } catch (const std::exception& e) {
    console().error("an async subscriber failed and nobody flushed for it: {}", e.what());
  }
  try {
    wait_for_checkpoint();
  } catch (const std::exception& e) {
    console().error("the checkpoint write to '{}' failed and nobody waited for it: {}",
                    loops_->checkpoint.pending_path(), e.what());
  }
  bus_.disconnect_all();
}

// ---- callbacks and packs --------------------------------------------------------------------

void Trainer::add_callback(std::shared_ptr<Callback> callback) {
  loops_->callbacks.add(std::move(callback));
}
bool Trainer::remove_callback(const Callback& callback) {
  return loops_->callbacks.remove(callback);
}
void Trainer::add_pack(std::shared_ptr<CallbackPack> pack) {
  loops_->callbacks.add_pack(std::move(pack));
}
bool Trainer::remove_pack(const CallbackPack& pack) {
  return loops_->callbacks.remove_pack(pack);
}
std::shared_ptr<CallbackPack> Trainer::pack(const std::string& name) const {
  return loops_->callbacks.pack(name);
}
std::vector<std::shared_ptr<Callback>> Trainer::callbacks() const {
  return loops_->callbacks.all();
}
std::vector<std::shared_ptr<CallbackPack>> Trainer::packs() const {
  return loops_->callbacks.packs();
}

// ---- checkpoints ----------------------------------------------------------------------------

void Trainer::save_checkpoint(const std::string& path, bool weights_only) {
  loops_->checkpoint.save(path, weights_only);
}
void Trainer::wait_for_checkpoint() {
  loops_->checkpoint.wait();
}
std::vector<CheckpointCallback*> Trainer::checkpoint_callbacks() const {
  return loops_->callbacks.checkpoint_callbacks();
}
CheckpointCallback* Trainer::checkpoint_callback() const {
  const auto all = checkpoint_callbacks();
  return all.empty() ? nullptr : all.front();
}
const std::string& Trainer::ckpt_path() const {
  return loops_->checkpoint.ckpt_path();
}

// ---- state ----------------------------------------------------------------------------------

std::int64_t Trainer::current_epoch() const {
  return loops_->progress.current_epoch;
}
std::int64_t Trainer::global_step() const {
  return loops_->progress.global_step;
}
std::int64_t Trainer::batches_that_stepped() const {
  return loops_->progress.batches_that_stepped;
}
std::int64_t Trainer::num_training_batches() const {
  return loops_->data.num_training_batches();
}
const std::vector<std::int64_t>& Trainer::num_val_batches() const {
  return loops_->data.num_val_batches();
}
const std::vector<std::int64_t>& Trainer::num_sanity_val_batches() const {
  return loops_->evaluation.num_sanity_batches();
}
const std::vector<std::int64_t>& Trainer::num_test_batches() const {
  return loops_->evaluation.num_test_batches();
}
const std::vector<std::int64_t>& Trainer::num_predict_batches() const {
  return loops_->evaluation.num_predict_batches();
}

void Trainer::set_accumulate_grad_batches(std::int64_t n) {
  if (n < 1)
    throw std::invalid_argument("accumulate_grad_batches must be >= 1 (got " + std::to_string(n) +
                                ")");
  options_.accumulate_grad_batches(n);
}

Module& Trainer::module() const {
  if (!hooks_.module()) throw std::logic_error("Trainer::module(): no run in progress");
  return *hooks_.module();
}

const std::vector<std::shared_ptr<Logger>>& Trainer::loggers() const {
  return loops_->logger.loggers();
}
Logger* Trainer::logger() const {
  const auto& all = loggers();
  return all.empty() ? nullptr : all.front().get();
}
std::string Trainer::log_dir() const {
  return loops_->logger.log_dir();
}
LoggerConnector& Trainer::logger_connector() {
  return loops_->logger;
}
DataConnector& Trainer::data_connector() {
  return loops_->data;
}

void Trainer::log_metric(const std::string& name, double value, const LogOptions& options) {
  loops_->logger.log(name, value, options);
}
void Trainer::after_optimizer_step() {
  ++loops_->progress.global_step;
}

// ---- runs -----------------------------------------------------------------------------------

void Trainer::fit(Module& module, DataModule* data, const std::string& ckpt_path) {
  run(Stage::fit, module, data, ckpt_path);
}

std::vector<MetricMap> Trainer::validate(Module& module, DataModule* data,
                                         const std::string& ckpt_path) {
  run(Stage::validate, module, data, ckpt_path);
  return loops_->evaluation.take_results();
}

std::vector<MetricMap> Trainer::test(Module& module, DataModule* data,
                                     const std::string& ckpt_path) {
  run(Stage::test, module, data, ckpt_path);
  return loops_->evaluation.take_results();
}

std::vector<StepOutput> Trainer::predict(Module& module, DataModule* data,
                                         const std::string& ckpt_path) {
  run(Stage::predict, module, data, ckpt_path);
  return loops_->evaluation.take_predictions();
}

void Trainer::attach(Module& module, DataModule* data) {
  module.trainer_ = this;
  hooks_.set_module(&module);
  data_ = data;
  loops_->checkpoint.set_data_module(data);
  DataModule::BatchHooks hooks;
  if (data) {
    Sink sink = bus_.sink(data);
    data->subscribe(sink);
    hooks = data->batch_hooks();
  }
  Sink sink = bus_.sink(&module);
  module.subscribe(sink, data != nullptr, hooks.on_before_batch_transfer,
                   hooks.transfer_batch_to_device, hooks.on_after_batch_transfer);
}

void Trainer::detach() {
  loops_->callbacks.end_run();
  if (data_) bus_.disconnect_owner(data_);
  if (Module* module = hooks_.module()) {
    bus_.disconnect_owner(module);
    module->trainer_ = nullptr;
  }
  strategy_->teardown_module();
  hooks_.set_module(nullptr);
  data_ = nullptr;
  loops_->checkpoint.set_data_module(nullptr);
  state_.running = false;
  state_.stage = Stage::none;  // Lightning: trainer.state.stage = None once a run ends
  state_.training = state_.validating = state_.sanity_checking = false;
  hooks_.clear_current_hook();
  loops_->data.clear();
  loops_->checkpoint.end_run();
}

void Trainer::run(Stage stage, Module& module, DataModule* data, const std::string& ckpt_path) {
  if (state_.running)
    throw std::logic_error("Trainer is already running " + std::string(to_string(state_.stage)) +
                           "; start another run after this one returns");
  if (module.trainer_ != nullptr && module.trainer_ != this)
    throw std::logic_error(module.module_name() +
                           " is already attached to another Trainer, which is running it; a "
                           "module runs in one Trainer at a time: start this run after that one "
                           "returns, or give this Trainer another module");
  if (!module.automatic_optimization()) {
    if (options_.accumulate_grad_batches() != 1)
      throw std::invalid_argument(
          "TrainerOptions::accumulate_grad_batches(" +
          std::to_string(options_.accumulate_grad_batches()) +
          ") does not apply to manual optimization; accumulate in training_step instead");
    if (options_.gradient_clip_val().value_or(0) > 0)
      throw std::invalid_argument(
          "TrainerOptions::gradient_clip_val does not apply to manual optimization; call "
          "clip_gradients() in training_step instead");
  }
  // glibc malloc at the step's ceiling for the run; set back when it returns or throws.
  const AllocatorTuning allocator_tuning(options_.tune_allocator());
  // DDP: joins (or launches) the run's processes; ranks other than 0 say only warnings.
  strategy_->setup_environment();
  bus_.set_rank(strategy_->global_rank());
  if (!strategy_->is_global_zero() && console().level() < spdlog::level::warn)
    console().set_level(spdlog::level::warn);
  state_.stage = stage;
  state_.status = Status::running;
  loops_->callbacks.apply_pack_tracing();
  state_.running = true;
  state_.set_should_stop(false, {});
  loops_->evaluation.clear();
  metrics_.clear();
  if (stage == Stage::fit) loops_->progress = FitProgress{};
  attach(module, data);
  loops_->signals.start(options_.handle_signals());
  try {
    if (options_.seed()) torch::manual_seed(*options_.seed());
    if (options_.deterministic()) at::globalContext().setDeterministicAlgorithms(true, false);
    loops_->checkpoint.set_ckpt_path(
        ckpt_path.empty() ? std::string() : loops_->checkpoint.resolve(ckpt_path, *this));
    run_stage(stage);
    bus_.flush();
    wait_for_checkpoint();
    state_.status = Status::finished;
  } catch (...) {
    state_.status = Status::interrupted;
    loops_->checkpoint.rollback();
    handle_exception(std::current_exception());
    loops_->signals.stop();
    detach();
    if (strategy_->distributed())
      strategy_->run_failed(describe_exception(std::current_exception()));
    throw;
  }
  loops_->signals.stop();
  detach();
}

void Trainer::handle_exception(std::exception_ptr error) {
  ExceptionRaised event;
  event.exception = error;
  event.what = describe_exception(error);
  try {
    emit(event);
  } catch (const std::exception& e) {
    console().error("an on_exception subscriber threw '{}' while handling '{}'", e.what(),
                    event.what);
  }
  try {
    loops_->logger.finalize("failed");
  } catch (const std::exception& e) {
    console().error("finalizing the loggers failed during '{}': {}", event.what, e.what());
  }
  try {
    bus_.flush();
  } catch (const std::exception& e) {
    console().error("an async subscriber failed during '{}': {}", event.what, e.what());
  }
  try {
    wait_for_checkpoint();
  } catch (const std::exception& e) {
    console().error("a checkpoint write failed during '{}': {}", event.what, e.what());
  }
}

void Trainer::run_stage(Stage stage) {
  ConfigureCallbacks configure;
  emit(configure);
  loops_->callbacks.add_run_callbacks(configure.callbacks);
  // Lightning's prepare_data: once per node (local rank 0), the other ranks wait for it.
  if (strategy_->local_rank() == 0) {
    PrepareData prepare;
    emit(prepare);
  }
  strategy_->barrier("prepare_data");
  loops_->logger.start();
  Setup setup;
  setup.stage = stage;
  emit(setup);
  loops_->callbacks.set_set_up(true);
  ConfigureShardedModel configure_sharded_model;
  emit(configure_sharded_model);
  ConfigureModel configure_model;
  emit(configure_model);
  Module& module = *hooks_.module();
  if (!ckpt_path().empty()) loops_->checkpoint.restore_modules_and_callbacks(ckpt_path());
  module.to(strategy_->root_device());
  strategy_->setup_module(module);

  if (stage == Stage::fit) {
    std::error_code error;
    std::filesystem::create_directories(options_.default_root_dir(), error);
    if (error)
      throw std::runtime_error("TrainerOptions::default_root_dir('" + options_.default_root_dir() +
                               "') cannot be created: " + error.message() +
                               "; choose a writable directory");
    optimizer_config_ = OptimizerConfig{};
    ConfigureOptimizers optimizers;
    optimizers.config = &optimizer_config_;
    emit(optimizers);
    if (optimizer_config_.optimizers.empty())
      throw std::invalid_argument(module.module_name() +
                                  ".configure_optimizers() returned no optimizer; add one with "
                                  "OptimizerConfig::add");
    for (const auto& optimizer : optimizer_config_.optimizers)
      if (!optimizer)
        throw std::invalid_argument("configure_optimizers() returned a null optimizer");
    if (module.automatic_optimization() && optimizer_config_.optimizers.size() != 1)
      throw std::invalid_argument(
          "automatic optimization takes exactly one optimizer (got " +
          std::to_string(optimizer_config_.optimizers.size()) +
          "); use manual optimization (set_automatic_optimization(false)) for several");
    for (const auto& scheduler : optimizer_config_.schedulers) scheduler.validate();
    FitStart fit_start;
    emit(fit_start);
    loops_->logger.log_hyperparams(module);
    loops_->checkpoint.restore_training_state();
    module.zero_grad();
    loops_->fit.run_sanity_check();
    loops_->fit.run();
    FitEnd fit_end;
    emit(fit_end);
  } else {
    loops_->logger.log_hyperparams(module);
    loops_->checkpoint.finish_restore();
    module.zero_grad();
    loops_->evaluation.run(stage == Stage::validate ? EvalKind::validation
                           : stage == Stage::test   ? EvalKind::test
                                                    : EvalKind::predict,
                           false);
  }
  loops_->callbacks.set_set_up(false);
  Teardown teardown;
  teardown.stage = stage;
  emit(teardown);
  loops_->logger.finalize("success");
}

}  // namespace hookline
