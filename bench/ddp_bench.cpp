// bench_ddp: data-parallel throughput on this machine's CPU cores: the same global batches
// trained by 1 process and by 2 DDP processes (Gloo over loopback), 1 torch thread each, on a
// compute-bound MLP; and the share of a DDP step spent waiting for the gradient all-reduce (the
// part backward did not hide).
//
//   bench_ddp [GLOBAL_BATCH]   runs both configurations (each as its own program run) for each
//                              global batch (default: 128 and 512) and prints docs/performance.md's
//                              table
//   bench_ddp --devices N --batch B   one configuration; prints "samples_per_s S wait_share W"
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/strategies/ddp.hpp>

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace {

std::int64_t g_global_batch = 128;  // samples per optimizer step, over all processes
constexpr std::int64_t kSamples = 512 * 15;

class Mlp : public hookline::Module {
 public:
  explicit Mlp(std::int64_t batch) : Module("mlp"), batch_(batch) {
    torch::manual_seed(0);
    net = register_module("net",
                          torch::nn::Sequential(torch::nn::Linear(784, 1024), torch::nn::ReLU(),
                                                torch::nn::Linear(1024, 1024), torch::nn::ReLU(),
                                                torch::nn::Linear(1024, 10)));
  }
  hookline::StepOutput training_step(const hookline::Batch& b, std::int64_t) override {
    return {{"loss", torch::nn::functional::cross_entropy(net->forward(b["x"]), b["y"])}};
  }
  hookline::OptimizerConfig configure_optimizers() override {
    return hookline::OptimizerConfig().add(
        std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.01)));
  }
  hookline::DataLoaders train_dataloader() override {
    torch::manual_seed(1);
    auto data = std::make_shared<hookline::data::TensorDataset>(
        hookline::Batch{{"x", torch::randn({kSamples, 784})},
                        {"y", torch::randint(0, 10, {kSamples}, torch::kLong)}});
    return {std::make_shared<hookline::data::DataLoader>(
        data, hookline::data::DataLoaderOptions().batch_size(batch_))};
  }
  torch::nn::Sequential net{nullptr};

 private:
  std::int64_t batch_;
};

int run_one(int devices) {
  Mlp model(g_global_batch / devices);
  hookline::TrainerOptions options = hookline::TrainerOptions()
                                         .max_epochs(2)
                                         .num_threads(1)
                                         .limit_val_batches(0)
                                         .enable_progress_bar(false)
                                         .enable_model_summary(false)
                                         .enable_checkpointing(false)
                                         .logger(false);
  if (devices > 1) options.strategy("ddp").devices(devices);
  hookline::Trainer trainer(options);
  const auto start = std::chrono::steady_clock::now();
  trainer.fit(model);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double wait = 0;
  if (auto* ddp = dynamic_cast<const hookline::DDPStrategy*>(&trainer.strategy()))
    wait = ddp->grad_sync_stats().wait_seconds;
  if (trainer.is_global_zero())
    std::printf("samples_per_s %.1f wait_share %.4f\n", 2.0 * kSamples / seconds, wait / seconds);
  return 0;
}

double field(const std::string& text, const std::string& name) {
  const auto at = text.find(name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 1));
}

std::string run_child(const char* self, int devices) {
  const std::string command = std::string(self) + " --devices " + std::to_string(devices) +
                              " --batch " + std::to_string(g_global_batch);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  if (::pclose(pipe) != 0) throw std::runtime_error(command + " failed:\n" + out);
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc == 5 && std::string(argv[1]) == "--devices") {
    g_global_batch = std::stoll(argv[4]);
    return run_one(std::stoi(argv[2]));
  }
  std::vector<std::int64_t> batches{128, 512};
  if (argc == 2) batches = {std::stoll(argv[1])};
  std::printf(
      "bench_ddp: MLP 784-1024-1024-10 (1.86 M parameters), %lld samples x 2 epochs, "
      "1 torch thread per process\n",
      static_cast<long long>(kSamples));
  std::printf("| global batch | processes | samples/s | speed-up | all-reduce wait / time |\n");
  std::printf("|---|---|---|---|---|\n");
  for (const std::int64_t batch : batches) {
    g_global_batch = batch;
    const std::string one = run_child(argv[0], 1);
    const std::string two = run_child(argv[0], 2);
    const double s1 = field(one, "samples_per_s"), s2 = field(two, "samples_per_s");
    std::printf("| %lld | 1 | %.0f | 1.00 | - |\n", static_cast<long long>(batch), s1);
    std::printf("| %lld | 2 (DDP, Gloo) | %.0f | %.2f | %.1f%% |\n", static_cast<long long>(batch),
                s2, s2 / s1, 100 * field(two, "wait_share"));
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_ddp: %s\n", e.what());
  return 1;
}
