// GradientAccumulationScheduler: the factor changes at the scheduled epochs (steps per epoch show
// it), Lightning's validation of the schedule, and the settings it refuses at fit start.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/gradient_accumulation_scheduler.hpp>
#include <hookline/callbacks/lambda_callback.hpp>

namespace hookline_test_gradient_accumulation_scheduler_tests {

using namespace hookline;
using namespace test_support;

namespace {

class EightBatches : public BoringModel {
 public:
  DataLoaders train_dataloader() override { return {loader(32, 4)}; }
};

TrainerOptions options(std::int64_t epochs) {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .max_epochs(epochs)
      .limit_val_batches(0)
      .num_sanity_val_steps(0)
      .enable_checkpointing(false);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gradient_accumulation_scheduler)

BOOST_AUTO_TEST_CASE(the_factor_changes_at_the_scheduled_epochs) {
  auto scheduler = std::make_shared<GradientAccumulationScheduler>(
      std::map<std::int64_t, std::int64_t>{{1, 2}, {3, 4}});
  std::vector<std::int64_t> steps_at_epoch_end;
  LambdaHooks record;
  record.on_train_epoch_end = [&](Trainer& t, Module&) {
    steps_at_epoch_end.push_back(t.global_step());
  };
  EightBatches model;
  Trainer trainer(options(4), {scheduler, std::make_shared<LambdaCallback>(record, "record")});
  trainer.fit(model);
  // 8 batches per epoch: factor 1, 2, 2, 4 -> 8, 4, 4, 2 optimizer steps.
  const std::vector<std::int64_t> expected{8, 12, 16, 18};
  BOOST_TEST(steps_at_epoch_end == expected, boost::test_tools::per_element());
  BOOST_TEST(trainer.options().accumulate_grad_batches() == 4);
  BOOST_TEST(scheduler->get_accumulate_grad_batches(0) == 1);
  BOOST_TEST(scheduler->get_accumulate_grad_batches(2) == 2);
  BOOST_TEST(scheduler->get_accumulate_grad_batches(100) == 4);
  BOOST_TEST(scheduler->going_to_accumulate_grad_batches());
  BOOST_TEST(scheduler->scheduling().at(0) == 1);  // added, as Lightning does
}

BOOST_AUTO_TEST_CASE(bad_schedules_and_settings_are_refused) {
  using Schedule = std::map<std::int64_t, std::int64_t>;
  BOOST_CHECK_THROW(GradientAccumulationScheduler(Schedule{}), std::invalid_argument);
  BOOST_CHECK_THROW(GradientAccumulationScheduler(Schedule{{-1, 2}}), std::invalid_argument);
  BOOST_CHECK_THROW(GradientAccumulationScheduler(Schedule{{2, 0}}), std::invalid_argument);
  GradientAccumulationScheduler starts_at_zero(Schedule{{0, 3}});
  BOOST_TEST(starts_at_zero.get_accumulate_grad_batches(0) == 3);  // a given epoch 0 is kept

  EightBatches with_accumulation;
  BOOST_CHECK_THROW(Trainer(options(1).accumulate_grad_batches(2),
                            {std::make_shared<GradientAccumulationScheduler>(Schedule{{1, 2}})})
                        .fit(with_accumulation),
                    std::invalid_argument);
  class Manual final : public EightBatches {
   public:
    Manual() { set_automatic_optimization(false); }
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      auto opt = optimizers().at(0);
      StepOutput out = BoringModel::training_step(b, i);
      manual_backward(out["loss"]);
      opt.step();
      return {};
    }
  } manual;
  BOOST_CHECK_THROW(
      Trainer(options(1), {std::make_shared<GradientAccumulationScheduler>(Schedule{{1, 2}})})
          .fit(manual),
      std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_gradient_accumulation_scheduler_tests
