// The JSON-lines trace sink.
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include "hookline/tracing/json_lines_tracer.hpp"

#include <sstream>
#include <thread>

using namespace hookline;
using namespace test_events;

BOOST_AUTO_TEST_SUITE(json_lines_tracer)

BOOST_AUTO_TEST_CASE(one_line_per_call_and_per_emission) {
  std::ostringstream out;
  Bus bus;
  auto tracer = std::make_shared<JsonLinesTracer>(out);
  bus.set_tracer(tracer);
  bus.on<Gate>([] { return Verdict::skip_batch("bad \"batch\""); },
               SubscribeOptions().named("judge"));
  bus.on<Ping>([](const Ping&) {}, SubscribeOptions().named("watcher").lane(Lane::async));
  bus.emit(Gate{7});
  bus.emit(Ping{1});
  bus.flush();
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  BOOST_REQUIRE(lines.size() == 4u);
  BOOST_TEST(tracer->lines() == 4u);
  BOOST_TEST(lines[0].find(R"({"seq":1,"kind":"call","event":"on_gate","subscriber":"judge")") ==
             0u);
  BOOST_TEST(lines[0].find(R"("verdict":"SkipBatch","args":"step=7"})") != std::string::npos);
  BOOST_TEST(lines[1] ==
             R"({"seq":1,"kind":"emit","event":"on_gate","verdict":"SkipBatch","by":"judge",)"
             R"("reason":"bad \"batch\""})");
  // The async call may finish before or after its emission's line.
  const std::string rest = lines[2] + lines[3];
  BOOST_TEST(rest.find(R"("subscriber":"watcher","lane":"async")") != std::string::npos);
  BOOST_TEST(rest.find(R"({"seq":2,"kind":"emit","event":"on_ping","verdict":"Continue"})") !=
             std::string::npos);
}

// A subscriber marked only_when_traced (a hook left at its default) is called by traced
// emissions only; it is still listed, marked, and an untraced emission does not count it.
BOOST_AUTO_TEST_CASE(only_when_traced_subscribers_are_called_by_traced_emissions_only) {
  Bus bus;
  std::vector<std::string> called;
  bus.on<Ping>([&](const Ping&) { called.push_back("default"); },
               SubscribeOptions().named("default").only_when_traced(true));
  bus.emit(Ping{1});
  BOOST_TEST(called.empty());
  BOOST_TEST(!bus.wants<Ping>());  // nobody an untraced emission would call
  bus.on<Ping>([&](const Ping&) { called.push_back("real"); }, SubscribeOptions().named("real"));
  bus.emit(Ping{2});
  BOOST_TEST(called == std::vector<std::string>{"real"});
  const auto subscribers = bus.subscribers<Ping>();
  BOOST_REQUIRE(subscribers.size() == 2u);
  BOOST_TEST(subscribers[0].only_when_traced);
  BOOST_TEST(!subscribers[1].only_when_traced);

  std::ostringstream out;
  bus.set_tracer(std::make_shared<JsonLinesTracer>(out));
  called.clear();
  bus.emit(Ping{3});
  BOOST_TEST((called == std::vector<std::string>{"default", "real"}));  // in subscription order
  BOOST_TEST(out.str().find(R"("subscriber":"default")") != std::string::npos);
  bus.set_tracer(nullptr);
  called.clear();
  bus.emit(Ping{4});
  BOOST_TEST(called == std::vector<std::string>{"real"});
}

// A subscriber marked runs_default does what the emitter would do itself: every emission calls
// it, but wants() and audience() tell the emitter when it is the only one listening.
BOOST_AUTO_TEST_CASE(runs_default_subscribers_are_called_but_not_counted_as_wanting) {
  Bus bus;
  BOOST_TEST((bus.audience<Ping>() == Bus::Audience::nobody));
  std::vector<std::string> called;
  auto fallback = bus.on<Ping>([&](const Ping&) { called.push_back("default"); },
                               SubscribeOptions().named("default").runs_default(true));
  bus.emit(Ping{1});  // an emission still calls it
  BOOST_TEST(called == std::vector<std::string>{"default"});
  BOOST_TEST(!bus.wants<Ping>());
  BOOST_TEST((bus.audience<Ping>() == Bus::Audience::defaults));
  BOOST_TEST(bus.subscribers<Ping>().at(0).runs_default);

  auto other = bus.on<Ping>([&](const Ping&) { called.push_back("other"); },
                            SubscribeOptions().named("other"));
  BOOST_TEST(bus.wants<Ping>());  // stale counts as wanted until the next emission
  called.clear();
  bus.emit(Ping{2});
  BOOST_TEST((called == std::vector<std::string>{"default", "other"}));
  BOOST_TEST(bus.wants<Ping>());
  BOOST_TEST((bus.audience<Ping>() == Bus::Audience::others));
  other.disconnect();
  bus.emit(Ping{3});
  BOOST_TEST((bus.audience<Ping>() == Bus::Audience::defaults));

  // A traced emission is for the tracer: the emitter must emit.
  std::ostringstream out;
  bus.set_tracer(std::make_shared<JsonLinesTracer>(out));
  BOOST_TEST(bus.wants<Ping>());
  BOOST_TEST((bus.audience<Ping>() == Bus::Audience::others));
  bus.set_tracer(nullptr);

  // Blocked, the default is not called by an emission, so the emitter must not run it either.
  fallback.block();
  bus.emit(Ping{4});
  BOOST_TEST((bus.audience<Ping>() == Bus::Audience::nobody));
  fallback.unblock();
  bus.emit(Ping{5});
  BOOST_TEST((bus.audience<Ping>() == Bus::Audience::defaults));
}

BOOST_AUTO_TEST_CASE(quoting_and_bad_paths) {
  BOOST_TEST(json_quote("a\"b\\c\nd\x01") == "\"a\\\"b\\\\c\\nd\\u0001\"");
  BOOST_CHECK_EXCEPTION(JsonLinesTracer("/nonexistent-dir/trace.jsonl"), std::runtime_error,
                        [](const std::runtime_error& e) {
                          return std::string(e.what()).find("/nonexistent-dir") !=
                                 std::string::npos;
                        });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(trace_clock)

// TraceClock (the TSC where the kernel uses it) never goes back, and measures the same durations
// as steady_clock, within 1% over 50 ms, whichever source it reads.
BOOST_AUTO_TEST_CASE(is_monotonic_and_agrees_with_steady_clock) {
  BOOST_TEST_MESSAGE("TraceClock reads the " << (TraceClock::uses_tsc() ? "TSC" : "steady clock"));
  TraceClock::time_point previous = TraceClock::now();
  for (int i = 0; i < 100000; ++i) {
    const TraceClock::time_point t = TraceClock::now();
    BOOST_REQUIRE(t >= previous);
    previous = t;
  }
  const auto steady0 = std::chrono::steady_clock::now();
  const auto trace0 = TraceClock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto trace1 = TraceClock::now();
  const auto steady1 = std::chrono::steady_clock::now();
  const double traced = std::chrono::duration<double>(trace1 - trace0).count();
  const double steady = std::chrono::duration<double>(steady1 - steady0).count();
  BOOST_TEST(traced <= steady * 1.01);  // within 1%: the scale is measured over 5 ms
  BOOST_TEST(traced >= steady * 0.99);
  // Its readings are steady_clock's time base (nanoseconds since the same origin).
  const auto gap = TraceClock::now().time_since_epoch() - TraceClock::steady().time_since_epoch();
  BOOST_TEST(std::chrono::abs(gap) < std::chrono::milliseconds(5));
}

BOOST_AUTO_TEST_SUITE_END()
