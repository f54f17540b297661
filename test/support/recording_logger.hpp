// Test helper: a Logger that keeps every log_metrics call, safe to read while a fit logs.
#pragma once

#include <hookline/core/logger.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
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
  }
  void log_hyperparams(const hookline::Checkpoint&) override {}
  std::string name() const override { return "recording"; }
  hookline::LoggerVersion version() override { return std::int64_t{0}; }

  /// Every call so far, in order.
  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
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
};

}  // namespace test_support
