// hookline: turning tracing on from a spec string (HOOKLINE_TRACE, recipe files, command lines).
//
// A spec is a comma-separated list of items:
//   PATH              JSON lines to PATH (a PATH ending in ".json": Chrome trace)
//   jsonl:PATH        JSON lines to PATH
//   chrome:PATH       Chrome trace-event JSON to PATH (Perfetto, chrome://tracing)
//   ring:N[:PATH]     keep the last N records in memory; when a run fails (exception, SIGTERM,
//                     SIGINT) write them to PATH (default hookline-ring.jsonl)
//   summary[:PATH]    print per-hook and per-subscriber times at the end (stderr, or PATH)
//   tcp:[HOST:]PORT   serve records live (HOST 127.0.0.1 unless given; PORT 0: any free port,
//                     printed on stderr); follow with `hookline-trace tail PORT`
//   args              also record each event's arguments (describe()); costly
//   off               nothing (so is an empty spec)
// Examples: "run.jsonl", "ring:10000", "run.jsonl,chrome:run.json,summary", "tcp:7777".
//
// Under DDP each rank traces on its own (configure_tracing's `rank`, TraceSpec::for_rank): a path
// holding "{rank}" gets the rank there (run.{rank}.jsonl -> run.0.jsonl, run.1.jsonl); otherwise
// rank 0 keeps the path and rank N > 0 writes STEM.rankN.EXT (run.jsonl -> run.rank1.jsonl); the
// stream of rank N listens on PORT + N. `hookline-trace chrome run.jsonl run.rank1.jsonl` merges
// the ranks' files into one trace, a process per rank.
//
// Sinks named by the same item are shared by every bus configured in the process (two trainers
// tracing to "run.jsonl" write one file, in turn; a stream port is bound once). A file is
// truncated when the process first opens it and appended to afterwards.
#pragma once

#include "hookline/tracing/trace.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hookline {

class Bus;

struct TraceSpec {
  struct Item {
    enum class Kind { jsonl, chrome, ring, summary, tcp };
    Kind kind = Kind::jsonl;
    std::string path;          ///< jsonl, chrome, ring (dump path), summary ("" : stderr)
    std::size_t capacity = 0;  ///< ring
    std::string host;          ///< tcp
    std::uint16_t port = 0;    ///< tcp
    std::string key;           ///< canonical text, shared sinks are looked up by it
  };
  std::vector<Item> items;
  bool args = false;

  /// Parses `spec`; throws std::invalid_argument naming the bad item and the accepted forms.
  static TraceSpec parse(std::string_view spec);
  bool empty() const { return items.empty(); }
  /// This spec for the process of rank `rank` (see above); rank 0 changes only "{rank}" paths.
  TraceSpec for_rank(int rank) const;
};

/// A recorder with the sinks of `spec` (shared with other recorders made from the same items),
/// or null when the spec names no sink. Throws std::invalid_argument for a bad spec and
/// std::runtime_error when a file or port cannot be opened.
std::shared_ptr<TraceRecorder> make_trace_recorder(
    const TraceSpec& spec, std::shared_ptr<const TraceContext> context = nullptr);

/// Parses `spec`, makes its recorder (for the process of rank `rank`, see TraceSpec::for_rank)
/// and attaches it to `bus` (replacing any tracer; an empty spec or "off" detaches it). Returns
/// the recorder (null when off). Call it while nothing emits. A sink that cannot be opened (a
/// port in use) throws std::runtime_error, naming the rank when it is not 0.
std::shared_ptr<TraceRecorder> configure_tracing(
    Bus& bus, std::string_view spec, std::shared_ptr<const TraceContext> context = nullptr,
    int rank = 0);

}  // namespace hookline
