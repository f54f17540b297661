// hookline-trace: reading JSON-lines traces, and the record filters the subcommands share.
#pragma once

#include <hookline/tracing/trace_codec.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace hookline::trace_tool {

/// Bad input: "FILE:LINE: what" (exit code 2).
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One record of a trace file, with the line it came from.
struct Record {
  std::size_t line = 0;  ///< 1-based line number in its file
  std::string text;      ///< the line as read
  nlohmann::json json;
  StoredRecord stored;  ///< the decoded fields (tracing/trace_codec.hpp)

  const TraceRecord& view() const { return stored.record; }
  bool is_emit() const { return stored.record.kind == TraceRecord::Kind::emit; }
  bool is_call() const { return stored.record.kind == TraceRecord::Kind::call; }
};

/// Parses one line; `where` ("FILE:LINE") prefixes errors. Returns nothing for lines that are
/// not records (blank lines, the stream's hello and notice lines).
std::optional<Record> parse_record(const std::string& line, std::size_t line_number,
                                   const std::string& where);

/// Reads a JSON-lines trace ("-": standard input). Throws InputError naming file and line.
std::vector<Record> load_trace(const std::string& path);

/// An inclusive integer range: "N", "A..B", "A..", "..B".
struct Range {
  std::int64_t low = INT64_MIN, high = INT64_MAX;
  bool contains(std::int64_t v) const { return v >= low && v <= high; }
  static Range parse(const std::string& text, const std::string& option);
};

/// What `filter`, `summary`, `diff` and `tail` select records by. Empty lists match everything;
/// names may use shell wildcards (on_train_*).
struct Selection {
  std::vector<std::string> events, subscribers, stages, kinds, lanes;
  std::optional<Range> epoch, step, batch;
  std::optional<std::int64_t> rank;
  bool matches(const Record& r) const;
};

/// One line for people: "seq kind event subscriber stage epoch step batch duration verdict".
std::string format_text(const Record& r);

}  // namespace hookline::trace_tool
