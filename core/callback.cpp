#include "hookline/core/callback.hpp"

#include "hookline/core/checkpoint.hpp"
#include "hookline/core/overrides.hpp"
#include "hookline/core/trainer.hpp"

namespace hookline {

c10::impl::GenericDict Callback::checkpoint_section(Checkpoint& checkpoint) {
  if (!checkpoint.contains("callbacks"))
    checkpoint.set("callbacks",
                   c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get()));
  return checkpoint.at("callbacks").toGenericDict();
}

std::optional<Checkpoint> Callback::stored_state(const Checkpoint& checkpoint) const {
  if (!checkpoint.contains("callbacks")) return std::nullopt;
  const auto section = checkpoint.at("callbacks").toGenericDict();
  auto it = section.find(checkpoint_key());
  if (it == section.end()) return std::nullopt;
  return Checkpoint::from_ivalue(it->value(), "the state of callback '" + checkpoint_key() + "'");
}

void Callback::subscribe(Sink& sink) {
  const auto opts = [&] { return SubscribeOptions().named(name_).priority(priority_); };
  // A per-batch hook left at its default does nothing: only traced emissions call it, so a trace
  // still shows every call Lightning makes and an untraced step does not pay for it.
  const auto batch_opts = [&](auto hook) {
    return opts().only_when_traced(!detail::overrides<Callback>(*this, hook));
  };
  // Every hook gets (trainer, module) first; a hook's veto(...) becomes its verdict. A verdict
  // belongs to one emission: one left by a hook that threw is dropped, and a hook emitted from
  // inside another of this callback's hooks (a save in on_train_batch_end calls
  // on_save_checkpoint) neither takes nor drops the outer hook's.
  const auto hook = [this](auto&& call) {
    return [this, call](auto& e) -> Verdict {
      const VerdictScope scope(pending_);
      call(*e.trainer, *e.module, e);
      return scope.take();
    };
  };
  sink.on<Setup>(hook([this](Trainer& t, Module& m, const Setup& e) { setup(t, m, e.stage); }),
                 opts());
  sink.on<Teardown>(
      hook([this](Trainer& t, Module& m, const Teardown& e) { teardown(t, m, e.stage); }), opts());
  sink.on<FitStart>(hook([this](Trainer& t, Module& m, auto&) { on_fit_start(t, m); }), opts());
  sink.on<FitEnd>(hook([this](Trainer& t, Module& m, auto&) { on_fit_end(t, m); }), opts());
  sink.on<SanityCheckStart>(
      hook([this](Trainer& t, Module& m, auto&) { on_sanity_check_start(t, m); }), opts());
  sink.on<SanityCheckEnd>(hook([this](Trainer& t, Module& m, auto&) { on_sanity_check_end(t, m); }),
                          opts());
  sink.on<TrainStart>(hook([this](Trainer& t, Module& m, auto&) { on_train_start(t, m); }), opts());
  sink.on<TrainEnd>(hook([this](Trainer& t, Module& m, auto&) { on_train_end(t, m); }), opts());
  sink.on<ValidationStart>(
      hook([this](Trainer& t, Module& m, auto&) { on_validation_start(t, m); }), opts());
  sink.on<ValidationEnd>(hook([this](Trainer& t, Module& m, auto&) { on_validation_end(t, m); }),
                         opts());
  sink.on<TestStart>(hook([this](Trainer& t, Module& m, auto&) { on_test_start(t, m); }), opts());
  sink.on<TestEnd>(hook([this](Trainer& t, Module& m, auto&) { on_test_end(t, m); }), opts());
  sink.on<PredictStart>(hook([this](Trainer& t, Module& m, auto&) { on_predict_start(t, m); }),
                        opts());
  sink.on<PredictEnd>(hook([this](Trainer& t, Module& m, auto&) { on_predict_end(t, m); }), opts());
  sink.on<TrainEpochStart>(
      hook([this](Trainer& t, Module& m, auto&) { on_train_epoch_start(t, m); }), opts());
  // Lightning calls its "monitoring callbacks" (EarlyStopping, checkpoints) after the module at
  // on_train_epoch_end, whatever their place in the list: they see what the others logged.
  sink.on<TrainEpochEnd>(
      hook([this](Trainer& t, Module& m, auto&) { on_train_epoch_end(t, m); }),
      SubscribeOptions().named(name_).priority(
          monitoring() && priority_ < band::monitoring ? band::monitoring : priority_));
  sink.on<ValidationEpochStart>(
      hook([this](Trainer& t, Module& m, auto&) { on_validation_epoch_start(t, m); }), opts());
  sink.on<ValidationEpochEnd>(
      hook([this](Trainer& t, Module& m, auto&) { on_validation_epoch_end(t, m); }), opts());
  sink.on<TestEpochStart>(hook([this](Trainer& t, Module& m, auto&) { on_test_epoch_start(t, m); }),
                          opts());
  sink.on<TestEpochEnd>(hook([this](Trainer& t, Module& m, auto&) { on_test_epoch_end(t, m); }),
                        opts());
  sink.on<PredictEpochStart>(
      hook([this](Trainer& t, Module& m, auto&) { on_predict_epoch_start(t, m); }), opts());
  sink.on<PredictEpochEnd>(
      hook([this](Trainer& t, Module& m, auto&) { on_predict_epoch_end(t, m); }), opts());
  sink.on<TrainBatchStart>(hook([this](Trainer& t, Module& m, const TrainBatchStart& e) {
                             on_train_batch_start(t, m, e.batch, e.batch_idx);
                           }),
                           batch_opts(&Callback::on_train_batch_start));
  sink.on<TrainBatchEnd>(hook([this](Trainer& t, Module& m, const TrainBatchEnd& e) {
                           on_train_batch_end(t, m, e.outputs, e.batch, e.batch_idx);
                         }),
                         batch_opts(&Callback::on_train_batch_end));
  sink.on<ValidationBatchStart>(hook([this](Trainer& t, Module& m, const ValidationBatchStart& e) {
                                  on_validation_batch_start(t, m, e.batch, e.batch_idx,
                                                            e.dataloader_idx);
                                }),
                                batch_opts(&Callback::on_validation_batch_start));
  sink.on<ValidationBatchEnd>(hook([this](Trainer& t, Module& m, const ValidationBatchEnd& e) {
                                on_validation_batch_end(t, m, e.outputs, e.batch, e.batch_idx,
                                                        e.dataloader_idx);
                              }),
                              batch_opts(&Callback::on_validation_batch_end));
  sink.on<TestBatchStart>(hook([this](Trainer& t, Module& m, const TestBatchStart& e) {
                            on_test_batch_start(t, m, e.batch, e.batch_idx, e.dataloader_idx);
                          }),
                          batch_opts(&Callback::on_test_batch_start));
  sink.on<TestBatchEnd>(hook([this](Trainer& t, Module& m, const TestBatchEnd& e) {
                          on_test_batch_end(t, m, e.outputs, e.batch, e.batch_idx,
                                            e.dataloader_idx);
                        }),
                        batch_opts(&Callback::on_test_batch_end));
  sink.on<PredictBatchStart>(hook([this](Trainer& t, Module& m, const PredictBatchStart& e) {
                               on_predict_batch_start(t, m, e.batch, e.batch_idx, e.dataloader_idx);
                             }),
                             batch_opts(&Callback::on_predict_batch_start));
  sink.on<PredictBatchEnd>(hook([this](Trainer& t, Module& m, const PredictBatchEnd& e) {
                             on_predict_batch_end(t, m, e.outputs, e.batch, e.batch_idx,
                                                  e.dataloader_idx);
                           }),
                           batch_opts(&Callback::on_predict_batch_end));
  sink.on<BeforeZeroGrad>(hook([this](Trainer& t, Module& m, const BeforeZeroGrad& e) {
                            on_before_zero_grad(t, m, *e.optimizer);
                          }),
                          batch_opts(&Callback::on_before_zero_grad));
  sink.on<BeforeBackward>(hook([this](Trainer& t, Module& m, const BeforeBackward& e) {
                            on_before_backward(t, m, e.loss);
                          }),
                          batch_opts(&Callback::on_before_backward));
  sink.on<AfterBackward>(hook([this](Trainer& t, Module& m, auto&) { on_after_backward(t, m); }),
                         batch_opts(&Callback::on_after_backward));
  sink.on<BeforeOptimizerStep>(hook([this](Trainer& t, Module& m, const BeforeOptimizerStep& e) {
                                 on_before_optimizer_step(t, m, *e.optimizer);
                               }),
                               batch_opts(&Callback::on_before_optimizer_step));
  sink.on<ExceptionRaised>(hook([this](Trainer& t, Module& m, const ExceptionRaised& e) {
                             on_exception(t, m, e.exception);
                           }),
                           opts());
  // A callback's own state lives in checkpoint["callbacks"][checkpoint_key()] (when non-empty).
  sink.on<StateDict>(
      [this](const StateDict& e) {
        Checkpoint mine;
        state_dict(mine);
        if (!mine.empty())
          checkpoint_section(*e.checkpoint).insert_or_assign(checkpoint_key(), mine.to_ivalue());
      },
      opts());
  sink.on<LoadStateDict>(
      [this](const LoadStateDict& e) {
        if (auto mine = stored_state(*e.checkpoint)) load_state_dict(*mine);
      },
      opts());
  sink.on<SaveCheckpoint>(hook([this](Trainer& t, Module& m, const SaveCheckpoint& e) {
                            on_save_checkpoint(t, m, *e.checkpoint);
                          }),
                          opts());
  sink.on<LoadCheckpoint>(hook([this](Trainer& t, Module& m, const LoadCheckpoint& e) {
                            if (e.fitting) on_load_checkpoint(t, m, *e.checkpoint);
                          }),
                          opts());
  subscribe_extra(sink);
}

}  // namespace hookline
