// Timer: the budget format, stopping by step and by epoch, per-stage times, and its state.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/callbacks/timer.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

namespace hookline_test_timer_tests {

using namespace hookline;
using namespace test_support;

namespace {

// 4 batches per epoch, each step takes at least 20 ms.
class Slow : public BoringModel {
 public:
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return BoringModel::training_step(b, i);
  }
  DataLoaders train_dataloader() override { return {loader(16, 4)}; }
};

TrainerOptions options() {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .max_epochs(100)
      .limit_val_batches(1)
      .num_sanity_val_steps(1)
      .enable_checkpointing(false);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(timer)

BOOST_AUTO_TEST_CASE(duration_and_interval_are_checked) {
  BOOST_TEST(*TimerOptions().duration("00:12:00:00").seconds() == 12 * 3600.0);
  BOOST_TEST(*TimerOptions().duration("01:00:00:05").seconds() == 86405.0);
  for (const char* bad : {"12:00", "00:00:00:xx", "1:2:3:4:5", "-1:00:00:00", ""})
    BOOST_CHECK_THROW(TimerOptions().duration(bad), std::invalid_argument);
  BOOST_CHECK_THROW(Timer(TimerOptions().interval("batch")), std::invalid_argument);
  BOOST_TEST(Timer::format_elapsed(5.7) == "0:00:05");
  BOOST_TEST(Timer::format_elapsed(90061) == "1 day, 1:01:01");
  BOOST_TEST(Timer::format_elapsed(2 * 86400 + 3600) == "2 days, 1:00:00");
  Timer unbounded;
  BOOST_TEST(!unbounded.time_remaining().has_value());
  BOOST_TEST(unbounded.time_elapsed() == 0.0);
}

BOOST_AUTO_TEST_CASE(stops_after_the_step_that_uses_up_the_budget) {
  Slow model;
  auto timer = std::make_shared<Timer>(TimerOptions().seconds(0.15));
  Trainer trainer(options(), {timer});
  trainer.fit(model);
  BOOST_TEST(trainer.should_stop());
  BOOST_TEST(trainer.stop_reason().find("Time limit reached. Elapsed time is 0:00:00.") !=
                 std::string::npos,
             trainer.stop_reason());
  BOOST_TEST(timer->time_elapsed() >= 0.15);
  // The step that crossed the line ends the fit. A step sleeps at least 20 ms, so 8 steps
  // always cross 0.15 s (a loaded machine makes steps longer, hence fewer, never more).
  BOOST_TEST(trainer.global_step() >= 1);
  BOOST_TEST(trainer.global_step() <= 8);
  BOOST_TEST(*timer->time_remaining() <= 0.0);
}

BOOST_AUTO_TEST_CASE(epoch_interval_stops_only_at_an_epoch_end) {
  Slow model;
  auto timer = std::make_shared<Timer>(TimerOptions().seconds(0.05).interval("epoch"));
  Trainer trainer(options(), {timer});
  trainer.fit(model);
  BOOST_TEST(trainer.global_step() == 4);  // the whole first epoch ran
  BOOST_TEST(trainer.current_epoch() == 1);
}

BOOST_AUTO_TEST_CASE(each_stage_has_its_times) {
  Slow model;
  auto timer = std::make_shared<Timer>();
  Trainer trainer(options().max_epochs(1), {timer});
  trainer.fit(model);
  trainer.test(model);
  BOOST_TEST(timer->time_elapsed(Timer::RunStage::train) >= 0.08);
  BOOST_TEST(timer->start_time(Timer::RunStage::validate).has_value());
  BOOST_TEST(timer->time_elapsed(Timer::RunStage::test) > 0.0);
  BOOST_TEST(timer->time_elapsed(Timer::RunStage::sanity_check) == 0.0);  // as in Lightning
  BOOST_TEST(!timer->start_time(Timer::RunStage::predict).has_value());
  BOOST_TEST(*timer->end_time() >= *timer->start_time());
}

BOOST_AUTO_TEST_CASE(a_resumed_fit_counts_the_saved_training_time) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "hookline_timer_state.ckpt").string();
  Slow model;
  auto timer = std::make_shared<Timer>();
  LambdaHooks save;
  save.on_fit_end = [&path](Trainer& t, Module&) { t.save_checkpoint(path); };
  Trainer first(options().max_epochs(1), {timer, std::make_shared<LambdaCallback>(save, "save")});
  first.fit(model);
  const double spent = timer->time_elapsed();
  BOOST_TEST(spent >= 0.08);
  // The budget is already spent: the resumed fit stops at fit start, before any batch.
  Slow again;
  auto resumed = std::make_shared<Timer>(TimerOptions().seconds(spent / 2));
  Trainer second(options().max_epochs(3), {resumed});
  second.fit(again, nullptr, path);
  BOOST_TEST(second.global_step() == 4);  // nothing trained after the checkpoint
  BOOST_TEST(resumed->time_elapsed() >= spent);
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_timer_tests
