// Golden traces: the hook sequence of a run equals Lightning 2.2's, hook for hook and argument for
// argument (completion order, as tests/tests_pytorch/models/test_hooks.py records it; see
// docs/lightning-hook-order.md). The module is "lm", one plain callback is "cb".
// nn.Module calls that Lightning's test also lists (forward, zero_grad, train, clip_gradients)
// are not hooks and are not emitted.
#include <boost/test/unit_test.hpp>

#include "golden.hpp"

namespace hookline_test_golden_fit_tests {

using namespace hookline;
using namespace test_support;
using golden::Lines;

namespace {
// Runs `stage` of a BoringModel and checks its trace: the stage's prologue, `run`, its epilogue.
void check_stage(Stage stage, const std::string& name, const Lines& run,
                 const TrainerOptions& options) {
  Lines expected = golden::stage_prologue(name);
  golden::append(expected, run);
  golden::append(expected, golden::stage_epilogue(name));
  BoringModel model;
  golden::check(golden::run(model, options, stage), expected);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(golden_fit)

BOOST_AUTO_TEST_CASE(fit_with_sanity_check_two_epochs) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::sanity_check(2));
  golden::append(expected, {"lm.train_dataloader", "cb+lm.on_train_start"});
  for (int epoch = 0; epoch < 2; ++epoch) {
    golden::append(expected, {"cb+lm.on_train_epoch_start"});
    for (int i = 0; i < 2; ++i) golden::append(expected, golden::train_batch(epoch, i));
    golden::append(expected, {"lm.on_validation_model_zero_grad"});
    golden::append(expected, golden::val_run(2, false));
    golden::append(expected, {"cb+lm.on_train_epoch_end"});
  }
  golden::append(expected, golden::fit_epilogue());

  BoringModel model;
  auto trace = golden::run_fit(
      model, golden::plain_options().max_epochs(2).limit_train_batches(2).limit_val_batches(2));
  golden::check(trace, expected);
}

BOOST_AUTO_TEST_CASE(validate) {
  check_stage(Stage::validate, "validate", golden::val_run(2, true),
              golden::plain_options().limit_val_batches(2));
}

BOOST_AUTO_TEST_CASE(test) {
  check_stage(Stage::test, "test", golden::eval_run("test", "test", 2, true, "y"),
              golden::plain_options().limit_test_batches(2));
}

BOOST_AUTO_TEST_CASE(predict) {
  Lines run{"lm.predict_dataloader", "lm.on_predict_model_eval", "cb+lm.on_predict_start",
            "cb+lm.on_predict_epoch_start"};
  for (int i = 0; i < 2; ++i) {
    golden::append(run, golden::transfer(0));
    const std::string idx = "batch_idx=" + std::to_string(i);
    golden::append(run,
                   {"cb+lm.on_predict_batch_start(batch(n=4), " + idx + ")",
                    "lm.predict_step(batch(n=4), " + idx + ")",
                    "cb+lm.on_predict_batch_end(outputs{prediction}, batch(n=4), " + idx + ")"});
  }
  golden::append(run, {"cb+lm.on_predict_epoch_end", "cb+lm.on_predict_end"});
  check_stage(Stage::predict, "predict", run, golden::plain_options().limit_predict_batches(2));
}

BOOST_AUTO_TEST_SUITE_END()

namespace {
/// Records the order in which emissions START (entry order), not when subscribers return.
class EntryOrder final : public Tracer {
 public:
  void on_emit(const EventInfo& event, const void*, std::uint64_t) override {
    names.emplace_back(event.name);
  }
  void on_call(const EventInfo&, const SubscriptionInfo&, Lane, std::uint64_t, const void*,
               Clock::time_point, Clock::time_point, Action) override {}
  void on_emit_end(const EventInfo&, std::uint64_t, const Outcome&) override {}
  std::vector<std::string> names;
};
}  // namespace

BOOST_AUTO_TEST_SUITE(golden_entry_order)

// What actually happens in time (docs/lightning-hook-order.md §0.1, §2.0): optimizer_step is
// entered first and runs the closure (training_step, zero-grad, backward, before-step, clipping).
BOOST_AUTO_TEST_CASE(optimizer_step_encloses_the_closure) {
  BoringModel model;
  Trainer trainer(
      golden::plain_options().max_epochs(1).limit_train_batches(1).limit_val_batches(0));
  auto tracer = std::make_shared<EntryOrder>();
  trainer.bus().set_tracer(tracer);
  trainer.fit(model);
  const auto& n = tracer->names;
  const auto first = std::find(n.begin(), n.end(), "on_train_batch_start");
  BOOST_REQUIRE(first != n.end());
  const Lines batch(first, std::find(first, n.end(), "on_train_batch_end") + 1);
  BOOST_TEST(batch == (Lines{"on_train_batch_start", "optimizer_step", "training_step",
                             "on_before_zero_grad", "optimizer_zero_grad", "on_before_backward",
                             "backward", "on_after_backward", "on_before_optimizer_step",
                             "configure_gradient_clipping", "on_train_batch_end"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_golden_fit_tests
