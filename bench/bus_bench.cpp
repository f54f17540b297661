// ns per emit of hookline's bus for 0, 1 and 10 sync subscribers, beside the floors it is judged
// against: a virtual call per subscriber, a vector of std::function, and stock Boost.Signals2.
//
//   ./build/release/bench/bench_bus --benchmark_min_time=0.2
//
// "observe": handlers return void on an event that accepts no veto.
// "veto":    handlers return a Verdict on a vetoable event, folded by the bus's combiner.
#include "hookline/events/bus.hpp"

#include <benchmark/benchmark.h>
#include <boost/signals2.hpp>

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Observed {
  static constexpr std::string_view name = "bench_observed";
  int value = 0;
};
struct Vetoable {
  static constexpr std::string_view name = "bench_vetoable";
  static constexpr hookline::ActionSet vetoes{hookline::Action::SkipBatch,
                                              hookline::Action::StopFit};
  int value = 0;
};

int g_sink = 0;

// Every handler, ours and the floors', does the same work through one non-inlined call, so the
// compiler cannot fuse or hoist the subscriber loop of any variant.
[[gnu::noinline]] void consume(int value) {
  g_sink += value;
  benchmark::ClobberMemory();
}

void BM_Hookline_Observe(benchmark::State& state) {
  hookline::Bus bus;
  const auto n = state.range(0);
  for (int i = 0; i < n; ++i) bus.on<Observed>([](const Observed& e) { consume(e.value); });
  Observed ev{1};
  for (auto _ : state) {
    benchmark::DoNotOptimize(bus.emit(ev));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Hookline_Veto(benchmark::State& state) {
  hookline::Bus bus;
  const auto n = state.range(0);
  for (int i = 0; i < n; ++i)
    bus.on<Vetoable>([](const Vetoable& e) {
      consume(e.value);
      return hookline::Verdict{};
    });
  Vetoable ev{1};
  for (auto _ : state) {
    hookline::Outcome out = bus.emit(ev);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}

// Subscription churn: runtime registration must cost O(live subscribers), however many
// subscriptions came and went before.

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// One live subscriber, after range(0) subscribe/unsubscribe cycles (each followed by an emit, as
// when callbacks come and go during a run): ns per emit, and the RSS the cycles left behind.
void BM_Hookline_EmitAfterChurn(benchmark::State& state) {
  const long rss_before = rss_kib();
  hookline::Bus bus;
  bus.on<Observed>([](const Observed& e) { consume(e.value); });
  Observed ev{1};
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    bus.on<Observed>([](const Observed& e) { consume(e.value); }).disconnect();
    if (i % 64 == 0) bus.emit(ev);
  }
  state.counters["rss_growth_kib"] = static_cast<double>(rss_kib() - rss_before);
  for (auto _ : state) {
    benchmark::DoNotOptimize(bus.emit(ev));
  }
  state.SetItemsProcessed(state.iterations());
}

// ns per subscribe + unsubscribe + emit cycle beside one live subscriber, on a bus that has
// already seen range(0) cycles.
void BM_Hookline_ChurnCycle(benchmark::State& state) {
  hookline::Bus bus;
  bus.on<Observed>([](const Observed& e) { consume(e.value); });
  Observed ev{1};
  for (std::int64_t i = 0; i < state.range(0); ++i)
    bus.on<Observed>([](const Observed& e) { consume(e.value); }).disconnect();
  for (auto _ : state) {
    auto c = bus.on<Observed>([](const Observed& e) { consume(e.value); });
    benchmark::DoNotOptimize(bus.emit(ev));
    c.disconnect();
  }
  state.SetItemsProcessed(state.iterations());
}

// Floors -----------------------------------------------------------------------------------

struct Subscriber {
  virtual ~Subscriber() = default;
  virtual void on_event(Observed& e) = 0;
};
struct Adder final : Subscriber {
  void on_event(Observed& e) override { consume(e.value); }
};

void BM_Floor_VirtualCall(benchmark::State& state) {
  std::vector<std::unique_ptr<Subscriber>> subs;
  for (int i = 0; i < state.range(0); ++i) subs.push_back(std::make_unique<Adder>());
  benchmark::DoNotOptimize(subs.data());
  Observed ev{1};
  for (auto _ : state) {
    for (auto& s : subs) s->on_event(ev);
    benchmark::ClobberMemory();
  }
}

void BM_Floor_StdFunction(benchmark::State& state) {
  std::vector<std::function<void(Observed&)>> subs;
  for (int i = 0; i < state.range(0); ++i) subs.emplace_back([](Observed& e) { consume(e.value); });
  Observed ev{1};
  for (auto _ : state) {
    for (auto& s : subs) s(ev);
    benchmark::ClobberMemory();
  }
}

void BM_Signals2_Stock(benchmark::State& state) {
  boost::signals2::signal<void(Observed&)> sig;
  for (int i = 0; i < state.range(0); ++i) sig.connect([](Observed& e) { consume(e.value); });
  Observed ev{1};
  for (auto _ : state) {
    sig(ev);
    benchmark::ClobberMemory();
  }
}

void BM_Signals2_DummyMutex(benchmark::State& state) {
  using Sig = boost::signals2::signal_type<
      void(Observed&), boost::signals2::keywords::mutex_type<boost::signals2::dummy_mutex>>::type;
  Sig sig;
  for (int i = 0; i < state.range(0); ++i) sig.connect([](Observed& e) { consume(e.value); });
  Observed ev{1};
  for (auto _ : state) {
    sig(ev);
    benchmark::ClobberMemory();
  }
}

}  // namespace

BENCHMARK(BM_Hookline_Observe)->Arg(0)->Arg(1)->Arg(10);
BENCHMARK(BM_Hookline_Veto)->Arg(0)->Arg(1)->Arg(10);
BENCHMARK(BM_Hookline_EmitAfterChurn)->Arg(0)->Arg(3000)->Arg(1000000)->Iterations(2000000);
BENCHMARK(BM_Hookline_ChurnCycle)->Arg(0)->Arg(3000)->Arg(1000000);
BENCHMARK(BM_Floor_VirtualCall)->Arg(0)->Arg(1)->Arg(10);
BENCHMARK(BM_Floor_StdFunction)->Arg(0)->Arg(1)->Arg(10);
BENCHMARK(BM_Signals2_Stock)->Arg(0)->Arg(1)->Arg(10);
BENCHMARK(BM_Signals2_DummyMutex)->Arg(0)->Arg(1)->Arg(10);

BENCHMARK_MAIN();
