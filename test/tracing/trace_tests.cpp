// The trace recorder and its sinks: records, nesting, aborted emissions, context, JSON lines,
// Chrome trace, ring buffer, summary, spec strings.
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include "hookline/tracing/trace.hpp"
#include "hookline/tracing/trace_sinks.hpp"
#include "hookline/tracing/trace_spec.hpp"
#include "support/jsonl.hpp"
#include "support/temp_dir.hpp"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

using namespace hookline;
using namespace test_events;
using nlohmann::json;

namespace {

// Keeps copies of every record.
class Collect final : public TraceSink {
 public:
  void write(const TraceRecord& r) override {
    std::lock_guard lock(mutex_);
    records_.emplace_back(r);
  }
  std::vector<StoredRecord> records() const {
    std::lock_guard lock(mutex_);
    return records_;
  }
  /// "emit:on_gate" / "call:judge.on_gate", in order.
  std::vector<std::string> labels() const {
    std::vector<std::string> out;
    for (const auto& s : records()) {
      const TraceRecord& r = s.record;
      out.push_back(r.kind == TraceRecord::Kind::emit
                        ? "emit:" + std::string(r.event) + (r.aborted ? "(aborted)" : "")
                        : "call:" + std::string(r.subscriber) + "." + std::string(r.event));
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<StoredRecord> records_;
};

struct Outer {
  static constexpr std::string_view name = "on_outer";
};
struct Inner {
  static constexpr std::string_view name = "on_inner";
};
struct Failure {
  static constexpr std::string_view name = "on_exception";
};

// A context that says what a trainer would: the stage, a counter as the epoch.
class FakeContext final : public TraceContext {
 public:
  void fill_state(TraceFields& r) const override {
    r.stage = "fit";
    r.epoch = epoch;
    r.global_step = 10 * epoch;
    r.rank = 3;
  }
  void fill_payload(TraceFields& r, const EventInfo& event, const void* payload) const override {
    if (event.name == Gate::name) r.batch_idx = static_cast<const Gate*>(payload)->step;
  }
  std::int64_t epoch = 0;
};

using test_support::parse_jsonl;
using test_support::TempDir;

}  // namespace

BOOST_AUTO_TEST_SUITE(trace_recorder)

BOOST_AUTO_TEST_CASE(calls_then_emission_with_verdict_and_nesting) {
  Bus bus;
  auto sink = std::make_shared<Collect>();
  bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{sink}));
  bus.on<Outer>([&] { bus.emit(Inner{}); }, SubscribeOptions().named("a"));
  bus.on<Inner>([] {}, SubscribeOptions().named("b"));
  bus.on<Gate>([] { return Verdict::skip_batch("bad batch"); }, SubscribeOptions().named("judge"));
  bus.on<SpanStart>([] {}, SubscribeOptions().named("s"));
  bus.emit(Outer{});
  bus.emit(Gate{4});
  bus.emit(SpanStart{});
  bus.emit(Ping{});  // nobody listens: still an emission
  const std::vector<std::string> expected{
      "call:b.on_inner",      "emit:on_inner",      "call:a.on_outer",
      "emit:on_outer",        "call:judge.on_gate", "emit:on_gate",
      "call:s.on_span_start", "emit:on_span_start", "emit:on_ping"};
  BOOST_TEST(sink->labels() == expected, boost::test_tools::per_element());
  const auto records = sink->records();
  const TraceRecord& inner = records[1].record;
  const TraceRecord& outer = records[3].record;
  BOOST_TEST(outer.seq == 1u);
  BOOST_TEST(inner.seq == 2u);
  BOOST_TEST(inner.parent == 1u);
  BOOST_TEST(inner.depth == 1u);
  BOOST_TEST(outer.parent == 0u);
  BOOST_TEST(outer.depth == 0u);
  // The outer emission spans its call, which spans the inner emission.
  BOOST_TEST(outer.start_ns <= inner.start_ns);
  BOOST_TEST(outer.start_ns + outer.duration_ns >= inner.start_ns + inner.duration_ns);
  const TraceRecord& gate = records[5].record;
  BOOST_TEST((gate.verdict == Action::SkipBatch));
  BOOST_TEST(gate.by == "judge");
  BOOST_TEST(gate.reason == "bad batch");
  BOOST_TEST((records[4].record.verdict == Action::SkipBatch));
  BOOST_TEST((records[7].record.pairing == Pairing::start));
  BOOST_TEST(records[8].record.duration_ns == 0);
  for (const auto& r : records) {
    BOOST_TEST(r.record.thread >= 1u);
    BOOST_TEST(r.record.thread == records[0].record.thread);
  }
}

BOOST_AUTO_TEST_CASE(emissions_cut_short_by_an_exception_are_recorded_as_aborted) {
  Bus bus;
  auto sink = std::make_shared<Collect>();
  bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{sink}));
  bus.on<Outer>([&] { bus.emit(Inner{}); }, SubscribeOptions().named("a"));
  bus.on<Inner>([] { throw std::runtime_error("boom"); }, SubscribeOptions().named("b"));
  bus.on<Failure>([] {}, SubscribeOptions().named("handler"));
  BOOST_CHECK_THROW(bus.emit(Outer{}), std::runtime_error);
  BOOST_TEST(sink->labels().empty());
  bus.emit(Failure{});  // what a trainer emits next: the unwound emissions are closed first
  const std::vector<std::string> expected{"emit:on_inner(aborted)", "emit:on_outer(aborted)",
                                          "call:handler.on_exception", "emit:on_exception"};
  BOOST_TEST(sink->labels() == expected, boost::test_tools::per_element());
  const auto records = sink->records();
  BOOST_TEST(records[0].record.parent == 1u);
  BOOST_TEST(records[3].record.depth == 0u);
  BOOST_TEST(records[3].record.parent == 0u);
}

BOOST_AUTO_TEST_CASE(a_nested_emission_whose_exception_was_caught_is_closed_by_its_parent) {
  Bus bus;
  auto sink = std::make_shared<Collect>();
  bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{sink}));
  bus.on<Outer>(
      [&] {
        try {
          bus.emit(Inner{});
        } catch (const std::runtime_error&) {
        }
      },
      SubscribeOptions().named("a"));
  bus.on<Inner>([] { throw std::runtime_error("boom"); }, SubscribeOptions().named("b"));
  bus.emit(Outer{});
  const std::vector<std::string> expected{"call:a.on_outer", "emit:on_inner(aborted)",
                                          "emit:on_outer"};
  BOOST_TEST(sink->labels() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(context_fills_sync_and_async_records) {
  Bus bus;
  auto sink = std::make_shared<Collect>();
  auto context = std::make_shared<FakeContext>();
  bus.set_tracer(
      std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{sink}, context));
  bus.on<Gate>([](const Gate&) {}, SubscribeOptions().named("sync"));
  bus.on<Gate>([](const Gate&) {}, SubscribeOptions().named("async").lane(Lane::async));
  context->epoch = 2;
  bus.emit(Gate{7});
  bus.flush();  // the async call ran after the emission...
  context->epoch = 5;
  bus.emit(Ping{});  // ...and the context moved on: it still reports the emission's epoch
  bus.flush();
  bool seen_async = false;
  for (const auto& s : sink->records()) {
    const TraceRecord& r = s.record;
    if (r.event != Gate::name) continue;
    BOOST_TEST(r.stage == "fit");
    BOOST_TEST(r.epoch == 2);
    BOOST_TEST(r.global_step == 20);
    BOOST_TEST(r.batch_idx == 7);
    BOOST_TEST(r.rank == 3);
    if (r.lane == Lane::async) {
      seen_async = true;
      BOOST_TEST(r.subscriber == "async");
    }
  }
  BOOST_TEST(seen_async);
}

BOOST_AUTO_TEST_CASE(args_are_rendered_on_request) {
  Bus bus;
  auto sink = std::make_shared<Collect>();
  TraceRecorder::Options options;
  options.args = true;
  bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{sink},
                                                 nullptr, options));
  bus.on<Gate>([] {}, SubscribeOptions().named("g"));
  bus.emit(Gate{3});
  const auto records = sink->records();
  BOOST_REQUIRE(records.size() == 2u);
  BOOST_TEST(records[0].record.args == "step=3");
  BOOST_TEST(records[1].record.args == "step=3");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(trace_sinks)

BOOST_AUTO_TEST_CASE(jsonl_lines_parse_and_carry_the_fields) {
  std::ostringstream out;
  {
    Bus bus;
    auto jsonl = std::make_shared<JsonlSink>(out);
    bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{jsonl},
                                                   std::make_shared<FakeContext>()));
    bus.on<Gate>([] { return Verdict::stop_fit("say \"stop\""); },
                 SubscribeOptions().named("judge"));
    bus.emit(Gate{9});
  }
  const auto lines = parse_jsonl(out.str());
  BOOST_REQUIRE(lines.size() == 2u);
  const json& call = lines[0];
  BOOST_TEST(call["kind"] == "call");
  BOOST_TEST(call["event"] == "on_gate");
  BOOST_TEST(call["subscriber"] == "judge");
  BOOST_TEST(call["stage"] == "fit");
  BOOST_TEST(call["epoch"] == 0);
  BOOST_TEST(call["global_step"] == 0);
  BOOST_TEST(call["batch_idx"] == 9);
  BOOST_TEST(call["rank"] == 3);
  BOOST_TEST(call["lane"] == "sync");
  BOOST_TEST(call["verdict"] == "StopFit");
  BOOST_TEST(call.contains("start_ns"));
  BOOST_TEST(call.contains("duration_ns"));
  BOOST_TEST(call.contains("thread"));
  BOOST_TEST(call.contains("bus"));
  BOOST_TEST(!call.contains("dataloader_idx"));
  const json& emit = lines[1];
  BOOST_TEST(emit["kind"] == "emit");
  BOOST_TEST(emit["seq"] == call["seq"]);
  BOOST_TEST(emit["by"] == "judge");
  BOOST_TEST(emit["reason"] == "say \"stop\"");
  BOOST_TEST(emit["parent"] == 0);
}

BOOST_AUTO_TEST_CASE(jsonl_file_errors_name_the_path) {
  BOOST_CHECK_EXCEPTION(
      JsonlSink("/nonexistent-dir/x.jsonl"), std::runtime_error, [](const std::runtime_error& e) {
        return std::string(e.what()).find("/nonexistent-dir/x.jsonl") != std::string::npos;
      });
}

BOOST_AUTO_TEST_CASE(ring_buffer_keeps_the_last_records_and_dumps_on_failure) {
  TempDir dir;
  RingBufferSink::Options options;
  options.capacity = 5;
  options.path = dir.file("ring.jsonl");
  options.announce = false;
  auto ring = std::make_shared<RingBufferSink>(options);
  Bus bus;
  bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{ring}));
  bus.on<Gate>([] {}, SubscribeOptions().named("g"));
  for (int i = 0; i < 10; ++i) bus.emit(Gate{i});  // 20 records, 5 kept
  BOOST_TEST(ring->written() == 20u);
  auto held = ring->snapshot();
  BOOST_REQUIRE(held.size() == 5u);
  BOOST_TEST(held.front().record.seq == 8u);  // call(8) emit(8) call(9) emit(9) call(10) emit(10)
  BOOST_TEST(held.back().record.seq == 10u);
  BOOST_TEST(!std::filesystem::exists(options.path));
  bus.emit(Failure{});
  BOOST_TEST(ring->dumps() == 1u);
  const auto lines = parse_jsonl(test_support::read_text(options.path));
  BOOST_REQUIRE(lines.size() == 5u);
  BOOST_TEST(lines.back()["event"] == "on_exception");
  BOOST_TEST(lines.front()["seq"] == 9);
}

BOOST_AUTO_TEST_CASE(summary_counts_and_quantiles) {
  DurationStats s;
  for (int i = 1; i <= 1000; ++i) s.add(i * 1000);  // 1 us .. 1 ms
  BOOST_TEST(s.count() == 1000u);
  BOOST_TEST(s.total() == 500500000);
  BOOST_TEST(s.max() == 1000000);
  BOOST_TEST(std::abs(s.quantile(0.5) - 500000) <= 500000 / 50);
  BOOST_TEST(std::abs(s.quantile(0.99) - 990000) <= 990000 / 50);
  DurationStats small;
  for (int i = 0; i < 100; ++i) small.add(i);  // exact below 128 ns
  BOOST_TEST(small.quantile(0.5) == 49);

  TraceSummary summary;
  TraceRecord r;
  r.kind = TraceRecord::Kind::call;
  r.event = "on_gate";
  r.subscriber = "judge";
  r.duration_ns = 2000;
  summary.add(r);
  summary.add(r);
  r.kind = TraceRecord::Kind::emit;
  r.duration_ns = 5000;
  summary.add(r);
  BOOST_TEST(summary.subscribers().at("judge").count() == 2u);
  BOOST_TEST(summary.calls().at("judge.on_gate").total() == 4000);
  BOOST_TEST(summary.hooks().at("on_gate").count() == 1u);
  std::ostringstream out;
  summary.print(out);
  BOOST_TEST(out.str().find("p99 us") != std::string::npos);
  BOOST_TEST(out.str().find("judge") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(chrome_trace_parses_with_tracks_slices_and_paired_spans) {
  TempDir dir;
  const std::string path = dir.file("trace.json");
  {
    Bus bus;
    bus.set_tracer(std::make_shared<TraceRecorder>(
        std::vector<std::shared_ptr<TraceSink>>{std::make_shared<ChromeSink>(path)}));
    bus.on<SpanStart>([] {}, SubscribeOptions().named("a"));
    bus.on<SpanEnd>([] {}, SubscribeOptions().named("a"));
    bus.on<Gate>([] {}, SubscribeOptions().named("a"));
    bus.on<Ping>([](const Ping&) {}, SubscribeOptions().named("watcher").lane(Lane::async));
    bus.emit(SpanStart{});
    bus.emit(Gate{1});
    bus.emit(Ping{});
    bus.emit(SpanEnd{});
    bus.emit(SpanStart{});  // never ends: shown as unfinished
    bus.flush();
  }
  const json trace = json::parse(test_support::read_text(path));
  BOOST_REQUIRE(trace.contains("traceEvents"));
  int spans = 0, unfinished = 0, calls = 0, emits = 0, names = 0;
  std::set<std::int64_t> tids;
  for (const json& e : trace["traceEvents"]) {
    BOOST_REQUIRE(e.contains("ph"));
    BOOST_REQUIRE(e.contains("name"));
    BOOST_REQUIRE(e.contains("pid"));
    if (e["ph"] == "M") {
      ++names;
      continue;
    }
    BOOST_TEST(e["ph"] == "X");
    BOOST_REQUIRE(e.contains("ts"));
    BOOST_REQUIRE(e.contains("dur"));
    BOOST_REQUIRE(e.contains("tid"));
    BOOST_TEST(e["dur"].get<double>() >= 0);
    tids.insert(e["tid"].get<std::int64_t>());
    if (e["cat"] == "span") {
      ++spans;
      if (e["name"] == "span (unfinished)") ++unfinished;
    }
    if (e["cat"] == "call") ++calls;
    if (e["cat"] == "emit") ++emits;
  }
  BOOST_TEST(spans == 2);
  BOOST_TEST(unfinished == 1);
  BOOST_TEST(calls == 5);
  BOOST_TEST(emits == 5);
  BOOST_TEST(tids.size() == 2u);  // the sync lane and the async lane's thread
  BOOST_TEST(names >= 3);         // process name, thread names
  // The finished span encloses the emissions between its start and its end.
  double span_ts = 0, span_end = 0;
  for (const json& e : trace["traceEvents"])
    if (e["ph"] == "X" && e["name"] == "span") {
      span_ts = e["ts"].get<double>();
      span_end = span_ts + e["dur"].get<double>();
    }
  for (const json& e : trace["traceEvents"])
    if (e["ph"] == "X" && e["name"] == "on_gate") {
      BOOST_TEST(e["ts"].get<double>() >= span_ts);
      BOOST_TEST(e["ts"].get<double>() + e["dur"].get<double>() <= span_end);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(trace_spec)

BOOST_AUTO_TEST_CASE(items_parse) {
  const auto spec = TraceSpec::parse(
      " run.jsonl, chrome:out/run.json ,ring:100, ring:5:/tmp/r.jsonl,summary,tcp:0,"
      "tcp:localhost:7000,args,trace.json");
  using Kind = TraceSpec::Item::Kind;
  BOOST_REQUIRE(spec.items.size() == 8u);
  BOOST_TEST((spec.items[0].kind == Kind::jsonl));
  BOOST_TEST(std::filesystem::path(spec.items[0].path).is_absolute());
  BOOST_TEST((spec.items[1].kind == Kind::chrome));
  BOOST_TEST((spec.items[2].kind == Kind::ring));
  BOOST_TEST(spec.items[2].capacity == 100u);
  BOOST_TEST(spec.items[2].path.empty());
  BOOST_TEST(spec.items[3].path == "/tmp/r.jsonl");
  BOOST_TEST((spec.items[4].kind == Kind::summary));
  BOOST_TEST(spec.items[5].host == "127.0.0.1");
  BOOST_TEST(spec.items[5].port == 0);
  BOOST_TEST(spec.items[6].host == "localhost");
  BOOST_TEST(spec.items[6].port == 7000);
  BOOST_TEST((spec.items[7].kind == Kind::chrome));
  BOOST_TEST(spec.args);
  BOOST_TEST(TraceSpec::parse("").empty());
  BOOST_TEST(TraceSpec::parse("off").empty());
}

BOOST_AUTO_TEST_CASE(bad_items_are_named) {
  for (const char* bad : {"ring:", "ring:x", "ring:0", "tcp:", "tcp:99999", "jsonl:", "bogus:1",
                          "tcp:host:", "ring:5:"}) {
    BOOST_TEST_CONTEXT(bad) {
      BOOST_CHECK_EXCEPTION(TraceSpec::parse(bad), std::invalid_argument,
                            [&](const std::invalid_argument& e) {
                              return std::string(e.what()).find(bad) != std::string::npos &&
                                     std::string(e.what()).find("accepted:") != std::string::npos;
                            });
    }
  }
}

BOOST_AUTO_TEST_CASE(configure_tracing_shares_sinks_by_item) {
  TempDir dir;
  const std::string spec = dir.file("shared.jsonl") + ",ring:50";
  Bus a, b;
  auto ra = configure_tracing(a, spec);
  auto rb = configure_tracing(b, spec);
  BOOST_REQUIRE(ra && rb);
  BOOST_TEST(ra->id() != rb->id());
  BOOST_TEST(ra->sinks().size() == 2u);
  BOOST_TEST(ra->sinks()[0] == rb->sinks()[0]);
  BOOST_TEST(ra->sink<RingBufferSink>() == rb->sink<RingBufferSink>());
  BOOST_TEST(ra->sink<RingBufferSink>()->options().capacity == 50u);
  a.emit(Ping{});
  b.emit(Ping{});
  a.set_tracer(nullptr);
  b.set_tracer(nullptr);
  ra.reset();
  rb.reset();
  const auto lines = parse_jsonl(test_support::read_text(dir.file("shared.jsonl")));
  BOOST_REQUIRE(lines.size() == 2u);
  BOOST_TEST(lines[0]["bus"] != lines[1]["bus"]);
  BOOST_TEST(configure_tracing(a, "off") == nullptr);
  BOOST_TEST(a.tracer() == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()
