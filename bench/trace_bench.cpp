// What tracing costs: per event on the bus, and per step of a traced fit of the tiny MLP.
//
//   ./build/release/bench/bench_trace                 # 11 rounds after a warm-up round
//   ./build/release/bench/bench_trace --rounds 21
//   perf record ./build/release/bench/bench_trace --only bus        # one part
//
// Part 1, the bus: ns per emission of one event type with 0, 1 and 10 synchronous subscribers
// (each does the same non-inlined work), with tracing off, into the ring buffer (ring:10000) and
// into a JSON-lines file. The recorder has a context like a Trainer's (stage, epoch, global_step,
// rank, and batch_idx read from the payload). An emission with k subscribers makes k + 1 records
// (k calls, 1 emission). Goal: the ring buffer adds <= 100 ns per event (an emission with one
// subscriber, as most hooks have).
//
// Part 2, the trainer: µs per training step of the tiny MLP of bench_trainer (32 -> 64 -> 2,
// batch 32, 1000 steps, SGD, one torch thread, no validation), untraced and traced with
// HOOKLINE_TRACE-style specs: ring:10000, a JSON-lines file, summary. Time is taken between the
// module's on_train_start and on_train_end. Goal: a traced fit is <= 10% slower than an untraced
// one.
//
// Variants run interleaved round by round (odd rounds in reverse order); figures are medians
// over rounds; "paired" is the median of per-round ratios to the untraced variant.
#include "bench_options.hpp"

#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/module.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/events/bus.hpp>
#include <hookline/recipe/tracing.hpp>
#include <hookline/tracing/trace_sinks.hpp>

#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using hookline::Batch;
using hookline::StepOutput;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("hookline-bench-trace-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

// ---- part 1: the bus ------------------------------------------------------------------------

struct BenchEvent {
  static constexpr std::string_view name = "on_bench_batch_end";
  std::int64_t batch_idx = 0;
};

std::int64_t g_sink = 0;
[[gnu::noinline]] void work(const BenchEvent& e) {
  g_sink += e.batch_idx;
}

// Like a Trainer's context: three fields of the run's state, batch_idx from the payload.
struct RunState {
  std::int64_t epoch = 3, step = 1234;
};
class BenchContext final : public hookline::TraceContext {
 public:
  explicit BenchContext(const RunState& s) : state_(&s) {}
  void fill_state(hookline::TraceFields& r) const override {
    r.stage = "fit";
    r.epoch = state_->epoch;
    r.global_step = state_->step;
    r.rank = 0;
  }
  void fill_payload(hookline::TraceFields& r, const hookline::EventInfo& event,
                    const void* payload) const override {
    if (event.id == hookline::event_id<BenchEvent>())
      r.batch_idx = static_cast<const BenchEvent*>(payload)->batch_idx;
  }

 private:
  const RunState* state_;
};

struct BusVariant {
  std::string name;
  std::function<std::shared_ptr<hookline::Tracer>(const RunState&, int round)> make;
  std::vector<double> ns[3];  // per subscriber count
};

double time_emits(hookline::Bus& bus, std::int64_t n) {
  BenchEvent e;
  const auto start = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    e.batch_idx = i;
    bus.emit(e);
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
         static_cast<double>(n);
}

void bench_bus(int rounds) {
  const int counts[3] = {0, 1, 10};
  const std::int64_t n = 200000;
  RunState state;
  std::vector<BusVariant> variants;
  variants.push_back({"tracing off", [](const RunState&, int) { return nullptr; }, {}});
  variants.push_back({"ring buffer (ring:10000)",
                      [](const RunState& s, int) -> std::shared_ptr<hookline::Tracer> {
                        hookline::RingBufferSink::Options o;
                        o.capacity = std::getenv("RING") ? std::atoi(std::getenv("RING")) : 10000;
                        o.path.clear();
                        return std::make_shared<hookline::TraceRecorder>(
                            std::vector<std::shared_ptr<hookline::TraceSink>>{
                                std::make_shared<hookline::RingBufferSink>(o)},
                            std::make_shared<BenchContext>(s));
                      },
                      {}});
  variants.push_back({"JSON-lines file",
                      [](const RunState& s, int round) -> std::shared_ptr<hookline::Tracer> {
                        return std::make_shared<hookline::TraceRecorder>(
                            std::vector<std::shared_ptr<hookline::TraceSink>>{
                                std::make_shared<hookline::JsonlSink>(
                                    temp_file("bus-" + std::to_string(round) + ".jsonl"))},
                            std::make_shared<BenchContext>(s));
                      },
                      {}});
  for (int round = 0; round <= rounds; ++round) {
    for (std::size_t j = 0; j < variants.size(); ++j) {
      BusVariant& v = variants[round % 2 == 1 ? variants.size() - 1 - j : j];
      for (int c = 0; c < 3; ++c) {
        hookline::Bus bus;
        for (int k = 0; k < counts[c]; ++k)
          bus.on<BenchEvent>([](const BenchEvent& e) { work(e); },
                             hookline::SubscribeOptions().named("subscriber" + std::to_string(k)));
        bus.set_tracer(v.make(state, round));
        const double ns = time_emits(bus, n);
        bus.set_tracer(nullptr);
        if (round > 0) v.ns[c].push_back(ns);
      }
      std::error_code ignored;
      std::filesystem::remove(temp_file("bus-" + std::to_string(round) + ".jsonl"), ignored);
    }
  }
  std::printf("\nPart 1: the bus, ns per emission (median of %d rounds of %lld emissions)\n",
              rounds, static_cast<long long>(n));
  std::printf("  %-26s %12s %12s %12s\n", "variant", "0 subs", "1 sub", "10 subs");
  for (const auto& v : variants)
    std::printf("  %-26s %12.1f %12.1f %12.1f\n", v.name.c_str(), median(v.ns[0]), median(v.ns[1]),
                median(v.ns[2]));
  std::printf("  added by tracing, per emission (per record):\n");
  for (std::size_t i = 1; i < variants.size(); ++i) {
    std::printf("  %-26s", variants[i].name.c_str());
    for (int c = 0; c < 3; ++c) {
      const double added = median(variants[i].ns[c]) - median(variants[0].ns[c]);
      char cell[40];
      std::snprintf(cell, sizeof cell, "%.1f (%.1f)", added, added / (counts[c] + 1));
      std::printf(" %12s", cell);
    }
    std::printf("\n");
  }
  const double ring1 = median(variants[1].ns[1]) - median(variants[0].ns[1]);
  std::printf("  goal: ring buffer <= 100 ns per event (1 subscriber): %.1f ns -> %s\n", ring1,
              ring1 <= 100 ? "met" : "NOT met");
}

// ---- part 2: the trainer --------------------------------------------------------------------

constexpr std::int64_t kIn = 32, kHidden = 64, kOut = 2, kBatch = 32;

std::shared_ptr<hookline::data::TensorDataset> random_data(std::int64_t steps) {
  torch::Generator gen = at::detail::createCPUGenerator(7);
  const std::int64_t n = steps * kBatch;
  return std::make_shared<hookline::data::TensorDataset>(Batch{
      {"x", torch::randn({n, kIn}, gen)}, {"y", torch::randint(0, kOut, {n}, gen, torch::kLong)}});
}

class Net : public hookline::Module {
 public:
  explicit Net(std::shared_ptr<hookline::data::TensorDataset> data)
      : Module("net"), data_(std::move(data)) {
    fc1 = register_module("fc1", torch::nn::Linear(kIn, kHidden));
    fc2 = register_module("fc2", torch::nn::Linear(kHidden, kOut));
  }
  StepOutput training_step(const Batch& batch, std::int64_t) override {
    return {{"loss",
             torch::nn::functional::cross_entropy(fc2(torch::relu(fc1(batch["x"]))), batch["y"])}};
  }
  hookline::OptimizerConfig configure_optimizers() override {
    return hookline::OptimizerConfig().add(
        std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.01)));
  }
  hookline::DataLoaders train_dataloader() override {
    return {std::make_shared<hookline::data::DataLoader>(
        data_, hookline::data::DataLoaderOptions().batch_size(kBatch).shuffle(false))};
  }
  void on_train_start() override { loop_start = Clock::now(); }
  void on_train_end() override { loop_end = Clock::now(); }

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  Clock::time_point loop_start, loop_end;

 private:
  std::shared_ptr<hookline::data::TensorDataset> data_;
};

struct FitVariant {
  std::string name;
  std::string spec;  // "" : untraced; {round} is replaced by a per-round file name
  std::vector<double> us;
  std::uint64_t records = 0;
};

void bench_trainer(int rounds, std::int64_t steps) {
  auto data = random_data(steps);
  std::vector<FitVariant> variants = {
      {"untraced", "", {}, 0},
      {"ring:10000", "ring:10000", {}, 0},
      {"JSON-lines file", "jsonl:{file}", {}, 0},
      {"summary", "summary:{file}", {}, 0},
      {"JSON lines + ring", "jsonl:{file},ring:10000", {}, 0},
  };
  for (int round = 0; round <= rounds; ++round) {
    for (std::size_t j = 0; j < variants.size(); ++j) {
      FitVariant& v = variants[round % 2 == 1 ? variants.size() - 1 - j : j];
      const std::string file = temp_file("fit-" + std::to_string(round) + "-" + std::to_string(j));
      std::string spec = v.spec;
      if (auto p = spec.find("{file}"); p != std::string::npos) spec.replace(p, 6, file);
      torch::manual_seed(0);
      Net net(data);
      hookline::Trainer trainer(hookline_bench::bare_fit_options(steps));
      auto recorder = hookline::enable_tracing(trainer, spec);
      trainer.fit(net);
      if (trainer.global_step() != steps) throw std::logic_error("wrong number of steps");
      if (round > 0)
        v.us.push_back(
            std::chrono::duration<double, std::micro>(net.loop_end - net.loop_start).count() /
            static_cast<double>(steps));
      if (auto ring = recorder ? recorder->sink<hookline::RingBufferSink>() : nullptr)
        v.records = ring->written();
      trainer.bus().set_tracer(nullptr);
      recorder.reset();
      std::error_code ignored;
      std::filesystem::remove(file, ignored);
    }
  }
  const double base = median(variants[0].us);
  std::printf(
      "\nPart 2: the trainer, tiny MLP %lld -> %lld -> %lld, batch %lld, %lld steps, 1 torch "
      "thread (median of %d rounds)\n",
      static_cast<long long>(kIn), static_cast<long long>(kHidden), static_cast<long long>(kOut),
      static_cast<long long>(kBatch), static_cast<long long>(steps), rounds);
  std::printf("  %-22s %9s %8s %8s %7s %7s %10s\n", "variant", "us/step", "min", "max", "RATIO",
              "paired", "+us/step");
  for (const auto& v : variants) {
    std::vector<double> paired;
    for (std::size_t i = 0; i < v.us.size(); ++i) paired.push_back(v.us[i] / variants[0].us[i]);
    std::printf("  %-22s %9.1f %8.1f %8.1f %7.3f %7.3f %10.2f\n", v.name.c_str(), median(v.us),
                *std::min_element(v.us.begin(), v.us.end()),
                *std::max_element(v.us.begin(), v.us.end()), median(v.us) / base, median(paired),
                median(v.us) - base);
  }
  if (variants[1].records > 0)
    std::printf("  records per fit: %llu (about %.1f per step)\n",
                static_cast<unsigned long long>(variants[1].records),
                static_cast<double>(variants[1].records) / static_cast<double>(steps));
  double worst = 0;
  for (std::size_t i = 1; i < variants.size(); ++i)
    worst = std::max(worst, median(variants[i].us) / base);
  std::printf("  goal: a traced fit <= 10%% slower: worst ratio %.3f -> %s\n", worst,
              worst <= 1.10 ? "met" : "NOT met");
}

}  // namespace

int main(int argc, char** argv) try {
  int rounds = 11;
  std::int64_t steps = 1000;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (arg == "--steps" && i + 1 < argc) {
      steps = std::max<std::int64_t>(10, std::atoll(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: bench_trace [--rounds N] [--steps N] [--only bus|trainer]\n");
      return 2;
    }
  }
  ::unsetenv(hookline::kTraceEnvironmentVariable);  // this benchmark chooses its own tracing
  torch::set_num_threads(1);
  if (only.empty() || only == "bus") bench_bus(rounds);
  if (only.empty() || only == "trainer") bench_trainer(rounds, steps);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_trace: %s\n", e.what());
  return 1;
}
