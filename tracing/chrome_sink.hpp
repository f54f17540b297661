// hookline: Chrome trace-event JSON (Perfetto, chrome://tracing): the writer and the sink.
#pragma once

#include "hookline/tracing/compact_record.hpp"
#include "hookline/tracing/sink_base.hpp"

#include <ostream>
#include <string>
#include <vector>

namespace hookline {

/// Writes records as Chrome trace-event JSON (opens in Perfetto, ui.perfetto.dev, and
/// chrome://tracing): a process per rank, a track per lane and thread, a slice per subscriber
/// call ("lm.training_step") inside a slice per emission ("training_step"), and a span for each
/// paired hook (on_train_epoch_start ... on_train_epoch_end becomes "train_epoch"; setup ...
/// teardown becomes "run"). A start with no end is closed at the next start of the same pair
/// (a skipped batch) or by its enclosing end; at the end of the trace it is shown as unfinished.
void write_chrome_trace(std::ostream& out, const std::vector<TraceRecord>& records);

/// Collects records and writes them as a Chrome trace to `path` at each flush (run boundaries)
/// and when destroyed.
class ChromeSink final : public LockedSink {
 public:
  /// Throws std::runtime_error naming `path` if it cannot be written.
  explicit ChromeSink(std::string path);
  ~ChromeSink() override;

 private:
  void write_locked(const TraceRecord& record, Lock& held) override;
  void flush_locked(Lock& held) override;
  void write_file();
  std::string path_;
  std::vector<detail::CompactRecord> records_;
  detail::NamePool names_;
  std::size_t written_ = 0;
};

}  // namespace hookline
