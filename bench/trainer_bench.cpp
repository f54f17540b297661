// µs per training step of the hookline Trainer beside a hand-written LibTorch loop doing the same
// work, measured in one run, interleaved round by round so both see the same machine state.
//
//   ./build/release/bench/bench_trainer                           # 5 processes of 11 rounds each
//   ./build/release/bench/bench_trainer --processes 9 --rounds 21 # docs/performance.md's table
//   ./build/release/bench/bench_trainer --processes 1 --scale 2   # one process, detailed table
//   perf record ./build/release/bench/bench_trainer --only 2 --workload a   # one variant
//
// Workloads: (a) MLP 32 -> 64 -> 2 at batch 32, (b) MLP 784 -> 256 -> 10 at batch 64, (c) MLP
// 1 -> 1 -> 1 at batch 1, where a step is almost only LibTorch's per-operator cost and the
// trainer's fixed cost per step shows in "+us/step"; cross-entropy on random in-memory data, plain
// SGD (lr 0.01), one epoch of a fixed number of batches, no shuffle.
//
// The hand loop iterates the same hookline::data::DataLoader (so data handling costs the same) and
// does, per batch: zero_grad, forward, loss, backward, step. "hand loop, trainer's order" does the
// same work in the trainer's (Lightning's) order: step(closure) with forward, loss, zero_grad and
// backward inside the closure.
// The trainer runs TrainerOptions().max_epochs(1).limit_train_batches(steps).limit_val_batches(0)
// .num_sanity_val_steps(0).num_threads(1); its time is taken from the module's on_train_start to
// its on_train_batch_end of the last batch (the module is subscribed to every hook anyway, so this
// adds no event). "fit()" is the whole fit() call per step, set-up (configure_optimizers, hooks...)
// and what happens once per epoch or run (the epoch-end checkpoint, the loggers' last rows)
// included.
// "hand loop inside fit()" is the hand loop in the trainer's order run from the module's
// on_train_start, inside a fit() (the fit then takes one step): no hookline code runs in its timed
// loop, so its ratio to the hand loop is what the process state a fit leaves (glibc's heap above
// all: a LibTorch step allocates and frees tens of tensors) costs LibTorch's own work.
// "default callbacks" is the Trainer with Lightning's defaults (ModelCheckpoint, ModelSummary, the
// TensorBoard logger; all under a temporary default_root_dir) except the progress bar, and the
// module logging its loss every step.
//
// Both run with glibc's allocator tuned as a fit tunes it (hookline::AllocatorTuning, held for
// the whole process) and with one torch intra-op thread (torch::set_num_threads(1); the trainer's
// num_threads(1)) to reduce noise. Each variant's figure is the median over the rounds; the ratio
// is median(hookline) / median(hand) ("paired": the median of the per-round ratios, which cancels
// slow drifts of the machine's speed).
//
// Events per step come from separate, untimed runs with a counting Tracer: (count at 2k steps -
// count at k steps) / k, so set-up and teardown events cancel out.
//
// One process sees one memory layout (ASLR places the heap, stacks and libraries anew each run),
// and on these small models the layout alone moves a run's paired ratios by +-0.01-0.02. With
// --processes N (default 5; 1 with --only) the bench runs itself N times, one fresh process after
// another, and reports per variant the median over processes of each process's figures, with the
// range of the paired ratio. --processes 1 runs in this process and prints the detailed table.
#include "bench_options.hpp"

#include <hookline/core/allocator_tuning.hpp>
#include <hookline/core/callback.hpp>
#include <hookline/core/console.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/module.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/events/tracer.hpp>

#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using hookline::Batch;
using hookline::StepOutput;

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

struct Workload {
  const char* name;
  std::int64_t in, hidden, out, batch, steps;
};

std::shared_ptr<hookline::data::TensorDataset> random_data(const Workload& w, std::int64_t steps) {
  torch::Generator gen = at::detail::createCPUGenerator(7);
  const std::int64_t n = steps * w.batch;
  return std::make_shared<hookline::data::TensorDataset>(
      Batch{{"x", torch::randn({n, w.in}, gen)},
            {"y", torch::randint(0, w.out, {n}, gen, torch::kLong)}});
}

std::shared_ptr<hookline::data::DataLoader> make_loader(
    std::shared_ptr<const hookline::data::Dataset> data, const Workload& w) {
  return std::make_shared<hookline::data::DataLoader>(
      std::move(data), hookline::data::DataLoaderOptions().batch_size(w.batch).shuffle(false));
}

class Net;
double closure_loop(Net& net, const Workload& w,
                    const std::shared_ptr<hookline::data::TensorDataset>& data);

// The MLP, used by both loops. As a hookline Module it also records when the training loop starts
// and ends, and optionally logs its loss every step.
class Net : public hookline::Module {
 public:
  Net(const Workload& w, std::shared_ptr<hookline::data::TensorDataset> data, bool log_loss,
      bool hand_loop_inside = false)
      : Module("net"),
        workload_(w),
        data_(std::move(data)),
        log_loss_(log_loss),
        hand_loop_inside_(hand_loop_inside) {
    fc1 = register_module("fc1", torch::nn::Linear(w.in, w.hidden));
    fc2 = register_module("fc2", torch::nn::Linear(w.hidden, w.out));
  }

  at::Tensor loss(const Batch& batch) {
    return torch::nn::functional::cross_entropy(fc2(torch::relu(fc1(batch["x"]))), batch["y"]);
  }

  StepOutput training_step(const Batch& batch, std::int64_t) override {
    at::Tensor l = loss(batch);
    if (log_loss_) log("train_loss", l);
    return {{"loss", l}};
  }
  hookline::OptimizerConfig configure_optimizers() override {
    return hookline::OptimizerConfig().add(
        std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.01)));
  }
  hookline::DataLoaders train_dataloader() override { return {make_loader(data_, workload_)}; }
  void on_train_start() override {
    if (hand_loop_inside_) inside_us = closure_loop(*this, workload_, data_);
    loop_start = Clock::now();
  }
  void on_train_batch_end(const StepOutput&, const Batch&, std::int64_t batch_idx) override {
    if (batch_idx == workload_.steps - 1) loop_end = Clock::now();
  }

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  Clock::time_point loop_start, loop_end;
  double inside_us = 0;  // per step of the hand loop run from on_train_start

 private:
  Workload workload_;
  std::shared_ptr<hookline::data::TensorDataset> data_;
  bool log_loss_;
  bool hand_loop_inside_;
};

// µs per step of w.steps steps of `net` in the trainer's order, with its own optimizer and loader.
double closure_loop(Net& net, const Workload& w,
                    const std::shared_ptr<hookline::data::TensorDataset>& data) {
  torch::optim::SGD optimizer(net.parameters(), torch::optim::SGDOptions(0.01));
  auto loader = make_loader(data, w);
  std::int64_t steps = 0;
  const auto start = Clock::now();
  for (const Batch& batch : *loader) {
    optimizer.step([&]() -> at::Tensor {
      at::Tensor loss = net.loss(batch);
      optimizer.zero_grad();
      loss.backward();
      return {};
    });
    if (++steps == w.steps) break;
  }
  return micros(Clock::now() - start) / static_cast<double>(steps);
}

struct Timing {
  double loop_us = 0;  // per step, training loop only
  double fit_us = 0;   // per step, whole fit() (or whole hand run)
};

// zero_grad, forward, loss, backward, step over `batches` (anything iterable yielding Batch).
template <class Batches>
Timing plain_loop(const Workload& w, Batches&& batches, Clock::time_point begin) {
  torch::manual_seed(0);
  Net net(w, nullptr, false);
  torch::optim::SGD optimizer(net.parameters(), torch::optim::SGDOptions(0.01));
  std::int64_t steps = 0;
  const auto start = Clock::now();
  for (const Batch& batch : batches) {
    optimizer.zero_grad();
    at::Tensor loss = net.loss(batch);
    loss.backward();
    optimizer.step();
    if (++steps == w.steps) break;
  }
  const auto end = Clock::now();
  return {micros(end - start) / steps, micros(end - begin) / steps};
}

Timing hand_round(const Workload& w, const std::shared_ptr<hookline::data::TensorDataset>& data) {
  const auto begin = Clock::now();
  return plain_loop(w, *make_loader(data, w), begin);
}

// The floor: the hand loop over batches already sliced into a vector (no DataLoader), so
// "hand loop" - "floor" is what the DataLoader costs per batch.
Timing floor_round(const Workload& w, const std::vector<Batch>& batches) {
  return plain_loop(w, batches, Clock::now());
}

std::vector<Batch> sliced(const Workload& w,
                          const std::shared_ptr<hookline::data::TensorDataset>& data) {
  std::vector<Batch> out;
  const auto loader = make_loader(data, w);
  for (const Batch& batch : *loader)  // the same batches, each its own tensors
    out.push_back(Batch{{"x", batch["x"].clone()}, {"y", batch["y"].clone()}});
  return out;
}

// The same work in the order the trainer does it (Lightning's): optimizer.step(closure), where the
// closure runs forward + loss, then zero_grad, then backward. Tells apart what the loop order
// costs and what the trainer's machinery costs.
Timing hand_closure_round(const Workload& w,
                          const std::shared_ptr<hookline::data::TensorDataset>& data) {
  const auto begin = Clock::now();
  torch::manual_seed(0);
  Net net(w, data, false);
  const double us = closure_loop(net, w, data);
  return {us, micros(Clock::now() - begin) / static_cast<double>(w.steps)};
}

// Where the "default callbacks" row writes its logs and checkpoints (removed at exit).
const std::string& default_root() {
  static const std::string root = (std::filesystem::temp_directory_path() /
                                   ("bench_trainer_logs_" + std::to_string(::getpid())))
                                      .string();
  return root;
}

// The "default callbacks" row: Lightning's defaults (ModelCheckpoint, ModelSummary, the
// TensorBoard logger) under a temporary default_root_dir, the progress bar off.
hookline::TrainerOptions default_callbacks_options(std::int64_t steps) {
  return hookline_bench::bare_fit_options(steps)
      .enable_checkpointing(true)
      .enable_model_summary(true)
      .logger(true)
      .default_root_dir(default_root());
}

// A callback whose six training-step hooks each count a call: the least work a hook can do that
// is still called (a hook left at its default is not called on untraced runs).
class CountingCallback final : public hookline::Callback {
 public:
  explicit CountingCallback(std::string name) : Callback(std::move(name)) {}
  void on_train_batch_start(hookline::Trainer&, hookline::Module&, const Batch&,
                            std::int64_t) override {
    ++calls_;
  }
  void on_train_batch_end(hookline::Trainer&, hookline::Module&, const StepOutput&, const Batch&,
                          std::int64_t) override {
    ++calls_;
  }
  void on_before_zero_grad(hookline::Trainer&, hookline::Module&,
                           torch::optim::Optimizer&) override {
    ++calls_;
  }
  void on_before_backward(hookline::Trainer&, hookline::Module&, const at::Tensor&) override {
    ++calls_;
  }
  void on_after_backward(hookline::Trainer&, hookline::Module&) override { ++calls_; }
  void on_before_optimizer_step(hookline::Trainer&, hookline::Module&,
                                torch::optim::Optimizer&) override {
    ++calls_;
  }

 private:
  std::int64_t calls_ = 0;
};

std::vector<std::shared_ptr<hookline::Callback>> counting_callbacks(int n) {
  std::vector<std::shared_ptr<hookline::Callback>> out;
  for (int i = 0; i < n; ++i)
    out.push_back(std::make_shared<CountingCallback>("counting" + std::to_string(i)));
  return out;
}

Timing hookline_round(const Workload& w, const std::shared_ptr<hookline::data::TensorDataset>& data,
                      int callbacks, bool log_loss, bool default_callbacks = false,
                      bool hand_loop_inside = false) {
  const auto begin = Clock::now();
  torch::manual_seed(0);
  Net net(w, data, log_loss, hand_loop_inside);
  const std::int64_t steps = hand_loop_inside ? 1 : w.steps;
  hookline::Trainer trainer(default_callbacks ? default_callbacks_options(steps)
                                              : hookline_bench::bare_fit_options(steps),
                            counting_callbacks(callbacks));
  trainer.fit(net);
  const auto end = Clock::now();
  if (trainer.global_step() != steps)
    throw std::logic_error("expected " + std::to_string(steps) + " steps, the trainer took " +
                           std::to_string(trainer.global_step()));
  if (hand_loop_inside) return {net.inside_us, micros(end - begin) / static_cast<double>(w.steps)};
  return {micros(net.loop_end - net.loop_start) / static_cast<double>(w.steps),
          micros(end - begin) / static_cast<double>(w.steps)};
}

// Counts emissions and the subscriber calls an untraced run makes through the bus, per event name.
// A traced run also calls the hooks left at their default (only_when_traced) and emits the hooks
// whose default has work (runs_default), which an untraced run calls directly: neither is counted.
class CountingTracer final : public hookline::Tracer {
 public:
  void on_emit(const hookline::EventInfo& event, const void*, std::uint64_t) override {
    std::lock_guard lock(mutex_);
    ++emits_[std::string(event.name)];
  }
  void on_call(const hookline::EventInfo& event, const hookline::SubscriptionInfo& who,
               hookline::Lane, std::uint64_t, const void*, Clock::time_point, Clock::time_point,
               hookline::Action) override {
    if (who.only_when_traced || who.runs_default) return;
    std::lock_guard lock(mutex_);
    ++calls_[std::string(event.name)];
  }
  void on_emit_end(const hookline::EventInfo&, std::uint64_t, const hookline::Outcome&) override {}

  std::map<std::string, std::int64_t> emits_, calls_;

 private:
  std::mutex mutex_;
};

struct EventCounts {
  double emits_per_step = 0, calls_per_step = 0;
  std::map<std::string, double> emits_by_event;  // per step
};

EventCounts count_events(const Workload& w, int callbacks) {
  const std::int64_t k = 20;
  auto run = [&](std::int64_t steps) {
    Workload small = w;
    small.steps = steps;
    auto tracer = std::make_shared<CountingTracer>();
    Net net(small, random_data(small, steps), false);
    hookline::Trainer trainer(hookline_bench::bare_fit_options(steps),
                              counting_callbacks(callbacks));
    trainer.bus().set_tracer(tracer);
    trainer.fit(net);
    trainer.bus().set_tracer(nullptr);
    return tracer;
  };
  auto one = run(k);
  auto two = run(2 * k);
  EventCounts out;
  std::int64_t emits = 0, calls = 0;
  for (const auto& [name, n] : two->emits_) {
    const std::int64_t diff = n - one->emits_[name];
    emits += diff;
    if (diff != 0) out.emits_by_event[name] = static_cast<double>(diff) / k;
  }
  for (const auto& [name, n] : two->calls_) calls += n - one->calls_[name];
  out.emits_per_step = static_cast<double>(emits) / k;
  out.calls_per_step = static_cast<double>(calls) / k;
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Variant {
  std::string name;
  int callbacks = 0;  // -1: the hand loop, -2: in the trainer's order, -3: the floor (no loader)
  bool log_loss = false;
  std::vector<double> loop_us, fit_us;
  bool default_callbacks = false;
  bool hand_loop_inside = false;
};

// Runs only this variant when >= 0 (e.g. under perf); the table then shows just that row.
int g_only = -1;
// Set in the children of --processes: each figure is also printed as one "@ key value" line.
bool g_machine = false;

void machine_line(const Workload& w, const std::string& key, double value) {
  if (g_machine) std::printf("@ %s %s %.6f\n", w.name, key.c_str(), value);
}

std::vector<Variant> all_variants() {
  return {
      {"hand loop", -1, false, {}, {}},
      {"hand loop, trainer's order", -2, false, {}, {}},
      {"hookline, 0 callbacks", 0, false, {}, {}},
      {"hookline, 10 callbacks (6 hooks)", 10, false, {}, {}},
      {"hookline, 0 callbacks, log(loss)", 0, true, {}, {}},
      {"floor: hand loop, batches in a vector", -3, false, {}, {}},
      {"default callbacks (bar off, logger to a temp dir)", 0, true, {}, {}, true},
      {"hand loop inside fit() (on_train_start)", 0, false, {}, {}, false, true},
  };
}

void bench(const Workload& w, int rounds) {
  auto data = random_data(w, w.steps);
  const std::vector<Batch> batches = sliced(w, data);
  std::vector<Variant> variants = all_variants();
  // Round 0 warms up (allocator, lazy init) and is not recorded; odd rounds run in reverse order
  // so no variant always goes first.
  for (int round = 0; round <= rounds; ++round) {
    for (std::size_t j = 0; j < variants.size(); ++j) {
      Variant& v = variants[round % 2 == 1 ? variants.size() - 1 - j : j];
      if (g_only >= 0 && &v != &variants.at(static_cast<std::size_t>(g_only))) continue;
      const Timing t = v.callbacks == -1   ? hand_round(w, data)
                       : v.callbacks == -2 ? hand_closure_round(w, data)
                       : v.callbacks == -3
                           ? floor_round(w, batches)
                           : hookline_round(w, data, v.callbacks, v.log_loss, v.default_callbacks,
                                            v.hand_loop_inside);
      if (round == 0) continue;
      v.loop_us.push_back(t.loop_us);
      v.fit_us.push_back(t.fit_us);
    }
  }

  if (g_only >= 0) {
    const Variant& v = variants.at(static_cast<std::size_t>(g_only));
    std::printf("(%s) %s: %.1f us/step (median of %d rounds)\n", w.name, v.name.c_str(),
                median(v.loop_us), rounds);
    return;
  }
  const EventCounts c0 = count_events(w, 0), c10 = count_events(w, 10);
  const double hand = median(variants[0].loop_us);
  const double hand_ordered = median(variants[1].loop_us);
  std::printf("\n(%s) MLP %lld -> %lld -> %lld, batch %lld, %lld steps per run, %d rounds\n",
              w.name, static_cast<long long>(w.in), static_cast<long long>(w.hidden),
              static_cast<long long>(w.out), static_cast<long long>(w.batch),
              static_cast<long long>(w.steps), rounds);
  std::printf("  %-34s %9s %8s %8s %7s %7s %9s %9s %12s\n", "variant", "us/step", "min", "max",
              "RATIO", "paired", "vs order", "+us/step", "fit() us/st");
  for (const Variant& v : variants) {
    const double m = median(v.loop_us);
    std::vector<double> paired;  // this variant / the hand loop, round by round
    for (std::size_t i = 0; i < v.loop_us.size(); ++i)
      paired.push_back(v.loop_us[i] / variants[0].loop_us[i]);
    std::printf("  %-34s %9.1f %8.1f %8.1f %7.3f %7.3f %9.3f %9.1f %12.1f\n", v.name.c_str(), m,
                *std::min_element(v.loop_us.begin(), v.loop_us.end()),
                *std::max_element(v.loop_us.begin(), v.loop_us.end()), m / hand, median(paired),
                m / hand_ordered, m - hand, median(v.fit_us));
    const std::string index = std::to_string(&v - variants.data());
    machine_line(w, "us/" + index, m);
    machine_line(w, "paired/" + index, median(paired));
    machine_line(w, "fit/" + index, median(v.fit_us));
  }
  std::printf(
      "  events per step (as a trace shows them): %.0f; bus subscriber calls of an untraced step: "
      "%.0f (0 callbacks), %.0f (10 callbacks)\n",
      c0.emits_per_step, c0.calls_per_step, c10.calls_per_step);
  std::printf("  events of a step:");
  for (const auto& [name, n] : c0.emits_by_event) {
    if (n == 1)
      std::printf(" %s", name.c_str());
    else
      std::printf(" %s(x%g)", name.c_str(), n);
  }
  std::printf("\n");
  // The goals, each from this run's medians.
  auto paired_ratio = [&](std::size_t a, std::size_t b) {
    std::vector<double> r;
    for (std::size_t i = 0; i < variants[a].loop_us.size(); ++i)
      r.push_back(variants[a].loop_us[i] / variants[b].loop_us[i]);
    return median(r);
  };
  auto paired_diff = [&](std::size_t a, std::size_t b) {
    std::vector<double> r;
    for (std::size_t i = 0; i < variants[a].loop_us.size(); ++i)
      r.push_back(variants[a].loop_us[i] - variants[b].loop_us[i]);
    return median(r);
  };
  std::printf("  trainer / hand loop over the same loader: %.3f (paired; goal <= 1.03)\n",
              paired_ratio(2, 0));
  std::printf("  trainer / floor: %.3f; hand loop (with loader) / floor: %.3f\n",
              paired_ratio(2, 5), paired_ratio(0, 5));
  std::printf("  DataLoader: %+.2f us per batch over indexing a vector (goal <= 1)\n",
              paired_diff(0, 5));
  std::printf("  log(): %+.2f us per call (goal <= 1)\n", paired_diff(4, 2));
  std::printf(
      "  default callbacks (bar off, logger to a temp dir) / hand loop: %.3f (paired; "
      "goal <= 1.05)\n",
      paired_ratio(6, 0));
  std::printf(
      "  hand loop inside fit() / hand loop: %.3f (paired; no hookline code in its timed loop: "
      "what the process state a fit leaves costs LibTorch)\n",
      paired_ratio(7, 0));
  machine_line(w, "loader_us", paired_diff(0, 5));
  machine_line(w, "log_us", paired_diff(4, 2));
  const double extra10 = median(variants[3].loop_us) - median(variants[2].loop_us);
  const double calls10 = c10.calls_per_step - c0.calls_per_step;
  if (calls10 > 0)
    std::printf("  10 callbacks: %+.1f us/step for %.0f more subscriber calls = %.0f ns/call\n",
                extra10, calls10, 1000 * extra10 / calls10);
}

// --processes N: runs this program N times with `args` (one process after another, so they do
// not share the machine) and prints, per workload and variant, the median over processes of the
// median us/step and of the paired ratio, with the range of the paired ratio.
int run_processes(int processes, const std::vector<std::string>& args) {
  std::string command =
      "'" + std::filesystem::read_symlink("/proc/self/exe").string() + "' --machine";
  for (const std::string& a : args) command += " '" + a + "'";
  std::map<std::string, std::vector<double>> figures;  // "workload key" -> one value per process
  std::vector<std::string> workloads;
  for (int p = 0; p < processes; ++p) {
    FILE* child = ::popen(command.c_str(), "r");
    if (child == nullptr) throw std::runtime_error("cannot start " + command);
    char line[512];
    while (std::fgets(line, sizeof line, child) != nullptr) {
      char name[64], key[64];
      double value = 0;
      if (std::sscanf(line, "@ %63s %63s %lf", name, key, &value) != 3) continue;
      if (std::find(workloads.begin(), workloads.end(), name) == workloads.end())
        workloads.push_back(name);
      figures[std::string(name) + " " + key].push_back(value);
    }
    if (::pclose(child) != 0)
      throw std::runtime_error("process " + std::to_string(p + 1) + " of " + command + " failed");
    std::printf("process %d of %d done\n", p + 1, processes);
    std::fflush(stdout);
  }
  const auto stat = [&](const std::string& workload, const std::string& key) {
    const std::vector<double>& v = figures[workload + " " + key];
    if (v.empty()) return std::array<double, 3>{0, 0, 0};
    return std::array<double, 3>{median(v), *std::min_element(v.begin(), v.end()),
                                 *std::max_element(v.begin(), v.end())};
  };
  const std::vector<Variant> variants = all_variants();
  for (const std::string& w : workloads) {
    std::printf("\n(%s) median over %d processes (paired: median [min, max] over processes)\n",
                w.c_str(), processes);
    std::printf("  %-50s %9s %24s %12s\n", "variant", "us/step", "paired", "fit() us/st");
    for (std::size_t i = 0; i < variants.size(); ++i) {
      const std::string index = std::to_string(i);
      const auto paired = stat(w, "paired/" + index);
      std::printf("  %-50s %9.1f %8.3f [%.3f, %.3f] %12.1f\n", variants[i].name.c_str(),
                  stat(w, "us/" + index)[0], paired[0], paired[1], paired[2],
                  stat(w, "fit/" + index)[0]);
    }
    const auto goal = [&](const char* what, std::size_t variant, const char* target) {
      const auto r = stat(w, "paired/" + std::to_string(variant));
      std::printf("  %s / hand loop: %.3f [%.3f, %.3f]%s\n", what, r[0], r[1], r[2], target);
    };
    goal("trainer", 2, " (goal <= 1.03)");
    goal("default callbacks (bar off, logger to a temp dir)", 6, " (goal <= 1.05)");
    goal("hand loop inside fit()", 7, " (no hookline code in its timed loop)");
    std::printf(
        "  DataLoader: %+.2f us per batch over indexing a vector (goal <= 1); log(): %+.2f "
        "us per call (goal <= 1)\n",
        stat(w, "loader_us")[0], stat(w, "log_us")[0]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  int rounds = 11;
  double scale = 1;
  std::string workload;                 // empty: both
  int processes = -1;                   // default: 5, or 1 with --only
  std::vector<std::string> child_args;  // what --processes passes on
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--processes" && i + 1 < argc) {
      processes = std::max(1, std::atoi(argv[++i]));
      continue;
    }
    if (arg == "--machine") {
      g_machine = true;
      continue;
    }
    child_args.push_back(arg);
    if (i + 1 < argc) child_args.push_back(argv[i + 1]);  // every other option takes a value
    if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--scale" && i + 1 < argc) {
      scale = std::atof(argv[++i]);
    } else if (arg == "--only" && i + 1 < argc) {
      g_only = std::atoi(argv[++i]);
    } else if (arg == "--workload" && i + 1 < argc) {
      workload = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: bench_trainer [--rounds N] [--scale X (steps multiplier)] [--only "
                   "VARIANT_INDEX] [--workload a|b|c] [--processes N]\n");
      return 2;
    }
  }
  if (g_machine) processes = 1;  // a child of --processes
  if (processes < 0) processes = g_only >= 0 ? 1 : 5;
  if (processes > 1) {
    if (g_only >= 0) throw std::invalid_argument("--only needs --processes 1");
    return run_processes(processes, child_args);
  }
  torch::set_num_threads(1);                     // the trainer's num_threads(1) sets the same
  hookline::set_log_level(spdlog::level::warn);  // no model summary or "fit stopped" lines
  // glibc's thresholds as a fit sets them (TrainerOptions::tune_allocator), held for the whole
  // process: the hand loops run with the same allocator as the trainer, and no fit's end resets
  // it under the next variant (on (b) the hand loop alone would otherwise fault its activations
  // back in every step: 3.7x slower).
  const hookline::AllocatorTuning tuning;
  const auto steps = [&](std::int64_t n) {
    return std::max<std::int64_t>(10, static_cast<std::int64_t>(static_cast<double>(n) * scale));
  };
  std::printf("torch intra-op threads: %d (hand loop and trainer alike)\n",
              torch::get_num_threads());
  std::printf(
      "us/step: median over rounds of the training loop's time per step (min, max: its range)\n"
      "RATIO: median / median of the hand loop; paired: median over rounds of (this / hand loop "
      "in the same round);\n"
      "vs order: median / median of the hand loop in the trainer's order\n"
      "fit() us/st: whole fit() (or whole hand run, set-up included) per step\n");
  if (workload.empty() || workload == "a") bench({"a", 32, 64, 2, 32, steps(1000)}, rounds);
  if (workload.empty() || workload == "b") bench({"b", 784, 256, 10, 64, steps(300)}, rounds);
  if (workload.empty() || workload == "c") bench({"c", 1, 1, 1, 1, steps(1000)}, rounds);
  std::filesystem::remove_all(default_root());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_trainer: %s\n", e.what());
  return 1;
}
