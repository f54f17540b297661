// EarlyStopping: each option against Lightning 2.2's behaviour (when it checks, what counts as an
// improvement, the thresholds, the stop reason, strict, min_epochs, its state in checkpoints).
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/early_stopping.hpp>
#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/core/loops/logger_connector.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

namespace hookline_test_early_stopping_tests {

using namespace hookline;
using namespace test_support;

namespace {

// Logs a scripted val_loss per validation run (the last value repeats); 2 batches per epoch.
class Scripted : public BoringModel {
 public:
  explicit Scripted(std::vector<double> scores) : scores_(std::move(scores)) {}
  StepOutput validation_step(const Batch& batch, std::int64_t i, std::int64_t dl) override {
    if (!trainer().sanity_checking())
      log("val_loss", scores_.at(std::min(runs_, scores_.size() - 1)));
    return BoringModel::validation_step(batch, i, dl);
  }
  void on_validation_end() override {
    if (!trainer().sanity_checking()) ++runs_;
  }
  DataLoaders train_dataloader() override { return {loader(8, 4)}; }

 private:
  std::vector<double> scores_;
  std::size_t runs_ = 0;
};

TrainerOptions options(std::int64_t epochs = 10) {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .max_epochs(epochs)
      .limit_val_batches(1)
      .num_sanity_val_steps(0)
      .enable_checkpointing(false);
}

std::shared_ptr<EarlyStopping> stopper(EarlyStoppingOptions o) {
  return std::make_shared<EarlyStopping>(std::move(o));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(early_stopping)

BOOST_AUTO_TEST_CASE(patience_counts_checks_without_improvement) {
  Scripted model({1.0, 0.5, 0.6, 0.7, 0.4});
  auto es = stopper(EarlyStoppingOptions().monitor("val_loss").patience(2));
  Trainer trainer(options(), {es});
  trainer.fit(model);
  // Epoch 0: 1.0 (best), 1: 0.5 (best), 2: 0.6 (wait 1), 3: 0.7 (wait 2): stop after epoch 3.
  BOOST_TEST(trainer.current_epoch() == 4);
  BOOST_TEST(es->stopped_epoch() == 3);
  BOOST_TEST(es->wait_count() == 2);
  BOOST_TEST(es->best_score() == 0.5f);
  BOOST_TEST(trainer.should_stop());
  BOOST_TEST(contains(trainer.stop_reason(),
                      "Monitored metric val_loss did not improve in the last 2 records. Best "
                      "score: 0.500. Signaling Trainer to stop."),
             trainer.stop_reason());
  BOOST_TEST(es->check_on_train_epoch_end());  // validation once per epoch, at its end
}

BOOST_AUTO_TEST_CASE(min_delta_and_mode_max) {
  // min: 0.95 is not better than 1.0 by more than 0.1.
  Scripted model({1.0, 0.95, 0.92, 0.5});
  auto es = stopper(EarlyStoppingOptions().monitor("val_loss").min_delta(0.1).patience(2));
  Trainer trainer(options(), {es});
  trainer.fit(model);
  BOOST_TEST(es->stopped_epoch() == 2);
  BOOST_TEST(es->best_score() == 1.0f);
  // max: rising values improve; a fall waits.
  Scripted rising({0.1, 0.2, 0.3, 0.25, 0.2, 0.1});
  auto max = stopper(EarlyStoppingOptions().monitor("val_loss").mode("max").patience(3));
  Trainer second(options(), {max});
  second.fit(rising);
  BOOST_TEST(max->best_score() == 0.3f);
  BOOST_TEST(max->stopped_epoch() == 5);
  BOOST_CHECK_THROW(EarlyStopping(EarlyStoppingOptions().monitor("x").mode("mean")),
                    std::invalid_argument);
  BOOST_CHECK_THROW(EarlyStopping{EarlyStoppingOptions{}}, std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(check_finite_stops_on_nan) {
  Scripted model({1.0, std::numeric_limits<double>::quiet_NaN(), 0.1});
  auto es = stopper(EarlyStoppingOptions().monitor("val_loss").patience(5));
  Trainer trainer(options(), {es});
  trainer.fit(model);
  BOOST_TEST(es->stopped_epoch() == 1);
  BOOST_TEST(trainer.current_epoch() == 2);
  BOOST_TEST(contains(trainer.stop_reason(),
                      "Monitored metric val_loss = nan is not finite. Previous best value was "
                      "1.000."),
             trainer.stop_reason());
  // check_finite off: NaN is just not an improvement.
  Scripted again({1.0, std::numeric_limits<double>::quiet_NaN(), 0.1});
  auto lenient =
      stopper(EarlyStoppingOptions().monitor("val_loss").patience(5).check_finite(false));
  Trainer second(options(3), {lenient});
  second.fit(again);
  BOOST_TEST(!second.should_stop());
  BOOST_TEST(lenient->best_score() == 0.1f);
}

BOOST_AUTO_TEST_CASE(stopping_and_divergence_thresholds) {
  Scripted reaching({1.0, 0.5, 0.2, 0.1});
  auto es = stopper(EarlyStoppingOptions().monitor("val_loss").stopping_threshold(0.3));
  Trainer trainer(options(), {es});
  trainer.fit(reaching);
  BOOST_TEST(es->stopped_epoch() == 2);
  BOOST_TEST(contains(trainer.stop_reason(), "Stopping threshold reached: val_loss = 0.2 < 0.3"),
             trainer.stop_reason());
  Scripted diverging({1.0, 2.0, 6.0, 0.1});
  auto div =
      stopper(EarlyStoppingOptions().monitor("val_loss").patience(10).divergence_threshold(5));
  Trainer second(options(), {div});
  second.fit(diverging);
  BOOST_TEST(div->stopped_epoch() == 2);
  BOOST_TEST(contains(second.stop_reason(), "Divergence threshold reached: val_loss = 6 < 5"),
             second.stop_reason());
}

BOOST_AUTO_TEST_CASE(strict_names_the_missing_metric) {
  Scripted model({1.0});
  auto es = stopper(EarlyStoppingOptions().monitor("val_acc"));
  BOOST_CHECK_EXCEPTION(Trainer(options(), {es}).fit(model), std::runtime_error,
                        [](const std::runtime_error& e) {
                          return contains(e.what(), "`val_acc` which is not available") &&
                                 contains(e.what(), "`val_loss`");
                        });
  Scripted lax_model({1.0});
  auto lax = stopper(EarlyStoppingOptions().monitor("val_acc").strict(false));
  Trainer trainer(options(3), {lax});
  trainer.fit(lax_model);
  BOOST_TEST(!trainer.should_stop());
  BOOST_TEST(trainer.current_epoch() == 3);
}

BOOST_AUTO_TEST_CASE(checks_at_validation_end_when_validating_mid_epoch) {
  // val_check_interval 0.5: two validations per epoch, so the check moves to on_validation_end
  // and patience counts validation runs, not epochs.
  Scripted model({1.0, 0.9, 0.95, 0.96, 0.97});
  auto es = stopper(EarlyStoppingOptions().monitor("val_loss").patience(3));
  Trainer trainer(options().val_check_interval(0.5), {es});
  trainer.fit(model);
  BOOST_TEST(!es->check_on_train_epoch_end());
  // Runs: e0 (1.0, 0.9), e1 (0.95 w1, 0.96 w2), e2 (0.97 w3): stop in epoch 2.
  BOOST_TEST(es->stopped_epoch() == 2);
  BOOST_TEST(trainer.current_epoch() == 3);
  // Forcing the epoch-end check while validating twice per epoch checks once per epoch.
  Scripted again({1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99});
  auto at_end = stopper(
      EarlyStoppingOptions().monitor("val_loss").patience(2).check_on_train_epoch_end(true));
  Trainer second(options().val_check_interval(0.5), {at_end});
  second.fit(again);
  // Epoch ends see 0.9 (best), 0.96 (w1), 0.98 (w2): stop after epoch 2.
  BOOST_TEST(at_end->stopped_epoch() == 2);
}

BOOST_AUTO_TEST_CASE(min_epochs_holds_the_stop_back) {
  Scripted model({1.0, 2.0, 3.0, 4.0, 5.0, 6.0});
  auto es = stopper(EarlyStoppingOptions().monitor("val_loss").patience(1));
  Trainer trainer(options().min_epochs(4), {es});
  trainer.fit(model);
  BOOST_TEST(es->stopped_epoch() >= 1);
  BOOST_TEST(trainer.current_epoch() == 4);  // the stop waits for min_epochs
}

BOOST_AUTO_TEST_CASE(state_key_state_and_resume) {
  EarlyStopping a(EarlyStoppingOptions().monitor("val_loss"));
  EarlyStopping b(EarlyStoppingOptions().monitor("val_acc").mode("max"));
  BOOST_TEST(a.state_key() == "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}");
  BOOST_TEST(b.state_key() == "EarlyStopping{'monitor': 'val_acc', 'mode': 'max'}");
  BOOST_CHECK_THROW(Trainer(options(), {stopper(EarlyStoppingOptions().monitor("val_loss")),
                                        stopper(EarlyStoppingOptions().monitor("val_loss"))}),
                    std::invalid_argument);

  // Stopped after 2 epochs without the patience reached, saved, resumed: it keeps counting.
  const std::string path =
      (std::filesystem::temp_directory_path() / "hookline_es_state.ckpt").string();
  Scripted model({1.0, 1.5, 1.6, 1.7});
  auto es = stopper(EarlyStoppingOptions().monitor("val_loss").patience(3));
  LambdaHooks save;
  save.on_fit_end = [&path](Trainer& t, Module&) { t.save_checkpoint(path); };
  Trainer first(options(2), {es, std::make_shared<LambdaCallback>(save, "save")});
  first.fit(model);
  BOOST_TEST(es->wait_count() == 1);
  Scripted resumed_model({1.6, 1.7});
  auto resumed = stopper(EarlyStoppingOptions().monitor("val_loss").patience(3));
  Trainer second(options(), {resumed});
  second.fit(resumed_model, nullptr, path);
  BOOST_TEST(resumed->best_score() == 1.0f);
  BOOST_TEST(resumed->stopped_epoch() == 3);  // waits 2 and 3 in epochs 2 and 3
  BOOST_TEST(second.current_epoch() == 4);
  std::filesystem::remove(path);
}

// Lightning runs its monitoring callbacks (EarlyStopping, checkpoints) after the module and the
// other callbacks at on_train_epoch_end, whatever the list order: a callback added after the
// EarlyStopping can publish the metric it monitors there.
BOOST_AUTO_TEST_CASE(runs_after_other_callbacks_at_train_epoch_end) {
  Scripted model({1.0});
  auto es =
      stopper(EarlyStoppingOptions().monitor("score").patience(1).check_on_train_epoch_end(true));
  std::vector<std::string> order;
  LambdaHooks publish;
  publish.on_train_epoch_end = [&order](Trainer& t, Module&) {
    order.push_back("publish");
    t.logger_connector().update_callback_metrics({{"score", 1.0}});  // never improves after epoch 0
  };
  Trainer trainer(options(10), {es, std::make_shared<LambdaCallback>(publish, "publisher")});
  trainer.fit(model);
  BOOST_TEST(trainer.current_epoch() == 2);  // checked each epoch, stopped after epoch 1
  BOOST_TEST(es->wait_count() == 1);
  BOOST_TEST(order.size() == 2u);  // the publisher ran at both epoch ends
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_early_stopping_tests
