// The Chrome sink writes as the run goes: a run killed before its end leaves a trace that loads
// (the trace-event array form, whose closing "]" may be missing), and a finished run a whole one.
#include <boost/test/unit_test.hpp>

#include "scratch.hpp"

#include "hookline/tracing/chrome_sink.hpp"

#include <nlohmann/json.hpp>

#include <memory>

using namespace hookline;
using nlohmann::json;

namespace {

TraceRecord call_record(std::uint64_t seq, std::int32_t rank) {
  TraceRecord r;
  r.kind = TraceRecord::Kind::call;
  r.event = "training_step";
  r.subscriber = "lm";
  r.stage = "fit";
  r.seq = seq;
  r.rank = rank;
  r.thread = 1;
  r.bus = 1;
  r.start_ns = static_cast<std::int64_t>(seq) * 1000;
  r.duration_ns = 500;
  return r;
}

std::size_t slices(const json& events) {
  std::size_t n = 0;
  for (const json& e : events) n += e.at("ph") == "X";
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(chrome_stream)

BOOST_AUTO_TEST_CASE(an_unfinished_run_leaves_a_trace_that_loads) {
  tracing_tests::Scratch dir;
  const std::string path = dir.file("run.json");
  auto sink = std::make_shared<ChromeSink>(path);
  const std::size_t n = ChromeSink::kStreamRecords + 10;
  for (std::size_t i = 1; i <= n; ++i) sink->write(call_record(i, 0));
  // The sink is neither flushed nor destroyed (as after SIGKILL): the file holds what was
  // streamed so far, an array without its closing bracket.
  const std::string text = tracing_tests::read_text(path);
  BOOST_REQUIRE(!text.empty());
  BOOST_TEST(text.front() == '[');
  const json events = json::parse(text + "]");
  BOOST_REQUIRE(events.is_array());
  BOOST_TEST(slices(events) >= ChromeSink::kStreamRecords);
  BOOST_TEST(slices(events) <= n);
  bool named = false;
  for (const json& e : events)
    if (e.at("ph") == "M" && e.at("name") == "process_name")
      named = e.at("args").at("name") == "rank 0";
  BOOST_TEST(named);
  // Finished: the file is rewritten whole (object form, every record).
  sink.reset();
  const json whole = json::parse(tracing_tests::read_text(path));
  BOOST_REQUIRE(whole.contains("traceEvents"));
  BOOST_TEST(slices(whole["traceEvents"]) == n);
}

BOOST_AUTO_TEST_CASE(records_after_a_flush_stream_again_from_the_start) {
  tracing_tests::Scratch dir;
  const std::string path = dir.file("run.json");
  ChromeSink sink(path);
  for (std::uint64_t i = 1; i <= 10; ++i) sink.write(call_record(i, 1));
  sink.flush();  // a run boundary: a whole file
  BOOST_TEST(json::parse(tracing_tests::read_text(path)).contains("traceEvents"));
  const std::size_t more = ChromeSink::kStreamRecords;
  for (std::uint64_t i = 11; i < 11 + more; ++i) sink.write(call_record(i, 1));
  const json events = json::parse(tracing_tests::read_text(path) + "]");
  BOOST_REQUIRE(events.is_array());
  // Streamed at the 4096th record since the last stream: the first run's records come again.
  BOOST_TEST(slices(events) == ChromeSink::kStreamRecords);
  bool first_run = false;
  for (const json& e : events)
    first_run = first_run || (e.at("ph") == "X" && e["args"]["seq"] == 1);
  BOOST_TEST(first_run);
}

BOOST_AUTO_TEST_SUITE_END()
