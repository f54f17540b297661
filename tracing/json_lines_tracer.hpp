// hookline: a Tracer that writes one JSON object per line.
//
// Each emission and each subscriber call becomes a line, in the order they finish:
//   {"seq":12,"kind":"call","event":"on_train_batch_end","subscriber":"lm","lane":"sync",
//    "start_ns":183220,"duration_ns":910,"verdict":"Continue","args":"outputs{loss}, ..."}
//   {"seq":12,"kind":"emit","event":"on_train_batch_end","verdict":"Continue"}
// `start_ns` counts from the tracer's creation. Lines are written under a mutex, so async
// subscribers can be traced too. Read it with any JSON-lines tool (jq, pandas, ...).
#pragma once

#include "hookline/events/tracer.hpp"

#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>

namespace hookline {

class JsonLinesTracer final : public Tracer {
 public:
  /// Writes to `out`, which must outlive the tracer.
  explicit JsonLinesTracer(std::ostream& out);
  /// Writes to the file at `path` (truncated); throws std::runtime_error naming the path.
  explicit JsonLinesTracer(const std::string& path);

  void on_emit(const EventInfo& event, const void* payload, std::uint64_t seq) override;
  void on_call(const EventInfo& event, const SubscriptionInfo& subscriber, Lane lane,
               std::uint64_t seq, const void* payload, Clock::time_point start,
               Clock::time_point end, Action verdict) override;
  void on_emit_end(const EventInfo& event, std::uint64_t seq, const Outcome& outcome) override;

  /// Lines written so far.
  std::uint64_t lines() const;

 private:
  void write(const std::string& line);

  std::unique_ptr<std::ofstream> file_;
  std::ostream* out_;
  Clock::time_point origin_ = Clock::now();
  mutable std::mutex mutex_;
  std::uint64_t lines_ = 0;
};

/// `text` as a JSON string literal (quotes, backslashes and control characters escaped).
std::string json_quote(const std::string& text);

}  // namespace hookline
