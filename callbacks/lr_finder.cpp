#include "hookline/callbacks/lr_finder.hpp"

#include "hookline/core/console.hpp"
#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/loops/data_connector.hpp"
#include "hookline/core/loops/logger_connector.hpp"
#include "hookline/core/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <ATen/core/grad_mode.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace hookline {

std::optional<double> LRFinderResult::suggestion(std::int64_t skip_begin,
                                                 std::int64_t skip_end) const {
  // Python's losses[skip_begin:-skip_end].
  const auto n = static_cast<std::int64_t>(loss.size());
  auto clamp_index = [n](std::int64_t i) { return std::clamp(i < 0 ? n + i : i, 0L, n); };
  const std::int64_t begin = clamp_index(skip_begin);
  const std::int64_t end = clamp_index(-skip_end);
  std::vector<double> losses;
  for (std::int64_t i = begin; i < end; ++i)
    if (std::isfinite(loss[static_cast<std::size_t>(i)]))
      losses.push_back(loss[static_cast<std::size_t>(i)]);
  if (losses.size() < 2) {
    console().error(
        "Failed to compute suggestion for learning rate because there are not enough points. "
        "Increase the loop iteration limits or the size of your dataset/dataloader.");
    optimal_idx.reset();
    return std::nullopt;
  }
  // torch.gradient with unit spacing: one-sided at the ends, central inside; the first minimum.
  const std::size_t m = losses.size();
  std::size_t best = 0;
  double best_gradient = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < m; ++i) {
    double g;
    if (i == 0)
      g = losses[1] - losses[0];
    else if (i == m - 1)
      g = losses[m - 1] - losses[m - 2];
    else
      g = (losses[i + 1] - losses[i - 1]) / 2;
    if (g < best_gradient) {
      best_gradient = g;
      best = i;
    }
  }
  optimal_idx = best + static_cast<std::size_t>(skip_begin);
  return lr.at(*optimal_idx);
}

LearningRateFinder::LearningRateFinder(LearningRateFinderOptions options)
    : Callback("LearningRateFinder"), options_(std::move(options)) {
  std::string mode = options_.mode();
  std::transform(mode.begin(), mode.end(), mode.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (mode != "linear" && mode != "exponential")
    throw std::invalid_argument("`mode` should be either of ('linear', 'exponential') (got '" +
                                options_.mode() + "')");
  options_.mode(mode);
}

void LearningRateFinder::on_fit_start(Trainer& trainer, Module& module) {
  lr_find(trainer, module);
}

void LearningRateFinder::lr_find(Trainer& trainer, Module& module) {
  if (trainer.options().fast_dev_run() > 0) {
    console().warn("Skipping learning rate finder since `fast_dev_run` is enabled.");
    return;
  }
  auto& optimizers = trainer.optimizer_config().optimizers;
  if (optimizers.size() != 1)
    throw std::invalid_argument("`model.configure_optimizers()` returned " +
                                std::to_string(optimizers.size()) +
                                ", but learning rate finder only works with single optimizer");
  torch::optim::Optimizer& optimizer = *optimizers[0];
  std::string attr = options_.attr_name();
  if (options_.update_attr()) {
    if (!attr.empty() && !module.hparams().contains(attr))
      throw std::invalid_argument("The attribute " + attr +
                                  " doesn't exist in the model's hparams; the learning rate "
                                  "finder cannot update it");
    if (attr.empty())
      for (const char* candidate : {"lr", "learning_rate"})
        if (module.hparams().contains(candidate)) {
          attr = candidate;
          break;
        }
  }

  // Everything the search changes: weights, optimizer state and rates, the random stream.
  std::vector<std::pair<at::Tensor, at::Tensor>> saved_tensors;
  {
    at::NoGradGuard no_grad;
    for (const auto& item : module.named_parameters())
      saved_tensors.emplace_back(item.value(), item.value().detach().clone());
    for (const auto& item : module.named_buffers())
      saved_tensors.emplace_back(item.value(), item.value().detach().clone());
  }
  std::ostringstream optimizer_state;
  {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.save_to(optimizer_state);
  }
  std::vector<double> saved_lrs;
  for (auto& group : optimizer.param_groups()) saved_lrs.push_back(group.options().get_lr());
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  const at::Tensor rng_state = generator.get_state();

  LRFinderResult result;
  result.mode = options_.mode();
  result.lr_min = options_.min_lr();
  result.lr_max = options_.max_lr();
  result.num_training = options_.num_training_steps();
  const double min_lr = options_.min_lr();
  const double max_lr = options_.max_lr();
  const auto n = static_cast<double>(options_.num_training_steps());
  auto lr_at = [&](std::int64_t k) {  // Lightning's _ExponentialLR / _LinearLR after k steps
    if (k == 0) return min_lr;
    const double r = static_cast<double>(k + 1) / n;
    return result.mode == "linear" ? min_lr + r * (max_lr - min_lr)
                                   : min_lr * std::pow(max_lr / min_lr, r);
  };
  auto set_lr = [&](double lr) {
    for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
  };

  const DataLoaders& loaders = trainer.data_connector().train_dataloaders();
  const std::int64_t start_step = trainer.global_step();
  const std::int64_t max_epochs = trainer.options().effective_max_epochs();
  const double beta = 0.98;
  double avg_loss = 0;
  double best_loss = 0;
  std::int64_t steps = 0;
  bool stop = false;
  const bool was_training = module.is_training();
  module.train();
  if (!loaders.empty() && loaders[0] && trainer.num_training_batches() > 0) {
    data::DataLoader& loader = *loaders[0];
    for (std::int64_t epoch = trainer.current_epoch();
         !stop && steps < options_.num_training_steps() && (max_epochs < 0 || epoch < max_epochs);
         ++epoch) {
      loader.set_epoch(epoch);
      std::int64_t batch_idx = 0;
      for (const Batch& raw : loader) {
        if (batch_idx >= trainer.num_training_batches()) break;
        const double lr = lr_at(steps);
        set_lr(lr);
        result.lr.push_back(lr);
        TrainingStep step;  // through the bus: the module's log() calls are in a training step
        step.batch = raw.to(module.device());
        step.batch_idx = batch_idx++;
        trainer.emit(step);
        ++steps;
        if (!step.output.contains("loss") || !step.output["loss"].defined()) {
          result.loss.push_back(std::numeric_limits<double>::quiet_NaN());
        } else {
          const at::Tensor& loss = step.output["loss"];
          optimizer.zero_grad();
          loss.backward();
          optimizer.step();
          const double current = loss.item<double>();
          const std::int64_t current_step = start_step + steps;  // trainer.global_step after it
          avg_loss = beta * avg_loss + (1 - beta) * current;
          const double smoothed =
              avg_loss / (1 - std::pow(beta, static_cast<double>(current_step + 1)));
          if (options_.early_stop_threshold() && current_step > 1 &&
              smoothed > *options_.early_stop_threshold() * best_loss)
            stop = true;
          if (smoothed < best_loss || current_step == 1) best_loss = smoothed;
          result.loss.push_back(smoothed);
        }
        if (stop || steps >= options_.num_training_steps()) break;
      }
    }
    loader.set_epoch(trainer.current_epoch());
  }
  if (steps != options_.num_training_steps())
    console().info("LR finder stopped early after {} steps due to diverging loss.", steps);

  // Back to where the fit was.
  {
    at::NoGradGuard no_grad;
    for (auto& [live, copy] : saved_tensors) live.detach().copy_(copy);
  }
  {
    std::istringstream in(optimizer_state.str());
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    optimizer.load(archive);
  }
  for (std::size_t g = 0; g < saved_lrs.size() && g < optimizer.param_groups().size(); ++g)
    optimizer.param_groups()[g].options().set_lr(saved_lrs[g]);
  optimizer.zero_grad();
  module.zero_grad();
  module.train(was_training);
  generator.set_state(rng_state);
  trainer.logger_connector().reset_train_results();

  if (options_.update_attr()) {
    if (const std::optional<double> lr = result.suggestion()) {
      set_lr(*lr);
      if (!attr.empty()) module.hparams().set(attr, *lr);
      console().info("Learning rate set to {}", *lr);
    }
  }
  result_ = std::move(result);
}

}  // namespace hookline
