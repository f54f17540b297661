// hookline: the JSON-lines trace sink.
#pragma once

#include "hookline/tracing/compact_record.hpp"
#include "hookline/tracing/sink_base.hpp"

#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

namespace hookline {

/// One JSON object per line (see trace_codec.hpp for the fields):
///   {"seq":12,"kind":"call","event":"on_train_batch_end","subscriber":"lm","stage":"fit",
///    "epoch":0,"global_step":3,"batch_idx":3,"rank":0,"bus":1,"thread":1,"lane":"sync",
///    "start_ns":183220,"duration_ns":910,"verdict":"Continue"}
/// The emitting thread only queues a compact copy of each record; a writer thread formats and
/// writes them (so a traced run pays about what the ring buffer costs). flush() (called at run
/// boundaries, TraceRecorder::Options::flush_on, and when destroyed) returns once everything
/// queued is written. Should the writer fall more than 65536 records behind, emitters wait.
class JsonlSink final : public LockedSink {
 public:
  /// Writes to the file at `path` (truncated, or appended to); throws std::runtime_error naming
  /// the path if it cannot be opened.
  explicit JsonlSink(const std::string& path, bool append = false);
  /// Writes to `out`, which must outlive the sink.
  explicit JsonlSink(std::ostream& out);
  ~JsonlSink() override;
  JsonlSink(const JsonlSink&) = delete;
  JsonlSink& operator=(const JsonlSink&) = delete;

  /// Lines written to the stream so far.
  std::uint64_t lines() const;

 private:
  void write_locked(const TraceRecord& record, Lock& held) override;
  void flush_locked(Lock& held) override;
  void run();
  std::unique_ptr<std::ofstream> file_;
  std::ostream* out_;
  std::condition_variable wake_, done_;
  std::vector<detail::CompactRecord> pending_, writing_;
  detail::NamePool names_;
  std::uint64_t queued_ = 0, written_ = 0;
  bool flush_requested_ = false, stop_ = false;
  std::thread writer_;
};

}  // namespace hookline
