// hookline: duration statistics of a trace (per hook, per subscriber) and the summary sink.
#pragma once

#include "hookline/tracing/compact_record.hpp"
#include "hookline/tracing/sink_base.hpp"

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hookline {

/// Count, total, mean, p50, p99 and max of durations, per key. Percentiles come from a
/// log-linear histogram (buckets 1/64 of a power of two wide: within 1.6%); count, total and max
/// are exact.
class DurationStats {
 public:
  void add(std::int64_t ns);
  std::uint64_t count() const { return count_; }
  std::int64_t total() const { return total_; }
  std::int64_t max() const { return max_; }
  std::int64_t min() const { return min_; }
  double mean() const { return count_ ? static_cast<double>(total_) / count_ : 0; }
  /// The q-quantile (0 < q <= 1), e.g. 0.5, 0.99.
  std::int64_t quantile(double q) const;

 private:
  static std::size_t bucket(std::int64_t ns);
  static std::int64_t bucket_mid(std::size_t index);
  std::uint64_t count_ = 0;
  std::int64_t total_ = 0, max_ = 0, min_ = 0;
  std::vector<std::uint32_t> buckets_;
};

/// Durations of a trace: emissions by hook, calls by subscriber and by subscriber and hook.
class TraceSummary {
 public:
  enum class Table { hooks, subscribers, calls };
  void add(const TraceRecord& record);
  /// Prints the chosen tables, rows sorted by total time (largest first); `top` > 0 keeps that
  /// many rows per table.
  void print(std::ostream& out,
             const std::vector<Table>& tables = {Table::hooks, Table::subscribers},
             std::size_t top = 0) const;
  const std::map<std::string, DurationStats, std::less<>>& hooks() const { return hooks_; }
  const std::map<std::string, DurationStats, std::less<>>& subscribers() const {
    return subscribers_;
  }
  const std::map<std::string, DurationStats, std::less<>>& calls() const { return calls_; }
  std::uint64_t records() const { return records_; }
  /// The rows a record of (kind, event, subscriber) adds to: (hook or subscriber, call or null).
  std::pair<DurationStats*, DurationStats*> rows(TraceRecord::Kind kind, std::string_view event,
                                                 std::string_view subscriber);
  void count() { ++records_; }

 private:
  std::map<std::string, DurationStats, std::less<>> hooks_, subscribers_, calls_;
  std::uint64_t records_ = 0;
};

/// Keeps a TraceSummary; prints it when destroyed (the end of the run's trainer, or the process),
/// to stderr or to `path`.
class SummarySink final : public LockedSink {
 public:
  struct Options {
    bool print_at_end = true;
    std::string path;  ///< "" : stderr
    std::vector<TraceSummary::Table> tables = {TraceSummary::Table::hooks,
                                               TraceSummary::Table::subscribers};
  };
  SummarySink();
  explicit SummarySink(Options options);
  ~SummarySink() override;
  void print(std::ostream& out) const;
  TraceSummary summary() const;

 private:
  void write_locked(const TraceRecord& record, Lock& held) override;
  struct Key {
    const void* event;
    const void* subscriber;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      return std::hash<const void*>{}(k.event) * 31 + std::hash<const void*>{}(k.subscriber);
    }
  };
  Options options_;
  TraceSummary summary_;
  detail::NamePool names_;
  // (event name, interned subscriber) -> its rows, so a record costs no string building.
  std::unordered_map<Key, std::pair<DurationStats*, DurationStats*>, KeyHash> rows_;
};

}  // namespace hookline
