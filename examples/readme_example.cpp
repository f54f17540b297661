// The 20-line example of README.md, kept here so the build proves it compiles. Run it with
// ./build/release/examples/readme_example (two epochs on Fashion-MNIST, about ten seconds). Its
// command line takes only --help and --version (the README's code is what follows main's first
// line).
#include <torch/torch.h>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/trainer.hpp>

#include "example_cli.hpp"
using namespace hookline;

struct Classifier : Module {
  torch::nn::Linear net{nullptr};
  Classifier() { net = register_module("net", torch::nn::Linear(784, 10)); }
  StepOutput training_step(const Batch& b, std::int64_t) override {
    auto loss = torch::nn::functional::cross_entropy(net(b["x"]), b["y"]);
    log("train_loss", loss, LogOptions().prog_bar(true));
    return {{"loss", loss}};
  }
  OptimizerConfig configure_optimizers() override {
    return OptimizerConfig().add(std::make_shared<torch::optim::SGD>(parameters(), 0.1));
  }
  DataLoaders train_dataloader() override {
    auto train =
        std::make_shared<data::TensorDataset>(data::load_fashion_mnist(data::Split::kTrain));
    return {std::make_shared<data::DataLoader>(
        train, data::DataLoaderOptions().batch_size(64).shuffle(true))};
  }
};

int main(int argc, char** argv) {
  CLI::App app{"The README's example: a linear classifier, 2 epochs on Fashion-MNIST.",
               "readme_example"};
  hookline_examples::setup_cli(app);
  hookline_examples::parse_cli(app, argc, argv);
  Classifier model;
  Trainer trainer(TrainerOptions().max_epochs(2));
  trainer.fit(model);
  std::printf("train_loss %.3f\n", trainer.callback_metrics().at("train_loss"));
}
