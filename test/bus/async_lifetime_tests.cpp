// The async lane and the lifetime of what it calls and holds (issue 27, items 9-10): queued calls
// of a disconnected or expired subscriber do not start, and disconnect_and_wait.
// Waits are bounded (kPatience) so that a regression fails instead of hanging.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

using namespace hookline;
using namespace test_events;
using namespace std::chrono_literals;

namespace {

constexpr auto kPatience = 10s;

// A one-shot signal between threads, waited for with a bound.
class Latch {
 public:
  void open() {
    std::call_once(once_, [&] { promise_.set_value(); });
  }
  bool wait() const { return future_.wait_for(kPatience) == std::future_status::ready; }

 private:
  std::once_flag once_;
  std::promise<void> promise_;
  std::shared_future<void> future_ = promise_.get_future().share();
};

}  // namespace

BOOST_AUTO_TEST_SUITE(async_disconnect)

// Issue 27 item 9: 196 of 200 queued calls started after disconnect() returned.
BOOST_AUTO_TEST_CASE(queued_calls_do_not_start_after_disconnect_returns) {
  Bus bus;
  Latch first_started, release;
  std::atomic<int> started{0};
  Connection c = bus.on<Ping>(
      [&](const Ping&) {
        if (started.fetch_add(1) == 0) first_started.open();
        BOOST_TEST(release.wait());
      },
      SubscribeOptions().named("slow").lane(Lane::async));
  for (int i = 0; i < 200; ++i) bus.emit(Ping{i});
  BOOST_REQUIRE(first_started.wait());
  c.disconnect();
  const int at_disconnect = started.load();
  release.open();
  bus.flush();
  BOOST_TEST(at_disconnect == 1);   // the call that had started
  BOOST_TEST(started.load() == 1);  // the 199 queued ones were skipped
  BOOST_TEST(bus.async_lane().pending() == 0u);
}

BOOST_AUTO_TEST_CASE(disconnect_owner_and_all_skip_queued_calls_too) {
  Bus bus;
  Latch first_started, release;
  std::atomic<int> a{0}, b{0};
  const int owner = 0;
  bus.on<Ping>(
      [&](const Ping&) {
        if (a.fetch_add(1) == 0) first_started.open();
        BOOST_TEST(release.wait());
      },
      SubscribeOptions().named("a").lane(Lane::async).owner(&owner));
  bus.on<Ping>([&](const Ping&) { ++b; }, SubscribeOptions().named("b").lane(Lane::async));
  for (int i = 0; i < 50; ++i) bus.emit(Ping{i});
  BOOST_REQUIRE(first_started.wait());
  // With one pool thread b's calls wait behind a's; with more, b may have run some already.
  BOOST_TEST(bus.disconnect_owner(&owner) == 1u);
  BOOST_TEST(bus.disconnect_all() == 1u);
  const int b_at_disconnect = b.load();
  release.open();
  bus.flush();
  BOOST_TEST(a.load() == 1);
  BOOST_TEST(b.load() == b_at_disconnect);
}

BOOST_AUTO_TEST_CASE(queued_calls_of_a_blocked_subscriber_are_skipped) {
  Bus bus;
  Latch first_started, release;
  std::atomic<int> started{0};
  Connection c = bus.on<Ping>(
      [&](const Ping&) {
        if (started.fetch_add(1) == 0) first_started.open();
        BOOST_TEST(release.wait());
      },
      SubscribeOptions().lane(Lane::async));
  for (int i = 0; i < 20; ++i) bus.emit(Ping{i});
  BOOST_REQUIRE(first_started.wait());
  {
    const BlockGuard block(c);
    release.open();
    bus.flush();
  }
  BOOST_TEST(started.load() == 1);
  bus.emit(Ping{20});  // unblocked: delivered again
  bus.flush();
  BOOST_TEST(started.load() == 2);
}

BOOST_AUTO_TEST_CASE(disconnect_and_wait_returns_only_after_the_running_call) {
  Bus bus;
  Latch started, release;
  std::atomic<bool> finished{false};
  Connection c = bus.on<Ping>(
      [&](const Ping&) {
        started.open();
        BOOST_TEST(release.wait());
        finished = true;
      },
      SubscribeOptions().lane(Lane::async));
  bus.emit(Ping{1});
  bus.emit(Ping{2});
  BOOST_REQUIRE(started.wait());
  std::atomic<bool> finished_when_returned{false};
  auto waiter = std::async(std::launch::async, [&] {
    const bool waited = c.disconnect_and_wait();
    finished_when_returned = finished.load();
    return waited;
  });
  // It must still be waiting: the call it waits for has not been released. (A correct
  // implementation always passes this; a broken one passes it only if it returns late.)
  BOOST_TEST((waiter.wait_for(50ms) == std::future_status::timeout));
  BOOST_TEST(!c.connected());
  release.open();
  BOOST_REQUIRE((waiter.wait_for(kPatience) == std::future_status::ready));
  BOOST_TEST(waiter.get());
  BOOST_TEST(finished_when_returned.load());
  bus.flush();
}

BOOST_AUTO_TEST_CASE(disconnect_and_wait_with_no_call_running_returns_at_once) {
  Bus bus;
  std::atomic<int> calls{0};
  Connection c = bus.on<Ping>([&](const Ping&) { ++calls; }, SubscribeOptions().lane(Lane::async));
  bus.emit(Ping{1});
  bus.flush();
  BOOST_TEST(c.disconnect_and_wait());
  BOOST_TEST(c.disconnect_and_wait());  // twice is fine
  BOOST_TEST(Connection().disconnect_and_wait());
  Connection sync = bus.on<Ping>([&](const Ping&) { ++calls; });
  BOOST_TEST(sync.disconnect_and_wait());
  bus.emit(Ping{2});
  bus.flush();
  BOOST_TEST(calls.load() == 1);
}

BOOST_AUTO_TEST_CASE(disconnect_and_wait_from_its_own_handler_does_not_deadlock) {
  Bus bus;
  Latch ready;
  Connection self;
  std::atomic<int> calls{0};
  std::atomic<int> waited_answers{-1};
  self = bus.on<Ping>(
      [&](const Ping&) {
        BOOST_TEST(ready.wait());
        ++calls;
        waited_answers = self.disconnect_and_wait() ? 1 : 0;  // returns at once, false
      },
      SubscribeOptions().lane(Lane::async));
  for (int i = 0; i < 5; ++i) bus.emit(Ping{i});
  ready.open();
  auto flushed = std::async(std::launch::async, [&] { bus.flush(); });
  BOOST_REQUIRE((flushed.wait_for(kPatience) == std::future_status::ready));
  flushed.get();
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(waited_answers.load() == 0);
  BOOST_TEST(!self.connected());
}

BOOST_AUTO_TEST_CASE(an_owner_can_die_right_after_disconnect_and_wait) {
  // The pattern bus.hpp advises: many emissions queued, the owner disconnects and dies while one
  // of its calls runs. Nothing may touch the owner afterwards (ASan reports it if something does).
  Bus::Options options;
  options.async.threads = 2;
  Bus bus(options);
  struct Owner {
    std::vector<int> seen;
    Latch started;
  };
  auto owner = std::make_unique<Owner>();
  Connection c = bus.on<Ping>(
      [o = owner.get()](const Ping& p) {
        o->started.open();
        o->seen.push_back(p.value);
      },
      SubscribeOptions().lane(Lane::async));
  for (int i = 0; i < 500; ++i) bus.emit(Ping{i});
  BOOST_REQUIRE(owner->started.wait());
  BOOST_TEST(c.disconnect_and_wait());
  const std::size_t seen = owner->seen.size();
  BOOST_TEST(seen >= 1u);
  owner.reset();
  for (int i = 0; i < 100; ++i) bus.emit(Ping{i});
  bus.flush();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(async_tracking)

// Issue 27 item 10: 195 of 200 calls ran after the tracked object expired.
BOOST_AUTO_TEST_CASE(queued_calls_are_skipped_once_the_tracked_object_expired) {
  Bus bus;
  auto object = std::make_shared<int>(7);
  const std::weak_ptr<int> watch = object;
  Latch first_started, release;
  std::atomic<int> started{0};
  std::atomic<bool> alive_during_call{false};
  Connection c = bus.on<Ping>(
      [&](const Ping&) {
        if (started.fetch_add(1) == 0) first_started.open();
        BOOST_TEST(release.wait());
        alive_during_call = !watch.expired();
      },
      SubscribeOptions().named("tracked").lane(Lane::async).track(object));
  for (int i = 0; i < 200; ++i) bus.emit(Ping{i});
  BOOST_REQUIRE(first_started.wait());
  object.reset();  // the running call holds it: it dies when that call ends
  release.open();
  bus.flush();
  BOOST_TEST(started.load() == 1);
  BOOST_TEST(alive_during_call.load());
  BOOST_TEST(watch.expired());
  BOOST_TEST(!c.connected());
  bus.emit(Ping{200});  // the next emission drops the expired subscription, as for a sync one
  bus.flush();
  BOOST_TEST(started.load() == 1);
  BOOST_TEST(bus.subscriber_count<Ping>() == 0u);
}

BOOST_AUTO_TEST_CASE(the_tracked_object_is_locked_for_the_whole_async_call) {
  Bus bus;
  auto object = std::make_shared<int>(7);
  const std::weak_ptr<int> watch = object;
  Latch started, release;
  std::atomic<bool> alive_at_end{false};
  bus.on<Ping>(
      [&](const Ping&) {
        started.open();
        BOOST_TEST(release.wait());
        alive_at_end = !watch.expired();
      },
      SubscribeOptions().lane(Lane::async).track(object));
  bus.emit(Ping{1});
  BOOST_REQUIRE(started.wait());
  object.reset();
  BOOST_TEST(!watch.expired());  // held by the running call, not by the emission
  release.open();
  bus.flush();
  BOOST_TEST(alive_at_end.load());
  BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_SUITE_END()
