// libFuzzer target: the trace reader behind hookline-trace (JSON lines from files, stdin or a live
// stream, including the stream's hello/notice lines) and the checker that consumes what it reads.
// Properties: any bytes give records or an InputError, never another failure; a record that was
// read writes back (through the library's own JSON writer) to a line that reads as the same
// record; check_trace and format_text accept whatever the reader accepted.
#include "../../tools/trace/check.hpp"
#include "../../tools/trace/trace_file.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using hookline::trace_tool::InputError;
using hookline::trace_tool::Record;

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_trace_lines: %s\n", what.c_str());
  std::abort();
}

// The fields the writer keeps for the record's kind (an emit has no subscriber or lane, a call no
// parent, depth or pairing; readers ignore fields that do not belong to the kind).
void same_record(const Record& ra, const Record& rb) {
  const hookline::TraceRecord &a = ra.view(), &b = rb.view();
  const bool call = !ra.is_emit();
  if (a.kind != b.kind || a.event != b.event || (call && a.subscriber != b.subscriber) ||
      a.stage != b.stage || a.seq != b.seq || (!call && a.parent != b.parent) ||
      a.epoch != b.epoch || a.global_step != b.global_step || a.batch_idx != b.batch_idx ||
      a.dataloader_idx != b.dataloader_idx || a.start_ns != b.start_ns ||
      a.duration_ns != b.duration_ns || a.rank != b.rank || (!call && a.depth != b.depth) ||
      a.aborted != b.aborted || a.reason != b.reason || a.by != b.by || a.args != b.args)
    fail("a record changed when written and read again:\n  " + ra.text + "\n  " + rb.text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<Record> records;
  std::size_t start = 0, line = 0;
  while (start <= input.size()) {
    std::size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    ++line;
    try {
      if (auto r = hookline::trace_tool::parse_record(input.substr(start, end - start), line,
                                                      "fuzz:" + std::to_string(line)))
        records.push_back(std::move(*r));
    } catch (const InputError&) {
      // A clear error naming the line: the expected outcome for bad input.
    }
    start = end + 1;
  }
  for (const Record& r : records) {
    (void)hookline::trace_tool::format_text(r);
    std::string written;
    hookline::append_json(written, r.view());
    std::optional<Record> again;
    try {
      again = hookline::trace_tool::parse_record(written, 1, "rewritten");
    } catch (const InputError& e) {
      fail(std::string("a record read from the input does not read back: ") + e.what() + "\n  " +
           written);
    }
    if (!again) fail("a record read back as no record: " + written);
    same_record(r, *again);
  }
  try {
    (void)hookline::trace_tool::check_trace(records, "fuzz");
  } catch (const InputError&) {
  }
  return 0;
}
