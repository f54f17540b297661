// hookline: Chrome trace-event JSON (Perfetto, chrome://tracing): the writer and the sink.
#pragma once

#include "hookline/tracing/compact_record.hpp"
#include "hookline/tracing/sink_base.hpp"

#include <chrono>
#include <cstdint>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace hookline {

/// Writes records as Chrome trace-event JSON (opens in Perfetto, ui.perfetto.dev, and
/// chrome://tracing): a process per rank, a track per lane and thread, a slice per subscriber
/// call ("lm.training_step") inside a slice per emission ("training_step"), and a span for each
/// paired hook (on_train_epoch_start ... on_train_epoch_end becomes "train_epoch"; setup ...
/// teardown becomes "run"). A start with no end is closed at the next start of the same pair
/// (a skipped batch) or by its enclosing end; at the end of the trace it is shown as unfinished.
void write_chrome_trace(std::ostream& out, const std::vector<TraceRecord>& records);

/// Writes a Chrome trace to `path`. As the run goes (every 4096 records or second), the records so
/// far are appended to the file in the trace-event array form ("[" and slices, no closing "]",
/// which the format allows), so a run that is killed leaves a file Perfetto loads up to its last
/// write. At each flush (run boundaries) and when destroyed, the file is rewritten whole, as
/// write_chrome_trace() writes it (with the paired-hook spans).
class ChromeSink final : public LockedSink {
 public:
  /// Throws std::runtime_error naming `path` if it cannot be written.
  explicit ChromeSink(std::string path);
  ~ChromeSink() override;

  static constexpr std::size_t kStreamRecords = 4096;
  static constexpr std::chrono::milliseconds kStreamPeriod{1000};

 private:
  void write_locked(const TraceRecord& record, Lock& held) override;
  void flush_locked(Lock& held) override;
  void stream();
  void write_file();
  std::string path_;
  std::vector<detail::CompactRecord> records_;
  detail::NamePool names_;
  std::size_t written_ = 0;   // records in the last whole file
  std::size_t streamed_ = 0;  // records appended to the streamed file
  bool streaming_ = false;    // the file is a streamed one (not a whole one)
  std::chrono::steady_clock::time_point last_stream_;
  std::set<std::int32_t> stream_ranks_;
  std::set<std::pair<std::int32_t, std::int64_t>> stream_tracks_;
};

}  // namespace hookline
