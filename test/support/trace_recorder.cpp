#include "trace_recorder.hpp"

namespace test_support {

std::vector<std::string> HookRecorder::calls_of(const std::string& who) const {
  std::vector<std::string> out;
  for (const auto& line : calls())
    if (line.rfind(who + ".", 0) == 0) out.push_back(line.substr(who.size() + 1));
  return out;
}

std::shared_ptr<hookline::data::TensorDataset> random_dataset(std::int64_t n, std::int64_t in,
                                                              std::int64_t out,
                                                              std::uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  auto x = torch::randn({n, in}, gen);
  auto y = torch::randn({n, out}, gen);
  return std::make_shared<hookline::data::TensorDataset>(hookline::Batch{{"x", x}, {"y", y}});
}

std::shared_ptr<hookline::data::DataLoader> loader(std::int64_t n, std::int64_t batch_size,
                                                   std::uint64_t seed) {
  return std::make_shared<hookline::data::DataLoader>(
      random_dataset(n, 32, 2, seed), hookline::data::DataLoaderOptions().batch_size(batch_size));
}

BoringModel::BoringModel() : Module("lm") {
  layer = register_module("layer", torch::nn::Linear(32, 2));
}

hookline::StepOutput BoringModel::training_step(const hookline::Batch& batch, std::int64_t) {
  auto loss = torch::mse_loss(layer(batch["x"]), batch["y"]);
  return {{"loss", loss}};
}

hookline::StepOutput BoringModel::validation_step(const hookline::Batch& batch, std::int64_t,
                                                  std::int64_t) {
  return {{"x", torch::mse_loss(layer(batch["x"]), batch["y"])}};
}

hookline::StepOutput BoringModel::test_step(const hookline::Batch& batch, std::int64_t,
                                            std::int64_t) {
  return {{"y", torch::mse_loss(layer(batch["x"]), batch["y"])}};
}

hookline::StepOutput BoringModel::predict_step(const hookline::Batch& batch, std::int64_t,
                                               std::int64_t) {
  return {{"prediction", layer(batch["x"])}};
}

hookline::OptimizerConfig BoringModel::configure_optimizers() {
  return hookline::OptimizerConfig().add(
      std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.1)));
}

hookline::DataLoaders BoringModel::val_dataloader() {
  hookline::DataLoaders out;
  for (int i = 0; i < num_val_loaders; ++i) out.push_back(loader(64, 4, 100 + i));
  return out;
}

std::vector<std::string> expand(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& line : lines) {
    if (line.rfind("cb+lm.", 0) == 0) {
      out.push_back("cb." + line.substr(6));
      out.push_back("lm." + line.substr(6));
    } else {
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace test_support
