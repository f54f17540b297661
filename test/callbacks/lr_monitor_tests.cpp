// LearningRateMonitor: Lightning 2.2's names, intervals, momentum / weight decay, and its errors.
#include <boost/test/unit_test.hpp>

#include "recording_logger.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/lr_monitor.hpp>
#include <hookline/core/logger.hpp>

#include <torch/optim/schedulers/step_lr.h>

#include <mutex>

namespace hookline_test_lr_monitor_tests {

using namespace hookline;
using namespace test_support;

namespace {

// SGD(lr 0.1, momentum 0.9, weight decay 0.01), optionally a StepLR (halves every step or epoch).
struct SgdModel : BoringModel {
  std::optional<Interval> scheduler;
  std::string scheduler_name;
  OptimizerConfig configure_optimizers() override {
    auto sgd = std::make_shared<torch::optim::SGD>(
        parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.01));
    OptimizerConfig config;
    config.add(sgd);
    if (scheduler)
      config.add_scheduler(
          SchedulerConfig::from(std::make_shared<torch::optim::StepLR>(*sgd, 1, 0.5))
              .interval(*scheduler)
              .name(scheduler_name));
    return config;
  }
  DataLoaders train_dataloader() override { return {loader(16, 4)}; }  // 4 batches
};

// Adam with two parameter groups (weight and bias).
struct AdamGroups : BoringModel {
  OptimizerConfig configure_optimizers() override {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<at::Tensor>{layer->weight},
                        std::make_unique<torch::optim::AdamOptions>(0.01));
    groups.emplace_back(std::vector<at::Tensor>{layer->bias},
                        std::make_unique<torch::optim::AdamOptions>(0.02));
    return OptimizerConfig().add(std::make_shared<torch::optim::Adam>(std::move(groups)));
  }
  DataLoaders train_dataloader() override { return {loader(16, 4)}; }
};

TrainerOptions options(std::shared_ptr<Logger> logger) {
  return TrainerOptions()
      .max_epochs(2)
      .limit_val_batches(0)
      .log_every_n_steps(2)
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false)
      .logger(std::move(logger));
}

using Steps = std::vector<std::pair<std::int64_t, double>>;

}  // namespace

BOOST_AUTO_TEST_SUITE(lr_monitor)

BOOST_AUTO_TEST_CASE(bad_interval_and_no_logger_are_refused) {
  BOOST_CHECK_THROW(LearningRateMonitor(LearningRateMonitorOptions().logging_interval("batch")),
                    std::invalid_argument);
  SgdModel model;
  Trainer trainer(options(nullptr).logger(false), {std::make_shared<LearningRateMonitor>()});
  BOOST_CHECK_EXCEPTION(trainer.fit(model), std::invalid_argument, [](const auto& e) {
    return std::string(e.what()).find("has no logger") != std::string::npos;
  });
}

// No scheduler, interval None: at each epoch start and at each logging step's batch start
// ((batches that stepped + 1) % log_every_n_steps == 0), at the step "batches that stepped".
BOOST_AUTO_TEST_CASE(an_optimizer_without_scheduler_at_epoch_starts_and_logging_steps) {
  auto logger = std::make_shared<RecordingLogger>();
  auto monitor = std::make_shared<LearningRateMonitor>(
      LearningRateMonitorOptions().log_momentum(true).log_weight_decay(true));
  SgdModel model;
  Trainer trainer(options(logger), {monitor});
  trainer.fit(model);
  BOOST_TEST(
      (logger->of("lr-SGD") == Steps{{0, 0.1}, {1, 0.1}, {3, 0.1}, {4, 0.1}, {5, 0.1}, {7, 0.1}}));
  BOOST_TEST(logger->of("lr-SGD-momentum").size() == 6u);
  BOOST_TEST(logger->of("lr-SGD-momentum")[0].second == 0.9);
  BOOST_TEST(logger->of("lr-SGD-weight_decay")[0].second == 0.01);
  BOOST_TEST(monitor->lrs().at("lr-SGD").size() == 6u);
  BOOST_TEST(trainer.callback_metrics().at("lr-SGD") == 0.1);
}

// A step scheduler is logged at batch starts only, an epoch scheduler at epoch starts only;
// "epoch" / "step" log everything at that point only; a scheduler's name replaces lr-SGD.
BOOST_AUTO_TEST_CASE(schedulers_at_their_interval_and_forced_intervals) {
  {
    auto logger = std::make_shared<RecordingLogger>();
    SgdModel model;
    model.scheduler = Interval::epoch;
    Trainer(options(logger), {std::make_shared<LearningRateMonitor>()}).fit(model);
    // LibTorch's StepLR leaves the rate alone on its first step() (PyTorch steps once in the
    // constructor instead), so epoch 1 still trains at 0.1.
    BOOST_TEST((logger->of("lr-SGD") == Steps{{0, 0.1}, {4, 0.1}}));
  }
  {
    auto logger = std::make_shared<RecordingLogger>();
    SgdModel model;
    model.scheduler = Interval::step;
    model.scheduler_name = "my_lr";
    Trainer(options(logger), {std::make_shared<LearningRateMonitor>()}).fit(model);
    BOOST_TEST((logger->of("my_lr") == Steps{{1, 0.1}, {3, 0.025}, {5, 0.00625}, {7, 0.0015625}}));
    BOOST_TEST(logger->of("lr-SGD").empty());
  }
  {
    auto logger = std::make_shared<RecordingLogger>();
    SgdModel model;
    model.scheduler = Interval::step;
    Trainer(options(logger), {std::make_shared<LearningRateMonitor>(
                                 LearningRateMonitorOptions().logging_interval("epoch"))})
        .fit(model);
    BOOST_TEST((logger->of("lr-SGD") == Steps{{0, 0.1}, {4, 0.0125}}));
  }
  {
    auto logger = std::make_shared<RecordingLogger>();
    SgdModel model;
    Trainer(options(logger), {std::make_shared<LearningRateMonitor>(
                                 LearningRateMonitorOptions().logging_interval("step"))})
        .fit(model);
    BOOST_TEST((logger->of("lr-SGD") == Steps{{1, 0.1}, {3, 0.1}, {5, 0.1}, {7, 0.1}}));
  }
}

// Several parameter groups get /pg1, /pg2; Adam's momentum is beta1.
BOOST_AUTO_TEST_CASE(parameter_groups_and_betas) {
  auto logger = std::make_shared<RecordingLogger>();
  AdamGroups model;
  Trainer(options(logger).max_epochs(1),
          {std::make_shared<LearningRateMonitor>(LearningRateMonitorOptions().log_momentum(true))})
      .fit(model);
  BOOST_TEST(logger->of("lr-Adam/pg1").at(0).second == 0.01);
  BOOST_TEST(logger->of("lr-Adam/pg2").at(0).second == 0.02);
  BOOST_TEST(logger->of("lr-Adam/pg1-momentum").at(0).second == 0.9);
  BOOST_TEST(logger->of("lr-Adam").empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_lr_monitor_tests
