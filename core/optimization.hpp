// hookline: what configure_optimizers() returns.
//
//   OptimizerConfig cfg;
//   cfg.add(std::make_shared<torch::optim::SGD>(parameters(), 0.1));
//   cfg.add_scheduler(SchedulerConfig::from(step_lr).interval(Interval::epoch));
//
// A scheduler is any callable that steps a learning rate (metric given only to schedulers with
// a `monitor`, like ReduceLROnPlateau), with Lightning's interval, frequency and monitor.
#pragma once

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

/// When a scheduler steps: after every optimizer step, or at the end of every epoch.
enum class Interval { step, epoch };

struct SchedulerConfig {
  /// Steps the schedule; `metric` is the monitored value for schedulers with a monitor.
  std::function<void(std::optional<double> metric)> step;
  Interval interval_ = Interval::epoch;  ///< Lightning's default
  std::int64_t frequency_ = 1;
  std::string monitor_;  ///< empty: no metric (not a plateau scheduler)
  std::string name_;

  SchedulerConfig& interval(Interval i) {
    interval_ = i;
    return *this;
  }
  SchedulerConfig& frequency(std::int64_t f) {
    frequency_ = f;
    return *this;
  }
  /// Steps with the value of this metric from callback_metrics (ReduceLROnPlateau-style).
  SchedulerConfig& monitor(std::string m) {
    monitor_ = std::move(m);
    return *this;
  }
  SchedulerConfig& name(std::string n) {
    name_ = std::move(n);
    return *this;
  }

  /// A scheduler given as a function of the monitored metric.
  static SchedulerConfig custom(std::function<void(std::optional<double> metric)> step_fn) {
    SchedulerConfig c;
    c.step = std::move(step_fn);
    return c;
  }
  /// Wraps any scheduler with a `step()` method (e.g. torch::optim::StepLR).
  template <class S>
  static SchedulerConfig from(std::shared_ptr<S> scheduler) {
    SchedulerConfig c;
    c.step = [scheduler](std::optional<double>) { scheduler->step(); };
    return c;
  }
};

struct OptimizerConfig {
  std::vector<std::shared_ptr<torch::optim::Optimizer>> optimizers;
  std::vector<SchedulerConfig> schedulers;

  OptimizerConfig& add(std::shared_ptr<torch::optim::Optimizer> optimizer) {
    optimizers.push_back(std::move(optimizer));
    return *this;
  }
  OptimizerConfig& add_scheduler(SchedulerConfig scheduler) {
    schedulers.push_back(std::move(scheduler));
    return *this;
  }
};

}  // namespace hookline
