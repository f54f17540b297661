// Test helper: a Logger that keeps every call, safe to read while a fit logs.
#pragma once

#include <hookline/core/logger.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace test_support {

class RecordingLogger final : public hookline::Logger {
 public:
  struct Call {
    std::map<std::string, double> metrics;
    std::optional<std::int64_t> step;
  };
  void log_metrics(const std::map<std::string, double>& metrics,
                   std::optional<std::int64_t> step) override {
    std::lock_guard lock(mutex_);
    calls_.push_back({metrics, step});
    thread_ = std::this_thread::get_id();
  }
  void log_hyperparams(const hookline::Checkpoint& params) override {
    std::lock_guard lock(mutex_);
    hyperparams_ = params;
    ++hyperparams_calls_;
  }
  void save() override {
    std::lock_guard lock(mutex_);
    ++saves_;
  }
  void finalize(const std::string& status) override {
    std::lock_guard lock(mutex_);
    finalized_.push_back(status);
  }
  std::string name() const override { return "recording"; }
  hookline::LoggerVersion version() override { return std::int64_t{0}; }

  /// Every call so far, in order.
  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  int hyperparams_calls() const {
    std::lock_guard lock(mutex_);
    return hyperparams_calls_;
  }
  /// The hyperparameters of the last log_hyperparams call.
  hookline::Checkpoint hyperparams() const {
    std::lock_guard lock(mutex_);
    return hyperparams_;
  }
  int saves() const {
    std::lock_guard lock(mutex_);
    return saves_;
  }
  /// The statuses finalize() was called with, in order.
  std::vector<std::string> finalized() const {
    std::lock_guard lock(mutex_);
    return finalized_;
  }
  /// The thread of the last log_metrics call.
  std::thread::id thread() const {
    std::lock_guard lock(mutex_);
    return thread_;
  }
  /// The calls that hold `key`, as (step, value).
  std::vector<std::pair<std::int64_t, double>> of(const std::string& key) const {
    std::vector<std::pair<std::int64_t, double>> out;
    for (const auto& c : calls())
      if (auto it = c.metrics.find(key); it != c.metrics.end())
        out.emplace_back(*c.step, it->second);
    return out;
  }
  /// The calls with a key that starts with `prefix`.
  std::vector<Call> with(const std::string& prefix) const {
    std::vector<Call> out;
    for (const auto& c : calls())
      for (const auto& entry : c.metrics)
        if (entry.first.rfind(prefix, 0) == 0) {
          out.push_back(c);
          break;
        }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Call> calls_;
  hookline::Checkpoint hyperparams_;
  int hyperparams_calls_ = 0;
  int saves_ = 0;
  std::vector<std::string> finalized_;
  std::thread::id thread_;
};

}  // namespace test_support
