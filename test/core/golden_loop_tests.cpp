// Golden traces of the fit loop's variations: -1 from on_train_batch_start, gradient accumulation
// and clipping, val_check_interval, check_val_every_n_epoch, max_steps, several validation
// loaders, manual optimization, exceptions, should_stop and min_epochs. Each expected sequence is
// Lightning 2.2's (completion order, as tests/tests_pytorch/models/test_hooks.py records it),
// written from docs/lightning-hook-order.md (section cited per test) with
// enable_checkpointing=False (no ModelCheckpoint yet). The module is "lm", one callback is "cb".
#include <boost/test/unit_test.hpp>

#include "golden.hpp"

#include <stdexcept>

namespace hookline_test_golden_loop_tests {

using namespace hookline;
using namespace test_support;
using golden::Lines;

namespace {

// Throws std::runtime_error("boom") from training_step at batch 1.
class ThrowingModel : public BoringModel {
 public:
  StepOutput training_step(const Batch& batch, std::int64_t batch_idx) override {
    if (batch_idx == 1) throw std::runtime_error("boom");
    return BoringModel::training_step(batch, batch_idx);
  }
};

// Sets should_stop from on_train_batch_end at batch 0 of epoch 0.
class StopAtFirstBatch : public NamedCallback {
 public:
  StopAtFirstBatch() : NamedCallback("cb") {}
  void on_train_batch_end(Trainer& trainer, Module&, const StepOutput&, const Batch&,
                          std::int64_t batch_idx) override {
    if (trainer.current_epoch() == 0 && batch_idx == 0) trainer.set_should_stop(true);
  }
};

// EarlyStopping-like: a monitoring callback that sets should_stop at the end of epoch 0.
class StopAtFirstEpochEnd : public NamedCallback {
 public:
  StopAtFirstEpochEnd() : NamedCallback("cb", band::monitoring) {}
  void on_train_epoch_end(Trainer& trainer, Module&) override {
    if (trainer.current_epoch() == 0) trainer.set_should_stop(true);
  }
};

// golden::plain_options without a sanity check: `epochs` epochs of `train` training batches and
// `val` validation batches.
TrainerOptions loop_options(std::int64_t epochs, std::int64_t train, std::int64_t val) {
  return golden::plain_options()
      .max_epochs(epochs)
      .limit_train_batches(train)
      .limit_val_batches(val)
      .num_sanity_val_steps(0);
}

std::vector<std::shared_ptr<Callback>> plain_callback() {
  return {std::make_shared<NamedCallback>("cb")};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(golden_loops)

// §2.e: -1 at batch k: the transfer hooks and both on_train_batch_start hooks of batch k run,
// nothing else of that epoch's batches (no training_step, no in-epoch validation), then
// on_train_epoch_end; the next epoch is normal. §2.a notes: without a sanity check,
// val_dataloader is requested after train_dataloader, before on_train_start.
BOOST_AUTO_TEST_CASE(train_batch_start_minus_one_skips_rest_of_epoch) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(true));
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  golden::append(expected, golden::train_batch(0, 0));
  golden::append(expected, golden::transfer(0));
  golden::append(expected, {"cb+lm.on_train_batch_start(batch(n=4), batch_idx=1)",
                            "cb+lm.on_train_epoch_end"});
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  for (int i = 0; i < 3; ++i) golden::append(expected, golden::train_batch(1, i));
  golden::append(expected, golden::fit_validation(1, false));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, golden::fit_epilogue());

  SkipRestOfEpochModel model;
  Trainer trainer(loop_options(2, 3, 1), plain_callback());
  golden::fit_and_check(trainer, model, expected);
  BOOST_TEST(trainer.global_step() == 4);  // 1 step in epoch 0, 3 in epoch 1
  BOOST_TEST(trainer.current_epoch() == 2);
}

// §2.f: accumulate_grad_batches=2, gradient_clip_val=0.5, 3 batches: zero-grad hooks on batches
// 0 and 2 (batch_idx % 2 == 0, after training_step), steps on batch 1 (window full) and batch 2
// (last batch, short window). configure_gradient_clipping only on stepping batches.
// limit_val_batches=0: no val_dataloader request at all (validation disabled).
BOOST_AUTO_TEST_CASE(accumulate_two_with_clipping_short_last_window) {
  const std::string clip = std::to_string(0.5);  // "0.500000"
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(false));
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  golden::append(expected, golden::accumulating_batch(0, 0, /*zero_grad=*/true, /*step=*/false));
  golden::append(expected, golden::accumulating_batch(0, 1, false, true, clip));
  golden::append(expected, golden::accumulating_batch(0, 2, true, true, clip));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, golden::fit_epilogue());

  BoringModel model;
  Trainer trainer(loop_options(1, 3, 0).accumulate_grad_batches(2).gradient_clip_val(0.5),
                  plain_callback());
  golden::fit_and_check(trainer, model, expected);
  BOOST_TEST(trainer.global_step() == 2);
  BOOST_TEST(trainer.current_epoch() == 1);
}

// §2.g: val_check_interval=0.5 with 4 batches → val_check_batch=2 → a VAL_RUN (preceded by
// on_validation_model_zero_grad, the batches step) after batches 1 and 3; val_dataloader
// requested once, before on_train_start.
BOOST_AUTO_TEST_CASE(val_check_interval_half) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(true));
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  for (int i = 0; i < 4; ++i) {
    golden::append(expected, golden::train_batch(0, i));
    if (i % 2 == 1) golden::append(expected, golden::fit_validation(1, false));
  }
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, golden::fit_epilogue());

  BoringModel model;
  Trainer trainer(loop_options(1, 4, 1).val_check_interval(0.5), plain_callback());
  golden::fit_and_check(trainer, model, expected);
}

// §2.h: check_val_every_n_epoch=2: epoch 0 has no validation; without a sanity check
// val_dataloader is not requested before on_train_start but at the first VAL_RUN (epoch 1),
// after on_validation_model_zero_grad and before on_validation_model_eval.
BOOST_AUTO_TEST_CASE(check_val_every_second_epoch) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(false));
  for (int epoch = 0; epoch < 2; ++epoch) {
    golden::append(expected, {"cb+lm.on_train_epoch_start"});
    for (int i = 0; i < 2; ++i) golden::append(expected, golden::train_batch(epoch, i));
    if (epoch == 1) golden::append(expected, golden::fit_validation(1, /*request_loader=*/true));
    golden::append(expected, {"cb+lm.on_train_epoch_end"});
  }
  golden::append(expected, golden::fit_epilogue());

  BoringModel model;
  Trainer trainer(loop_options(2, 2, 1).check_val_every_n_epoch(2), plain_callback());
  golden::fit_and_check(trainer, model, expected);
}

// §2.i: max_steps=3 with 4 batches per epoch: batch 2 completes fully (on_train_batch_end
// included), it is not a val-check batch so no validation, on_train_epoch_end runs, then the
// fit ends (on_train_end, on_fit_end, teardown) although max_epochs=5.
BOOST_AUTO_TEST_CASE(max_steps_mid_epoch) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(true));
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  for (int i = 0; i < 3; ++i) golden::append(expected, golden::train_batch(0, i));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, golden::fit_epilogue());

  BoringModel model;
  Trainer trainer(loop_options(5, 4, 1).max_steps(3), plain_callback());
  golden::fit_and_check(trainer, model, expected);
  BOOST_TEST(trainer.global_step() == 3);
  BOOST_TEST(trainer.current_epoch() == 1);  // §2.i: incremented after on_train_epoch_end
}

// §2.j (+ §2.a, §2.p): two validation loaders, sequential: all of loader 0, then all of loader 1,
// batch_idx restarting at 0; dataloader_idx shown on the batch hooks and the step because there
// are several loaders; one on_validation_start/epoch_start/epoch_end/end per run. The sanity
// check takes min(num_sanity_val_steps=2, limit_val_batches=2) batches per loader.
BOOST_AUTO_TEST_CASE(two_validation_loaders) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::sanity_check(2, /*loaders=*/2));
  golden::append(expected, golden::train_start(false));
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  golden::append(expected, golden::train_batch(0, 0));
  golden::append(expected, golden::fit_validation(2, false, /*loaders=*/2));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, golden::fit_epilogue());

  BoringModel model;
  model.num_val_loaders = 2;
  Trainer trainer(golden::plain_options().max_epochs(1).limit_train_batches(1).limit_val_batches(2),
                  plain_callback());
  golden::fit_and_check(trainer, model, expected);
}

// §2.k: manual optimization: the trainer emits no optimizer_step / zero-grad / clipping hooks;
// manual_backward's on_before_backward/backward/on_after_backward and opt.step()'s
// on_before_optimizer_step run inside training_step, so they complete before it.
// global_step counts opt.step() calls.
BOOST_AUTO_TEST_CASE(manual_optimization) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(false));
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  for (int i = 0; i < 2; ++i) golden::append(expected, golden::manual_batch(i));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, golden::fit_epilogue());

  ManualModel model;
  Trainer trainer(loop_options(1, 2, 0), plain_callback());
  golden::fit_and_check(trainer, model, expected);
  BOOST_TEST(trainer.global_step() == 2);
}

// §2.l: an exception in training_step: callbacks' on_exception (no module hook in 2.2), then the
// exception is re-raised; no on_train_batch_end, on_train_epoch_end, on_train_end, on_fit_end or
// teardown. training_step and optimizer_step of the failing batch never return, so they are
// not recorded.
BOOST_AUTO_TEST_CASE(exception_in_training_step) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(false));
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  golden::append(expected, golden::train_batch(0, 0));
  golden::append(expected, golden::transfer(0));
  golden::append(expected,
                 {"cb+lm.on_train_batch_start(batch(n=4), batch_idx=1)", "cb.on_exception(boom)"});

  ThrowingModel model;
  Trainer trainer(loop_options(1, 3, 0), plain_callback());
  auto recorder = golden::record(trainer);
  BOOST_CHECK_EXCEPTION(trainer.fit(model), std::runtime_error, [](const std::runtime_error& e) {
    return std::string(e.what()) == "boom";
  });
  golden::check(recorder->calls(), expected);
  BOOST_TEST((trainer.status() == Status::interrupted));
}

// §2.n: should_stop set in on_train_batch_end of batch 0 (the module's on_train_batch_end still
// runs: same hook): validation is forced after that batch although it is not a val-check batch,
// then the epoch loop exits, on_train_epoch_end runs, and the fit ends (max_epochs=3 not reached).
BOOST_AUTO_TEST_CASE(should_stop_from_train_batch_end) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(true));
  golden::append(expected, {"cb+lm.on_train_epoch_start"});
  golden::append(expected, golden::train_batch(0, 0));
  golden::append(expected, golden::fit_validation(1, false));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, golden::fit_epilogue());

  BoringModel model;
  Trainer trainer(loop_options(3, 3, 1), {std::make_shared<StopAtFirstBatch>()});
  golden::fit_and_check(trainer, model, expected);
  BOOST_TEST(trainer.global_step() == 1);
  BOOST_TEST(trainer.current_epoch() == 1);
}

// §2.n + §1.3: min_epochs=2, should_stop set by a monitoring callback in on_train_epoch_end of
// epoch 0: the stop cannot be honoured (1 epoch processed < min_epochs), so epoch 1 runs in full
// (no forced validation: the minimum is still not met during its batches) and the fit stops
// after it, although max_epochs=5. on_train_epoch_end: module first, then monitoring callbacks.
BOOST_AUTO_TEST_CASE(min_epochs_defers_should_stop) {
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::train_start(true));
  for (int epoch = 0; epoch < 2; ++epoch) {
    golden::append(expected, {"cb+lm.on_train_epoch_start"});
    for (int i = 0; i < 2; ++i) golden::append(expected, golden::train_batch(epoch, i));
    golden::append(expected, golden::fit_validation(1, false));
    golden::append(expected, {"lm.on_train_epoch_end", "cb.on_train_epoch_end"});
  }
  golden::append(expected, golden::fit_epilogue());

  BoringModel model;
  Trainer trainer(loop_options(5, 2, 1).min_epochs(2), {std::make_shared<StopAtFirstEpochEnd>()});
  auto recorder = golden::record(trainer);
  trainer.fit(model);
  const Lines trace = recorder->calls();
  golden::check(trace, expected);
  BOOST_TEST(trainer.current_epoch() == 2);
  BOOST_TEST(golden::count(trace, "lm.on_train_epoch_start") == 2u);
  BOOST_TEST(golden::count(trace, "lm.on_train_epoch_end") == 2u);
  BOOST_TEST(golden::count(trace, "cb.on_train_epoch_end") == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_golden_loop_tests
