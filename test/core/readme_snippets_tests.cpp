// The snippets of README.md and docs/*.md, compiled and run, so the documentation cannot drift
// from the API.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/early_stopping.hpp>
#include <hookline/callbacks/gradient_accumulation_scheduler.hpp>
#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/callbacks/lr_monitor.hpp>
#include <hookline/callbacks/packs.hpp>
#include <hookline/callbacks/progress_bar.hpp>
#include <hookline/callbacks/timer.hpp>
#include <hookline/loggers/csv_logger.hpp>
#include <hookline/loggers/tensorboard_logger.hpp>
#include <hookline/recipe/recipe.hpp>

#include <filesystem>

namespace hookline_test_readme_snippets_tests {

using namespace hookline;

namespace {
// README "Callbacks and the bus" and docs/callbacks.md "Writing a callback".
struct StopOnNan : Callback {
  StopOnNan() : Callback("stop_on_nan", band::monitoring) {}
  void on_train_batch_end(Trainer&, Module&, const StepOutput& out, const Batch&,
                          std::int64_t) override {
    if (torch::isnan(out["loss"]).item<bool>()) veto(Action::StopFit, "loss is NaN");
  }
};

class NanAtStep3 final : public test_support::BoringModel {
 public:
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    auto out = BoringModel::training_step(b, i);
    if (trainer().global_step() == 3) out.set("loss", out["loss"] * std::nan(""));
    return out;
  }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(readme_snippets)

// With docs/callbacks.md "Subscribing to the bus directly" (every_n(2) here instead of 100, so
// that the short run sees it).
BOOST_AUTO_TEST_CASE(callbacks_and_the_bus) {
  NanAtStep3 model;
  Trainer trainer(TrainerOptions().max_epochs(3).limit_train_batches(200).limit_val_batches(0));
  std::vector<double> losses;
  {
    trainer.add_callback(std::make_shared<StopOnNan>());
    ScopedConnection writer = trainer.bus().on<TrainBatchEnd>(
        [&](const TrainBatchEnd& e) { losses.push_back(e.outputs["loss"].item<double>()); },
        SubscribeOptions()
            .named("writer")
            .lane(Lane::async)  // an observer, off the training thread
            .filter(Filter::every_n(2) && Filter::rank_zero()));
    trainer.fit(model);
  }
  BOOST_TEST(trainer.global_step() == 4);
  BOOST_TEST(trainer.stop_reason() == "stop_on_nan: loss is NaN");
  BOOST_TEST(losses.size() == 2u);  // batches 2 and 4 of the 4 that ran
}

// docs/callbacks.md "Built-in callbacks".
BOOST_AUTO_TEST_CASE(built_in_callbacks) {
  struct LogsValLoss : test_support::BoringModel {
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("val_loss", 1.0);
      return BoringModel::validation_step(b, i, d);
    }
  } model;
  Trainer trainer(TrainerOptions()
                      .max_epochs(2)
                      .limit_train_batches(2)
                      .limit_val_batches(1)
                      .enable_checkpointing(false));
  trainer.add_callback(std::make_shared<EarlyStopping>(
      EarlyStoppingOptions().monitor("val_loss").patience(3).min_delta(0.01)));
  trainer.add_callback(std::make_shared<Timer>(TimerOptions().duration("00:02:00:00")));
  trainer.add_callback(std::make_shared<GradientAccumulationScheduler>(
      std::map<std::int64_t, std::int64_t>{{4, 2}, {8, 4}}));
  int epochs = 0;
  LambdaHooks hooks;
  hooks.on_train_epoch_end = [&epochs](Trainer&, Module&) { ++epochs; };
  trainer.add_callback(std::make_shared<LambdaCallback>(hooks));
  trainer.fit(model);
  BOOST_TEST(epochs == 2);
}

// docs/logging.md: the three trainers, and where their files go.
BOOST_AUTO_TEST_CASE(logging_and_the_progress_bar) {
  namespace fs = std::filesystem;
  fs::remove_all("runs");
  Trainer trainer(TrainerOptions().default_root_dir("runs"));
  Trainer both(TrainerOptions().logger(
      {std::make_shared<TensorBoardLogger>("runs"),
       std::make_shared<CSVLogger>("runs", CSVLoggerOptions().name("csv"))}));
  Trainer silent(
      TrainerOptions().logger(false).enable_progress_bar(false).enable_model_summary(false));
  BOOST_TEST(trainer.loggers().size() == 1u);
  BOOST_TEST(both.loggers().size() == 2u);
  BOOST_TEST(silent.loggers().empty());
  for (const auto& callback : silent.callbacks())  // only the default ModelCheckpoint
    BOOST_TEST(!std::dynamic_pointer_cast<TQDMProgressBar>(callback));
  bool has_bar = false;
  for (const auto& callback : trainer.callbacks())
    has_bar = has_bar || std::dynamic_pointer_cast<TQDMProgressBar>(callback) != nullptr;
  BOOST_TEST(has_bar);
  BOOST_TEST(fs::path(trainer.loggers()[0]->log_dir()) ==
             fs::path("runs/lightning_logs/version_0"));
  BOOST_TEST(fs::path(both.loggers()[1]->log_dir()) == fs::path("runs/csv/version_0"));
  fs::remove_all("runs");
}

// docs/callbacks.md "Packs" and docs/recipes.md: the pack snippet and the recipe snippet.
BOOST_AUTO_TEST_CASE(recipes_and_packs) {
  Trainer trainer(TrainerOptions().enable_progress_bar(false).logger(false));
  auto watch = std::make_shared<CallbackPack>("watch");
  watch->add(std::make_shared<LearningRateMonitor>())
      .add(std::make_shared<Timer>(TimerOptions().duration("00:02:00:00")), band::callback + 10);
  trainer.add_pack(watch);
  trainer.add_pack(
      classification_defaults(ClassificationDefaultsOptions().monitor("val_acc").mode("max")));
  trainer.add_pack(debugging());
  BOOST_TEST(trainer.packs().size() == 3u);
  trainer.remove_pack(*watch);
  BOOST_TEST(trainer.packs().size() == 2u);

  const Recipe recipe = Recipe::parse(R"(
trainer:                       # TrainerOptions by name
  max_epochs: 3
  limit_val_batches: 0.25
  logger: csv                  # true / false / tensorboard / csv
trace: "ring:10000"            # optional, as HOOKLINE_TRACE
reload: false                  # true: re-read at each epoch end and swap the callbacks
packs:                         # packs defined in this file
  watch:
    - LearningRateMonitor: {logging_interval: epoch}
    - Timer: {duration: "00:02:00:00"}
callbacks:                     # in order; a name, or Name: {options}; any entry may set priority
  - classification_defaults: {monitor: val_acc, mode: max, patience: 2}
  - watch
  - EarlyStopping: {monitor: train_loss, patience: 5, priority: 1500}
)");
  BOOST_TEST(recipe.trainer_options().max_epochs().value() == 3);
  BOOST_TEST(recipe.trace() == "ring:10000");
  const auto parts = recipe.build();
  BOOST_TEST(parts.packs.size() == 2u);
  BOOST_TEST_REQUIRE(parts.callbacks.size() == 1u);
  BOOST_TEST(parts.callbacks[0]->priority() == 1500);
  Trainer other(TrainerOptions().enable_progress_bar(false).logger(false));
  AppliedRecipe added = recipe.apply(other);
  BOOST_TEST(other.packs().size() == 2u);
  added.remove(other);
  BOOST_TEST(other.packs().empty());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_readme_snippets_tests
