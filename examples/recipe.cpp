// hookline example: a training setup from a recipe file.
//
//   recipe [RECIPE.yaml] [--data-dir DIR] [--trainer.max_epochs=1 --model.hidden=64 ...]
//   recipe --print-config | --help | --version
//
// The trainer options, the model's and the data's options, the callbacks and packs come from
// the recipe (default: the shipped examples/recipes/fashion_mnist.yaml), so they change without
// recompiling: edit the file or override a key on the command line (hookline::Cli,
// recipe/cli.hpp). The model and data classes are code, registered by name for the recipe's
// `model:` and `data:` sections. A recipe with a mistake prints where it is
// ("recipes/bad.yaml:7:7: callbacks[0].EarlyStopping.patiense: unknown option ...") and the
// program exits with status 2 before anything trains, as it does for a usage error.
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/data_module.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/recipe/cli.hpp>
#include <hookline/recipe/recipe.hpp>
#include <hookline/recipe/registry.hpp>

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "example_cli.hpp"
#include "recipe_dir.hpp"  // HOOKLINE_EXAMPLE_RECIPES: the source tree's examples/recipes

namespace {

// A two-layer perceptron on flattened 28x28 images; logs what the shipped recipes monitor.
class Perceptron : public hookline::Module {
 public:
  // The recipe's `model:` options: hidden (units) and lr (Adam's learning rate).
  explicit Perceptron(hookline::RecipeOptions& o)
      : Module("perceptron"), lr_(o.get_or<double>("lr", 1e-3)) {
    const std::int64_t hidden = o.get_or<std::int64_t>("hidden", 128);
    if (hidden < 1) o.fail("hidden", "expected a positive integer, got " + std::to_string(hidden));
    if (!(lr_ > 0)) o.fail("lr", "expected a learning rate > 0");
    layers = register_module(
        "layers", torch::nn::Sequential(torch::nn::Linear(784, hidden), torch::nn::ReLU(),
                                        torch::nn::Linear(hidden, 10)));
  }
  hookline::StepOutput training_step(const hookline::Batch& batch, std::int64_t) override {
    const at::Tensor loss =
        torch::nn::functional::cross_entropy(layers->forward(batch["x"]), batch["y"]);
    log("train_loss", loss, hookline::LogOptions().prog_bar(true));
    return {{"loss", loss}};
  }
  hookline::StepOutput validation_step(const hookline::Batch& batch, std::int64_t,
                                       std::int64_t) override {
    const at::Tensor logits = layers->forward(batch["x"]);
    log("val_loss", torch::nn::functional::cross_entropy(logits, batch["y"]));
    log("val_acc", logits.argmax(1).eq(batch["y"]).to(torch::kFloat).mean(),
        hookline::LogOptions().prog_bar(true));
    return {};
  }
  hookline::OptimizerConfig configure_optimizers() override {
    return hookline::OptimizerConfig().add(
        std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(lr_)));
  }
  torch::nn::Sequential layers{nullptr};

 private:
  double lr_;
};

// Fashion-MNIST's training images: the first 50000 to train on, the last 10000 to validate.
class Data : public hookline::DataModule {
 public:
  // The recipe's `data:` options: data_dir and batch_size.
  explicit Data(hookline::RecipeOptions& o)
      : DataModule("fashion_mnist"), options_(hookline_examples::data_options(o)) {}
  void setup(hookline::Stage) override {
    if (train_) return;
    const auto all =
        hookline::data::load_fashion_mnist(options_.dir, hookline::data::Split::kTrain);
    const at::Tensor order = torch::arange(all.size(), torch::kLong);
    train_ =
        std::make_shared<hookline::data::TensorDataset>(all.get_batch(order.slice(0, 0, 50000)));
    val_ = std::make_shared<hookline::data::TensorDataset>(all.get_batch(order.slice(0, 50000)));
  }
  hookline::DataLoaders train_dataloader() override { return {loader(train_, true)}; }
  hookline::DataLoaders val_dataloader() override { return {loader(val_, false)}; }

 private:
  std::shared_ptr<hookline::data::DataLoader> loader(
      std::shared_ptr<const hookline::data::Dataset> set, bool shuffle) const {
    return std::make_shared<hookline::data::DataLoader>(
        std::move(set),
        hookline::data::DataLoaderOptions().batch_size(options_.batch_size).shuffle(shuffle));
  }
  hookline_examples::DataOptions options_;
  std::shared_ptr<hookline::data::TensorDataset> train_, val_;
};

}  // namespace

int main(int argc, char** argv) {
  hookline::registry().add_model<Perceptron>("Perceptron");
  hookline::registry().add_data<Data>("FashionMnist");
  const std::string shipped = std::string(HOOKLINE_EXAMPLE_RECIPES) + "/fashion_mnist.yaml";
  hookline::Cli cli("recipe",
                    "Trains a perceptron on Fashion-MNIST with the trainer options, model and data "
                    "options, callbacks and packs of a recipe file.");
  hookline_examples::setup_cli(cli, "recipe");
  // Under the recipe file: the classes, and where Debian puts the data.
  cli.defaults("model: {class: Perceptron}\ndata: {class: FashionMnist, data_dir: " +
               std::string(hookline::data::kFashionMnistDir) + "}\n")
      .default_config(shipped)
      .positional_config("the recipe (YAML; default: " + shipped + ")");
  if (const auto status = cli.parse(argc, argv)) return *status;
  const hookline::Recipe& recipe = cli.recipe();
  std::unique_ptr<hookline::Trainer> trainer;
  try {
    trainer = recipe.make_trainer();
  } catch (const hookline::RecipeError& e) {
    std::fprintf(stderr, "recipe: %s\n", e.what());
    return 2;
  }
  try {
    trainer->fit(*cli.model(), *cli.data());
    std::printf("recipe %s: %lld epochs, %lld optimizer steps", recipe.source().c_str(),
                static_cast<long long>(trainer->current_epoch()),
                static_cast<long long>(trainer->global_step()));
    if (auto it = trainer->callback_metrics().find("val_acc");
        it != trainer->callback_metrics().end())
      std::printf(", val_acc %.4f", it->second);
    std::printf("\n");
    for (const auto& callback : trainer->callbacks())
      std::printf("  callback %s\n", callback->checkpoint_key().c_str());
    if (!trainer->stop_reason().empty())
      std::printf("stopped: %s\n", trainer->stop_reason().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recipe: training failed: %s\n", e.what());
    return 1;
  }
}
