// How long a checkpoint blocks the training loop: synchronous save vs asynchronous save
// (TrainerOptions::async_checkpointing), for a model of about 100 MB, measured in one run with the
// two modes interleaved save by save.
//
//   ./build/release/bench/bench_checkpoint                 # 5 saves per mode and optimizer
//   ./build/release/bench/bench_checkpoint --saves 9 --dir /tmp
//
// A save is Trainer::save_checkpoint called from on_train_batch_end, timed from the call to its
// return: for the synchronous mode that is the whole save (hooks, serialization, checksum, write,
// fsync, rename); for the asynchronous mode it is what the loop waits for (hooks, copying the
// weights and the optimizer state), the file being written in the background. Each asynchronous
// save is waited for (untimed) before the next one, so both modes write on an idle disk.
// Optimizers: SGD without state, SGD with momentum (+100 MB of state) and Adam (+200 MB).
#include <hookline/core/callback.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/module.hpp>
#include <hookline/core/trainer.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

using namespace hookline;
using Clock = std::chrono::steady_clock;

namespace {

enum class Opt { sgd, momentum, adam };
const char* name_of(Opt o) {
  return o == Opt::sgd ? "SGD" : o == Opt::momentum ? "SGD momentum" : "Adam";
}

// 4 x Linear(2560, 2560) = 26.2 M parameters = 105 MB of float32.
class Big : public Module {
 public:
  explicit Big(Opt opt) : Module("big"), opt_(opt) {
    for (int i = 0; i < 4; ++i)
      layers.push_back(register_module("l" + std::to_string(i), torch::nn::Linear(2560, 2560)));
  }
  StepOutput training_step(const Batch& b, std::int64_t) override {
    at::Tensor x = b["x"];
    for (auto& l : layers) x = l(x);
    return {{"loss", x.pow(2).mean()}};
  }
  OptimizerConfig configure_optimizers() override {
    std::shared_ptr<torch::optim::Optimizer> o;
    if (opt_ == Opt::adam)
      o = std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(1e-4));
    else
      o = std::make_shared<torch::optim::SGD>(
          parameters(), torch::optim::SGDOptions(1e-4).momentum(opt_ == Opt::momentum ? 0.9 : 0));
    return OptimizerConfig().add(o);
  }
  DataLoaders train_dataloader() override {
    auto data = std::make_shared<data::TensorDataset>(
        Batch{{"x", torch::randn({64, 2560})}, {"y", torch::zeros({64})}});
    return {std::make_shared<data::DataLoader>(data, data::DataLoaderOptions().batch_size(8))};
  }
  std::vector<torch::nn::Linear> layers;

 private:
  Opt opt_;
};

// Saves at every batch end after the first (so the optimizer has its state), timing each save.
class TimedSaves final : public Callback {
 public:
  TimedSaves(std::string path, std::vector<double>& ms)
      : Callback("timed_saves"), path_(std::move(path)), ms_(ms) {}
  void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                          std::int64_t batch_idx) override {
    if (batch_idx == 0) return;
    const auto start = Clock::now();
    t.save_checkpoint(path_);
    ms_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    t.wait_for_checkpoint();
  }

 private:
  std::string path_;
  std::vector<double>& ms_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<double> run(Opt opt, bool async, int saves, const std::string& path) {
  std::vector<double> ms;
  torch::manual_seed(0);
  Big model(opt);
  Trainer trainer(TrainerOptions()
                      .max_epochs(1)
                      .limit_train_batches(static_cast<std::int64_t>(saves) + 1)
                      .num_sanity_val_steps(0)
                      .enable_checkpointing(false)
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .logger(false)
                      .async_checkpointing(async)
                      .num_threads(1),
                  {std::make_shared<TimedSaves>(path, ms)});
  trainer.fit(model);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  int saves = 5;
  std::string dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--saves") saves = std::stoi(argv[i + 1]);
    if (a == "--dir") dir = argv[i + 1];
  }
  torch::set_num_threads(1);
  const std::string path = dir + "/hookline-bench-checkpoint.ckpt";
  std::printf(
      "checkpoint of a 105 MB model (4 x Linear 2560x2560), %d saves per mode, median ms "
      "the loop is blocked per save\n\n",
      saves);
  std::printf("| optimizer | file size | sync save | async save (blocking) | async / sync |\n");
  std::printf("|---|---|---|---|---|\n");
  for (Opt opt : {Opt::sgd, Opt::momentum, Opt::adam}) {
    std::vector<double> sync_ms, async_ms;
    // Interleave: one sync run, one async run, and again, so both see the same machine state.
    for (int round = 0; round < 2; ++round) {
      auto s = run(opt, false, (saves + 1) / 2, path);
      auto a = run(opt, true, (saves + 1) / 2, path);
      sync_ms.insert(sync_ms.end(), s.begin(), s.end());
      async_ms.insert(async_ms.end(), a.begin(), a.end());
    }
    const double size_mb = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
    const double s = median(sync_ms), a = median(async_ms);
    std::printf("| %s | %.0f MB | %.1f ms | %.1f ms | %.3f |\n", name_of(opt), size_mb, s, a,
                a / s);
    std::fflush(stdout);
  }
  std::filesystem::remove(path);
  return 0;
}
