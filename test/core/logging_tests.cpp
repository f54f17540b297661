// Logging: Lightning's metric maps at batch and epoch ends, and the logger connector (what loggers
// get, when, at which step). The loggers' files: loggers/logger_tests.cpp; the progress bar:
// callbacks/progress_bar_tests.cpp.
#include <boost/test/unit_test.hpp>

#include "logging_model.hpp"
#include "recording_logger.hpp"
#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/loggers/csv_logger.hpp>
#include <hookline/loggers/tensorboard_logger.hpp>

#include <filesystem>
#include <functional>
#include <sstream>

namespace hookline_test_logging_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

using Recording = test_support::RecordingLogger;
using Logging = test_support::LoggingModel;
using test_support::read_text;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Logs "train_loss" on step and epoch; optionally throws in training_step of batch `fail_at`.
class StepAndEpoch : public BoringModel {
 public:
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    if (i == fail_at) throw std::runtime_error("boom in batch " + std::to_string(i));
    auto out = BoringModel::training_step(b, i);
    log("train_loss", out["loss"], LogOptions().on_step(true).on_epoch(true));
    return out;
  }
  void on_train_epoch_end() override {
    logged_at_epoch_end = trainer().logged_metrics();
    callback_at_epoch_end = trainer().callback_metrics();
  }
  std::int64_t fail_at = -1;
  MetricMap logged_at_epoch_end, callback_at_epoch_end;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(metric_maps)

// issue 6 defect 2: Lightning updates logged_metrics with the step values at every training batch
// end; log_every_n_steps only throttles the loggers.
BOOST_AUTO_TEST_CASE(logged_metrics_hold_step_values_at_every_batch_end) {
  StepAndEpoch model;
  Trainer trainer(logging_options().max_epochs(1).limit_train_batches(3));
  trainer.fit(model);
  BOOST_TEST(model.logged_at_epoch_end.count("train_loss_epoch") == 1u);
  BOOST_TEST(model.logged_at_epoch_end.count("train_loss_step") == 1u);
  BOOST_TEST(model.logged_at_epoch_end.size() == 2u);
  BOOST_TEST(model.callback_at_epoch_end.count("train_loss") == 1u);
  BOOST_TEST(model.callback_at_epoch_end.at("train_loss") ==
             model.callback_at_epoch_end.at("train_loss_epoch"));
  BOOST_TEST(trainer.logged_metrics().count("train_loss_step") == 1u);
}

BOOST_AUTO_TEST_CASE(an_exception_mid_epoch_keeps_the_step_values_of_finished_batches) {
  StepAndEpoch model;
  model.fail_at = 1;
  Trainer trainer(logging_options().max_epochs(1).limit_train_batches(3));
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  BOOST_TEST(trainer.logged_metrics().count("train_loss_step") == 1u);
  BOOST_TEST(trainer.logged_metrics().count("train_loss_epoch") == 0u);
  BOOST_TEST(trainer.callback_metrics().count("train_loss") == 1u);
}

// Evaluation step values reach logged_metrics at batch ends but never callback_metrics.
BOOST_AUTO_TEST_CASE(evaluation_step_values_are_not_callback_metrics) {
  class Eval final : public BoringModel {
   public:
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("v", static_cast<double>(i), LogOptions().on_step(true).on_epoch(true));
      return BoringModel::validation_step(b, i, d);
    }
    void on_validation_batch_end(const StepOutput&, const Batch&, std::int64_t,
                                 std::int64_t) override {
      seen_callback.push_back(trainer().callback_metrics().count("v_step") != 0);
      seen_logged.push_back(trainer().logged_metrics().count("v_step") != 0);
    }
    std::vector<bool> seen_callback, seen_logged;
  } model;
  Trainer trainer(logging_options().limit_val_batches(2));
  trainer.validate(model);
  BOOST_TEST(model.seen_callback == (std::vector<bool>{false, false}),
             boost::test_tools::per_element());
  BOOST_TEST(model.seen_logged == (std::vector<bool>{true, true}),
             boost::test_tools::per_element());
  BOOST_TEST(trainer.callback_metrics().at("v") == 0.5);
  BOOST_TEST(trainer.callback_metrics().count("v_step") == 0u);
  BOOST_TEST(trainer.logged_metrics().at("v_step") == 1.0);
  BOOST_TEST(trainer.logged_metrics().at("v_epoch") == 0.5);
}

BOOST_AUTO_TEST_CASE(same_name_twice_in_a_hook_with_other_options_is_an_error) {
  Logging model([](Module& m, std::int64_t) {
    m.log("x", 1.0);
    m.log("x", 1.0, LogOptions().prog_bar(true));
  });
  Trainer trainer(logging_options().max_epochs(1).limit_train_batches(1));
  BOOST_CHECK_EXCEPTION(trainer.fit(model), std::invalid_argument,
                        [](const std::invalid_argument& e) {
                          return contains(e.what(), "twice in 'training_step'");
                        });
}

// A name logged again is found by its hook (not by name alone), and batch ends write the step
// values into the maps where they were found before, until a new run empties the maps.
BOOST_AUTO_TEST_CASE(repeated_names_follow_their_hook_and_the_maps_of_each_run) {
  class Repeats final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      log("a", static_cast<double>(i), LogOptions().prog_bar(true));
      log("b", 10.0 + static_cast<double>(i));
      return BoringModel::training_step(b, i);
    }
    void on_train_batch_end(const StepOutput&, const Batch&, std::int64_t i) override {
      log("a", 1000.0 + static_cast<double>(i));  // the same name from another hook
    }
    Verdict on_train_batch_start(const Batch&, std::int64_t) override {
      seen.push_back({trainer().logged_metrics(), trainer().progress_bar_metrics()});
      return {};
    }
    std::vector<std::pair<MetricMap, MetricMap>> seen;  // logged, progress bar
  } model;
  Trainer trainer(logging_options().max_epochs(1).limit_train_batches(3));
  trainer.fit(model);
  trainer.fit(model);  // a new run: the maps start empty again
  BOOST_TEST_REQUIRE(model.seen.size() == 6u);
  for (std::size_t k = 0; k < model.seen.size(); ++k) {
    const auto& [logged, pbar] = model.seen[k];
    const std::size_t i = k % 3;  // batch index in its run
    BOOST_TEST_CONTEXT("run " << k / 3 << ", batch " << i) {
      if (i == 0) {
        BOOST_TEST(logged.empty());
        BOOST_TEST(pbar.empty());
        continue;
      }
      const double last = static_cast<double>(i - 1);
      BOOST_TEST(logged.size() == 2u);
      BOOST_TEST(logged.at("a") == 1000.0 + last);  // on_train_batch_end wrote it last
      BOOST_TEST(logged.at("b") == 10.0 + last);
      BOOST_TEST(pbar.size() == 1u);
      BOOST_TEST(pbar.at("a") == last);
    }
  }
  BOOST_TEST(trainer.callback_metrics().at("b") == 12.0);
  BOOST_TEST(trainer.logged_metrics().at("a") == 1002.0);
}

// The sanity check empties the maps but keeps its results: the step values of the validation
// that follows must still reach the maps.
BOOST_AUTO_TEST_CASE(step_values_after_the_sanity_check_reach_the_emptied_maps) {
  class Val final : public BoringModel {
   public:
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("v", 5.0 + static_cast<double>(i), LogOptions().on_step(true).on_epoch(true));
      return BoringModel::validation_step(b, i, d);
    }
    void on_validation_batch_end(const StepOutput&, const Batch&, std::int64_t,
                                 std::int64_t) override {
      const MetricMap& logged = trainer().logged_metrics();
      seen.push_back(logged.count("v_step") != 0 ? logged.at("v_step") : -1.0);
    }
    std::vector<double> seen;
  } model;
  Trainer trainer(logging_options()
                      .num_sanity_val_steps(2)
                      .limit_val_batches(2)
                      .max_epochs(1)
                      .limit_train_batches(2));
  trainer.fit(model);
  BOOST_TEST(model.seen == (std::vector<double>{5.0, 6.0, 5.0, 6.0}),
             boost::test_tools::per_element());
  BOOST_TEST(trainer.logged_metrics().at("v_epoch") == 5.5);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(logger_connector)

// log_every_n_steps throttles the training step values sent to loggers; validation end values and
// epoch values follow with Lightning's "epoch" key and step (batches that stepped).
BOOST_AUTO_TEST_CASE(loggers_get_what_lightning_sends_when_it_sends_it) {
  Logging model(
      [](Module& m, std::int64_t i) {
        m.log("loss", static_cast<double>(i), LogOptions().on_step(true).on_epoch(true));
      },
      [](Module& m, std::int64_t i) { m.log("val_loss", 10.0 + static_cast<double>(i)); });
  model.hparams().set("lr", 0.1);
  auto rec = std::make_shared<Recording>();
  auto other = std::make_shared<Recording>();
  Trainer trainer(TrainerOptions()
                      .max_epochs(1)
                      .limit_train_batches(4)
                      .limit_val_batches(2)
                      .log_every_n_steps(2)
                      .enable_checkpointing(false)
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .logger(std::vector<std::shared_ptr<Logger>>{rec, other}));
  trainer.fit(model);
  using M = std::map<std::string, double>;
  BOOST_REQUIRE_EQUAL(rec->calls().size(), 4u);
  BOOST_TEST((rec->calls()[0].metrics == M{{"loss_step", 1.0}, {"epoch", 0.0}}));
  BOOST_TEST(*rec->calls()[0].step == 1);
  BOOST_TEST((rec->calls()[1].metrics == M{{"loss_step", 3.0}, {"epoch", 0.0}}));
  BOOST_TEST(*rec->calls()[1].step == 3);
  BOOST_TEST((rec->calls()[2].metrics == M{{"val_loss", 10.5}, {"epoch", 0.0}}));
  BOOST_TEST(*rec->calls()[2].step == 3);
  BOOST_TEST((rec->calls()[3].metrics == M{{"loss_epoch", 1.5}, {"epoch", 0.0}}));
  BOOST_TEST(*rec->calls()[3].step == 3);
  BOOST_TEST(other->calls().size() == rec->calls().size());
  BOOST_TEST(rec->hyperparams_calls() == 1);
  BOOST_TEST(rec->hyperparams().at("lr").toDouble() == 0.1);
  BOOST_TEST(rec->finalized() == (std::vector<std::string>{"success"}),
             boost::test_tools::per_element());
  BOOST_TEST(rec->saves() >= 4);
  BOOST_TEST((rec->thread() != std::this_thread::get_id()));  // the async lane
  BOOST_TEST(trainer.logger() == rec.get());
  BOOST_TEST(trainer.log_dir() == ".");  // a logger without files: default_root_dir
}

BOOST_AUTO_TEST_CASE(a_failed_run_finalizes_the_loggers_as_failed) {
  StepAndEpoch model;
  model.fail_at = 2;
  auto rec = std::make_shared<Recording>();
  Trainer trainer(logging_options().max_epochs(1).limit_train_batches(3).logger(rec));
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  BOOST_TEST(rec->finalized() == (std::vector<std::string>{"failed"}),
             boost::test_tools::per_element());
}

// Rows reach the loggers' thread in bunches (one wake-up for many fast steps), in order, and the
// rows held back when a run fails are still delivered before the loggers are finalized.
BOOST_AUTO_TEST_CASE(rows_are_posted_in_bunches_and_none_is_lost_when_a_run_fails) {
  class FailsAtStep30 final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      if (trainer().global_step() == 30) throw std::runtime_error("boom at step 30");
      auto out = BoringModel::training_step(b, i);
      log("train_loss", out["loss"]);
      return out;
    }
  } model;
  auto rec = std::make_shared<Recording>();
  Trainer trainer(
      logging_options().max_epochs(5).limit_train_batches(10).log_every_n_steps(1).logger(rec));
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  // 30 step rows and, after each of the 3 epochs, a row of epoch values (empty here: skipped).
  BOOST_REQUIRE_EQUAL(rec->calls().size(), 30u);
  for (std::size_t i = 0; i < rec->calls().size(); ++i) {
    BOOST_TEST(*rec->calls()[i].step == static_cast<std::int64_t>(i));
    BOOST_TEST(rec->calls()[i].metrics.count("train_loss") == 1u);
  }
  BOOST_TEST(rec->saves() < 10);  // one save() per bunch, not per row
  BOOST_TEST(rec->finalized() == (std::vector<std::string>{"failed"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(default_logger_is_tensorboard_under_default_root_dir_and_can_be_off) {
  const fs::path root = fs::absolute("default_logger_root");
  Trainer trainer(TrainerOptions().default_root_dir(root.string()));
  BOOST_REQUIRE_EQUAL(trainer.loggers().size(), 1u);
  auto* tb = dynamic_cast<TensorBoardLogger*>(trainer.logger());
  BOOST_REQUIRE(tb != nullptr);
  BOOST_TEST(tb->save_dir() == root.string());
  BOOST_TEST(trainer.log_dir() == (root / "lightning_logs" / "version_0").string());
  Trainer off(TrainerOptions().logger(false));
  BOOST_TEST(off.loggers().empty());
  BOOST_TEST(off.logger() == nullptr);
  BOOST_CHECK_THROW(Trainer(TrainerOptions().logger(std::shared_ptr<Logger>())),
                    std::invalid_argument);
}

// log_every_n_steps(3) over 7 batches: the loggers get batches 2 and 5 (0-based) only.
BOOST_AUTO_TEST_CASE(log_every_n_steps_throttles_only_the_loggers) {
  Logging model([](Module& m, std::int64_t i) { m.log("i", static_cast<double>(i)); });
  auto rec = std::make_shared<Recording>();
  Trainer trainer(
      logging_options().max_epochs(1).limit_train_batches(7).log_every_n_steps(3).logger(rec));
  trainer.fit(model);
  BOOST_REQUIRE_EQUAL(rec->calls().size(), 2u);
  BOOST_TEST(rec->calls()[0].metrics.at("i") == 2.0);
  BOOST_TEST(*rec->calls()[0].step == 2);
  BOOST_TEST(rec->calls()[1].metrics.at("i") == 5.0);
  auto none = std::make_shared<Recording>();
  Trainer never(
      logging_options().max_epochs(1).limit_train_batches(4).log_every_n_steps(0).logger(none));
  never.fit(model);
  BOOST_TEST(none->calls().empty());
  BOOST_TEST(never.logged_metrics().at("i") == 3.0);  // the maps still get every batch
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_logging_tests
