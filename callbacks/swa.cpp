#include "hookline/callbacks/swa.hpp"

#include "hookline/core/console.hpp"
#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/lightning_layout.hpp"
#include "hookline/core/loops/data_connector.hpp"
#include "hookline/core/trainer.hpp"

#include <ATen/core/grad_mode.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/optim/optimizer.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace hookline {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Calls fn(options, layer) for every BatchNorm layer of `module` (itself included; the module
// may live on the stack, so it is not asked for a shared_ptr to itself).
template <class Fn>
void for_each_batch_norm(torch::nn::Module& module, Fn&& fn) {
  auto visit = [&](torch::nn::Module* m) {
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm1dImpl*>(m))
      fn(bn->options, *bn);
    else if (auto* bn2 = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m))
      fn(bn2->options, *bn2);
    else if (auto* bn3 = dynamic_cast<torch::nn::BatchNorm3dImpl*>(m))
      fn(bn3->options, *bn3);
  };
  visit(&module);
  for (const auto& child : module.modules(/*include_self=*/false)) visit(child.get());
}

}  // namespace

StochasticWeightAveraging::StochasticWeightAveraging(double swa_lr,
                                                     StochasticWeightAveragingOptions options)
    : StochasticWeightAveraging(std::vector<double>{swa_lr}, std::move(options)) {
  single_lr_ = true;
}

StochasticWeightAveraging::StochasticWeightAveraging(std::vector<double> swa_lrs,
                                                     StochasticWeightAveragingOptions options)
    : Callback("StochasticWeightAveraging"),
      swa_lrs_(std::move(swa_lrs)),
      options_(std::move(options)) {
  validate();
}

void StochasticWeightAveraging::validate() const {
  const std::string start_error =
      "swa_epoch_start should be a >0 integer or a float between 0 and 1.";
  if (const auto* epoch = std::get_if<std::int64_t>(&options_.swa_epoch_start())) {
    if (*epoch < 1) throw std::invalid_argument(start_error);
  } else {
    const double fraction = std::get<double>(options_.swa_epoch_start());
    if (!(fraction >= 0 && fraction <= 1)) throw std::invalid_argument(start_error);
  }
  if (swa_lrs_.empty() ||
      std::any_of(swa_lrs_.begin(), swa_lrs_.end(), [](double lr) { return !(lr > 0); }))
    throw std::invalid_argument(
        "The `swa_lrs` should a positive float, or a list of positive floats");
  if (options_.annealing_epochs() < 0)
    throw std::invalid_argument("anneal_epochs must be equal or greater than 0, got " +
                                std::to_string(options_.annealing_epochs()));
  const std::string& strategy = options_.annealing_strategy();
  if (strategy != "cos" && strategy != "linear")
    throw std::invalid_argument("anneal_strategy must by one of 'cos' or 'linear', instead got " +
                                strategy);
}

std::int64_t StochasticWeightAveraging::swa_start() const {
  return std::max<std::int64_t>(start_epoch_ - 1, 0);
}

at::Tensor StochasticWeightAveraging::mean_update(const at::Tensor& averaged,
                                                  const at::Tensor& current,
                                                  std::int64_t n_averaged) {
  return averaged + (current - averaged) / static_cast<double>(n_averaged + 1);
}

void StochasticWeightAveraging::on_fit_start(Trainer& trainer, Module& module) {
  OptimizerConfig& config = trainer.optimizer_config();
  if (config.optimizers.size() != 1)
    throw std::invalid_argument("SWA currently works with 1 `optimizer`.");
  if (config.schedulers.size() > 1)
    throw std::invalid_argument("SWA currently not supported for more than 1 `lr_scheduler`.");
  const std::int64_t max_epochs = trainer.options().effective_max_epochs();
  if (max_epochs < 0)
    throw std::invalid_argument(
        "StochasticWeightAveraging needs max_epochs (its window ends with the last epoch); set "
        "TrainerOptions().max_epochs(...)");
  max_epochs_ = max_epochs;
  initialized_ = false;
  swa_installed_ = false;
  if (const auto* epoch = std::get_if<std::int64_t>(&options_.swa_epoch_start()))
    start_epoch_ = *epoch;
  else
    start_epoch_ = static_cast<std::int64_t>(static_cast<double>(max_epochs) *
                                             std::get<double>(options_.swa_epoch_start()));
  has_batch_norm_ = false;
  for_each_batch_norm(module, [&](auto&, auto&) { has_batch_norm_ = true; });
  const std::size_t groups = config.optimizers[0]->param_groups().size();
  if (single_lr_) swa_lrs_.assign(groups, swa_lrs_.front());
  if (swa_lrs_.size() != groups)
    throw std::invalid_argument("StochasticWeightAveraging: " + std::to_string(swa_lrs_.size()) +
                                " swa_lrs for an optimizer with " + std::to_string(groups) +
                                " parameter groups");
  // A resumed fit: the checkpoint's scheduler is the SWA schedule, which this callback restores
  // itself; the module's own scheduler makes way for it.
  if (loaded_step_count_) {
    config.schedulers.clear();
    step_count_ = *loaded_step_count_;
    install_scheduler(trainer);
  }
}

void StochasticWeightAveraging::schedule_step(Trainer& trainer) {
  // PyTorch's SWALR.get_lr: the rate before annealing is recovered from the current one, then
  // moved to the point of this step on the annealing curve.
  ++step_count_;
  const std::int64_t epochs = options_.annealing_epochs();
  std::int64_t step = step_count_ - 1;
  if (epochs == 0) step = std::max<std::int64_t>(1, step);
  const double span = static_cast<double>(std::max<std::int64_t>(1, epochs));
  auto anneal = [&](double t) {
    t = std::clamp(t, 0.0, 1.0);
    return options_.annealing_strategy() == "cos" ? (1 - std::cos(kPi * t)) / 2 : t;
  };
  const double prev_alpha = anneal(static_cast<double>(step - 1) / span);
  const double alpha = anneal(static_cast<double>(step) / span);
  auto& groups = trainer.optimizer_config().optimizers.at(0)->param_groups();
  for (std::size_t g = 0; g < groups.size() && g < swa_lrs_.size(); ++g) {
    auto& o = groups[g].options();
    const double swa_lr = swa_lrs_[g];
    const double prev_lr =
        prev_alpha == 1 ? swa_lr : (o.get_lr() - prev_alpha * swa_lr) / (1 - prev_alpha);
    o.set_lr(swa_lr * alpha + prev_lr * (1 - alpha));
  }
}

void StochasticWeightAveraging::install_scheduler(Trainer& trainer) {
  SchedulerConfig swa =
      SchedulerConfig::custom([this, &trainer](std::optional<double>) { schedule_step(trainer); })
          .interval(Interval::epoch)
          .frequency(1)
          .optimizer_index(0)
          .state([this] { return c10::IValue(step_count_); },
                 [](const c10::IValue&) {});  // restored with our state
  swa_installed_ = true;
  auto& schedulers = trainer.optimizer_config().schedulers;
  if (schedulers.empty()) {
    schedulers.push_back(std::move(swa));
    return;
  }
  const SchedulerConfig& current = schedulers[0];
  if (current.interval() != Interval::epoch || current.frequency() != 1)
    console().warn(
        "SWA is currently only supported every epoch. Found a scheduler with "
        "interval '{}' and frequency {}",
        current.interval() == Interval::epoch ? "epoch" : "step", current.frequency());
  console().info("Swapping scheduler `{}` for `SWALR`",
                 current.name().empty() ? "LRScheduler" : current.name());
  schedulers[0] = std::move(swa);
}

void StochasticWeightAveraging::update_average(Module& module) {
  at::NoGradGuard no_grad;
  const std::int64_t n = n_averaged();
  for (const auto& item : module.named_parameters()) {
    const at::Tensor current = item.value().detach().to(average_.at(item.key()).device());
    at::Tensor& averaged = average_.at(item.key());
    if (n == 0)
      averaged.copy_(current);
    else
      averaged.copy_(options_.avg_fn() ? options_.avg_fn()(averaged, current, n)
                                       : mean_update(averaged, current, n));
  }
  n_averaged_ = n + 1;
}

void StochasticWeightAveraging::on_train_epoch_start(Trainer& trainer, Module& module) {
  const std::int64_t epoch = trainer.current_epoch();
  const bool in_window = swa_start() <= epoch && epoch <= swa_end();
  if (!initialized_ && in_window) {
    initialized_ = true;
    const c10::Device device = options_.device().value_or(module.device());
    std::map<std::string, at::Tensor> average;
    for (const auto& item : module.named_parameters()) {
      auto loaded = average_.find(item.key());
      average[item.key()] = (loaded != average_.end() ? loaded->second : item.value().detach())
                                .to(device, /*non_blocking=*/false, /*copy=*/true);
    }
    average_ = std::move(average);
    if (!loaded_step_count_ && epoch != swa_start())
      console().warn(
          "SWA is initializing after swa_start without any checkpoint data. This may be caused "
          "by loading a checkpoint from an older version of PyTorch Lightning.");
    if (!swa_installed_) {
      // PyTorch's SWALR makes its first step in its constructor (the rate does not move then,
      // unless annealing_epochs is 0).
      step_count_ = 0;
      install_scheduler(trainer);
      schedule_step(trainer);
    }
    if (!n_averaged_) n_averaged_ = init_n_averaged_;
  }
  if (in_window && epoch > latest_update_epoch_) {
    update_average(module);
    latest_update_epoch_ = epoch;
  }
}

void StochasticWeightAveraging::transfer_weights(Module& module) const {
  at::NoGradGuard no_grad;
  for (const auto& item : module.named_parameters()) {
    at::Tensor param = item.value();
    param.detach().copy_(average_.at(item.key()).to(param.device()));
  }
}

void StochasticWeightAveraging::recompute_batch_norm(Trainer& trainer, Module& module) {
  // PyTorch's swa_utils.update_bn: fresh statistics, averaged over the pass (momentum none).
  std::vector<std::pair<torch::nn::BatchNormOptions*, c10::optional<double>>> momenta;
  {
    at::NoGradGuard no_grad;
    for_each_batch_norm(module, [&](auto& options, auto& bn) {
      if (bn.running_mean.defined()) bn.running_mean.zero_();
      if (bn.running_var.defined()) bn.running_var.fill_(1);
      if (bn.num_batches_tracked.defined()) bn.num_batches_tracked.zero_();
      momenta.emplace_back(&options, options.momentum());
      options.momentum(c10::nullopt);
    });
  }
  const DataLoaders& loaders = trainer.data_connector().train_dataloaders();
  if (!loaders.empty() && loaders[0]) {
    data::DataLoader& loader = *loaders[0];
    const data::DataLoaderState position = loader.state();
    const bool was_training = module.is_training();
    module.train();
    loader.set_epoch(trainer.current_epoch());
    std::int64_t batch_idx = 0;
    at::NoGradGuard no_grad;
    for (const Batch& raw : loader) {
      if (batch_idx >= trainer.num_training_batches()) break;
      TrainingStep step;  // through the bus, so the module's log() calls are in a step
      step.batch = raw.to(module.device());
      step.batch_idx = batch_idx++;
      trainer.emit(step);
    }
    module.train(was_training);
    loader.load_state(position);
  }
  for (auto& [options, momentum] : momenta) options->momentum(momentum);
}

void StochasticWeightAveraging::on_train_end(Trainer& trainer, Module& module) {
  if (average_.empty() || trainer.current_epoch() - 1 != swa_end()) return;
  transfer_weights(module);
  if (has_batch_norm_) recompute_batch_norm(trainer, module);
}

void StochasticWeightAveraging::state_dict(Checkpoint& state) const {
  state.set("n_averaged", n_averaged());
  state.set("latest_update_epoch", latest_update_epoch_);
  // In PyTorch's LRScheduler layout, as Lightning keeps its SWALR's state.
  state.set("scheduler_state",
            swa_installed_ ? detail::scheduler_state_to_file(static_cast<std::int64_t>(step_count_))
                           : c10::IValue());
  if (average_.empty()) {
    state.set("average_model_state", c10::IValue());
    return;
  }
  c10::impl::GenericDict average(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [name, tensor] : average_) average.insert(name, tensor.clone());
  state.set("average_model_state", average);
}

void StochasticWeightAveraging::load_state_dict(const Checkpoint& state) {
  init_n_averaged_ = state.contains("n_averaged") ? state.at("n_averaged").toInt() : 0;
  n_averaged_.reset();
  latest_update_epoch_ =
      state.contains("latest_update_epoch") ? state.at("latest_update_epoch").toInt() : -1;
  loaded_step_count_.reset();
  if (state.contains("scheduler_state") && !state.at("scheduler_state").isNone())
    loaded_step_count_ =
        detail::scheduler_state_from_file(state.at("scheduler_state"), std::int64_t{0}).toInt();
  average_.clear();
  if (state.contains("average_model_state") && !state.at("average_model_state").isNone())
    for (const auto& entry : state.at("average_model_state").toGenericDict())
      average_[entry.key().toStringRef()] = entry.value().toTensor();
}

}  // namespace hookline
