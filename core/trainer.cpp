#include "hookline/core/trainer.hpp"

#include "hookline/core/checkpoint.hpp"
#include "hookline/core/data/dataloader.hpp"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>
#include <spdlog/spdlog.h>
#include <torch/optim/optimizer.h>
#include <torch/utils.h>
#include <torch/version.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
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

// bf16 autocast on CPU for the steps, when precision asks for it.
class AutocastScope {
 public:
  explicit AutocastScope(bool on) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    previous_ = at::autocast::is_autocast_enabled(at::kCPU);
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
#else
    previous_ = at::autocast::is_cpu_enabled();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCPU, previous_);
#else
    at::autocast::set_cpu_enabled(previous_);
#endif
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_;
  bool previous_ = false;
};

// The output a batch-end hook sees: the step's outputs with "loss" replaced by `loss`, detached.
StepOutput detached_outputs(const StepOutput& step_output, const at::Tensor& loss) {
  StepOutput out;
  for (const auto& [key, value] : step_output) {
    if (key == "loss")
      out.set(key, loss.defined() ? loss.detach() : value);
    else
      out.set(key, value.defined() ? value.detach() : value);
  }
  return out;
}

}  // namespace

// ---- construction and callbacks -------------------------------------------------------------

Trainer::Trainer(TrainerOptions options, std::vector<std::shared_ptr<Callback>> callbacks)
    : options_(std::move(options)) {
  options_.validate();
  const int threads = options_.num_threads().value_or(
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  if (torch::get_num_threads() != threads) torch::set_num_threads(threads);
  for (auto& callback : callbacks) add_callback(std::move(callback));
}

Trainer::~Trainer() {
  try {
    bus_.flush();
  } catch (const std::exception& e) {
    spdlog::error("hookline: an async subscriber failed and nobody flushed for it: {}", e.what());
  }
  bus_.disconnect_all();
}

void Trainer::add_callback(std::shared_ptr<Callback> callback) {
  if (!callback) throw std::invalid_argument("Trainer::add_callback: callback is null");
  for (const auto& existing : callbacks_) {
    if (existing == callback)
      throw std::invalid_argument("callback '" + callback->name() + "' was added twice");
    if (existing->state_key() == callback->state_key())
      throw std::invalid_argument("callbacks '" + existing->name() + "' and '" + callback->name() +
                                  "' share the state_key '" + callback->state_key() +
                                  "'; override state_key() so checkpoints can tell them apart");
  }
  callbacks_.push_back(callback);
  connect_callback(*callback);
}

bool Trainer::remove_callback(const Callback& callback) {
  auto it = std::find_if(callbacks_.begin(), callbacks_.end(),
                         [&](const auto& c) { return c.get() == &callback; });
  if (it == callbacks_.end()) return false;
  bus_.disconnect_owner(&callback);
  callbacks_.erase(it);
  return true;
}

void Trainer::connect_callback(Callback& callback) {
  Sink sink = bus_.sink(&callback, callback.name(), callback.priority());
  callback.subscribe(sink);
}

void Trainer::set_should_stop(bool stop, std::string reason) {
  should_stop_ = stop;
  stop_reason_ = stop ? std::move(reason) : std::string();
}

Module& Trainer::module() const {
  if (!module_) throw std::logic_error("Trainer::module(): no run in progress");
  return *module_;
}

// ---- runs -----------------------------------------------------------------------------------

void Trainer::fit(Module& module, DataModule* data) {
  run(Stage::fit, module, data);
}

MetricMap Trainer::validate(Module& module, DataModule* data) {
  run(Stage::validate, module, data);
  return callback_metrics();
}

MetricMap Trainer::test(Module& module, DataModule* data) {
  run(Stage::test, module, data);
  return callback_metrics();
}

std::vector<StepOutput> Trainer::predict(Module& module, DataModule* data) {
  run(Stage::predict, module, data);
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
  for (const auto& callback : run_callbacks_) bus_.disconnect_owner(callback.get());
  run_callbacks_.clear();
  if (data_) bus_.disconnect_owner(data_);
  if (module_) {
    bus_.disconnect_owner(module_);
    module_->trainer_ = nullptr;
  }
  module_ = nullptr;
  data_ = nullptr;
  running_ = training_ = validating_ = sanity_checking_ = false;
  current_hook_ = nullptr;
  train_loaders_.clear();
  val_loaders_.clear();
  val_loaders_requested_ = false;
}

void Trainer::run(Stage stage, Module& module, DataModule* data) {
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
  stage_ = stage;
  status_ = Status::running;
  running_ = true;
  should_stop_ = false;
  stop_reason_.clear();
  predictions_.clear();
  metrics_.clear();
  if (stage == Stage::fit) {
    current_epoch_ = 0;
    global_step_ = 0;
    batches_that_stepped_ = 0;
  }
  attach(module, data);
  try {
    if (options_.seed()) torch::manual_seed(*options_.seed());
    if (options_.deterministic()) at::globalContext().setDeterministicAlgorithms(true, false);
    run_stage(stage);
    bus_.flush();
    status_ = Status::finished;
  } catch (...) {
    status_ = Status::interrupted;
    handle_exception(std::current_exception());
    detach();
    throw;
  }
  detach();
}

void Trainer::handle_exception(std::exception_ptr error) {
  ExceptionRaised event;
  event.exception = error;
  event.what = describe_exception(error);
  try {
    emit(event);
  } catch (const std::exception& e) {
    spdlog::error("hookline: an on_exception subscriber threw '{}' while handling '{}'", e.what(),
                  event.what);
  }
  try {
    bus_.flush();
  } catch (const std::exception& e) {
    spdlog::error("hookline: an async subscriber failed during '{}': {}", event.what, e.what());
  }
}

void Trainer::run_stage(Stage stage) {
  ConfigureCallbacks configure;
  emit(configure);
  for (auto& callback : configure.callbacks) {
    if (!callback) continue;
    run_callbacks_.push_back(callback);
    connect_callback(*callback);
  }
  PrepareData prepare;
  emit(prepare);
  Setup setup;
  setup.stage = stage;
  emit(setup);
  ConfigureShardedModel configure_sharded_model;
  emit(configure_sharded_model);
  ConfigureModel configure_model;
  emit(configure_model);
  module_->to(options_.device());

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
    module_->zero_grad();
    run_sanity_check();
    fit_loop();
    FitEnd fit_end;
    emit(fit_end);
  } else {
    module_->zero_grad();
    evaluation_loop(stage == Stage::validate ? EvalKind::validation
                    : stage == Stage::test   ? EvalKind::test
                                             : EvalKind::predict,
                    false);
  }
  Teardown teardown;
  teardown.stage = stage;
  emit(teardown);
}

// ---- data -----------------------------------------------------------------------------------

std::vector<std::int64_t> Trainer::limit_batches(const DataLoaders& loaders,
                                                 const BatchAmount& limit) const {
  std::vector<std::int64_t> out;
  for (const auto& loader : loaders) {
    std::int64_t n = limit.of(loader->size());
    if (options_.fast_dev_run() > 0) n = std::min(n, options_.fast_dev_run());
    out.push_back(n);
  }
  return out;
}

void Trainer::ensure_train_loader() {
  if (!train_loaders_.empty()) return;
  TrainDataloader request;
  emit(request);
  for (const auto& loader : request.loaders)
    if (!loader) throw std::invalid_argument("train_dataloader() returned a null loader");
  if (request.loaders.empty())
    throw std::invalid_argument(
        "fit needs a train dataloader: override Module::train_dataloader() or pass a DataModule "
        "whose train_dataloader() returns one");
  if (request.loaders.size() != 1)
    throw std::invalid_argument("fit takes one train dataloader (got " +
                                std::to_string(request.loaders.size()) +
                                "); combine the data into one Dataset");
  train_loaders_ = std::move(request.loaders);
  const bool overfit = options_.overfit_batches().positive();
  if (overfit) train_loaders_[0]->set_shuffle(false);
  num_training_batches_ = limit_batches(
      train_loaders_, overfit ? options_.overfit_batches() : options_.limit_train_batches())[0];
  const BatchAmount& interval = options_.val_check_interval();
  if (interval.is_count()) {
    if (interval.count() > num_training_batches_ && num_training_batches_ > 0)
      throw std::invalid_argument("TrainerOptions::val_check_interval(" +
                                  std::to_string(interval.count()) +
                                  ") is larger than the number of training batches per epoch (" +
                                  std::to_string(num_training_batches_) +
                                  "); use a smaller count, or a fraction of the epoch");
    val_check_batch_ = interval.count();
  } else {
    val_check_batch_ = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(static_cast<double>(num_training_batches_) *
                                     interval.fraction()));
  }
  if (options_.fast_dev_run() > 0) val_check_batch_ = num_training_batches_;
}

void Trainer::ensure_val_loaders() {
  if (val_loaders_requested_) return;
  ValDataloader request;
  emit(request);
  for (const auto& loader : request.loaders)
    if (!loader) throw std::invalid_argument("val_dataloader() returned a null loader");
  val_loaders_ = std::move(request.loaders);
  const bool overfit = options_.overfit_batches().positive();
  num_val_batches_ = limit_batches(
      val_loaders_, overfit ? options_.overfit_batches() : options_.limit_val_batches());
  val_loaders_requested_ = true;
}

DataLoaders Trainer::request_loaders(EvalKind kind) {
  DataLoaders loaders;
  std::string_view hook;
  if (kind == EvalKind::validation) {
    ensure_val_loaders();
    loaders = val_loaders_;
    hook = "val_dataloader";
  } else if (kind == EvalKind::test) {
    TestDataloader request;
    emit(request);
    loaders = std::move(request.loaders);
    hook = "test_dataloader";
  } else {
    PredictDataloader request;
    emit(request);
    loaders = std::move(request.loaders);
    hook = "predict_dataloader";
  }
  for (const auto& loader : loaders)
    if (!loader) throw std::invalid_argument(std::string(hook) + "() returned a null loader");
  if (loaders.empty() && stage_ != Stage::fit)
    throw std::invalid_argument("Trainer::" + std::string(to_string(stage_)) + " needs " +
                                std::string(hook) + "(): override it in the Module or pass a " +
                                "DataModule that returns at least one loader");
  return loaders;
}

Batch Trainer::transfer(Batch batch, std::int64_t dataloader_idx) {
  BeforeBatchTransfer before;
  before.batch = std::move(batch);
  before.dataloader_idx = dataloader_idx;
  emit(before);
  TransferBatchToDevice move;
  move.batch = std::move(before.batch);
  move.device = options_.device();
  move.dataloader_idx = dataloader_idx;
  emit(move);
  AfterBatchTransfer after;
  after.batch = std::move(move.batch);
  after.dataloader_idx = dataloader_idx;
  emit(after);
  return std::move(after.batch);
}

// ---- fit ------------------------------------------------------------------------------------

bool Trainer::can_stop_early() const {
  const std::int64_t min_epochs = options_.min_epochs().value_or(options_.min_steps() > 0 ? 1 : 0);
  return current_epoch_ >= min_epochs &&
         (options_.min_steps() < 0 || global_step_ >= options_.min_steps());
}

bool Trainer::time_is_up() const {
  return options_.max_time() &&
         std::chrono::steady_clock::now() - fit_started_ >= *options_.max_time();
}

bool Trainer::fit_done() const {
  if (options_.max_steps() >= 0 && global_step_ >= options_.max_steps()) return true;
  const std::int64_t max_epochs = options_.fast_dev_run() > 0 ? 1 : options_.effective_max_epochs();
  if (max_epochs >= 0 && current_epoch_ >= max_epochs) return true;
  return should_stop_ && can_stop_early();
}

bool Trainer::should_check_val_epoch() const {
  return (current_epoch_ + 1) % options_.check_val_every_n_epoch() == 0;
}

void Trainer::run_sanity_check() {
  const bool val_limited_away = !options_.limit_val_batches().positive();
  if (options_.num_sanity_val_steps() == 0 || options_.fast_dev_run() > 0 || val_limited_away)
    return;
  sanity_checking_ = true;
  // The sanity check must not change the random stream training will see.
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  const at::Tensor rng_state = generator.get_state();
  SanityCheckStart start;
  emit(start);
  evaluation_loop(EvalKind::validation, true);
  SanityCheckEnd end;
  emit(end);
  generator.set_state(rng_state);
  sanity_checking_ = false;
  metrics_.reset(Phase::validation);
}

void Trainer::fit_loop() {
  ensure_train_loader();
  if (fit_done() || num_training_batches_ == 0) return;
  if (!val_loaders_requested_ && should_check_val_epoch() &&
      options_.limit_val_batches().positive())
    ensure_val_loaders();
  fit_started_ = std::chrono::steady_clock::now();
  training_ = true;
  TrainStart start;
  emit(start);
  while (!fit_done()) train_epoch();
  TrainEnd end;
  emit(end);
  training_ = false;
}

void Trainer::train_epoch() {
  const std::int64_t reload = options_.reload_dataloaders_every_n_epochs();
  if (reload > 0 && current_epoch_ > 0 && current_epoch_ % reload == 0) {
    train_loaders_.clear();
    val_loaders_.clear();
    val_loaders_requested_ = false;
    ensure_train_loader();
  }
  data::DataLoader& loader = *train_loaders_[0];
  loader.set_epoch(current_epoch_);
  TrainEpochStart start;
  emit(start);

  bool reached_last_batch = false;
  std::int64_t batch_idx = 0;
  // A stop requested before the first batch (e.g. in on_train_epoch_start) runs no batch.
  if (num_training_batches_ > 0 && !(should_stop_ && can_stop_early())) {
    for (const Batch& raw : loader) {
      if (batch_idx >= num_training_batches_) break;
      const bool is_last = batch_idx == num_training_batches_ - 1;
      Batch batch = raw;
      if (!run_training_batch(batch, batch_idx, is_last)) break;
      reached_last_batch = is_last;
      ++batch_idx;
      if (options_.max_steps() >= 0 && global_step_ >= options_.max_steps()) break;
      if (should_stop_ && can_stop_early()) break;
      if (is_last) break;
    }
  }

  metrics_.end_epoch(Phase::train);
  TrainEpochEnd end;
  emit(end);
  if (reached_last_batch) update_lr_schedulers(Interval::epoch, batch_idx, true);
  ++current_epoch_;
  bus_.flush();
}

// Runs one training batch; returns false when the rest of the epoch is skipped.
bool Trainer::run_training_batch(Batch& batch, std::int64_t batch_idx, bool is_last) {
  batch = transfer(std::move(batch), 0);
  current_batch_size_ = batch.batch_size();

  TrainBatchStart start;
  start.batch = std::move(batch);
  start.batch_idx = batch_idx;
  const Outcome verdict = emit(start);
  batch = std::move(start.batch);
  if (verdict.action == Action::SkipRestOfEpoch) return false;

  const std::int64_t steps_before = global_step_;
  if (verdict.action != Action::SkipBatch) {
    StepOutput outputs;
    if (module_->automatic_optimization())
      automatic_step(batch, batch_idx, is_last, outputs);
    else
      manual_step(batch, batch_idx, outputs);

    TrainBatchEnd end;
    end.outputs = std::move(outputs);
    end.batch = std::move(batch);
    end.batch_idx = batch_idx;
    emit(end);

    const std::int64_t every = options_.log_every_n_steps();
    if (every > 0 && ((batches_that_stepped_ + 1) % every == 0 || should_stop_))
      metrics_.flush_steps();
  }
  const bool stepped = global_step_ != steps_before;
  if (time_is_up()) set_should_stop(true, "max_time reached");

  const bool stop_requested = should_stop_ && can_stop_early();
  // Validation is on unless limited away or known to have no batches (loaders not requested yet
  // count as present: they are requested inside the first validation run, as in Lightning).
  const bool val_enabled =
      options_.limit_val_batches().positive() &&
      (!val_loaders_requested_ ||
       std::accumulate(num_val_batches_.begin(), num_val_batches_.end(), std::int64_t{0}) > 0);
  if (val_enabled && should_check_val_epoch() &&
      ((batch_idx + 1) % val_check_batch_ == 0 || stop_requested)) {
    if (stepped) {
      ValidationModelZeroGrad zero;
      emit(zero);
    }
    evaluation_loop(EvalKind::validation, false);
  }
  update_lr_schedulers(Interval::step, batch_idx, true);
  if (stepped) ++batches_that_stepped_;
  return true;
}

void Trainer::automatic_step(Batch& batch, std::int64_t batch_idx, bool is_last,
                             StepOutput& outputs) {
  const std::int64_t n = options_.accumulate_grad_batches();
  const bool should_step = (batch_idx + 1) % n == 0 || is_last;
  torch::optim::Optimizer& optimizer = *optimizer_config_.optimizers[0];
  StepOutput step_output;
  at::Tensor loss;
  bool closure_ran = false;

  auto closure = [&] {
    closure_ran = true;
    {
      AutocastScope autocast(options_.precision() == Precision::bf16_mixed);
      TrainingStep step;
      step.batch = batch;
      step.batch_idx = batch_idx;
      emit(step);
      step_output = std::move(step.output);
    }
    if (step_output.contains("loss")) {
      loss = step_output["loss"];
      if (!loss.defined() || loss.numel() != 1)
        throw std::invalid_argument(
            "training_step returned a 'loss' that is not a scalar tensor; return the loss to "
            "minimise as a one-element tensor");
      if (n > 1) loss = loss / static_cast<double>(n);
    }
    if (batch_idx % n == 0) {
      BeforeZeroGrad before_zero;
      before_zero.optimizer = &optimizer;
      emit(before_zero);
      OptimizerZeroGrad zero;
      zero.epoch = current_epoch_;
      zero.batch_idx = batch_idx;
      zero.optimizer = &optimizer;
      emit(zero);
    }
    if (loss.defined()) {
      BeforeBackward before;
      before.loss = loss;
      emit(before);
      Backward backward;
      backward.loss = loss;
      emit(backward);
      AfterBackward after;
      emit(after);
    }
    if (should_step) {
      BeforeOptimizerStep before_step;
      before_step.optimizer = &optimizer;
      emit(before_step);
      ConfigureGradientClipping clip;
      clip.optimizer = &optimizer;
      clip.gradient_clip_val = options_.gradient_clip_val();
      clip.gradient_clip_algorithm = options_.gradient_clip_algorithm();
      emit(clip);
    }
  };

  if (should_step) {
    OptimizerStep step;
    step.epoch = current_epoch_;
    step.batch_idx = batch_idx;
    step.optimizer = &optimizer;
    step.closure = closure;
    emit(step);
    if (!closure_ran)
      throw std::logic_error(module_->module_name() +
                             ".optimizer_step() did not run the closure it was given; call "
                             "optimizer.step(closure) or closure() before stepping");
    after_optimizer_step();
    update_lr_schedulers(Interval::step, batch_idx, false);
    if (is_last) update_lr_schedulers(Interval::epoch, batch_idx, false);
  } else {
    closure();
  }
  outputs = detached_outputs(step_output, loss);
}

void Trainer::manual_step(Batch& batch, std::int64_t batch_idx, StepOutput& outputs) {
  AutocastScope autocast(options_.precision() == Precision::bf16_mixed);
  TrainingStep step;
  step.batch = batch;
  step.batch_idx = batch_idx;
  emit(step);
  at::Tensor loss = step.output.contains("loss") ? step.output["loss"] : at::Tensor();
  outputs = detached_outputs(step.output, loss);
}

void Trainer::after_optimizer_step() {
  ++global_step_;
}

void Trainer::update_lr_schedulers(Interval interval, std::int64_t batch_idx, bool plateau_pass) {
  if (!module_->automatic_optimization()) return;
  auto& schedulers = optimizer_config_.schedulers;
  for (std::size_t i = 0; i < schedulers.size(); ++i) {
    SchedulerConfig& config = schedulers[i];
    const bool plateau = !config.monitor_.empty();
    if (config.interval_ != interval || plateau != plateau_pass) continue;
    const std::int64_t count = interval == Interval::step ? batch_idx + 1 : current_epoch_ + 1;
    if (count % config.frequency_ != 0) continue;
    LrSchedulerStep step;
    step.scheduler = &config;
    step.scheduler_idx = i;
    if (plateau) {
      const auto& metrics = metrics_.callback_metrics();
      auto it = metrics.find(config.monitor_);
      if (it == metrics.end()) {
        std::string available;
        for (const auto& [key, value] : metrics) available += (available.empty() ? "" : ", ") + key;
        throw std::invalid_argument(
            "scheduler '" + config.name_ + "' monitors '" + config.monitor_ +
            "', which was not logged (logged: " + (available.empty() ? "nothing" : available) +
            "); log it with Module::log or change monitor()");
      }
      step.metric = it->second;
    }
    emit(step);
  }
}

// ---- evaluation -----------------------------------------------------------------------------

namespace {
// Emits the hooks of one evaluation kind, so one loop serves validation, test and predict.
// ModelTrain is void for predict: Lightning 2.2 has no on_predict_model_train hook.
template <class Start, class EpochStart, class BatchStart, class Step, class BatchEnd,
          class EpochEnd, class End, class ModelEval, class ModelTrain>
struct EvalHooks {
  using start = Start;
  using epoch_start = EpochStart;
  using batch_start = BatchStart;
  using step = Step;
  using batch_end = BatchEnd;
  using epoch_end = EpochEnd;
  using end = End;
  using model_eval = ModelEval;
  using model_train = ModelTrain;
};
using ValidationHooks = EvalHooks<ValidationStart, ValidationEpochStart, ValidationBatchStart,
                                  ValidationStep, ValidationBatchEnd, ValidationEpochEnd,
                                  ValidationEnd, ValidationModelEval, ValidationModelTrain>;
using TestHooks = EvalHooks<TestStart, TestEpochStart, TestBatchStart, TestStep, TestBatchEnd,
                            TestEpochEnd, TestEnd, TestModelEval, TestModelTrain>;
using PredictHooks =
    EvalHooks<PredictStart, PredictEpochStart, PredictBatchStart, PredictStep, PredictBatchEnd,
              PredictEpochEnd, PredictEnd, PredictModelEval, void>;
}  // namespace

void Trainer::evaluation_loop(EvalKind kind, bool sanity) {
  const DataLoaders loaders = request_loaders(kind);
  std::vector<std::int64_t> limits;
  if (sanity) {
    for (std::size_t i = 0; i < loaders.size(); ++i) {
      const std::int64_t available = num_val_batches_[i];
      const std::int64_t steps = options_.num_sanity_val_steps();
      limits.push_back(steps < 0 ? available : std::min(steps, available));
    }
    num_sanity_batches_ = limits;
  } else if (kind == EvalKind::validation) {
    limits = num_val_batches_;
  } else {
    limits = limit_batches(loaders, kind == EvalKind::test ? options_.limit_test_batches()
                                                           : options_.limit_predict_batches());
  }
  if (std::accumulate(limits.begin(), limits.end(), std::int64_t{0}) == 0) return;

  const bool was_training = training_;
  const bool module_was_training = module_->is_training();
  training_ = false;
  validating_ = kind == EvalKind::validation && !sanity;

  auto run = [&](auto hooks) {
    using H = decltype(hooks);
    typename H::model_eval model_eval;
    emit(model_eval);
    std::optional<c10::InferenceMode> inference;
    std::optional<at::NoGradGuard> no_grad;
    if (stage_ != Stage::fit && options_.inference_mode())
      inference.emplace();
    else
      no_grad.emplace();

    typename H::start start;
    emit(start);
    typename H::epoch_start epoch_start;
    emit(epoch_start);
    const bool several = loaders.size() > 1;
    for (std::size_t dl = 0; dl < loaders.size(); ++dl) {
      std::int64_t batch_idx = 0;
      if (limits[dl] == 0) continue;
      for (const Batch& raw : *loaders[dl]) {
        const auto dataloader_idx = static_cast<std::int64_t>(dl);
        Batch batch = transfer(raw, dataloader_idx);
        current_batch_size_ = batch.batch_size();
        typename H::batch_start batch_start;
        batch_start.batch = std::move(batch);
        batch_start.batch_idx = batch_idx;
        batch_start.dataloader_idx = dataloader_idx;
        batch_start.several_loaders = several;
        const Outcome verdict = emit(batch_start);
        batch = std::move(batch_start.batch);
        if (verdict.action == Action::SkipBatch) {
          if (++batch_idx >= limits[dl]) break;
          continue;
        }
        typename H::step step;
        step.batch = batch;
        step.batch_idx = batch_idx;
        step.dataloader_idx = dataloader_idx;
        step.several_loaders = several;
        {
          AutocastScope autocast(options_.precision() == Precision::bf16_mixed);
          emit(step);
        }
        if (kind == EvalKind::predict) predictions_.push_back(step.output);
        typename H::batch_end batch_end;
        batch_end.outputs = std::move(step.output);
        batch_end.batch = std::move(batch);
        batch_end.batch_idx = batch_idx;
        batch_end.dataloader_idx = dataloader_idx;
        batch_end.several_loaders = several;
        emit(batch_end);
        if (++batch_idx >= limits[dl]) break;  // do not gather a batch past the limit
      }
    }
    typename H::epoch_end epoch_end;
    emit(epoch_end);
    if (kind != EvalKind::predict)
      metrics_.end_epoch(kind == EvalKind::test ? Phase::test : Phase::validation);
    typename H::end end;
    emit(end);
    no_grad.reset();
    inference.reset();
    // Back to the mode the module had before evaluation; an overriding *_model_train hook may
    // then change it.
    module_->train(module_was_training);
    if constexpr (!std::is_void_v<typename H::model_train>) {
      typename H::model_train model_train;
      emit(model_train);
    }
  };

  if (kind == EvalKind::validation)
    run(ValidationHooks{});
  else if (kind == EvalKind::test)
    run(TestHooks{});
  else
    run(PredictHooks{});
  training_ = was_training;
  validating_ = false;
}

// ---- logging --------------------------------------------------------------------------------

void Trainer::log_metric(const std::string& name, double value, const LogOptions& options) {
  if (current_hook_ == nullptr)
    throw std::logic_error("log('" + name +
                           "') was called outside any hook; call it from a step or a hook");
  Phase phase = Phase::train;
  if (sanity_checking_ || validating_)
    phase = Phase::validation;
  else if (stage_ == Stage::validate)
    phase = Phase::validation;
  else if (stage_ == Stage::test)
    phase = Phase::test;
  metrics_.log(name, value, options, *current_hook_, phase, current_batch_size_);
}

}  // namespace hookline
