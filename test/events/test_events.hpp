// Small event types and helpers shared by the bus suites.
#pragma once

#include "hookline/events/bus.hpp"

#include <mutex>
#include <string>
#include <vector>

namespace test_events {

/// Bus options with `async` for the async lane and the default dispatch policy.
inline hookline::Bus::Options async_options(hookline::AsyncLane::Options async) {
  return {nullptr, async};
}

struct Ping {
  static constexpr std::string_view name = "on_ping";
  int value = 0;
};

struct Gate {
  static constexpr std::string_view name = "on_gate";
  static constexpr hookline::ActionSet vetoes{
      hookline::Action::SkipBatch, hookline::Action::SkipRestOfEpoch, hookline::Action::StopFit};
  int step = 0;
  std::string describe() const { return "step=" + std::to_string(step); }
};

struct SpanStart {
  static constexpr std::string_view name = "on_span_start";
  static constexpr hookline::Pairing pairing = hookline::Pairing::start;
};
struct SpanEnd {
  static constexpr std::string_view name = "on_span_end";
  static constexpr hookline::Pairing pairing = hookline::Pairing::end;
};
struct Setup {
  static constexpr std::string_view name = "setup";
  static constexpr hookline::OrderRule order = hookline::OrderRule::data_module_first;
};
struct EpochEnd {
  static constexpr std::string_view name = "on_train_epoch_end";
  static constexpr hookline::OrderRule order = hookline::OrderRule::module_before_monitoring;
};

/// Thread-safe list of labels, to record who was called in which order.
class Journal {
 public:
  void add(std::string s) {
    std::lock_guard lock(mutex_);
    entries_.push_back(std::move(s));
  }
  std::vector<std::string> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    entries_.clear();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> entries_;
};

using Labels = std::vector<std::string>;

}  // namespace test_events
