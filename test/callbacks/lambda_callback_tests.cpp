// LambdaCallback: every hook reaches its std::function, in the trainer's order, and a hook can
// veto through the callback.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/lambda_callback.hpp>

namespace hookline_test_lambda_callback_tests {

using namespace hookline;
using namespace test_support;

namespace {

// The lists one after another.
std::vector<std::string> joined(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// The hooks of a one-batch `stage` run ("validation", "test", "predict"), in order.
std::vector<std::string> one_batch_run(const std::string& stage) {
  const std::string on = "on_" + stage;
  return {on + "_start",     on + "_epoch_start", on + "_batch_start",
          on + "_batch_end", on + "_epoch_end",   on + "_end"};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lambda_callback)

BOOST_AUTO_TEST_CASE(every_hook_reaches_its_function) {
  std::vector<std::string> seen;
  auto note = [&seen](const char* name) {
    return [&seen, name](auto&&...) { seen.push_back(name); };
  };
  LambdaHooks h;
  h.setup = note("setup");
  h.teardown = note("teardown");
  h.on_fit_start = note("on_fit_start");
  h.on_fit_end = note("on_fit_end");
  h.on_sanity_check_start = note("on_sanity_check_start");
  h.on_sanity_check_end = note("on_sanity_check_end");
  h.on_train_start = note("on_train_start");
  h.on_train_end = note("on_train_end");
  h.on_validation_start = note("on_validation_start");
  h.on_validation_end = note("on_validation_end");
  h.on_test_start = note("on_test_start");
  h.on_test_end = note("on_test_end");
  h.on_predict_start = note("on_predict_start");
  h.on_predict_end = note("on_predict_end");
  h.on_train_epoch_start = note("on_train_epoch_start");
  h.on_train_epoch_end = note("on_train_epoch_end");
  h.on_validation_epoch_start = note("on_validation_epoch_start");
  h.on_validation_epoch_end = note("on_validation_epoch_end");
  h.on_test_epoch_start = note("on_test_epoch_start");
  h.on_test_epoch_end = note("on_test_epoch_end");
  h.on_predict_epoch_start = note("on_predict_epoch_start");
  h.on_predict_epoch_end = note("on_predict_epoch_end");
  h.on_train_batch_start = note("on_train_batch_start");
  h.on_train_batch_end = note("on_train_batch_end");
  h.on_validation_batch_start = note("on_validation_batch_start");
  h.on_validation_batch_end = note("on_validation_batch_end");
  h.on_test_batch_start = note("on_test_batch_start");
  h.on_test_batch_end = note("on_test_batch_end");
  h.on_predict_batch_start = note("on_predict_batch_start");
  h.on_predict_batch_end = note("on_predict_batch_end");
  h.on_before_zero_grad = note("on_before_zero_grad");
  h.on_before_backward = note("on_before_backward");
  h.on_after_backward = note("on_after_backward");
  h.on_before_optimizer_step = note("on_before_optimizer_step");
  BoringModel model;
  Trainer trainer(TrainerOptions()
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .max_epochs(1)
                      .limit_train_batches(1)
                      .limit_val_batches(1)
                      .limit_test_batches(1)
                      .limit_predict_batches(1)
                      .num_sanity_val_steps(1)
                      .enable_checkpointing(false),
                  {std::make_shared<LambdaCallback>(h)});
  trainer.fit(model);
  const auto fit = joined({{"setup", "on_fit_start", "on_sanity_check_start"},
                           one_batch_run("validation"),
                           {"on_sanity_check_end", "on_train_start", "on_train_epoch_start",
                            "on_train_batch_start", "on_before_zero_grad", "on_before_backward",
                            "on_after_backward", "on_before_optimizer_step", "on_train_batch_end"},
                           one_batch_run("validation"),
                           {"on_train_epoch_end", "on_train_end", "on_fit_end", "teardown"}});
  BOOST_TEST(seen == fit, boost::test_tools::per_element());
  seen.clear();
  trainer.test(model);
  trainer.predict(model);
  const auto rest = joined({{"setup"},
                            one_batch_run("test"),
                            {"teardown", "setup"},
                            one_batch_run("predict"),
                            {"teardown"}});
  BOOST_TEST(seen == rest, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_hook_vetoes_through_the_callback) {
  LambdaCallback* self = nullptr;
  LambdaHooks h;
  h.on_train_batch_start = [&self](Trainer&, Module&, const Batch&, std::int64_t i) {
    if (i == 1) self->veto_current(Action::SkipRestOfEpoch, "enough");
  };
  auto callback = std::make_shared<LambdaCallback>(h, "skipper");
  self = callback.get();
  BoringModel model;
  Trainer trainer(TrainerOptions()
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .max_epochs(2)
                      .limit_train_batches(4)
                      .limit_val_batches(0)
                      .num_sanity_val_steps(0)
                      .enable_checkpointing(false),
                  {callback});
  trainer.fit(model);
  BOOST_TEST(trainer.global_step() == 2);  // one step per epoch, the rest skipped
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_lambda_callback_tests
