#include "hookline/callbacks/lr_monitor.hpp"

#include "hookline/core/console.hpp"
#include "hookline/core/loops/logger_connector.hpp"
#include "hookline/core/trainer.hpp"

#include <c10/util/Type.h>
#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <typeinfo>

namespace hookline {

std::string optimizer_class_name(const torch::optim::Optimizer& optimizer) {
  const std::string name = c10::demangle(typeid(optimizer).name());
  const auto colon = name.rfind("::");
  return colon == std::string::npos ? name : name.substr(colon + 2);
}

namespace {

using Options = torch::optim::OptimizerOptions;

// Lightning's "momentum" stat: Adam's and AdamW's beta1, else the group's momentum, else 0.
// nullopt when the optimizer has neither (Lightning warns once and logs 0).
std::optional<double> momentum_of(Options& o) {
  if (auto* a = dynamic_cast<torch::optim::AdamOptions*>(&o)) return std::get<0>(a->betas());
  if (auto* a = dynamic_cast<torch::optim::AdamWOptions*>(&o)) return std::get<0>(a->betas());
  if (auto* s = dynamic_cast<torch::optim::SGDOptions*>(&o)) return s->momentum();
  if (auto* r = dynamic_cast<torch::optim::RMSpropOptions*>(&o)) return r->momentum();
  return std::nullopt;
}

std::optional<double> weight_decay_of(Options& o) {
  if (auto* a = dynamic_cast<torch::optim::AdamOptions*>(&o)) return a->weight_decay();
  if (auto* a = dynamic_cast<torch::optim::AdamWOptions*>(&o)) return a->weight_decay();
  if (auto* s = dynamic_cast<torch::optim::SGDOptions*>(&o)) return s->weight_decay();
  if (auto* r = dynamic_cast<torch::optim::RMSpropOptions*>(&o)) return r->weight_decay();
  if (auto* g = dynamic_cast<torch::optim::AdagradOptions*>(&o)) return g->weight_decay();
  return std::nullopt;
}

// Lightning's naming: which optimizers have been named, and how many unnamed of each class.
struct Naming {
  std::vector<const torch::optim::Optimizer*> seen;
  std::map<std::string, int> per_class;

  // The names of `optimizer`'s parameter groups under base name `name`.
  std::vector<std::string> names(const torch::optim::Optimizer& optimizer, std::string name,
                                 bool named_by_user) {
    seen.push_back(&optimizer);
    const std::string cls = optimizer_class_name(optimizer);
    if (!named_by_user) ++per_class[cls];
    if (auto it = per_class.find(cls); it != per_class.end() && it->second > 1) {
      name.push_back('-');
      name.append(std::to_string(it->second - 1));
    }
    const std::size_t groups = optimizer.param_groups().size();
    std::vector<std::string> out;
    for (std::size_t i = 0; i < groups; ++i) {
      std::string group_name = name;
      if (groups > 1) group_name.append("/pg").append(std::to_string(i + 1));
      out.push_back(std::move(group_name));
    }
    return out;
  }
};

}  // namespace

LearningRateMonitor::LearningRateMonitor(LearningRateMonitorOptions options)
    : Callback("LearningRateMonitor"), options_(std::move(options)) {
  const std::string& i = options_.logging_interval();
  if (!i.empty() && i != "step" && i != "epoch")
    throw std::invalid_argument(
        "LearningRateMonitor: logging_interval should be `step` or `epoch` or `None` (\"\"), got "
        "'" +
        i + "'");
}

void LearningRateMonitor::on_train_start(Trainer& trainer, Module&) {
  if (trainer.loggers().empty())
    throw std::invalid_argument(
        "Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger; give the "
        "Trainer a logger (TrainerOptions().logger(...)) or remove the LearningRateMonitor");
  if (options_.log_momentum()) {
    bool missing = false;
    for (const auto& optimizer : trainer.optimizer_config().optimizers)
      for (auto& group : optimizer->param_groups())
        missing = missing || !momentum_of(group.options()).has_value();
    if (missing)
      console().warn(
          "You have set log_momentum=True, but some optimizers do not have momentum. This will "
          "log a value 0 for the momentum.");
  }
  lrs_.clear();
}

std::map<std::string, double> LearningRateMonitor::extract(Trainer& trainer,
                                                           const std::string& interval) {
  auto& config = trainer.optimizer_config();
  std::map<std::string, double> stats;
  auto add = [&](torch::optim::Optimizer& optimizer, const std::vector<std::string>& names) {
    auto& groups = optimizer.param_groups();
    for (std::size_t g = 0; g < groups.size() && g < names.size(); ++g) {
      Options& o = groups[g].options();
      const double lr = o.get_lr();
      stats[names[g]] = lr;
      lrs_[names[g]].push_back(lr);
      if (options_.log_momentum()) stats[names[g] + "-momentum"] = momentum_of(o).value_or(0.0);
      if (options_.log_weight_decay())
        if (auto wd = weight_decay_of(o)) stats[names[g] + "-weight_decay"] = *wd;
    }
  };
  Naming naming;
  for (const SchedulerConfig& scheduler : config.schedulers) {
    if (scheduler.optimizer_index() >= config.optimizers.size()) continue;
    torch::optim::Optimizer& optimizer = *config.optimizers[scheduler.optimizer_index()];
    const bool named = !scheduler.name().empty();
    const auto names = naming.names(
        optimizer, named ? scheduler.name() : "lr-" + optimizer_class_name(optimizer), named);
    const std::string own = scheduler.interval() == Interval::step ? "step" : "epoch";
    if (interval == "any" || interval == own) add(optimizer, names);
  }
  for (const auto& optimizer : config.optimizers) {
    if (std::find(naming.seen.begin(), naming.seen.end(), optimizer.get()) != naming.seen.end())
      continue;
    add(*optimizer, naming.names(*optimizer, "lr-" + optimizer_class_name(*optimizer), false));
  }
  return stats;
}

void LearningRateMonitor::log(Trainer& trainer, const std::string& interval) {
  std::map<std::string, double> stats = extract(trainer, interval);
  if (stats.empty()) return;
  trainer.logger_connector().update_callback_metrics(stats);
  trainer.logger_connector().log_to_loggers(std::move(stats), trainer.batches_that_stepped());
}

void LearningRateMonitor::on_train_batch_start(Trainer& trainer, Module&, const Batch&,
                                               std::int64_t) {
  if (!trainer.logger_connector().should_update_logs()) return;
  const std::string& i = options_.logging_interval();
  if (i != "epoch") log(trainer, i.empty() ? "step" : "any");
}

void LearningRateMonitor::on_train_epoch_start(Trainer& trainer, Module&) {
  const std::string& i = options_.logging_interval();
  if (i != "step") log(trainer, i.empty() ? "epoch" : "any");
}

}  // namespace hookline
