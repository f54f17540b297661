// The async lane: ordering, flush, back-pressure, failures, snapshots.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "sanitizers.hpp"
#include "test_events.hpp"

#include <atomic>
#include <future>
#include <thread>
#include <utility>

using namespace hookline;
using namespace test_events;

BOOST_AUTO_TEST_SUITE(async_lane)

BOOST_AUTO_TEST_CASE(async_subscriber_sees_every_event_in_order_after_flush) {
  Bus bus;
  std::vector<int> seen;
  bus.on<Ping>([&](const Ping& p) { seen.push_back(p.value); },
               SubscribeOptions().lane(Lane::async));
  for (int i = 0; i < 1000; ++i) bus.emit(Ping{i});
  bus.flush();
  BOOST_REQUIRE(seen.size() == 1000u);
  for (int i = 0; i < 1000; ++i) BOOST_REQUIRE(seen[static_cast<std::size_t>(i)] == i);
}

BOOST_AUTO_TEST_CASE(one_million_events_nothing_lost_under_back_pressure) {
  Bus bus(async_options({.threads = 2, .capacity = 256}));
  constexpr int kEvents = 1'000'000 / hookline_test::kSanitizedScale;
  struct Seen {
    long long sum = 0;
    int last = -1;
    bool ordered = true;
  };
  Seen a, b;  // one per subscriber: they run in parallel
  for (auto [seen, name] : {std::pair{&a, "a"}, std::pair{&b, "b"}})
    bus.on<Ping>(
        [seen](const Ping& p) {
          seen->ordered = seen->ordered && p.value == seen->last + 1;
          seen->last = p.value;
          seen->sum += p.value;
        },
        SubscribeOptions().named(name).lane(Lane::async));
  for (int i = 0; i < kEvents; ++i) bus.emit(Ping{i});
  bus.flush();
  const long long expected = static_cast<long long>(kEvents) * (kEvents - 1) / 2;
  BOOST_TEST(a.ordered);
  BOOST_TEST(b.ordered);
  BOOST_TEST(a.last == kEvents - 1);
  BOOST_TEST(a.sum == expected);
  BOOST_TEST(b.sum == expected);
  BOOST_TEST(bus.async_lane().completed() == 2u * kEvents);
  BOOST_TEST(bus.async_lane().pending() == 0u);
  BOOST_TEST(bus.async_lane().waits() > 0u);  // capacity 256 forced back-pressure
}

BOOST_AUTO_TEST_CASE(full_queue_in_fail_mode_reports_instead_of_dropping) {
  Bus bus(async_options({.capacity = 2, .when_full = AsyncLane::WhenFull::fail}));
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  std::atomic<int> delivered{0};
  bus.on<Ping>(
      [&, open](const Ping&) {
        open.wait();
        ++delivered;
      },
      SubscribeOptions().named("slow").lane(Lane::async));
  bus.emit(Ping{1});
  bus.emit(Ping{2});
  BOOST_CHECK_EXCEPTION(bus.emit(Ping{3}), QueueFull, [](const QueueFull& e) {
    return std::string(e.what()).find("slow") != std::string::npos;
  });
  gate.set_value();
  bus.flush();
  BOOST_TEST(delivered.load() == 2);  // the two accepted events, and the caller knows about #3
}

BOOST_AUTO_TEST_CASE(flush_rethrows_async_failure_once) {
  Bus bus;
  bus.on<Ping>(
      [](const Ping& p) {
        if (p.value == 2) throw std::runtime_error("disk full");
      },
      SubscribeOptions().lane(Lane::async));
  for (int i = 0; i < 4; ++i) bus.emit(Ping{i});
  BOOST_CHECK_EXCEPTION(bus.flush(), std::runtime_error, [](const std::runtime_error& e) {
    return std::string(e.what()) == "disk full";
  });
  BOOST_CHECK_NO_THROW(bus.flush());
}

BOOST_AUTO_TEST_CASE(async_subscribers_get_a_snapshot) {
  Bus bus;
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  int seen = -1;
  bus.on<Ping>(
      [&, open](const Ping& p) {
        open.wait();
        seen = p.value;
      },
      SubscribeOptions().lane(Lane::async));
  Ping p{5};
  bus.emit(p);
  p.value = 99;  // the loop reuses its payload
  gate.set_value();
  bus.flush();
  BOOST_TEST(seen == 5);
}

BOOST_AUTO_TEST_CASE(async_subscribers_cannot_veto_or_mutate) {
  Bus bus;
  BOOST_CHECK_THROW(bus.on<Gate>([](const Gate&) { return Verdict::stop_fit("x"); },
                                 SubscribeOptions().lane(Lane::async)),
                    std::invalid_argument);
  BOOST_CHECK_THROW(
      bus.on<Ping>([](Ping& p) { p.value = 1; }, SubscribeOptions().lane(Lane::async)),
      std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(async_and_sync_mix_and_verdicts_come_from_sync_only) {
  Bus bus;
  std::atomic<int> async_calls{0};
  bus.on<Gate>([&](const Gate&) { ++async_calls; }, SubscribeOptions().lane(Lane::async));
  bus.on<Gate>([] { return Verdict::skip_batch("sync says so"); });
  Outcome out = bus.emit(Gate{});
  bus.flush();
  BOOST_TEST((out.action == Action::SkipBatch));
  BOOST_TEST(async_calls.load() == 1);
}

BOOST_AUTO_TEST_CASE(async_subscriber_may_emit_without_deadlock) {
  Bus bus(async_options({.capacity = 1}));
  std::atomic<int> pongs{0};
  bus.on<Gate>([&](const Gate&) { ++pongs; }, SubscribeOptions().lane(Lane::async));
  bus.on<Ping>([&](const Ping&) { bus.emit(Gate{}); }, SubscribeOptions().lane(Lane::async));
  for (int i = 0; i < 200; ++i) bus.emit(Ping{i});
  bus.flush();
  BOOST_TEST(pongs.load() == 200);
}

BOOST_AUTO_TEST_CASE(lane_options_are_validated) {
  BOOST_CHECK_THROW(AsyncLane(AsyncLane::Options{0, 8, AsyncLane::WhenFull::block}),
                    std::invalid_argument);
  BOOST_CHECK_THROW(AsyncLane(AsyncLane::Options{1, 0, AsyncLane::WhenFull::block}),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
