// LearningRateFinder: the range test's schedule and smoothing, its suggestion on a known problem,
// that the fit starts from the saved state at the suggested rate, and its errors.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/lr_finder.hpp>

#include <cmath>

namespace hookline_test_lr_finder_tests {

using namespace hookline;
using namespace test_support;

namespace {

// Linear regression without noise: y = x . w, x ~ N(0, 1) in 8 dimensions; 256 samples, one
// full batch per epoch, so the loss of a step depends on the weights only. Plain SGD on the MSE
// converges for lr < 1 and diverges well above it.
class Regression : public Module {
 public:
  Regression() : Module("lm") {
    linear = register_module("linear", torch::nn::Linear(torch::nn::LinearOptions(8, 1)));
    torch::Generator gen = at::detail::createCPUGenerator(3);
    x_ = torch::randn({256, 8}, gen);
    y_ = torch::matmul(x_, torch::linspace(-2, 2, 8).unsqueeze(1));
  }
  StepOutput training_step(const Batch& batch, std::int64_t) override {
    auto loss = torch::mse_loss(linear(batch["x"]), batch["y"]);
    log("train_loss", loss);
    return {{"loss", loss}};
  }
  OptimizerConfig configure_optimizers() override {
    return OptimizerConfig().add(
        std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.5)));
  }
  DataLoaders train_dataloader() override {
    return {std::make_shared<data::DataLoader>(
        std::make_shared<data::TensorDataset>(Batch{{"x", x_}, {"y", y_}}),
        data::DataLoaderOptions().batch_size(256))};
  }
  torch::nn::Linear linear{nullptr};
  at::Tensor x_, y_;
};

// What the fit starts from: parameters and learning rate at on_train_start.
class StartRecorder : public Callback {
 public:
  StartRecorder() : Callback("start_recorder") {}
  void on_train_start(Trainer& trainer, Module& module) override {
    for (const auto& p : module.parameters()) params.push_back(p.detach().clone());
    lr = trainer.optimizer_config().optimizers[0]->param_groups()[0].options().get_lr();
    global_step = trainer.global_step();
    logged = trainer.callback_metrics().count("train_loss");
  }
  std::vector<at::Tensor> params;
  double lr = 0;
  std::int64_t global_step = -1;
  std::size_t logged = 0;
};

TrainerOptions quiet() {
  return TrainerOptions()
      .max_steps(1)
      .limit_val_batches(0)
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false)
      .logger(false);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lr_finder)

BOOST_AUTO_TEST_CASE(suggestion_is_the_steepest_descent_after_skipping) {
  LRFinderResult r;
  for (int i = 0; i < 20; ++i) r.lr.push_back(0.001 * (i + 1));
  r.loss = {10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 9, 3, 2.9, 2.8, 2.7, 2.6};
  // losses[10:-1] = 10 10 10 10 9 3 2.9 2.8 2.7: the central difference is lowest at the 9.
  BOOST_TEST(r.suggestion().value() == r.lr[14]);
  BOOST_TEST(r.optimal_idx.value() == 14u);
  BOOST_TEST(r.suggestion(0, 1).value() == r.lr[14]);
  // Python's losses[a:-0] is empty.
  BOOST_TEST(!r.suggestion(10, 0).has_value());
  BOOST_TEST(!r.optimal_idx.has_value());
  r.loss.resize(12);
  r.lr.resize(12);
  BOOST_TEST(!r.suggestion().has_value());  // one point left
  // Non-finite losses are left out.
  LRFinderResult nan;
  nan.lr = {1, 2, 3, 4};
  nan.loss = {5, std::nan(""), 4, 1};
  BOOST_TEST(nan.suggestion(0, 1).value() == 1);  // losses 5, 4: one gradient, at index 0
}

BOOST_AUTO_TEST_CASE(the_lr_finders_suggestion_on_a_known_problem) {
  Regression model;
  std::vector<at::Tensor> initial;
  for (const auto& p : model.parameters()) initial.push_back(p.detach().clone());
  auto finder = std::make_shared<LearningRateFinder>(
      LearningRateFinderOptions().min_lr(1e-5).max_lr(100).num_training_steps(100));
  auto start = std::make_shared<StartRecorder>();
  Trainer trainer(quiet(), {finder, start});
  trainer.fit(model);

  const auto& result = finder->optimal_lr();
  BOOST_REQUIRE(result.has_value());
  // The schedule: min_lr, then min_lr * (max/min)^((k + 1) / 100).
  BOOST_TEST(result->lr[0] == 1e-5);
  BOOST_TEST(result->lr[1] == 1e-5 * std::pow(1e7, 2.0 / 100), boost::test_tools::tolerance(1e-9));
  BOOST_TEST(result->lr[10] == 1e-5 * std::pow(1e7, 11.0 / 100),
             boost::test_tools::tolerance(1e-9));
  // SGD diverges above lr 1 here: the search stops early on the diverging loss.
  BOOST_TEST(result->lr.size() < 100u);
  BOOST_TEST(result->lr.size() == result->loss.size());
  BOOST_TEST(result->lr.back() > 1.0);
  const std::optional<double> suggestion = result->suggestion();
  BOOST_REQUIRE(suggestion.has_value());
  BOOST_TEST_MESSAGE("suggested lr " << *suggestion << " after " << result->lr.size() << " steps");
  BOOST_TEST(*suggestion > 1e-3);
  BOOST_TEST(*suggestion < 1.0);
  // The fit starts from the weights before the search, at the suggested rate, at step 0, and
  // without the search's logged values.
  BOOST_REQUIRE_EQUAL(start->params.size(), initial.size());
  for (std::size_t i = 0; i < initial.size(); ++i)
    BOOST_TEST(torch::equal(start->params[i], initial[i]));
  BOOST_TEST(start->lr == *suggestion);
  BOOST_TEST(start->global_step == 0);
  BOOST_TEST(start->logged == 0u);
}

BOOST_AUTO_TEST_CASE(linear_mode_smoothing_and_no_update) {
  Regression model;
  auto finder = std::make_shared<LearningRateFinder>(LearningRateFinderOptions()
                                                         .min_lr(1e-4)
                                                         .max_lr(1e-2)
                                                         .num_training_steps(20)
                                                         .mode("LINEAR")
                                                         .early_stop_threshold(std::nullopt)
                                                         .update_attr(false));
  auto start = std::make_shared<StartRecorder>();
  model.hparams().set("lr", 0.5);
  double initial_loss = 0;
  {
    at::NoGradGuard no_grad;
    initial_loss = torch::mse_loss(model.linear(model.x_), model.y_).item<double>();
  }
  Trainer(quiet(), {finder, start}).fit(model);
  const auto& result = finder->optimal_lr();
  BOOST_REQUIRE(result.has_value());
  BOOST_TEST(result->mode == "linear");
  BOOST_REQUIRE_EQUAL(result->lr.size(), 20u);  // 20 steps, one batch per epoch
  BOOST_TEST(result->lr[0] == 1e-4);
  BOOST_TEST(result->lr[5] == 1e-4 + 6.0 / 20 * (1e-2 - 1e-4), boost::test_tools::tolerance(1e-9));
  BOOST_TEST(result->lr[19] == 1e-2, boost::test_tools::tolerance(1e-9));
  // The first smoothed loss is the raw loss times (1 - beta) / (1 - beta^2): Lightning's bias
  // correction uses the global step after the update.
  BOOST_TEST(result->loss[0] == initial_loss * 0.02 / (1 - 0.98 * 0.98),
             boost::test_tools::tolerance(1e-5));
  BOOST_TEST(start->lr == 0.5);  // update_attr false: the rate is left alone
  BOOST_TEST(model.hparams().at("lr").toDouble() == 0.5);
}

BOOST_AUTO_TEST_CASE(update_attr_sets_the_hparam_and_bad_options_are_refused) {
  Regression model;
  model.hparams().set("learning_rate", 0.5);
  auto finder = std::make_shared<LearningRateFinder>(
      LearningRateFinderOptions().min_lr(1e-5).max_lr(100).num_training_steps(60));
  Trainer(quiet(), {finder}).fit(model);
  BOOST_REQUIRE(finder->optimal_lr()->suggestion().has_value());
  BOOST_TEST(model.hparams().at("learning_rate").toDouble() == *finder->optimal_lr()->suggestion());

  BOOST_CHECK_THROW(LearningRateFinder(LearningRateFinderOptions().mode("cosine")),
                    std::invalid_argument);
  Regression other;
  Trainer trainer(
      quiet(),
      {std::make_shared<LearningRateFinder>(LearningRateFinderOptions().attr_name("my_lr"))});
  BOOST_CHECK_THROW(trainer.fit(other), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_lr_finder_tests
