#include "hookline/core/trainer.hpp"
#include "hookline/core/console.hpp"

#include "hookline/core/checkpoint.hpp"
#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/defaults.hpp"
#include "hookline/core/loops/restore.hpp"

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

// ---- construction and callbacks -------------------------------------------------------------

Trainer::Trainer(TrainerOptions options, std::vector<std::shared_ptr<Callback>> callbacks,
                 std::vector<std::shared_ptr<CallbackPack>> packs)
    : options_(std::move(options)) {
  options_.validate();
  strategy_ = make_strategy(options_);
  const int threads = options_.num_threads().value_or(
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
  for (auto& callback : callbacks) add_callback(std::move(callback));
  for (auto& pack : packs) add_pack(std::move(pack));
  TrainerDefaults defaults = trainer_defaults(options_, callbacks_);
  for (auto& callback : defaults.callbacks) add_callback(std::move(callback));
  loggers_ = std::move(defaults.loggers);
  trace_from_environment(*this);  // HOOKLINE_TRACE
}

Trainer::~Trainer() {
  for (const auto& pack : packs_) pack->release();  // free for another trainer
  try {
    bus_.flush();
  } catch (const std::exception& e) {
    console().error("an async subscriber failed and nobody flushed for it: {}", e.what());
  }
  try {
    wait_for_checkpoint();
  } catch (const std::exception& e) {
    console().error("the checkpoint write to '{}' failed and nobody waited for it: {}",
                    pending_write_path_, e.what());
  }
  bus_.disconnect_all();
}

void Trainer::add_callback(std::shared_ptr<Callback> callback) {
  if (!callback) throw std::invalid_argument("Trainer::add_callback: callback is null");
  std::lock_guard lock(callbacks_mutex_);
  if (has_callback(callback.get()))
    throw std::invalid_argument("callback '" + callback->name() + "' was added twice");
  for (const auto& existing : callbacks_)
    if (existing->checkpoint_key() == callback->state_key())
      throw std::invalid_argument("callbacks '" + existing->name() + "' and '" + callback->name() +
                                  "' share the state_key '" + callback->state_key() +
                                  "'; override state_key() so checkpoints can tell them apart");
  callback->pack_path_.clear();
  late_setup({callback});  // before it can see an event
  callbacks_.push_back(callback);
  connect_callback(*callback, callback.get());
}

bool Trainer::remove_callback(const Callback& callback) {
  std::lock_guard lock(callbacks_mutex_);
  auto it = std::find_if(callbacks_.begin(), callbacks_.end(),
                         [&](const auto& c) { return c.get() == &callback; });
  if (it == callbacks_.end()) return false;
  if (!callback.pack_path().empty())
    throw std::invalid_argument("callback '" + callback.name() + "' belongs to pack '" +
                                callback.pack_path() +
                                "'; remove the pack (Trainer::remove_pack) instead");
  bus_.disconnect_owner(&callback);
  const std::shared_ptr<Callback> removed = *it;
  callbacks_.erase(it);
  if (set_up_) retired_.push_back(removed);
  early_teardown({removed});
  return true;
}

void Trainer::add_pack(std::shared_ptr<CallbackPack> pack) {
  if (!pack) throw std::invalid_argument("Trainer::add_pack: pack is null");
  {
    std::lock_guard lock(callbacks_mutex_);
    if (pack->in_use())
      throw std::invalid_argument("pack '" + pack->name() +
                                  "' is already in use by a trainer; build another one");
    for (const auto& existing : packs_)
      if (existing->name() == pack->name())
        throw std::invalid_argument("this trainer already has a pack named '" + pack->name() +
                                    "'; pack names must be distinct (they prefix state keys)");
    const auto added = pack->callbacks();
    for (const auto& callback : added)
      if (has_callback(callback.get()))
        throw std::invalid_argument("pack '" + pack->name() + "': callback '" + callback->name() +
                                    "' is already in this trainer");
    pack->claim();
    try {
      late_setup(added);  // before they can see an event
    } catch (...) {
      pack->release();
      throw;
    }
    if (std::string spec = pack->find_trace_spec(); !spec.empty())
      pending_trace_spec_ = std::move(spec);
    packs_.push_back(pack);
    for (const auto& callback : added) {
      callbacks_.push_back(callback);
      connect_callback(*callback, pack.get());
    }
  }
  if (running_) return;
  try {
    apply_pack_tracing();  // opens the sinks: a file or port may be unusable
  } catch (...) {
    remove_pack(*pack);  // all or nothing
    throw;
  }
}

void Trainer::apply_pack_tracing() {
  std::string spec;
  {
    std::lock_guard lock(callbacks_mutex_);
    spec = std::exchange(pending_trace_spec_, std::string());
  }
  if (!spec.empty()) enable_tracing(*this, spec);
}

bool Trainer::remove_pack(const CallbackPack& pack) {
  std::lock_guard lock(callbacks_mutex_);
  auto it =
      std::find_if(packs_.begin(), packs_.end(), [&](const auto& p) { return p.get() == &pack; });
  if (it == packs_.end()) return false;
  bus_.disconnect_owner(&pack);
  const std::vector<std::shared_ptr<Callback>> removed = pack.callbacks();
  std::erase_if(callbacks_, [&](const auto& c) {
    return std::find(removed.begin(), removed.end(), c) != removed.end();
  });
  const std::shared_ptr<CallbackPack> held = *it;
  packs_.erase(it);
  if (set_up_) retired_.push_back(held);
  early_teardown(removed);
  held->release();
  return true;
}

std::shared_ptr<CallbackPack> Trainer::pack(const std::string& name) const {
  std::lock_guard lock(callbacks_mutex_);
  for (const auto& p : packs_)
    if (p->name() == name) return p;
  return nullptr;
}

std::vector<std::shared_ptr<Callback>> Trainer::callbacks() const {
  std::lock_guard lock(callbacks_mutex_);
  return callbacks_;
}

std::vector<std::shared_ptr<CallbackPack>> Trainer::packs() const {
  std::lock_guard lock(callbacks_mutex_);
  return packs_;
}

std::vector<std::shared_ptr<Callback>> Trainer::all_callbacks() const {
  std::lock_guard lock(callbacks_mutex_);
  std::vector<std::shared_ptr<Callback>> out = callbacks_;
  out.insert(out.end(), run_callbacks_.begin(), run_callbacks_.end());
  return out;
}

bool Trainer::has_callback(const Callback* callback) const {
  for (const auto* list : {&callbacks_, &run_callbacks_})
    for (const auto& c : *list)
      if (c.get() == callback) return true;
  return false;
}

void Trainer::late_setup(const std::vector<std::shared_ptr<Callback>>& added) {
  if (!set_up_.load(std::memory_order_acquire) || module_ == nullptr) return;
  for (const auto& callback : added) callback->setup(*this, *module_, stage_);
}

void Trainer::early_teardown(const std::vector<std::shared_ptr<Callback>>& removed) {
  if (!set_up_.load(std::memory_order_acquire) || module_ == nullptr) return;
  for (const auto& callback : removed) callback->teardown(*this, *module_, stage_);
}

void Trainer::connect_callback(Callback& callback, const void* owner) {
  Sink sink = bus_.sink(owner, callback.name(), callback.priority());
  callback.subscribe(sink);
}

Outcome Trainer::emit_hook(const EventInfo& info, const Bus::AnyEvent& event) {
  HookScope scope(*this, info);
  Outcome out = bus_.emit_any(event);
  if (out.action == Action::StopFit) [[unlikely]]
    set_should_stop(true, out.veto ? out.veto->subscriber + ": " + out.veto->reason : "");
  return out;
}

void Trainer::set_should_stop(bool stop, std::string reason) {
  should_stop_ = stop;
  stop_reason_ = stop ? std::move(reason) : std::string();
}

void Trainer::set_accumulate_grad_batches(std::int64_t n) {
  if (n < 1)
    throw std::invalid_argument("accumulate_grad_batches must be >= 1 (got " + std::to_string(n) +
                                ")");
  options_.accumulate_grad_batches(n);
}

Module& Trainer::module() const {
  if (!module_) throw std::logic_error("Trainer::module(): no run in progress");
  return *module_;
}

// ---- runs -----------------------------------------------------------------------------------

void Trainer::fit(Module& module, DataModule* data, const std::string& ckpt_path) {
  run(Stage::fit, module, data, ckpt_path);
}

std::vector<MetricMap> Trainer::validate(Module& module, DataModule* data,
                                         const std::string& ckpt_path) {
  eval_results_.clear();
  run(Stage::validate, module, data, ckpt_path);
  return std::move(eval_results_);
}

std::vector<MetricMap> Trainer::test(Module& module, DataModule* data,
                                     const std::string& ckpt_path) {
  eval_results_.clear();
  run(Stage::test, module, data, ckpt_path);
  return std::move(eval_results_);
}

std::vector<StepOutput> Trainer::predict(Module& module, DataModule* data,
                                         const std::string& ckpt_path) {
  run(Stage::predict, module, data, ckpt_path);
  return std::move(predictions_);
}

void Trainer::attach(Module& module, DataModule* data) {
  module.trainer_ = this;
  module_ = &module;
  data_ = data;
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
  set_up_.store(false, std::memory_order_release);
  {
    std::lock_guard lock(callbacks_mutex_);
    for (const auto& callback : run_callbacks_) bus_.disconnect_owner(callback.get());
    run_callbacks_.clear();
    retired_.clear();
  }
  if (data_) bus_.disconnect_owner(data_);
  if (module_) {
    bus_.disconnect_owner(module_);
    module_->trainer_ = nullptr;
  }
  strategy_->teardown_module();
  module_ = nullptr;
  data_ = nullptr;
  running_ = training_ = validating_ = sanity_checking_ = false;
  current_hook_ = nullptr;
  train_loaders_.clear();
  val_loaders_.clear();
  val_loaders_requested_ = false;
  restore_.reset();
}

void Trainer::run(Stage stage, Module& module, DataModule* data, const std::string& ckpt_path) {
  if (running_)
    throw std::logic_error("Trainer is already running " + std::string(to_string(stage_)) +
                           "; start another run after this one returns");
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
  // DDP: joins (or launches) the run's processes; ranks other than 0 say only warnings.
  strategy_->setup_environment();
  bus_.set_rank(strategy_->global_rank());
  if (!strategy_->is_global_zero() && console().level() < spdlog::level::warn)
    console().set_level(spdlog::level::warn);
  stage_ = stage;
  status_ = Status::running;
  apply_pack_tracing();
  running_ = true;
  should_stop_ = false;
  min_stop_warned_ = false;
  stop_reason_.clear();
  predictions_.clear();
  metrics_.clear();
  if (stage == Stage::fit) {
    current_epoch_ = 0;
    global_step_ = 0;
    batches_that_stepped_ = 0;
  }
  attach(module, data);
  std::optional<SignalWatch> signals;
  if (options_.handle_signals()) signals.emplace();
  signals_ = signals ? &*signals : nullptr;
  try {
    if (options_.seed()) torch::manual_seed(*options_.seed());
    if (options_.deterministic()) at::globalContext().setDeterministicAlgorithms(true, false);
    ckpt_path_ = ckpt_path.empty() ? std::string() : resolve_ckpt_path(ckpt_path);
    run_stage(stage);
    bus_.flush();
    wait_for_checkpoint();
    status_ = Status::finished;
  } catch (...) {
    status_ = Status::interrupted;
    rollback_restore();
    handle_exception(std::current_exception());
    signals_ = nullptr;
    detach();
    if (strategy_->distributed())
      strategy_->run_failed(describe_exception(std::current_exception()));
    throw;
  }
  signals_ = nullptr;
  detach();
}

void Trainer::check_signal() {
  if (strategy_->distributed()) return;  // agreed on at each training batch (agree)
  if (signals_ && signals_->received() != 0) [[unlikely]]
    throw RunInterrupted(signals_->received());
}

Action Trainer::agree(Action action) {
  if (!strategy_->distributed()) return action;
  const int signal = signals_ ? signals_->received() : 0;
  // One all-reduce (max) of: the verdict, should_stop, and signal + 1 (0: none).
  at::Tensor votes = at::tensor(
      {static_cast<int>(action), should_stop_ ? 1 : 0, signal != 0 ? signal + 1 : 0}, at::kInt);
  strategy_->all_reduce(votes, ReduceOp::max);
  const auto* v = votes.data_ptr<int>();
  if (v[2] != 0) throw RunInterrupted(v[2] - 1);
  if (v[1] != 0 && !should_stop_) set_should_stop(true, "another rank asked to stop");
  return static_cast<Action>(v[0]);
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
    finalize_loggers("failed");
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
  for (auto& callback : configure.callbacks) {
    if (!callback) continue;
    std::lock_guard lock(callbacks_mutex_);
    run_callbacks_.push_back(callback);
    connect_callback(*callback, callback.get());
  }
  // Lightning's prepare_data: once per node (local rank 0), the other ranks wait for it.
  if (strategy_->local_rank() == 0) {
    PrepareData prepare;
    emit(prepare);
  }
  strategy_->barrier("prepare_data");
  start_loggers();
  Setup setup;
  setup.stage = stage;
  emit(setup);
  set_up_.store(true, std::memory_order_release);
  ConfigureShardedModel configure_sharded_model;
  emit(configure_sharded_model);
  ConfigureModel configure_model;
  emit(configure_model);
  if (!ckpt_path_.empty()) restore_modules_and_callbacks(ckpt_path_);
  module_->to(strategy_->root_device());
  strategy_->setup_module(*module_);

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
      throw std::invalid_argument(module_->module_name() +
                                  ".configure_optimizers() returned no optimizer; add one with "
                                  "OptimizerConfig::add");
    for (const auto& optimizer : optimizer_config_.optimizers)
      if (!optimizer)
        throw std::invalid_argument("configure_optimizers() returned a null optimizer");
    if (module_->automatic_optimization() && optimizer_config_.optimizers.size() != 1)
      throw std::invalid_argument(
          "automatic optimization takes exactly one optimizer (got " +
          std::to_string(optimizer_config_.optimizers.size()) +
          "); use manual optimization (set_automatic_optimization(false)) for several");
    for (const auto& scheduler : optimizer_config_.schedulers)
      if (scheduler.frequency_ < 1)
        throw std::invalid_argument("SchedulerConfig '" + scheduler.name_ + "': frequency(" +
                                    std::to_string(scheduler.frequency_) + ") must be >= 1");
    FitStart fit_start;
    emit(fit_start);
    log_hyperparams();
    restore_training_state();
    module_->zero_grad();
    run_sanity_check();
    fit_loop();
    FitEnd fit_end;
    emit(fit_end);
  } else {
    log_hyperparams();
    finish_restore();
    module_->zero_grad();
    evaluation_loop(stage == Stage::validate ? EvalKind::validation
                    : stage == Stage::test   ? EvalKind::test
                                             : EvalKind::predict,
                    false);
  }
  set_up_.store(false, std::memory_order_release);
  Teardown teardown;
  teardown.stage = stage;
  emit(teardown);
  finalize_loggers("success");
}

}  // namespace hookline
