// hookline: trace sinks: JSON lines, Chrome trace-event JSON, an in-memory ring buffer dumped
// when a run fails, and a per-hook / per-subscriber time summary. (The live TCP stream is in
// trace_stream.hpp.) All are thread-safe; attach them to a TraceRecorder (trace.hpp).
#pragma once

#include "hookline/tracing/trace.hpp"

#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace hookline {

namespace detail {

// Interns subscriber names, so stored records point at one copy of each (not thread-safe: sinks
// use it under their lock). A small cache on the caller's string address makes repeats cheap.
class NamePool {
 public:
  const std::string* intern(std::string_view name);

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Cached {
    const char* key = nullptr;
    const std::string* value = nullptr;
  };
  std::unordered_set<std::string, Hash, std::equal_to<>> pool_;
  Cached cache_[64];
};

// A record as sinks keep it: fixed fields, interned names, and the rare strings (veto, args) in
// a side allocation. About 120 bytes; assigning over a used one does not allocate.
struct CompactRecord {
  struct Extra {
    std::string by, reason, args;
  };
  std::uint64_t seq = 0, parent = 0;
  std::int64_t start_ns = 0, duration_ns = 0, epoch = 0, global_step = 0, batch_idx = 0,
               dataloader_idx = 0;
  const char* event = nullptr;              // static (EventInfo names)
  const char* stage = nullptr;              // static (the context's stage names)
  const std::string* subscriber = nullptr;  // interned
  std::unique_ptr<Extra> extra;
  std::int32_t rank = 0;
  std::uint32_t depth = 0, thread = 0, bus = 0;
  std::uint16_t event_size = 0;
  std::uint8_t stage_size = 0, kind = 0, lane = 0, verdict = 0, pairing = 0, aborted = 0;

  void assign(const TraceRecord& r, NamePool& names);
  TraceRecord view() const;
};

}  // namespace detail

/// An owning copy of a TraceRecord. `event` and `stage` stay views: they name static storage
/// (EventInfo names, the context's stage names). Assigning over a used one reuses its strings'
/// storage, so a warm ring buffer records without allocating.
struct StoredRecord {
  TraceRecord record;  // its subscriber/by/reason/args point into the strings below
  std::string subscriber, by, reason, args;

  StoredRecord() = default;
  explicit StoredRecord(const TraceRecord& r) { assign(r); }
  StoredRecord(const StoredRecord& other) { assign(other.record); }
  StoredRecord& operator=(const StoredRecord& other) {
    if (this != &other) assign(other.record);
    return *this;
  }
  void assign(const TraceRecord& r);
};

/// One JSON object per line (see append_json in trace.hpp for the fields):
///   {"seq":12,"kind":"call","event":"on_train_batch_end","subscriber":"lm","stage":"fit",
///    "epoch":0,"global_step":3,"batch_idx":3,"rank":0,"bus":1,"thread":1,"lane":"sync",
///    "start_ns":183220,"duration_ns":910,"verdict":"Continue"}
/// The emitting thread only queues a compact copy of each record; a writer thread formats and
/// writes them (so a traced run pays about what the ring buffer costs). flush() (called at run
/// boundaries, TraceRecorder::Options::flush_on, and when destroyed) returns once everything
/// queued is written. Should the writer fall more than 65536 records behind, emitters wait.
class JsonlSink final : public TraceSink {
 public:
  /// Writes to the file at `path` (truncated, or appended to); throws std::runtime_error naming
  /// the path if it cannot be opened.
  explicit JsonlSink(const std::string& path, bool append = false);
  /// Writes to `out`, which must outlive the sink.
  explicit JsonlSink(std::ostream& out);
  ~JsonlSink() override;
  JsonlSink(const JsonlSink&) = delete;
  JsonlSink& operator=(const JsonlSink&) = delete;

  void write(const TraceRecord& record) override;
  void flush() override;
  /// Lines written to the stream so far.
  std::uint64_t lines() const;

 private:
  void run();
  std::unique_ptr<std::ofstream> file_;
  std::ostream* out_;
  mutable std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<detail::CompactRecord> pending_, writing_;
  detail::NamePool names_;
  std::uint64_t queued_ = 0, written_ = 0;
  bool flush_requested_ = false, stop_ = false;
  std::thread writer_;
};

/// The last `capacity` records, in memory. When a run fails (an emission named in `dump_on`
/// ends: on_exception, which a Trainer emits for any exception and for SIGTERM/SIGINT, see
/// core/signals.hpp) they are written to `path` as JSON lines, oldest first.
class RingBufferSink final : public TraceSink {
 public:
  struct Options {
    std::size_t capacity = 10000;
    std::string path = "hookline-ring.jsonl";  ///< where failures dump ("" : never)
    std::vector<std::string> dump_on = {"on_exception"};
    bool announce = true;  ///< say on stderr where the dump went
  };
  RingBufferSink();
  explicit RingBufferSink(Options options);

  void write(const TraceRecord& record) override;
  /// The records held, oldest first.
  std::vector<StoredRecord> snapshot() const;
  /// Writes the records held to `path` (JSON lines, oldest first); returns how many.
  std::size_t dump(const std::string& path) const;
  /// Records written since the sink was created (also those overwritten since).
  std::uint64_t written() const;
  /// Dumps made because a run failed.
  std::uint64_t dumps() const;
  const Options& options() const { return options_; }

 private:
  Options options_;
  mutable std::mutex mutex_;
  std::vector<detail::CompactRecord> slots_;
  detail::NamePool names_;
  std::size_t pos_ = 0;  // the slot written next
  std::uint64_t next_ = 0;
  std::uint64_t dumps_ = 0;
};

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
class SummarySink final : public TraceSink {
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
  void write(const TraceRecord& record) override;
  void print(std::ostream& out) const;
  TraceSummary summary() const;

 private:
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
  mutable std::mutex mutex_;
  TraceSummary summary_;
  detail::NamePool names_;
  // (event name, interned subscriber) -> its rows, so a record costs no string building.
  std::unordered_map<Key, std::pair<DurationStats*, DurationStats*>, KeyHash> rows_;
};

/// Writes records as Chrome trace-event JSON (opens in Perfetto, ui.perfetto.dev, and
/// chrome://tracing): a process per rank, a track per lane and thread, a slice per subscriber
/// call ("lm.training_step") inside a slice per emission ("training_step"), and a span for each
/// paired hook (on_train_epoch_start ... on_train_epoch_end becomes "train_epoch"; setup ...
/// teardown becomes "run"). A start with no end is closed at the next start of the same pair
/// (a skipped batch) or by its enclosing end; at the end of the trace it is shown as unfinished.
void write_chrome_trace(std::ostream& out, const std::vector<TraceRecord>& records);

/// Collects records and writes them as a Chrome trace to `path` at each flush (run boundaries)
/// and when destroyed.
class ChromeSink final : public TraceSink {
 public:
  /// Throws std::runtime_error naming `path` if it cannot be written.
  explicit ChromeSink(std::string path);
  ~ChromeSink() override;
  void write(const TraceRecord& record) override;
  void flush() override;

 private:
  void write_file();
  std::string path_;
  mutable std::mutex mutex_;
  std::vector<detail::CompactRecord> records_;
  detail::NamePool names_;
  std::size_t written_ = 0;
};

}  // namespace hookline
