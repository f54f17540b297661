// hookline example: data-parallel training on 2 CPU processes (Gloo over loopback).
//
//   ddp [--devices N] [--epochs N] [--limit-train-batches N] [--data-dir DIR]
//   ddp --help | --version
//
// A usage error (an unknown option, a bad value) is refused with the option named, exit status 2
// (examples/example_cli.hpp).
// The program is started once; the trainer starts the other N-1 processes itself (each runs this
// same program with torchrun's variables set), or joins the run torchrun / srun started. Each
// rank trains on its shard of Fashion-MNIST; gradients are averaged after every backward pass,
// so all ranks keep identical weights. Only rank 0 prints, logs and writes checkpoints.
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/strategies/ddp.hpp>

#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "example_cli.hpp"

namespace {

class Classifier : public hookline::Module {
 public:
  explicit Classifier(std::filesystem::path data_dir)
      : Module("classifier"), data_dir_(std::move(data_dir)) {
    net =
        register_module("net", torch::nn::Sequential(torch::nn::Linear(784, 256), torch::nn::ReLU(),
                                                     torch::nn::Linear(256, 10)));
  }
  hookline::StepOutput training_step(const hookline::Batch& batch, std::int64_t) override {
    const at::Tensor loss =
        torch::nn::functional::cross_entropy(net->forward(batch["x"]), batch["y"]);
    // sync_dist: the value logged is the mean over the ranks.
    log("train_loss", loss, hookline::LogOptions().on_epoch(true).sync_dist(true));
    return {{"loss", loss}};
  }
  hookline::OptimizerConfig configure_optimizers() override {
    return hookline::OptimizerConfig().add(std::make_shared<torch::optim::SGD>(
        parameters(), torch::optim::SGDOptions(0.05).momentum(0.9)));
  }
  hookline::DataLoaders train_dataloader() override {
    auto data = std::make_shared<hookline::data::TensorDataset>(
        hookline::data::load_fashion_mnist(data_dir_, hookline::data::Split::kTrain));
    // Each rank gets its shard of this loader (use_distributed_sampler, on by default).
    return {std::make_shared<hookline::data::DataLoader>(
        data, hookline::data::DataLoaderOptions().batch_size(64).shuffle(true).seed(0))};
  }
  torch::nn::Sequential net{nullptr};

 private:
  std::filesystem::path data_dir_;
};

}  // namespace

int main(int argc, char** argv) try {
  std::int64_t devices = 2, epochs = 1, limit = 100;
  std::string data_dir;
  CLI::App app{
      "Data-parallel training on CPU processes (Gloo over loopback); the program starts "
      "the other ranks itself.",
      "ddp"};
  hookline_examples::setup_cli(app);
  app.add_option("--devices", devices, "processes to train on")
      ->check(hookline_examples::positive_integer())
      ->capture_default_str();
  hookline_examples::add_epochs(app, epochs);
  hookline_examples::add_limit_train_batches(app, limit);
  hookline_examples::add_data_dir(app, data_dir);
  hookline_examples::parse_cli(app, argc, argv);
  torch::manual_seed(0);
  Classifier model(data_dir);
  hookline::Trainer trainer(hookline::TrainerOptions()
                                .strategy("ddp")
                                .devices(devices)
                                .max_epochs(epochs)
                                .limit_train_batches(limit)
                                .limit_val_batches(0)
                                .num_threads(1)
                                .enable_progress_bar(false)
                                .enable_checkpointing(false)
                                .logger(false));
  trainer.fit(model);
  const auto& ddp = dynamic_cast<const hookline::DDPStrategy&>(trainer.strategy());
  // Every rank checks it holds the same weights as rank 0.
  at::Tensor mine = torch::cat(
      {model.net->parameters()[0].reshape({-1}), model.net->parameters()[3].reshape({-1})});
  at::Tensor zero = mine.clone();
  trainer.strategy().broadcast(zero, 0);
  const bool same = torch::equal(mine, zero);
  const bool all_same = trainer.strategy().reduce_boolean_decision(same, true);
  if (trainer.is_global_zero())
    std::printf(
        "ddp: %d processes, %lld optimizer steps each, train_loss %.4f (mean over ranks), "
        "replicas identical: %s, gradient all-reduces: %lld\n",
        trainer.world_size(), static_cast<long long>(trainer.global_step()),
        trainer.callback_metrics().at("train_loss_epoch"), all_same ? "yes" : "NO",
        static_cast<long long>(ddp.grad_sync_stats().buckets));
  return all_same ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ddp: %s\n", e.what());
  return 1;
}
