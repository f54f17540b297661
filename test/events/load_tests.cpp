// The bus under load: several threads emit a user event type while others subscribe, unsubscribe,
// block and disconnect owners, on both lanes, for a bounded time. Checked:
//   - a subscriber connected for the whole run (sync or async) gets every event exactly once, and
//     each emitter's events in the order that emitter sent them;
//   - a sync subscriber connected for part of the run gets, exactly once, every event whose
//     emission began after its connect() returned and ended before its disconnect began, and
//     nothing twice; transient async subscribers get nothing twice and keep each emitter's order;
//   - nothing deadlocks: the run has a deadline, and a missed deadline fails the test (and aborts,
//     since a deadlocked thread cannot be joined).
// Runs in the release suite and again under TSan (the tsan preset builds the bus tests).
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace hookline;

namespace {

struct Load {
  static constexpr std::string_view name = "on_load";
  int emitter = 0;
  long seq = 0;
};

constexpr int kEmitters = 3;
constexpr int kChurners = 2;

// Per emitter: how many emissions began and how many ended (seq numbers are 0, 1, ...).
struct Progress {
  std::array<std::atomic<long>, kEmitters> begun{};
  std::array<std::atomic<long>, kEmitters> ended{};
};

// What one subscriber saw, per emitter, in arrival order. Sync handlers of one emitter run on
// that emitter's thread, so each per-emitter list is written by one thread at a time; the async
// lane runs one subscriber's calls one at a time. The mutex only orders reads after the run.
struct Seen {
  std::mutex mutex;
  std::array<std::vector<long>, kEmitters> by_emitter;
  void add(const Load& e) {
    std::lock_guard lock(mutex);
    by_emitter[static_cast<std::size_t>(e.emitter)].push_back(e.seq);
  }
};

bool strictly_increasing(const std::vector<long>& v) {
  for (std::size_t i = 1; i < v.size(); ++i)
    if (v[i] <= v[i - 1]) return false;
  return true;
}

// A sync subscriber that lived from `begun_at_connect` to `ended_at_disconnect` (per emitter).
struct Window {
  std::shared_ptr<Seen> seen;
  std::array<long, kEmitters> from{}, to{};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(bus_load)

BOOST_AUTO_TEST_CASE(emitters_and_churners_on_both_lanes) {
  const auto run_for = std::chrono::milliseconds(1500);

  Bus::Options options;
  options.async.threads = 2;
  options.async.capacity = 1024;
  Bus bus(options);
  Progress progress;

  auto steady_sync = std::make_shared<Seen>();
  auto steady_async = std::make_shared<Seen>();
  bus.on<Load>([s = steady_sync](const Load& e) { s->add(e); },
               SubscribeOptions().named("steady_sync"));
  bus.on<Load>([s = steady_async](const Load& e) { s->add(e); },
               SubscribeOptions().named("steady_async").lane(Lane::async));

  std::atomic<bool> stop{false};
  std::array<long, kEmitters> emitted{};
  std::vector<Window> windows[kChurners];
  std::vector<std::shared_ptr<Seen>> transient_async[kChurners];
  long churn_cycles[kChurners] = {};

  auto run = std::async(std::launch::async, [&] {
    std::vector<std::thread> threads;
    for (int e = 0; e < kEmitters; ++e)
      threads.emplace_back([&, e] {
        long seq = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          progress.begun[static_cast<std::size_t>(e)].store(seq + 1, std::memory_order_seq_cst);
          bus.emit(Load{e, seq});
          progress.ended[static_cast<std::size_t>(e)].store(seq + 1, std::memory_order_seq_cst);
          ++seq;
        }
        emitted[static_cast<std::size_t>(e)] = seq;
      });
    for (int c = 0; c < kChurners; ++c)
      threads.emplace_back([&, c] {
        std::mt19937 rng(static_cast<unsigned>(c) + 1);
        int owner_tag = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          // A sync subscriber with an exactly-once window.
          Window w;
          w.seen = std::make_shared<Seen>();
          Connection sync = bus.on<Load>([s = w.seen](const Load& e) { s->add(e); },
                                         SubscribeOptions().named("transient_sync"));
          for (int e = 0; e < kEmitters; ++e)
            w.from[static_cast<std::size_t>(e)] =
                progress.begun[static_cast<std::size_t>(e)].load();
          // Two more under one owner, one of them async, and one that is blocked for a while.
          auto async_seen = std::make_shared<Seen>();
          bus.on<Load>([s = async_seen](const Load& e) { s->add(e); },
                       SubscribeOptions().named("owned_async").owner(&owner_tag).lane(Lane::async));
          Connection blocked = bus.on<Load>(
              [](const Load&) {}, SubscribeOptions().named("owned_sync").owner(&owner_tag));
          blocked.block();
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
          blocked.unblock();
          for (int e = 0; e < kEmitters; ++e)
            w.to[static_cast<std::size_t>(e)] = progress.ended[static_cast<std::size_t>(e)].load();
          sync.disconnect();
          bus.disconnect_owner(&owner_tag);
          windows[c].push_back(std::move(w));
          transient_async[c].push_back(std::move(async_seen));
          ++churn_cycles[c];
        }
      });
    std::this_thread::sleep_for(run_for);
    stop = true;
    for (auto& t : threads) t.join();
    bus.flush();
  });
  if (run.wait_for(run_for + std::chrono::seconds(60)) != std::future_status::ready) {
    std::fprintf(stderr, "bus_load: the run did not finish within 60 s of its end: deadlock\n");
    std::abort();
  }
  run.get();

  long total = 0;
  for (int e = 0; e < kEmitters; ++e) total += emitted[static_cast<std::size_t>(e)];
  long cycles = 0;
  for (long c : churn_cycles) cycles += c;
  BOOST_TEST_MESSAGE("bus_load: " << total << " events from " << kEmitters << " threads in "
                                  << run_for.count() << " ms ("
                                  << static_cast<long>(static_cast<double>(total) * 1000.0 /
                                                       static_cast<double>(run_for.count()))
                                  << " events/s) while " << kChurners << " threads made " << cycles
                                  << " subscribe/block/disconnect cycles");
  BOOST_TEST(total > 0);
  BOOST_TEST(cycles > 0);

  // Steady subscribers: every event exactly once, in each emitter's order.
  for (const auto& steady : {steady_sync, steady_async})
    for (int e = 0; e < kEmitters; ++e) {
      const auto& got = steady->by_emitter[static_cast<std::size_t>(e)];
      BOOST_REQUIRE_EQUAL(static_cast<long>(got.size()), emitted[static_cast<std::size_t>(e)]);
      for (std::size_t i = 0; i < got.size(); ++i)
        if (got[i] != static_cast<long>(i)) BOOST_FAIL("emitter " << e << ": event " << i);
    }

  // Transient sync subscribers: exactly once inside their window, nothing twice anywhere.
  long checked = 0;
  for (const auto& list : windows)
    for (const Window& w : list)
      for (int e = 0; e < kEmitters; ++e) {
        const auto& got = w.seen->by_emitter[static_cast<std::size_t>(e)];
        BOOST_REQUIRE(strictly_increasing(got));
        const long from = w.from[static_cast<std::size_t>(e)];
        const long to = w.to[static_cast<std::size_t>(e)];
        for (long seq = from; seq < to; ++seq) {
          if (!std::binary_search(got.begin(), got.end(), seq))
            BOOST_FAIL("a transient subscriber missed event " << seq << " of emitter " << e
                                                              << " inside its window");
          ++checked;
        }
      }
  BOOST_TEST_MESSAGE("bus_load: " << checked << " in-window deliveries checked");
  for (const auto& list : transient_async)
    for (const auto& seen : list)
      for (const auto& got : seen->by_emitter) BOOST_REQUIRE(strictly_increasing(got));
}

BOOST_AUTO_TEST_SUITE_END()
