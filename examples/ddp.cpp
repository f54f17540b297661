// hookline example: data-parallel training on 2 CPU processes (Gloo over loopback).
//
//   ddp [--devices N] [--epochs N] [--limit-train-batches N|FRACTION] [--data-dir DIR]
//   ddp --trainer.max_steps=50 --model.lr=0.1 --data.batch_size=32    # any recipe key
//   ddp --print-config | --help | --version
//
// The command line is hookline::Cli's (recipe/cli.hpp, examples/example_cli.hpp); a usage error
// (an unknown option, a bad value) is refused with the option named, exit status 2.
// The program is started once; the trainer starts the other N-1 processes itself (each runs this
// same program with the same arguments and torchrun's variables set), or joins the run torchrun /
// srun started. Each rank trains on its shard of Fashion-MNIST; gradients are averaged after
// every backward pass, so all ranks keep identical weights. Only rank 0 prints, logs and writes
// checkpoints.
//
// SIGTERM or Ctrl-C to rank 0 stops every rank at the same step: rank 0 writes
// <root>/checkpoints/on_exception.ckpt, all ranks exit 128 + the signal, and --resume continues
// from there (docs/distributed.md).
#include <hookline/callbacks/on_exception_checkpoint.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/data_module.hpp>
#include <hookline/core/signals.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/recipe/cli.hpp>
#include <hookline/recipe/registry.hpp>
#include <hookline/strategies/ddp.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "example_cli.hpp"

namespace {

class Classifier : public hookline::Module {
 public:
  // From the recipe's `model:` section (--model.hidden, --model.lr).
  explicit Classifier(hookline::RecipeOptions& o)
      : Module("classifier"), lr_(o.get_or<double>("lr", 0.05)) {
    const std::int64_t width = o.get_or<std::int64_t>("hidden", 256);
    if (width < 1) o.fail("hidden", "expected a positive integer, got " + std::to_string(width));
    if (!(lr_ > 0)) o.fail("lr", "expected a learning rate > 0");
    net = register_module("net",
                          torch::nn::Sequential(torch::nn::Linear(784, width), torch::nn::ReLU(),
                                                torch::nn::Linear(width, 10)));
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
        parameters(), torch::optim::SGDOptions(lr_).momentum(0.9)));
  }
  torch::nn::Sequential net{nullptr};

 private:
  double lr_;
};

// Fashion-MNIST's training images; each rank gets its shard of the loader
// (use_distributed_sampler, on by default).
class FashionMnist : public hookline::DataModule {
 public:
  explicit FashionMnist(hookline::RecipeOptions& o)
      : DataModule("fashion_mnist"), options_(hookline_examples::data_options(o)) {}
  hookline::DataLoaders train_dataloader() override {
    auto data = std::make_shared<hookline::data::TensorDataset>(
        hookline::data::load_fashion_mnist(options_.dir, hookline::data::Split::kTrain));
    return {std::make_shared<hookline::data::DataLoader>(
        data,
        hookline::data::DataLoaderOptions().batch_size(options_.batch_size).shuffle(true).seed(0))};
  }

 private:
  hookline_examples::DataOptions options_;
};

std::string default_recipe() {
  return "trainer:\n"
         "  strategy: ddp\n"
         "  devices: 2\n"
         "  max_epochs: 1\n"
         "  limit_train_batches: 100\n"
         "  limit_val_batches: 0\n"
         "  num_threads: 1\n"
         "  enable_progress_bar: false\n"
         "  logger: false\n"
         "  default_root_dir: ddp_run\n"
         "  seed: 0\n"
         "model:\n"
         "  class: Classifier\n"
         "data:\n"
         "  class: FashionMnist\n"
         "  data_dir: " +
         std::string(hookline::data::kFashionMnistDir) + "\n";
}

}  // namespace

int main(int argc, char** argv) try {
  hookline::registry().add_model<Classifier>("Classifier");
  hookline::registry().add_data<FashionMnist>("FashionMnist");
  bool resume = false;
  hookline::Cli cli("ddp",
                    "Data-parallel training on CPU processes (Gloo over loopback); the program "
                    "starts the other ranks itself.");
  hookline_examples::setup_cli(cli, "ddp");
  cli.defaults(default_recipe())
      .alias("--devices", "trainer.devices")
      .flag("--resume", resume, "continue from the checkpoint an interrupted run wrote");
  if (const auto status = cli.parse(argc, argv)) return *status;
  const hookline::Recipe& recipe = cli.recipe();
  const hookline::TrainerOptions options = recipe.trainer_options();
  auto& model = dynamic_cast<Classifier&>(*cli.model());
  hookline::DataModule& data = *cli.data();
  // A stop by SIGTERM / Ctrl-C saves here on rank 0 (resumable with --resume).
  const std::string checkpoints = options.default_root_dir() + "/checkpoints";
  hookline::Trainer trainer(options,
                            {std::make_shared<hookline::OnExceptionCheckpoint>(checkpoints)});
  recipe.apply(trainer);
  const std::string resume_from = checkpoints + "/on_exception.ckpt";
  try {
    trainer.fit(model, data, resume && std::filesystem::exists(resume_from) ? resume_from : "");
  } catch (const hookline::RunInterrupted& e) {
    if (trainer.is_global_zero())
      std::fprintf(stderr, "ddp: %s\nrun again with --resume to continue\n", e.what());
    return 128 + e.signal();
  }
  // Every rank checks it holds the same weights as rank 0.
  at::Tensor mine = torch::cat(
      {model.net->parameters()[0].reshape({-1}), model.net->parameters()[3].reshape({-1})});
  at::Tensor zero = mine.clone();
  trainer.strategy().broadcast(zero, 0);
  const bool same = torch::equal(mine, zero);
  const bool all_same = trainer.strategy().reduce_boolean_decision(same, true);
  const auto* ddp = dynamic_cast<const hookline::DDPStrategy*>(&trainer.strategy());
  const auto loss = trainer.callback_metrics().find("train_loss_epoch");
  if (trainer.is_global_zero())
    std::printf(
        "ddp: %d processes, %lld optimizer steps each, train_loss %.4f (mean over ranks), "
        "replicas identical: %s, gradient all-reduces: %lld\n",
        trainer.world_size(), static_cast<long long>(trainer.global_step()),
        loss == trainer.callback_metrics().end() ? std::nan("") : loss->second,
        all_same ? "yes" : "NO", static_cast<long long>(ddp ? ddp->grad_sync_stats().buckets : 0));
  return all_same ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ddp: %s\n", e.what());
  return 1;
}
