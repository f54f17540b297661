// hookline example: a training setup from a recipe file.
//
//   recipe [RECIPE.yaml] [--data-dir DIR]
//   recipe --help | --version
//
// The trainer options, callbacks and packs come from the recipe (default: the shipped
// examples/recipes/fashion_mnist.yaml), so they change without recompiling: edit the file, run
// again. The model and the data stay in code. A recipe with a mistake prints where it is
// ("recipes/bad.yaml:7:7: callbacks[0].EarlyStopping.patiense: unknown option ...") and the
// program exits with status 2 before anything trains, as it does for a usage error (an unknown
// option, examples/example_cli.hpp).
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/data_module.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/recipe/recipe.hpp>

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
  Perceptron() : Module("perceptron") {
    layers = register_module("layers",
                             torch::nn::Sequential(torch::nn::Linear(784, 128), torch::nn::ReLU(),
                                                   torch::nn::Linear(128, 10)));
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
        std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(1e-3)));
  }
  torch::nn::Sequential layers{nullptr};
};

// Fashion-MNIST's training images: the first 50000 to train on, the last 10000 to validate.
class Data : public hookline::DataModule {
 public:
  explicit Data(std::filesystem::path dir) : DataModule("fashion_mnist"), dir_(std::move(dir)) {}
  void setup(hookline::Stage) override {
    if (train_) return;
    const auto all = hookline::data::load_fashion_mnist(dir_, hookline::data::Split::kTrain);
    const at::Tensor order = torch::arange(all.size(), torch::kLong);
    train_ =
        std::make_shared<hookline::data::TensorDataset>(all.get_batch(order.slice(0, 0, 50000)));
    val_ = std::make_shared<hookline::data::TensorDataset>(all.get_batch(order.slice(0, 50000)));
  }
  hookline::DataLoaders train_dataloader() override { return {loader(train_, true)}; }
  hookline::DataLoaders val_dataloader() override { return {loader(val_, false)}; }

 private:
  static std::shared_ptr<hookline::data::DataLoader> loader(
      std::shared_ptr<const hookline::data::Dataset> set, bool shuffle) {
    return std::make_shared<hookline::data::DataLoader>(
        std::move(set), hookline::data::DataLoaderOptions().batch_size(64).shuffle(shuffle));
  }
  std::filesystem::path dir_;
  std::shared_ptr<hookline::data::TensorDataset> train_, val_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string recipe_path = std::string(HOOKLINE_EXAMPLE_RECIPES) + "/fashion_mnist.yaml";
  std::string data_dir;
  CLI::App app{
      "Trains a perceptron on Fashion-MNIST with the trainer options, callbacks and "
      "packs of a recipe file.",
      "recipe"};
  hookline_examples::setup_cli(app);
  app.add_option("recipe", recipe_path, "the recipe (YAML)")->capture_default_str();
  hookline_examples::add_data_dir(app, data_dir);
  hookline_examples::parse_cli(app, argc, argv);
  std::unique_ptr<hookline::Trainer> trainer;
  try {
    trainer = hookline::Trainer::from_recipe(recipe_path);
  } catch (const hookline::RecipeError& e) {
    std::fprintf(stderr, "recipe: %s\n", e.what());
    return 2;
  }
  try {
    torch::manual_seed(0);
    Perceptron model;
    Data data(data_dir);
    trainer->fit(model, data);
    std::printf("recipe %s: %lld epochs, %lld optimizer steps", recipe_path.c_str(),
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
