// hookline: what configure_optimizers() returns.
//
//   OptimizerConfig cfg;
//   cfg.add(std::make_shared<torch::optim::SGD>(parameters(), 0.1));
//   cfg.add_scheduler(SchedulerConfig::from(step_lr).interval(Interval::epoch));
//
// A scheduler is any callable that steps a learning rate (metric given only to schedulers with
// a `monitor`, like ReduceLROnPlateau), with Lightning's interval, frequency and monitor.
//
// Its state goes into checkpoints so a resumed schedule continues exactly: LibTorch schedulers
// (torch::optim::LRScheduler subclasses such as StepLR) get it automatically through from(); a
// custom scheduler provides it with state(save, load). The learning rates themselves live in the
// optimizer's state.
#pragma once

#include "hookline/core/chained_options.hpp"

#include <ATen/core/ivalue.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/schedulers/lr_scheduler.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace hookline {

/// When a scheduler steps: after every optimizer step, or at the end of every epoch.
enum class Interval { step, epoch };

struct SchedulerConfig {
  /// Steps the schedule; `metric` is the monitored value for schedulers with a monitor.
  std::function<void(std::optional<double> metric)> step;
  /// The scheduler's state for checkpoints, and how to restore it (both empty: stateless).
  std::function<c10::IValue()> state_dict;
  std::function<void(const c10::IValue&)> load_state_dict;

  /// Throws std::invalid_argument naming the scheduler when a setting is out of range (the
  /// trainer checks every scheduler configure_optimizers returns).
  void validate() const {
    if (frequency_ < 1)
      throw std::invalid_argument("SchedulerConfig '" + name_ + "': frequency(" +
                                  std::to_string(frequency_) + ") must be >= 1");
  }

  /// How to save and restore the scheduler's state (any IValue) in checkpoints.
  SchedulerConfig& state(std::function<c10::IValue()> save,
                         std::function<void(const c10::IValue&)> load) {
    state_dict = std::move(save);
    load_state_dict = std::move(load);
    return *this;
  }

  /// A scheduler given as a function of the monitored metric.
  static SchedulerConfig custom(std::function<void(std::optional<double> metric)> step_fn) {
    SchedulerConfig c;
    c.step = std::move(step_fn);
    return c;
  }
  /// Wraps any scheduler with a `step()` method (e.g. torch::optim::StepLR). LibTorch schedulers
  /// get their state (the step count) saved in checkpoints; give others one with state().
  template <class S>
  static SchedulerConfig from(std::shared_ptr<S> scheduler) {
    SchedulerConfig c;
    c.step = [scheduler](std::optional<double>) { scheduler->step(); };
    if constexpr (std::is_base_of_v<torch::optim::LRScheduler, S>) {
      c.state_dict = [scheduler] {
        return c10::IValue(static_cast<std::int64_t>(lr_scheduler_step_count(*scheduler)));
      };
      c.load_state_dict = [scheduler](const c10::IValue& v) {
        lr_scheduler_step_count(*scheduler) = static_cast<unsigned>(v.toInt());
      };
    }
    return c;
  }

  /// The step count of a LibTorch scheduler (protected there; it is all of its state).
  static unsigned& lr_scheduler_step_count(torch::optim::LRScheduler& scheduler) {
    struct Access : torch::optim::LRScheduler {
      static unsigned torch::optim::LRScheduler::*member() { return &Access::step_count_; }
    };
    return scheduler.*Access::member();
  }

  /// Lightning's interval: after every optimizer step, or at the end of every epoch (default).
  HOOKLINE_CHAINED_OPTION(SchedulerConfig, Interval, interval, Interval::epoch)
  /// Steps every this many intervals.
  HOOKLINE_CHAINED_OPTION(SchedulerConfig, std::int64_t, frequency, 1)
  /// Steps with the value of this metric from callback_metrics (ReduceLROnPlateau-style); empty:
  /// no metric.
  HOOKLINE_CHAINED_OPTION(SchedulerConfig, std::string, monitor, {})
  HOOKLINE_CHAINED_OPTION(SchedulerConfig, std::string, name, {})
  /// Which of the optimizers it schedules (LibTorch's schedulers keep theirs private); used to
  /// name its learning rates (LearningRateMonitor).
  HOOKLINE_CHAINED_OPTION(SchedulerConfig, std::size_t, optimizer_index, 0)
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
