// Samples per second of the input pipeline: an augmented 28x28 uint8 image data set (random crop
// with padding 4, horizontal flip, to float, normalize; Fashion-MNIST's shape) batched by 128,
// alone and feeding the training step of a small CNN, measured in one run, interleaved round by
// round so every variant sees the same machine state.
//
//   ./build/release/bench/bench_input --rounds 9      # docs/data.md's first table (default 5)
//   ./build/release/bench/bench_input --rounds 3 --samples 6400 --steps 20
//   ./build/release/bench/bench_input --only "alone hookline, 2"   # one variant (+ baselines)
//
// Alone (no training step):
// - "hand loop": one thread, a loop that augments each sample straight into a preallocated batch
//   (the single-thread floor: no per-sample tensors, no collate).
// - "torch::data, N workers": LibTorch's C++ DataLoader (SequentialSampler, Stack<> collation)
//   over a torch::data dataset whose get(i) runs hookline's transforms (the same work per sample).
// - "hookline, N workers": hookline::data::DataLoader over a MapDataset running the same
//   transforms, num_workers(N).
// Feeding a step (the CNN: conv 1->16 3x3, relu, maxpool 2, conv 16->32 3x3, relu, maxpool 2,
// linear 1568->10, cross-entropy, SGD 0.01; one torch intra-op thread):
// - "pre-built batches": the same batches made beforehand (the step's ceiling).
// - "hookline, N workers" / "torch::data, 2 workers": the loaders above feeding the step.
// Each figure is the median over the rounds of samples/s; "ratio" is the median over the rounds
// of the variant's rate over the hand loop's (alone) or pre-built batches' (step) in the same
// round. "faults/step" is the minor page faults (getrusage, the whole process) per step after
// each run's first kWarmSteps steps: the steady state. "CPU us/sample" is the CPU time of all the
// process's threads per sample: what a variant costs, which other programs on the machine move
// much less than its rate.
//
// The allocator: the bench holds hookline::AllocatorTuning for the whole run, as Trainer::fit does
// by default (TrainerOptions::tune_allocator: glibc's mmap threshold at 32 MiB and trim threshold
// at INT_MAX, so a step's large freed blocks stay in the heap instead of going back to the kernel
// and faulting in again). --no-tune-allocator leaves glibc's defaults, as
// TrainerOptions().tune_allocator(false) does:
//
//   ./build/release/bench/bench_input --no-tune-allocator
#include <hookline/core/allocator_tuning.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/sample.hpp>
#include <hookline/core/data/transforms.hpp>

#include <torch/torch.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using hookline::Batch;
namespace data = hookline::data;

constexpr std::int64_t kBatch = 128;
constexpr std::int64_t kSide = 28;
constexpr std::int64_t kPad = 4;
constexpr float kMean = 0.2860f, kStd = 0.3530f;  // Fashion-MNIST's
constexpr std::int64_t kWarmSteps = 2;            // not counted in faults/step

data::Transform augmentation() {
  return data::compose({data::random_crop(kSide, kPad), data::random_horizontal_flip(),
                        data::normalize({kMean}, {kStd})});
}

// Random uint8 images [N, 1, 28, 28] and labels [N].
struct Images {
  at::Tensor x, y;
  explicit Images(std::int64_t n) {
    auto g = at::make_generator<at::CPUGeneratorImpl>(1);
    x = at::randint(0, 256, {n, 1, kSide, kSide}, g, at::kByte);
    y = at::randint(0, 10, {n}, g, at::kLong);
  }
};

class AugmentedImages final : public data::MapDataset {
 public:
  explicit AugmentedImages(const Images& images) : images_(images), transform_(augmentation()) {}
  std::int64_t size() const override { return images_.x.size(0); }
  Batch get(std::int64_t i, data::SampleGenerator& rng) const override {
    return Batch{{"x", transform_(images_.x[i], rng)}, {"y", images_.y[i]}};
  }

 private:
  const Images& images_;
  data::Transform transform_;
};

class TorchImages final : public torch::data::datasets::Dataset<TorchImages> {
 public:
  explicit TorchImages(const Images& images) : images_(&images), transform_(augmentation()) {}
  torch::data::Example<> get(std::size_t i) override {
    const auto index = static_cast<std::int64_t>(i);
    data::SampleGenerator rng(0, 0, index);
    return {transform_(images_->x[index], rng), images_->y[index]};
  }
  torch::optional<std::size_t> size() const override {
    return static_cast<std::size_t>(images_->x.size(0));
  }

 private:
  const Images* images_;
  data::Transform transform_;
};

// The single-thread floor: crop, flip and normalize each sample straight into the batch.
void hand_batch(const Images& images, std::int64_t first, std::int64_t rows, at::Tensor& x,
                at::Tensor& y) {
  const std::uint8_t* src = images.x.data_ptr<std::uint8_t>();
  float* dst = x.data_ptr<float>();
  const float scale = 1.0f / (255.0f * kStd), shift = -kMean / kStd;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t index = first + r;
    data::SampleGenerator rng(0, 0, index);
    const std::int64_t top = rng.integer(0, 2 * kPad) - kPad;
    const std::int64_t left = rng.integer(0, 2 * kPad) - kPad;
    const bool flip = rng.bernoulli(0.5);
    const std::uint8_t* in = src + index * kSide * kSide;
    float* out = dst + r * kSide * kSide;
    for (std::int64_t i = 0; i < kSide; ++i)
      for (std::int64_t j = 0; j < kSide; ++j) {
        const std::int64_t sy = i + top, sx = (flip ? kSide - 1 - j : j) + left;
        const bool inside = sy >= 0 && sy < kSide && sx >= 0 && sx < kSide;
        out[i * kSide + j] =
            (inside ? static_cast<float>(in[sy * kSide + sx]) : 0.0f) * scale + shift;
      }
  }
  y.narrow(0, 0, rows).copy_(images.y.narrow(0, first, rows));
}

struct Cnn : torch::nn::Module {
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::Linear fc{nullptr};
  Cnn() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1)));
    fc = register_module("fc", torch::nn::Linear(32 * 7 * 7, 10));
  }
  at::Tensor forward(const at::Tensor& x) {
    auto h = torch::max_pool2d(torch::relu(c1(x)), 2);
    h = torch::max_pool2d(torch::relu(c2(h)), 2);
    return fc(h.flatten(1));
  }
};

struct Trainer {
  Cnn net;
  torch::optim::SGD sgd{net.parameters(), torch::optim::SGDOptions(0.01)};
  void step(const at::Tensor& x, const at::Tensor& y) {
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(net.forward(x), y).backward();
    sgd.step();
  }
};

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// CPU time (user + system) of every thread of the process so far, in microseconds.
double cpu_us() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + t.tv_usec; };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

struct Measure {
  double samples_per_s = 0;
  double faults_per_step = 0;
  double cpu_us_per_sample = 0;  // all threads: what the variant costs, whatever else runs
};

// Counts a run's steps and the page faults of its steps after the first kWarmSteps.
struct Steps {
  std::int64_t count = 0;
  long faults_at_warm = 0;
  void step() {
    if (++count == kWarmSteps) faults_at_warm = minor_faults();
  }
};

// Runs `body` (which returns the samples it went through and counts steps) once, timed.
Measure timed(const std::function<std::int64_t(Steps&)>& body) {
  Steps steps;
  const double cpu = cpu_us();
  const auto start = Clock::now();
  const std::int64_t samples = body(steps);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const long faults = minor_faults();
  return {static_cast<double>(samples) / seconds,
          steps.count > kWarmSteps ? static_cast<double>(faults - steps.faults_at_warm) /
                                         static_cast<double>(steps.count - kWarmSteps)
                                   : 0,
          (cpu_us() - cpu) / static_cast<double>(samples)};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::int64_t arg(int argc, char** argv, const char* name, std::int64_t fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rounds = arg(argc, argv, "--rounds", 5);
  const std::int64_t n = arg(argc, argv, "--samples", 12800);
  const std::int64_t steps = arg(argc, argv, "--steps", 30);
  bool tune = true;
  for (int i = 1; i < argc; ++i) tune = tune && std::strcmp(argv[i], "--no-tune-allocator") != 0;
  const hookline::AllocatorTuning tuning(tune);  // what a fit holds by default
  torch::set_num_threads(1);
  const Images images(n);
  const Images step_images(steps * kBatch);
  auto dataset = std::make_shared<AugmentedImages>(images);
  auto step_dataset = std::make_shared<AugmentedImages>(step_images);
  Trainer trainer;

  const auto hand = [&](Steps&) {
    at::Tensor x = at::empty({kBatch, 1, kSide, kSide}), y = at::empty({kBatch}, at::kLong);
    for (std::int64_t first = 0; first < n; first += kBatch) {
      const std::int64_t rows = std::min(kBatch, n - first);
      hand_batch(images, first, rows, x, y);
    }
    return n;
  };
  const auto hookline_loader = [&](int workers, bool step) {
    return [&, workers, step](Steps& count) {
      data::DataLoader loader(step ? step_dataset : dataset,
                              data::DataLoaderOptions().batch_size(kBatch).num_workers(workers));
      std::int64_t samples = 0;
      for (auto it = loader.begin(); it != loader.end(); ++it) {
        Batch b = it.take();
        samples += b.batch_size();
        if (step) trainer.step(b["x"], b["y"]);
        count.step();
      }
      return samples;
    };
  };
  const auto torch_loader = [&](int workers, bool step) {
    return [&, workers, step](Steps& count) {
      auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
          TorchImages(step ? step_images : images).map(torch::data::transforms::Stack<>()),
          torch::data::DataLoaderOptions().batch_size(kBatch).workers(workers));
      std::int64_t samples = 0;
      for (auto& b : *loader) {
        samples += b.data.size(0);
        if (step) trainer.step(b.data, b.target);
        count.step();
      }
      return samples;
    };
  };
  std::vector<at::Tensor> prebuilt_x, prebuilt_y;
  {
    data::DataLoader loader(step_dataset, data::DataLoaderOptions().batch_size(kBatch));
    for (auto it = loader.begin(); it != loader.end(); ++it) {
      prebuilt_x.push_back(it->operator[]("x"));
      prebuilt_y.push_back(it->operator[]("y"));
    }
  }
  const auto prebuilt = [&](Steps& count) {
    std::int64_t samples = 0;
    for (std::size_t i = 0; i < prebuilt_x.size(); ++i) {
      trainer.step(prebuilt_x[i], prebuilt_y[i]);
      samples += prebuilt_x[i].size(0);
      count.step();
    }
    return samples;
  };

  struct Variant {
    std::string section, name;
    std::function<std::int64_t(Steps&)> body;
  };
  std::vector<Variant> variants = {
      {"alone", "hand loop (1 thread)", hand},
      {"alone", "torch::data, 0 workers", torch_loader(0, false)},
      {"alone", "torch::data, 1 worker", torch_loader(1, false)},
      {"alone", "torch::data, 2 workers", torch_loader(2, false)},
      {"alone", "hookline, 0 workers", hookline_loader(0, false)},
      {"alone", "hookline, 1 worker", hookline_loader(1, false)},
      {"alone", "hookline, 2 workers", hookline_loader(2, false)},
      {"step", "pre-built batches", prebuilt},
      {"step", "torch::data, 2 workers", torch_loader(2, true)},
      {"step", "hookline, 0 workers", hookline_loader(0, true)},
      {"step", "hookline, 1 worker", hookline_loader(1, true)},
      {"step", "hookline, 2 workers", hookline_loader(2, true)},
  };
  // --only TEXT: the variants whose "section name" holds TEXT, and the two baselines (profiling).
  std::string only;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
  if (!only.empty())
    std::erase_if(variants, [&](const Variant& v) {
      return v.name != "hand loop (1 thread)" && v.name != "pre-built batches" &&
             (v.section + " " + v.name).find(only) == std::string::npos;
    });
  std::map<std::string, std::vector<double>> rates, ratios, faults, cpu;
  for (std::int64_t r = -1; r < rounds; ++r) {  // round -1 warms up
    std::map<std::string, double> round;
    for (const auto& v : variants) {
      const Measure m = timed(v.body);
      if (r < 0) continue;
      round[v.section + v.name] = m.samples_per_s;
      rates[v.section + v.name].push_back(m.samples_per_s);
      faults[v.section + v.name].push_back(m.faults_per_step);
      cpu[v.section + v.name].push_back(m.cpu_us_per_sample);
    }
    if (r < 0) continue;
    for (const auto& v : variants)
      ratios[v.section + v.name].push_back(
          round[v.section + v.name] /
          round[v.section == "alone" ? "alonehand loop (1 thread)" : "steppre-built batches"]);
  }

  std::printf(
      "input pipeline: %lld samples of 1x28x28 uint8, batch %lld, crop(pad 4) + flip + "
      "normalize; step: CNN, 1 intra-op thread, %lld steps; median of %lld rounds; allocator "
      "tuning %s\n\n",
      static_cast<long long>(n), static_cast<long long>(kBatch), static_cast<long long>(steps),
      static_cast<long long>(rounds),
      tuning.holds() ? "on (fit's default)"
                     : (tune ? "unavailable (not glibc, or GLIBC_TUNABLES sets it)"
                             : "off (--no-tune-allocator)"));
  std::printf("| %-8s | %-26s | %12s | %6s | %11s | %14s |\n", "", "variant", "samples/s", "ratio",
              "faults/step", "CPU us/sample");
  std::printf(
      "|----------|----------------------------|--------------|--------|-------------|------------"
      "----|\n");
  for (const auto& v : variants) {
    const std::string key = v.section + v.name;
    char fault_text[32] = "";
    if (v.section == "step")
      std::snprintf(fault_text, sizeof fault_text, "%.1f", median(faults[key]));
    std::printf("| %-8s | %-26s | %12.0f | %6.3f | %11s | %14.2f |\n", v.section.c_str(),
                v.name.c_str(), median(rates[key]), median(ratios[key]), fault_text,
                median(cpu[key]));
  }
  return 0;
}
