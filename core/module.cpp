#include "hookline/core/module.hpp"

#include "hookline/core/overrides.hpp"
#include "hookline/core/trainer.hpp"

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>

#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

namespace hookline {

Module::Module(std::string name) : torch::nn::Module(name), module_name_(std::move(name)) {}
Module::~Module() = default;

namespace {
[[noreturn]] void not_overridden(const std::string& module, const char* hook, const char* why) {
  throw std::logic_error(module + " does not override " + hook + "(), which " + why);
}
}  // namespace

StepOutput Module::validation_step(const Batch&, std::int64_t, std::int64_t) {
  not_overridden(module_name_, "validation_step",
                 "validation needs; override it, or give no val dataloader (or "
                 "limit_val_batches(0))");
}

StepOutput Module::test_step(const Batch&, std::int64_t, std::int64_t) {
  not_overridden(module_name_, "test_step", "Trainer::test needs");
}

StepOutput Module::predict_step(const Batch&, std::int64_t, std::int64_t) {
  not_overridden(module_name_, "predict_step", "Trainer::predict needs");
}

OptimizerConfig Module::configure_optimizers() {
  not_overridden(module_name_, "configure_optimizers",
                 "Trainer::fit needs to return at least one optimizer");
}

Batch Module::on_before_batch_transfer(Batch batch, std::int64_t) {
  return batch;
}
Batch Module::transfer_batch_to_device(Batch batch, c10::Device device, std::int64_t) {
  return std::move(batch).to(device);
}
Batch Module::on_after_batch_transfer(Batch batch, std::int64_t) {
  return batch;
}

void Module::on_validation_model_zero_grad() {
  zero_grad();
}
void Module::on_validation_model_eval() {
  eval();
}
void Module::on_validation_model_train() {}
void Module::on_test_model_eval() {
  eval();
}
void Module::on_test_model_train() {}
void Module::on_predict_model_eval() {
  eval();
}

void Module::optimizer_zero_grad(std::int64_t, std::int64_t, torch::optim::Optimizer& optimizer) {
  optimizer.zero_grad();
}

void Module::backward(const at::Tensor& loss) {
  loss.backward();
}

void Module::configure_gradient_clipping(torch::optim::Optimizer& optimizer,
                                         std::optional<double> gradient_clip_val,
                                         std::optional<ClipAlgorithm> gradient_clip_algorithm) {
  clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm);
}

void Module::clip_gradients(torch::optim::Optimizer& optimizer,
                            std::optional<double> gradient_clip_val,
                            std::optional<ClipAlgorithm> gradient_clip_algorithm) {
  if (!gradient_clip_val || *gradient_clip_val <= 0) return;
  std::vector<at::Tensor> params;
  for (const auto& group : optimizer.param_groups())
    for (const auto& p : group.params())
      if (p.grad().defined()) params.push_back(p);
  if (gradient_clip_algorithm.value_or(ClipAlgorithm::norm) == ClipAlgorithm::norm)
    torch::nn::utils::clip_grad_norm_(params, *gradient_clip_val);
  else
    torch::nn::utils::clip_grad_value_(params, *gradient_clip_val);
}

void Module::optimizer_step(std::int64_t, std::int64_t, torch::optim::Optimizer& optimizer,
                            const std::function<void()>& closure) {
  optimizer.step([&closure]() -> at::Tensor {
    closure();
    return {};
  });
}

void Module::lr_scheduler_step(SchedulerConfig& scheduler, std::optional<double> metric) {
  if (!scheduler.step)
    throw std::invalid_argument("SchedulerConfig '" + scheduler.name() +
                                "' has no step function; build it with SchedulerConfig::from");
  scheduler.step(metric);
}

namespace {

// The one element of `value` as a double. A CPU tensor of a common dtype is read in place: no
// dispatcher round trip (detach + to + item cost about 2 us, several times a whole log() call).
double scalar_value(const at::Tensor& value) {
  if (value.device().is_cpu() && value.layout() == c10::kStrided) {
    switch (value.scalar_type()) {
      case at::kFloat:
        return *value.data_ptr<float>();
      case at::kDouble:
        return *value.data_ptr<double>();
      case at::kHalf:
        return static_cast<float>(*value.data_ptr<c10::Half>());
      case at::kBFloat16:
        return static_cast<float>(*value.data_ptr<c10::BFloat16>());
      case at::kLong:
        return static_cast<double>(*value.data_ptr<std::int64_t>());
      case at::kInt:
        return *value.data_ptr<std::int32_t>();
      default:
        break;
    }
  }
  return value.detach().to(at::kDouble).item<double>();
}

}  // namespace

void Module::log(const std::string& name, double value, const LogOptions& options) {
  trainer().log_metric(name, value, options);
}

void Module::log(const std::string& name, const at::Tensor& value, const LogOptions& options) {
  if (!value.defined() || value.numel() != 1)
    throw std::invalid_argument("log('" + name +
                                "'): the value must be a tensor with one element (got " +
                                (value.defined() ? std::to_string(value.numel()) + " elements"
                                                 : std::string("an undefined tensor")) +
                                "); reduce it first, e.g. with .mean()");
  log(name, scalar_value(value), options);
}

void Module::manual_backward(const at::Tensor& loss) {
  Trainer& t = trainer();
  BeforeBackward before;
  before.loss = loss;
  t.emit(before);
  Backward backward_event;
  backward_event.loss = loss;
  t.strategy().prepare_for_backward(true);
  t.hooks_.emit_or_default(backward_event);
  t.strategy().finish_backward();
  AfterBackward after;
  t.emit(after);
}

std::vector<ManualOptimizer> Module::optimizers() {
  Trainer& t = trainer();
  std::vector<ManualOptimizer> out;
  auto& optimizers = t.optimizer_config().optimizers;
  for (std::size_t i = 0; i < optimizers.size(); ++i) out.emplace_back(*optimizers[i], i, t);
  return out;
}

std::vector<SchedulerConfig>& Module::lr_schedulers() {
  return trainer().optimizer_config().schedulers;
}

Trainer& Module::trainer() const {
  if (!trainer_)
    throw std::logic_error(module_name_ +
                           " is not attached to a trainer: trainer(), log() and optimizers() "
                           "work only inside fit/validate/test/predict");
  return *trainer_;
}

c10::Device Module::device() const {
  return trainer_ ? trainer_->strategy().root_device() : c10::Device(c10::kCPU);
}

void ManualOptimizer::zero_grad() {
  optimizer_->zero_grad();
}

void ManualOptimizer::step(const std::function<void()>& closure) {
  if (closure) closure();
  BeforeOptimizerStep before;
  before.optimizer = optimizer_;
  before.optimizer_idx = index_;
  trainer_->emit(before);
  optimizer_->step();
  trainer_->after_optimizer_step();
}

// ---- subscriptions --------------------------------------------------------------------------

namespace {

// A module that overrides no hook: what a hook left at its default looks like.
class PlainModule final : public Module {
 public:
  PlainModule() : Module("plain") {}
  StepOutput training_step(const Batch&, std::int64_t) override { return {}; }
};

}  // namespace

void Module::handle(TransferBatchToDevice& e) {
  e.batch = transfer_batch_to_device(std::move(e.batch), e.device, e.dataloader_idx);
}
void Module::handle(const OptimizerZeroGrad& e) {
  optimizer_zero_grad(e.epoch, e.batch_idx, *e.optimizer);
}
void Module::handle(const Backward& e) {
  backward(e.loss);
}
void Module::handle(const ConfigureGradientClipping& e) {
  configure_gradient_clipping(*e.optimizer, e.gradient_clip_val, e.gradient_clip_algorithm);
}
void Module::handle(const OptimizerStep& e) {
  optimizer_step(e.epoch, e.batch_idx, *e.optimizer, e.closure);
}
void Module::handle(const LrSchedulerStep& e) {
  lr_scheduler_step(*e.scheduler, e.metric);
}

bool detail::overrides_load_state_dict(const Module& module) {
  return detail::overrides<PlainModule>(module, &Module::load_state_dict);
}

// ---- state_dict -----------------------------------------------------------------------------

TensorDict Module::state_dict() {
  TensorDict out;
  for (const auto& item : named_parameters(true)) out.insert(item.key(), item.value());
  for (const auto& item : named_buffers(true)) out.insert(item.key(), item.value());
  return out;
}

std::string Module::state_dict_mismatch(const TensorDict& state) const {
  std::vector<std::string> missing, unexpected;
  std::set<std::string> names;
  std::vector<std::pair<std::string, at::Tensor>> live;
  for (const auto& item : named_parameters(true)) live.emplace_back(item.key(), item.value());
  for (const auto& item : named_buffers(true)) live.emplace_back(item.key(), item.value());
  for (const auto& [name, tensor] : live) {
    names.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
      continue;
    }
    const at::Tensor& saved = it->value();
    if (saved.sizes() != tensor.sizes())
      return "'" + name + "' has shape " + c10::str(saved.sizes()) + " in the checkpoint but " +
             c10::str(tensor.sizes()) + " in " + module_name_ +
             "; the checkpoint is of another model configuration";
    if (saved.scalar_type() != tensor.scalar_type())
      return "'" + name + "' is " + std::string(c10::toString(saved.scalar_type())) +
             " in the checkpoint but " + std::string(c10::toString(tensor.scalar_type())) + " in " +
             module_name_;
  }
  for (const auto& entry : state)
    if (!names.count(entry.key())) unexpected.push_back(entry.key());
  if (missing.empty() && unexpected.empty()) return "";
  auto join = [](const std::vector<std::string>& list) {
    std::string out;
    for (std::size_t i = 0; i < list.size() && i < 8; ++i) out += (i ? ", " : "") + list[i];
    if (list.size() > 8) out += ", ... (" + std::to_string(list.size()) + " in all)";
    return out;
  };
  std::string problem = "its parameter names do not match " + module_name_ + ":";
  if (!missing.empty()) problem += " missing from the checkpoint: " + join(missing) + ";";
  if (!unexpected.empty()) problem += " not in the module: " + join(unexpected) + ";";
  return problem + " the checkpoint is of another model";
}

void Module::load_state_dict(const TensorDict& state) {
  const std::string problem = state_dict_mismatch(state);
  if (!problem.empty()) throw std::invalid_argument(problem);
  at::NoGradGuard no_grad;
  for (const auto& item : named_parameters(true)) item.value().copy_(state.at(item.key()));
  for (const auto& item : named_buffers(true)) item.value().copy_(state.at(item.key()));
}

bool Module::uses_configure_sharded_model() const {
  return detail::can_see_overrides &&
         detail::overrides<PlainModule>(*this, &Module::configure_sharded_model);
}

void Module::subscribe(Sink& sink, bool dataloaders_from_data_module,
                       bool before_transfer_elsewhere, bool transfer_elsewhere,
                       bool after_transfer_elsewhere) {
  const auto opts = [&] { return SubscribeOptions().named(module_name_).priority(band::module); };
  // A per-batch hook left at its default does nothing: only traced emissions call it, so a trace
  // still shows every call Lightning makes and an untraced step does not pay for it.
  const auto batch_opts = [&](auto hook) {
    return opts().only_when_traced(!detail::overrides<PlainModule>(*this, hook));
  };
  // A hook whose default has work, left at its default: the trainer runs it directly when nothing
  // else listens (SubscribeOptions::runs_default).
  const auto default_opts = [&](auto hook) {
    return opts().runs_default(!detail::overrides<PlainModule>(*this, hook));
  };
  // Set-up and data.
  sink.on<ConfigureCallbacks>(
      [this](ConfigureCallbacks& e) { e.callbacks = configure_callbacks(); }, opts());
  sink.on<PrepareData>([this] { prepare_data(); }, opts());
  sink.on<Setup>([this](const Setup& e) { setup(e.stage); }, opts());
  sink.on<Teardown>([this](const Teardown& e) { teardown(e.stage); }, opts());
  sink.on<ConfigureModel>([this] { configure_model(); }, opts());
  if (uses_configure_sharded_model())
    sink.on<ConfigureShardedModel>([this] { configure_sharded_model(); }, opts());
  sink.on<ConfigureOptimizers>(
      [this](ConfigureOptimizers& e) { *e.config = configure_optimizers(); }, opts());
  if (!dataloaders_from_data_module) {
    sink.on<TrainDataloader>([this](TrainDataloader& e) { e.loaders = train_dataloader(); },
                             opts());
    sink.on<ValDataloader>([this](ValDataloader& e) { e.loaders = val_dataloader(); }, opts());
    sink.on<TestDataloader>([this](TestDataloader& e) { e.loaders = test_dataloader(); }, opts());
    sink.on<PredictDataloader>([this](PredictDataloader& e) { e.loaders = predict_dataloader(); },
                               opts());
  }
  if (!before_transfer_elsewhere)
    sink.on<BeforeBatchTransfer>(
        [this](BeforeBatchTransfer& e) {
          e.batch = on_before_batch_transfer(std::move(e.batch), e.dataloader_idx);
        },
        batch_opts(&Module::on_before_batch_transfer));
  if (!transfer_elsewhere)
    sink.on<TransferBatchToDevice>([this](TransferBatchToDevice& e) { handle(e); },
                                   default_opts(&Module::transfer_batch_to_device));
  if (!after_transfer_elsewhere)
    sink.on<AfterBatchTransfer>(
        [this](AfterBatchTransfer& e) {
          e.batch = on_after_batch_transfer(std::move(e.batch), e.dataloader_idx);
        },
        batch_opts(&Module::on_after_batch_transfer));

  // Lifecycle.
  sink.on<FitStart>([this] { on_fit_start(); }, opts());
  sink.on<FitEnd>([this] { on_fit_end(); }, opts());
  sink.on<TrainStart>([this] { on_train_start(); }, opts());
  sink.on<TrainEnd>([this] { on_train_end(); }, opts());
  sink.on<ValidationStart>([this] { on_validation_start(); }, opts());
  sink.on<ValidationEnd>([this] { on_validation_end(); }, opts());
  sink.on<TestStart>([this] { on_test_start(); }, opts());
  sink.on<TestEnd>([this] { on_test_end(); }, opts());
  sink.on<PredictStart>([this] { on_predict_start(); }, opts());
  sink.on<PredictEnd>([this] { on_predict_end(); }, opts());
  sink.on<TrainEpochStart>([this] { on_train_epoch_start(); }, opts());
  sink.on<TrainEpochEnd>([this] { on_train_epoch_end(); }, opts());
  sink.on<ValidationEpochStart>([this] { on_validation_epoch_start(); }, opts());
  sink.on<ValidationEpochEnd>([this] { on_validation_epoch_end(); }, opts());
  sink.on<TestEpochStart>([this] { on_test_epoch_start(); }, opts());
  sink.on<TestEpochEnd>([this] { on_test_epoch_end(); }, opts());
  sink.on<PredictEpochStart>([this] { on_predict_epoch_start(); }, opts());
  sink.on<PredictEpochEnd>([this] { on_predict_epoch_end(); }, opts());

  // Batches and steps.
  sink.on<TrainBatchStart>(
      [this](const TrainBatchStart& e) { return on_train_batch_start(e.batch, e.batch_idx); },
      batch_opts(&Module::on_train_batch_start));
  sink.on<TrainBatchEnd>(
      [this](const TrainBatchEnd& e) { on_train_batch_end(e.outputs, e.batch, e.batch_idx); },
      batch_opts(&Module::on_train_batch_end));
  sink.on<ValidationBatchStart>(
      [this](const ValidationBatchStart& e) {
        on_validation_batch_start(e.batch, e.batch_idx, e.dataloader_idx);
      },
      batch_opts(&Module::on_validation_batch_start));
  sink.on<ValidationBatchEnd>(
      [this](const ValidationBatchEnd& e) {
        on_validation_batch_end(e.outputs, e.batch, e.batch_idx, e.dataloader_idx);
      },
      batch_opts(&Module::on_validation_batch_end));
  sink.on<TestBatchStart>(
      [this](const TestBatchStart& e) {
        on_test_batch_start(e.batch, e.batch_idx, e.dataloader_idx);
      },
      batch_opts(&Module::on_test_batch_start));
  sink.on<TestBatchEnd>(
      [this](const TestBatchEnd& e) {
        on_test_batch_end(e.outputs, e.batch, e.batch_idx, e.dataloader_idx);
      },
      batch_opts(&Module::on_test_batch_end));
  sink.on<PredictBatchStart>(
      [this](const PredictBatchStart& e) {
        on_predict_batch_start(e.batch, e.batch_idx, e.dataloader_idx);
      },
      batch_opts(&Module::on_predict_batch_start));
  sink.on<PredictBatchEnd>(
      [this](const PredictBatchEnd& e) {
        on_predict_batch_end(e.outputs, e.batch, e.batch_idx, e.dataloader_idx);
      },
      batch_opts(&Module::on_predict_batch_end));
  sink.on<TrainingStep>([this](TrainingStep& e) { e.output = training_step(e.batch, e.batch_idx); },
                        opts());
  sink.on<ValidationStep>(
      [this](ValidationStep& e) {
        e.output = validation_step(e.batch, e.batch_idx, e.dataloader_idx);
      },
      opts());
  sink.on<TestStep>(
      [this](TestStep& e) { e.output = test_step(e.batch, e.batch_idx, e.dataloader_idx); },
      opts());
  sink.on<PredictStep>(
      [this](PredictStep& e) { e.output = predict_step(e.batch, e.batch_idx, e.dataloader_idx); },
      opts());

  // Model mode.
  sink.on<ValidationModelZeroGrad>([this] { on_validation_model_zero_grad(); }, opts());
  sink.on<ValidationModelEval>([this] { on_validation_model_eval(); }, opts());
  sink.on<ValidationModelTrain>([this] { on_validation_model_train(); }, opts());
  sink.on<TestModelEval>([this] { on_test_model_eval(); }, opts());
  sink.on<TestModelTrain>([this] { on_test_model_train(); }, opts());
  sink.on<PredictModelEval>([this] { on_predict_model_eval(); }, opts());

  // Optimization.
  sink.on<BeforeZeroGrad>([this](const BeforeZeroGrad& e) { on_before_zero_grad(*e.optimizer); },
                          batch_opts(&Module::on_before_zero_grad));
  sink.on<OptimizerZeroGrad>([this](const OptimizerZeroGrad& e) { handle(e); },
                             default_opts(&Module::optimizer_zero_grad));
  sink.on<BeforeBackward>([this](const BeforeBackward& e) { on_before_backward(e.loss); },
                          batch_opts(&Module::on_before_backward));
  sink.on<Backward>([this](const Backward& e) { handle(e); }, default_opts(&Module::backward));
  sink.on<AfterBackward>([this] { on_after_backward(); }, batch_opts(&Module::on_after_backward));
  sink.on<BeforeOptimizerStep>(
      [this](const BeforeOptimizerStep& e) { on_before_optimizer_step(*e.optimizer); },
      batch_opts(&Module::on_before_optimizer_step));
  sink.on<ConfigureGradientClipping>([this](const ConfigureGradientClipping& e) { handle(e); },
                                     default_opts(&Module::configure_gradient_clipping));
  sink.on<OptimizerStep>([this](const OptimizerStep& e) { handle(e); },
                         default_opts(&Module::optimizer_step));
  sink.on<LrSchedulerStep>([this](const LrSchedulerStep& e) { handle(e); },
                           default_opts(&Module::lr_scheduler_step));

  // Checkpoints.
  sink.on<SaveCheckpoint>([this](const SaveCheckpoint& e) { on_save_checkpoint(*e.checkpoint); },
                          opts());
  sink.on<LoadCheckpoint>([this](const LoadCheckpoint& e) { on_load_checkpoint(*e.checkpoint); },
                          opts());
}

}  // namespace hookline
