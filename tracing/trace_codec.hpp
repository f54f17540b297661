// hookline: the one codec of trace records: a TraceRecord to one JSON line (the JSON-lines sink,
// the ring buffer's dump, the live stream) and back (hookline-trace), and the one JSON string
// escaper of tracing/.
//
// A line holds the fields below; fields that do not apply (TraceRecord::kNone, empty strings,
// false) are left out:
//   seq kind event subscriber(call) stage epoch global_step batch_idx dataloader_idx rank bus
//   thread lane(call) parent(emit) depth(emit) pair(emit) start_ns duration_ns verdict by reason
//   aborted args
// The live stream also sends lines of kind "hello" and "notice", which are not records.
#pragma once

#include "hookline/tracing/trace.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hookline {

/// Appends `s` as a JSON string literal (quoted and escaped) to `out`.
void append_json_string(std::string& out, std::string_view s);

/// Encodes `record` as one JSON object (no newline), appended to `out`.
void append_json(std::string& out, const TraceRecord& record);

/// An owning copy of a TraceRecord: `record`'s string views point into the strings below.
/// Assigning over a used one reuses their storage, so a warm buffer of them does not allocate.
struct StoredRecord {
  TraceRecord record;
  std::string event, stage, subscriber, by, reason, skip_by, skip_reason, args;

  StoredRecord() = default;
  explicit StoredRecord(const TraceRecord& r) { assign(r); }
  StoredRecord(const StoredRecord& other) { assign(other.record); }
  StoredRecord& operator=(const StoredRecord& other) {
    if (this != &other) assign(other.record);
    return *this;
  }
  void assign(const TraceRecord& r);
  /// Points `record`'s string views at the strings of this object.
  void bind();
};

/// Where decode_record() reads a line's fields from: one JSON object, parsed by the caller's
/// JSON library. A getter returns nothing for an absent (or null) field and throws the caller's
/// error (naming the line) for a field of another type; fail() throws it with `what`.
class TraceFieldReader {
 public:
  virtual ~TraceFieldReader() = default;
  virtual std::optional<std::string> string(const char* key) const = 0;
  virtual std::optional<std::int64_t> integer(const char* key) const = 0;
  virtual std::optional<bool> boolean(const char* key) const = 0;
  [[noreturn]] virtual void fail(const std::string& what) const = 0;
};

/// Decodes one line's fields into `out`: kind, event and seq are required, and subscriber for a
/// call. Returns false for the stream's hello and notice lines (no records).
bool decode_record(const TraceFieldReader& in, StoredRecord& out);

}  // namespace hookline
