// StochasticWeightAveraging: it averages the right weights, anneals the learning rate as SWALR,
// recomputes BatchNorm statistics, keeps its state in checkpoints, and refuses bad options.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/swa.hpp>

#include <cmath>
#include <filesystem>

namespace hookline_test_swa_tests {

using namespace hookline;
using namespace test_support;

namespace {

// Records, at every train-epoch start, the module's parameters and the learning rate.
class EpochStartRecorder : public Callback {
 public:
  EpochStartRecorder() : Callback("recorder") {}
  void on_train_epoch_start(Trainer& trainer, Module& module) override {
    std::vector<at::Tensor> params;
    for (const auto& p : module.parameters()) params.push_back(p.detach().clone());
    weights.push_back(std::move(params));
    lrs.push_back(trainer.optimizer_config().optimizers[0]->param_groups()[0].options().get_lr());
  }
  void on_train_epoch_end(Trainer& trainer, Module&) override {
    if (save_at && trainer.current_epoch() == *save_at) trainer.save_checkpoint(save_path);
  }
  std::vector<std::vector<at::Tensor>> weights;  // per epoch, per parameter
  std::vector<double> lrs;
  std::optional<std::int64_t> save_at;
  std::string save_path;
};

// The mean over `epochs` of the recorded parameters.
std::vector<at::Tensor> mean_of(const EpochStartRecorder& r, std::int64_t first,
                                std::int64_t last) {
  std::vector<at::Tensor> out;
  for (std::size_t p = 0; p < r.weights.front().size(); ++p) {
    at::Tensor sum = torch::zeros_like(r.weights.front()[p]);
    for (std::int64_t e = first; e <= last; ++e) sum += r.weights[static_cast<std::size_t>(e)][p];
    out.push_back(sum / static_cast<double>(last - first + 1));
  }
  return out;
}

void check_params_equal(Module& module, const std::vector<at::Tensor>& expected) {
  const auto params = module.parameters();
  BOOST_REQUIRE_EQUAL(params.size(), expected.size());
  for (std::size_t i = 0; i < params.size(); ++i)
    BOOST_TEST(torch::allclose(params[i].detach(), expected[i], 1e-5, 1e-6), "parameter " << i);
}

// 4 batches per epoch.
class Small : public BoringModel {
 public:
  DataLoaders train_dataloader() override { return {loader(16, 4)}; }
};

// Linear -> BatchNorm1d -> Linear.
class WithBatchNorm : public Module {
 public:
  WithBatchNorm() : Module("lm") {
    first = register_module("first", torch::nn::Linear(32, 8));
    bn = register_module("bn", torch::nn::BatchNorm1d(8));
    second = register_module("second", torch::nn::Linear(8, 2));
  }
  StepOutput training_step(const Batch& batch, std::int64_t) override {
    auto loss = torch::mse_loss(second(bn(first(batch["x"]))), batch["y"]);
    log("train_loss", loss);
    return {{"loss", loss}};
  }
  OptimizerConfig configure_optimizers() override {
    return OptimizerConfig().add(
        std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.1)));
  }
  DataLoaders train_dataloader() override { return {loader(16, 4)}; }
  torch::nn::Linear first{nullptr}, second{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};

TrainerOptions quiet(std::int64_t epochs) {
  return TrainerOptions()
      .max_epochs(epochs)
      .limit_val_batches(0)
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false)
      .logger(false);
}

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("hookline_swa_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(swa)

// max_epochs 5, swa_epoch_start 3: the window is the 0-based epochs 2..4, and the module ends
// with the mean of the weights those epochs started from (Lightning folds them in at epoch start).
BOOST_AUTO_TEST_CASE(swa_averages_the_right_weights) {
  auto recorder = std::make_shared<EpochStartRecorder>();
  auto swa = std::make_shared<StochasticWeightAveraging>(
      0.05,
      StochasticWeightAveragingOptions().swa_epoch_start(3).annealing_epochs(2).annealing_strategy(
          "linear"));
  Small model;
  Trainer trainer(quiet(5), {recorder, swa});
  trainer.fit(model);
  BOOST_TEST(swa->swa_start() == 2);
  BOOST_TEST(swa->swa_end() == 4);
  BOOST_TEST(swa->n_averaged() == 3);
  BOOST_TEST(swa->latest_update_epoch() == 4);
  BOOST_REQUIRE_EQUAL(recorder->weights.size(), 5u);
  check_params_equal(model, mean_of(*recorder, 2, 4));
  // The last epoch's own updates are not in the average: the module moved away from them.
  BOOST_TEST(!torch::allclose(model.layer->weight.detach(), recorder->weights[4][0]));
  // SWALR, linear over 2 epochs from 0.1 to 0.05, stepping at the ends of epochs 2 and 3.
  const std::vector<double> expected{0.1, 0.1, 0.1, 0.075, 0.05};
  for (std::size_t e = 0; e < 5; ++e)
    BOOST_TEST(recorder->lrs[e] == expected[e], boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(cosine_annealing_and_fraction_start) {
  auto recorder = std::make_shared<EpochStartRecorder>();
  // 0.5 of 6 epochs: swa_epoch_start 3, window 2..5; cosine over 3 epochs.
  auto swa = std::make_shared<StochasticWeightAveraging>(
      std::vector<double>{0.05},
      StochasticWeightAveragingOptions().swa_epoch_start(0.5).annealing_epochs(3));
  Small model;
  Trainer(quiet(6), {recorder, swa}).fit(model);
  BOOST_TEST(swa->swa_start() == 2);
  BOOST_TEST(swa->n_averaged() == 4);
  check_params_equal(model, mean_of(*recorder, 2, 5));
  auto cos_lr = [](double t) {
    const double alpha = (1 - std::cos(3.14159265358979323846 * t)) / 2;
    return 0.05 * alpha + 0.1 * (1 - alpha);
  };
  const std::vector<double> expected{0.1, 0.1, 0.1, cos_lr(1.0 / 3), cos_lr(2.0 / 3), 0.05};
  for (std::size_t e = 0; e < 6; ++e)
    BOOST_TEST(recorder->lrs[e] == expected[e], boost::test_tools::tolerance(1e-12));
}

// With BatchNorm, the running statistics are those of one pass over the training batches with
// the averaged weights (cumulative average), and the momentum is restored.
BOOST_AUTO_TEST_CASE(batch_norm_statistics_are_recomputed_for_the_average) {
  auto recorder = std::make_shared<EpochStartRecorder>();
  auto swa = std::make_shared<StochasticWeightAveraging>(
      0.05, StochasticWeightAveragingOptions().swa_epoch_start(2));
  WithBatchNorm model;
  Trainer trainer(quiet(3), {recorder, swa});
  trainer.fit(model);
  check_params_equal(model, mean_of(*recorder, 1, 2));
  at::NoGradGuard no_grad;
  at::Tensor mean_sum = torch::zeros({8});
  at::Tensor var_sum = torch::zeros({8});
  int batches = 0;
  const auto batches_of = loader(16, 4);
  for (const Batch& b : *batches_of) {
    const at::Tensor h = model.first(b["x"]);
    mean_sum += h.mean(0);
    var_sum += h.var(0, /*unbiased=*/true);
    ++batches;
  }
  BOOST_TEST(batches == 4);
  BOOST_TEST(torch::allclose(model.bn->running_mean, mean_sum / batches, 1e-4, 1e-5));
  BOOST_TEST(torch::allclose(model.bn->running_var, var_sum / batches, 1e-4, 1e-5));
  BOOST_TEST(model.bn->num_batches_tracked.item<std::int64_t>() == 4);
  BOOST_TEST(model.bn->options.momentum().value() == 0.1);
}

BOOST_AUTO_TEST_CASE(state_in_checkpoints_and_a_resumed_fit_continues_the_average) {
  // Uninterrupted.
  auto swa = std::make_shared<StochasticWeightAveraging>(
      0.05, StochasticWeightAveragingOptions().swa_epoch_start(3).annealing_epochs(2));
  torch::manual_seed(11);  // the same initial weights for both runs
  Small full;
  auto full_recorder = std::make_shared<EpochStartRecorder>();
  Trainer(quiet(5), {full_recorder, swa}).fit(full);
  Checkpoint state;
  swa->state_dict(state);
  BOOST_TEST(state.at("n_averaged").toInt() == 3);
  BOOST_TEST(state.at("latest_update_epoch").toInt() == 4);
  // The constructor's step + 3 epoch ends, in PyTorch's LRScheduler layout (as Lightning's).
  BOOST_TEST(state.at("scheduler_state").toGenericDict().at("_step_count").toInt() == 4);
  const auto average = state.at("average_model_state").toGenericDict();
  BOOST_TEST(torch::allclose(average.at("layer.weight").toTensor(), full.layer->weight.detach()));
  auto copy = std::make_shared<StochasticWeightAveraging>(0.05);
  copy->load_state_dict(state);
  Checkpoint again;
  copy->state_dict(again);
  BOOST_TEST(again.at("n_averaged").toInt() == 3);
  BOOST_TEST(again.at("latest_update_epoch").toInt() == 4);

  // Saved at the end of epoch 3 (inside the window), then resumed with fresh objects.
  const auto dir = temp_dir("resume");
  const std::string path = (dir / "epoch3.ckpt").string();
  {
    auto saver = std::make_shared<EpochStartRecorder>();
    saver->save_at = 3;
    saver->save_path = path;
    torch::manual_seed(11);
    Small first;
    Trainer(quiet(5).default_root_dir(dir.string()),
            {saver,
             std::make_shared<StochasticWeightAveraging>(
                 0.05, StochasticWeightAveragingOptions().swa_epoch_start(3).annealing_epochs(2))})
        .fit(first);
  }
  BOOST_REQUIRE(std::filesystem::exists(path));
  auto resumed_swa = std::make_shared<StochasticWeightAveraging>(
      0.05, StochasticWeightAveragingOptions().swa_epoch_start(3).annealing_epochs(2));
  auto recorder = std::make_shared<EpochStartRecorder>();
  Small resumed;
  Trainer(quiet(5).default_root_dir(dir.string()), {recorder, resumed_swa})
      .fit(resumed, nullptr, path);
  BOOST_TEST(resumed_swa->n_averaged() == 3);
  BOOST_REQUIRE_EQUAL(recorder->lrs.size(), 1u);  // only epoch 4 ran
  BOOST_TEST(recorder->lrs[0] == 0.05, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(torch::equal(recorder->weights[0][0], full_recorder->weights[4][0]));
  BOOST_TEST(
      torch::allclose(resumed.layer->weight.detach(), full.layer->weight.detach(), 1e-6, 1e-7));
  BOOST_TEST(torch::allclose(resumed.layer->bias.detach(), full.layer->bias.detach(), 1e-6, 1e-7));
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused) {
  using O = StochasticWeightAveragingOptions;
  BOOST_CHECK_THROW(StochasticWeightAveraging(0.1, O().swa_epoch_start(0)), std::invalid_argument);
  BOOST_CHECK_THROW(StochasticWeightAveraging(0.1, O().swa_epoch_start(1.5)),
                    std::invalid_argument);
  BOOST_CHECK_THROW(StochasticWeightAveraging(0.0), std::invalid_argument);
  BOOST_CHECK_THROW(StochasticWeightAveraging(std::vector<double>{0.1, -1}), std::invalid_argument);
  BOOST_CHECK_THROW(StochasticWeightAveraging(0.1, O().annealing_strategy("step")),
                    std::invalid_argument);
  BOOST_CHECK_THROW(StochasticWeightAveraging(0.1, O().annealing_epochs(-1)),
                    std::invalid_argument);
  // Two learning rates for one parameter group.
  Small model;
  Trainer trainer(quiet(2),
                  {std::make_shared<StochasticWeightAveraging>(std::vector<double>{0.1, 0.2})});
  BOOST_CHECK_THROW(trainer.fit(model), std::invalid_argument);
  // No max_epochs.
  Small other;
  Trainer unlimited(quiet(2).max_epochs(std::nullopt).max_steps(3),
                    {std::make_shared<StochasticWeightAveraging>(0.1)});
  BOOST_CHECK_THROW(unlimited.fit(other), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_swa_tests
