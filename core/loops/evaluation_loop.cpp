// hookline: the evaluation loop shared by validation, the sanity check, test and predict.
#include "hookline/core/loops/evaluation_loop.hpp"

#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/loops/autocast.hpp"

#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>

#include <numeric>
#include <optional>

namespace hookline {

namespace {
// Emits the hooks of one evaluation kind, so one loop serves validation, test and predict.
// ModelTrain is void for predict: Lightning 2.2 has no on_predict_model_train hook.
template <class Start, class EpochStart, class BatchStart, class Step, class BatchEnd,
          class EpochEnd, class End, class ModelEval, class ModelTrain>
struct EvalHooks {
  using start = Start;
  using epoch_start = EpochStart;
  using batch_start = BatchStart;
  using step = Step;
  using batch_end = BatchEnd;
  using epoch_end = EpochEnd;
  using end = End;
  using model_eval = ModelEval;
  using model_train = ModelTrain;
};
using ValidationHooks = EvalHooks<ValidationStart, ValidationEpochStart, ValidationBatchStart,
                                  ValidationStep, ValidationBatchEnd, ValidationEpochEnd,
                                  ValidationEnd, ValidationModelEval, ValidationModelTrain>;
using TestHooks = EvalHooks<TestStart, TestEpochStart, TestBatchStart, TestStep, TestBatchEnd,
                            TestEpochEnd, TestEnd, TestModelEval, TestModelTrain>;
using PredictHooks =
    EvalHooks<PredictStart, PredictEpochStart, PredictBatchStart, PredictStep, PredictBatchEnd,
              PredictEpochEnd, PredictEnd, PredictModelEval, void>;
}  // namespace

void EvaluationLoop::run(EvalKind kind, bool sanity, EpochProgress* epoch) {
  const DataLoaders loaders = data_.request_loaders(kind);
  std::vector<std::int64_t> limits;
  if (sanity) {
    for (std::size_t i = 0; i < loaders.size(); ++i) {
      const std::int64_t available = data_.num_val_batches()[i];
      const std::int64_t steps = options_.num_sanity_val_steps();
      limits.push_back(steps < 0 ? available : std::min(steps, available));
    }
    num_sanity_batches_ = limits;
  } else if (kind == EvalKind::validation) {
    limits = data_.num_val_batches();
  } else {
    limits =
        data_.limit_batches(loaders, kind == EvalKind::test ? options_.limit_test_batches()
                                                            : options_.limit_predict_batches());
    (kind == EvalKind::test ? num_test_batches_ : num_predict_batches_) = limits;
  }
  if (std::accumulate(limits.begin(), limits.end(), std::int64_t{0}) == 0) return;
  if (kind == EvalKind::validation)
    run_kind<ValidationHooks>(kind, sanity, loaders, limits, epoch);
  else if (kind == EvalKind::test)
    run_kind<TestHooks>(kind, sanity, loaders, limits, epoch);
  else
    run_kind<PredictHooks>(kind, sanity, loaders, limits, epoch);
}

template <class H>
void EvaluationLoop::run_kind(EvalKind kind, bool sanity, const DataLoaders& loaders,
                              const std::vector<std::int64_t>& limits, EpochProgress* epoch) {
  const bool was_training = state_.training;
  const bool module_was_training = hooks_.module()->is_training();
  state_.training = false;
  state_.validating = kind == EvalKind::validation && !sanity;
  if (kind != EvalKind::validation || state_.stage != Stage::fit ||
      data_.seen_eval_batches().size() != loaders.size())
    data_.seen_eval_batches().assign(loaders.size(), 0);
  const Phase phase = kind == EvalKind::test ? Phase::test : Phase::validation;
  const bool logs = kind != EvalKind::predict;
  // What validate()/test() return: the epoch values of each dataloader (Lightning's
  // _store_dataloader_outputs, whenever the dataloader changes and after the last one).
  std::vector<MetricMap> outputs;
  auto store_dataloader_outputs = [&] {
    if (!logs) return;
    metrics_.epoch_end_reached();
    outputs.push_back(sanity ? MetricMap{} : metrics_.update_eval_epoch_metrics(phase));
  };

  typename H::model_eval model_eval;
  hooks_.emit(model_eval);
  std::optional<c10::InferenceMode> inference;
  std::optional<at::NoGradGuard> no_grad;
  if (state_.stage != Stage::fit && options_.inference_mode())
    inference.emplace();
  else
    no_grad.emplace();

  typename H::start start;
  hooks_.emit(start);
  typename H::epoch_start epoch_start;
  hooks_.emit(epoch_start);
  const bool several = loaders.size() > 1;
  std::size_t previous_dl = 0;
  for (std::size_t dl = 0; dl < loaders.size(); ++dl) {
    std::int64_t batch_idx = 0;
    if (limits[dl] == 0) continue;
    for (auto it = loaders[dl]->begin(); it != loaders[dl]->end(); ++it) {
      signals_.check();
      const auto dataloader_idx = static_cast<std::int64_t>(dl);
      if (dl != previous_dl) store_dataloader_outputs();
      previous_dl = dl;
      Batch batch = data_.transfer(it.take(), dataloader_idx);
      logger_.set_batch_size(batch.batch_size());
      if (logs)
        metrics_.on_batch_start(
            phase, several ? std::optional<std::int64_t>(dataloader_idx) : std::nullopt);
      typename H::batch_start batch_start;
      batch_start.batch = std::move(batch);
      batch_start.batch_idx = batch_idx;
      batch_start.dataloader_idx = dataloader_idx;
      batch_start.several_loaders = several;
      const Outcome verdict = hooks_.emit(batch_start);
      batch = std::move(batch_start.batch);
      if (verdict.action == Action::SkipBatch) {
        if (++batch_idx >= limits[dl]) break;
        continue;
      }
      typename H::step step;
      step.batch = batch;
      step.batch_idx = batch_idx;
      step.dataloader_idx = dataloader_idx;
      step.several_loaders = several;
      {
        detail::AutocastScope autocast(options_.precision() == Precision::bf16_mixed);
        hooks_.emit(step);
      }
      if (kind == EvalKind::predict) predictions_.push_back(step.output);
      typename H::batch_end batch_end;
      batch_end.outputs = std::move(step.output);
      batch_end.batch = std::move(batch);
      batch_end.batch_idx = batch_idx;
      batch_end.dataloader_idx = dataloader_idx;
      batch_end.several_loaders = several;
      hooks_.emit(batch_end);
      if (logs) {
        metrics_.on_batch_end(phase);
        if (!sanity)
          logger_.log_metrics(metrics_.logger_values(phase), data_.seen_eval_batches()[dl]++);
      }
      if (++batch_idx >= limits[dl]) break;  // do not gather a batch past the limit
    }
  }
  store_dataloader_outputs();
  if (logs) metrics_.end_dataloaders(phase);  // epoch-end hooks log without a suffix
  typename H::epoch_end epoch_end;
  hooks_.emit(epoch_end);
  if (logs) {
    metrics_.on_epoch_end(phase);
    // Lightning's update_eval_epoch_metrics and log_eval_end_metrics.
    MetricMap epoch_end_logged = sanity ? MetricMap{} : metrics_.update_eval_epoch_metrics(phase);
    MetricMap all;
    for (const MetricMap& out : outputs) all.insert(out.begin(), out.end());
    for (const auto& [key, value] : epoch_end_logged) all[key] = value;
    for (MetricMap& out : outputs)
      for (const auto& [key, value] : epoch_end_logged) out[key] = value;
    if (!sanity) {
      logger_.log_metrics(std::move(all));
      logger_.post_pending_rows();  // an evaluation's results reach the loggers when it ends
    }
    if (!sanity && state_.stage != Stage::fit) results_ = std::move(outputs);
  }
  // A checkpoint saved from here on (on_validation_end) resumes after this validation.
  if (epoch) epoch->validated = true;
  typename H::end end;
  hooks_.emit(end);
  if (logs) metrics_.reset_results(phase);
  no_grad.reset();
  inference.reset();
  // Back to the mode the module had before evaluation; an overriding *_model_train hook may
  // then change it.
  hooks_.module()->train(module_was_training);
  if constexpr (!std::is_void_v<typename H::model_train>) {
    typename H::model_train model_train;
    hooks_.emit(model_train);
  }
  state_.training = was_training;
  state_.validating = false;
}
}  // namespace hookline
