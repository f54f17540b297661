// hookline: the ring-buffer trace sink: the last records in memory, dumped when a run fails.
#pragma once

#include "hookline/tracing/compact_record.hpp"
#include "hookline/tracing/sink_base.hpp"
#include "hookline/tracing/trace_codec.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace hookline {

/// The last `capacity` records, in memory. When a run fails (an emission named in `dump_on`
/// ends: on_exception, which a Trainer emits for any exception and for SIGTERM/SIGINT, see
/// core/signals.hpp) they are written to `path` as JSON lines, oldest first.
class RingBufferSink final : public LockedSink {
 public:
  struct Options {
    std::size_t capacity = 10000;
    std::string path = "hookline-ring.jsonl";  ///< where failures dump ("" : never)
    std::vector<std::string> dump_on = {"on_exception"};
    bool announce = true;  ///< say on stderr where the dump went
  };
  RingBufferSink();
  explicit RingBufferSink(Options options);

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
  void write_locked(const TraceRecord& record, Lock& held) override;
  Options options_;
  std::vector<detail::CompactRecord> slots_;
  detail::NamePool names_;
  std::size_t pos_ = 0;  // the slot written next
  std::uint64_t next_ = 0;
  std::uint64_t dumps_ = 0;
};

}  // namespace hookline
