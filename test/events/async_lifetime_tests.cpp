// The async lane and the lifetime of what it calls and holds (issue 27, items 9-11): queued calls
// of a disconnected or expired subscriber do not start, disconnect_and_wait, and the byte budget.
// Waits are bounded (kPatience) so that a regression fails instead of hanging.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include <atomic>
#include <chrono>
#include <functional>
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
  /// Whether it opened within kPatience. Handlers (on pool threads, where Boost.Test's checks
  /// are not thread-safe) call it without checking; the test checks missed() at its end.
  bool wait() const {
    if (future_.wait_for(kPatience) == std::future_status::ready) return true;
    missed_ = true;
    return false;
  }
  bool missed() const { return missed_.load(); }

 private:
  mutable std::atomic<bool> missed_{false};
  std::once_flag once_;
  std::promise<void> promise_;
  std::shared_future<void> future_ = promise_.get_future().share();
};

// Polls `done` until it holds or kPatience runs out: for counts another thread advances.
template <class F>
bool eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// A handler that counts its calls in `started`, opens `first` at the first call, then waits for
// `release`.
auto holds_until_released(std::atomic<int>& started, Latch& first, const Latch& release) {
  return [&started, &first, &release](const Ping&) {
    if (started.fetch_add(1) == 0) first.open();
    release.wait();
  };
}

// Runs `work` on another thread and requires it to finish within kPatience.
void finishes_in_time(const std::function<void()>& work) {
  auto done = std::async(std::launch::async, work);
  BOOST_REQUIRE((done.wait_for(kPatience) == std::future_status::ready));
  done.get();
}

// An event that shares a buffer, and says how large it is.
struct Blob {
  static constexpr std::string_view name = "on_blob";
  std::shared_ptr<const std::vector<char>> data;
  static Blob of(std::size_t n) { return Blob{std::make_shared<const std::vector<char>>(n)}; }
};

// A handler that waits for `release`, then counts its call in `delivered`.
auto counts_when_released(const Latch& release, std::atomic<int>& delivered) {
  return [&release, &delivered](const Blob&) {
    release.wait();
    ++delivered;
  };
}

}  // namespace

template <>
struct hookline::EventBytes<Blob> {
  static std::size_t of(const Blob& b) { return b.data ? b.data->size() : 0; }
};

BOOST_AUTO_TEST_SUITE(async_disconnect)

// Issue 27 item 9: 196 of 200 queued calls started after disconnect() returned.
BOOST_AUTO_TEST_CASE(queued_calls_do_not_start_after_disconnect_returns) {
  Latch first_started, release;
  Bus bus;
  std::atomic<int> started{0};
  Connection c = bus.on<Ping>(holds_until_released(started, first_started, release),
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
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_CASE(disconnect_owner_and_all_skip_queued_calls_too) {
  Latch first_started, release;
  Bus bus;
  std::atomic<int> a{0}, b{0};
  const int owner = 0;
  bus.on<Ping>(holds_until_released(a, first_started, release),
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
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_CASE(queued_calls_of_a_blocked_subscriber_are_skipped) {
  Latch first_started, release;
  Bus bus;
  std::atomic<int> started{0};
  Connection c = bus.on<Ping>(holds_until_released(started, first_started, release),
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
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_CASE(disconnect_and_wait_returns_only_after_the_running_call) {
  Latch started, release;
  Bus bus;
  std::atomic<bool> finished{false};
  Connection c = bus.on<Ping>(
      [&](const Ping&) {
        started.open();
        release.wait();
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
  BOOST_TEST(!release.missed());
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
  Latch ready;
  Bus bus;
  Connection self;
  std::atomic<int> calls{0};
  std::atomic<int> waited_answers{-1};
  self = bus.on<Ping>(
      [&](const Ping&) {
        ready.wait();
        ++calls;
        waited_answers = self.disconnect_and_wait() ? 1 : 0;  // returns at once, false
      },
      SubscribeOptions().lane(Lane::async));
  for (int i = 0; i < 5; ++i) bus.emit(Ping{i});
  ready.open();
  finishes_in_time([&] { bus.flush(); });
  BOOST_TEST(calls.load() == 1);
  BOOST_TEST(waited_answers.load() == 0);
  BOOST_TEST(!self.connected());
  BOOST_TEST(!ready.missed());
}

BOOST_AUTO_TEST_CASE(an_owner_can_die_right_after_disconnect_and_wait) {
  // The pattern bus.hpp advises: many emissions queued, the owner disconnects and dies while one
  // of its calls runs. Nothing may touch the owner afterwards (ASan reports it if something does).
  Bus bus(async_options({.threads = 2}));
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
  Latch first_started, release;
  Bus bus;
  auto object = std::make_shared<int>(7);
  const std::weak_ptr<int> watch = object;
  std::atomic<int> started{0};
  std::atomic<bool> alive_during_call{false};
  Connection c = bus.on<Ping>(
      [&](const Ping&) {
        if (started.fetch_add(1) == 0) first_started.open();
        release.wait();
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
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_CASE(the_tracked_object_is_locked_for_the_whole_async_call) {
  Latch started, release;
  Bus bus;
  auto object = std::make_shared<int>(7);
  const std::weak_ptr<int> watch = object;
  std::atomic<bool> alive_at_end{false};
  bus.on<Ping>(
      [&](const Ping&) {
        started.open();
        release.wait();
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
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(async_byte_budget)

BOOST_AUTO_TEST_CASE(defaults_bound_tasks_and_bytes) {
  const AsyncLane::Options defaults;
  BOOST_TEST(defaults.capacity <= 1024u);
  BOOST_TEST(defaults.max_bytes == std::size_t{64} << 20);
  BOOST_CHECK_THROW(AsyncLane(AsyncLane::Options{1, 8, AsyncLane::WhenFull::block, 0}),
                    std::invalid_argument);
  BOOST_TEST(approx_bytes(Ping{}) == sizeof(Ping));  // unless specialised
  BOOST_TEST(approx_bytes(Blob::of(300)) == 300u);
}

// Issue 27 item 11: a slow observer held one batch per queued event, bounded only by a count.
BOOST_AUTO_TEST_CASE(a_slow_observer_blocks_the_producer_at_the_byte_budget) {
  Latch release;
  // Three 300-byte blobs fit, a fourth does not.
  Bus bus(async_options({.max_bytes = 1000}));
  std::atomic<int> delivered{0};
  bus.on<Blob>(counts_when_released(release, delivered),
               SubscribeOptions().named("slow").lane(Lane::async));
  std::atomic<int> emitted{0};
  std::thread producer([&] {
    for (int i = 0; i < 10; ++i) {
      bus.emit(Blob::of(300));
      ++emitted;
    }
  });
  BOOST_TEST(eventually([&] { return bus.async_lane().waits() >= 1u; }));
  BOOST_TEST(emitted.load() == 3);
  BOOST_TEST(bus.async_lane().pending_bytes() == 900u);
  BOOST_TEST(bus.async_lane().pending() == 3u);
  release.open();
  producer.join();
  bus.flush();
  BOOST_TEST(delivered.load() == 10);  // back-pressure, nothing dropped
  BOOST_TEST(bus.async_lane().pending_bytes() == 0u);
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_CASE(one_copy_is_counted_once_for_all_async_subscribers) {
  Latch release;
  Bus bus(async_options({.max_bytes = 1000}));
  std::atomic<int> delivered{0};
  for (const char* name : {"a", "b", "c"})
    bus.on<Blob>(counts_when_released(release, delivered),
                 SubscribeOptions().named(name).lane(Lane::async));
  bus.emit(Blob::of(600));
  BOOST_TEST(bus.async_lane().pending() == 3u);
  BOOST_TEST(bus.async_lane().pending_bytes() == 600u);  // one copy, held by three tasks
  release.open();
  bus.flush();
  BOOST_TEST(delivered.load() == 3);
  BOOST_TEST(bus.async_lane().pending_bytes() == 0u);
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_CASE(skipped_calls_give_their_bytes_back) {
  Latch started, release;
  Bus bus(async_options({.max_bytes = 1000}));
  Connection c = bus.on<Blob>(
      [&](const Blob&) {
        started.open();
        release.wait();
      },
      SubscribeOptions().lane(Lane::async));
  bus.emit(Blob::of(300));
  bus.emit(Blob::of(300));
  BOOST_REQUIRE(started.wait());
  c.disconnect();
  release.open();
  bus.flush();
  BOOST_TEST(bus.async_lane().pending_bytes() == 0u);
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_CASE(over_the_byte_budget_in_fail_mode_names_the_subscriber) {
  Latch release;
  Bus bus(async_options({.when_full = AsyncLane::WhenFull::fail, .max_bytes = 1000}));
  std::atomic<int> delivered{0};
  bus.on<Blob>(counts_when_released(release, delivered),
               SubscribeOptions().named("slow").lane(Lane::async));
  bus.emit(Blob::of(600));
  BOOST_CHECK_EXCEPTION(bus.emit(Blob::of(600)), QueueFull, [](const QueueFull& e) {
    const std::string what = e.what();
    return what.find("'slow'") != std::string::npos &&
           what.find("600 of 1000 bytes") != std::string::npos &&
           what.find("max_bytes") != std::string::npos;
  });
  BOOST_TEST(bus.async_lane().pending_bytes() == 600u);  // the refused copy reserved nothing
  release.open();
  bus.flush();
  BOOST_TEST(delivered.load() == 1);
  BOOST_TEST(!release.missed());
}

BOOST_AUTO_TEST_CASE(a_copy_larger_than_the_budget_passes_alone) {
  Bus bus(async_options({.max_bytes = 100}));
  std::atomic<int> delivered{0};
  bus.on<Blob>([&](const Blob&) { ++delivered; }, SubscribeOptions().lane(Lane::async));
  finishes_in_time([&] {
    for (int i = 0; i < 5; ++i) bus.emit(Blob::of(500));
  });
  bus.flush();
  BOOST_TEST(delivered.load() == 5);
}

BOOST_AUTO_TEST_CASE(an_async_subscriber_that_emits_is_not_held_by_the_byte_budget) {
  Bus bus(async_options({.max_bytes = 100}));
  std::atomic<int> inner{0};
  bus.on<Blob>([&](const Blob&) { ++inner; }, SubscribeOptions().named("inner").lane(Lane::async));
  bus.on<Ping>([&](const Ping&) { bus.emit(Blob::of(80)); },
               SubscribeOptions().named("relay").lane(Lane::async));
  finishes_in_time([&] {
    for (int i = 0; i < 50; ++i) bus.emit(Ping{i});
    bus.flush();
  });
  BOOST_TEST(inner.load() == 50);
}

BOOST_AUTO_TEST_CASE(a_sync_subscriber_that_emits_while_a_copy_is_queued_does_not_deadlock) {
  // The outer emission's copy is queued when a later sync subscriber emits a second large event:
  // the emitting frame's own reference to its copy must not count against the budget, or the
  // nested emission would wait for bytes only the outer frame can give back.
  Bus bus(async_options({.max_bytes = 1000}));
  std::atomic<int> delivered{0};
  bus.on<Blob>([&](const Blob&) { ++delivered; },
               SubscribeOptions().named("observer").lane(Lane::async).priority(0));
  bool nested = false;
  bus.on<Blob>(
      [&](const Blob&) {
        if (std::exchange(nested, true)) return;
        bus.emit(Blob::of(700));
      },
      SubscribeOptions().named("relay").priority(1));
  BOOST_REQUIRE(bus.subscribers<Blob>().size() == 2u);
  BOOST_TEST(bus.subscribers<Blob>()[0].name == "observer");  // queues its copy first
  finishes_in_time([&] {
    bus.emit(Blob::of(700));
    bus.flush();
  });
  BOOST_TEST(delivered.load() == 2);
}

BOOST_AUTO_TEST_SUITE_END()
