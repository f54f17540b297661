// hookline: one event type per Lightning 2.2 hook.
//
// Each struct is named after its hook (TrainBatchStart for on_train_batch_start), knows the hook
// name, whether it opens or closes a span, which verdicts it accepts, how it orders the bands and
// where logging is allowed. Payloads are values (tensors are shared handles), so async observers
// can keep a copy; fields a subscriber may change (a batch being transformed, a step's output)
// are read back by the loop after the emission.
//
// Every hook event carries the trainer and the module it concerns (`trainer`, `module`), like the
// (trainer, pl_module) arguments of Lightning's callback hooks.
//
// Async subscribers get a copy of the payload on another thread. They may read its values (batch,
// outputs, loss, indices, stage) but must not call into `trainer` or `module`, nor follow the
// pointers to loop-owned objects (optimizer, scheduler, checkpoint, config): those belong to the
// training thread and may be gone. A copied OptimizerStep carries no closure.
#pragma once

#include "hookline/events/event.hpp"
#include "hookline/hooks/batch.hpp"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace torch::optim {
class Optimizer;
}  // namespace torch::optim

namespace hookline {

class Trainer;
class Module;
class Callback;
class Checkpoint;
struct SchedulerConfig;
struct OptimizerConfig;
namespace data {
class DataLoader;
}  // namespace data

/// What a run does: Lightning's TrainerFn ('fit', 'validate', 'test', 'predict').
/// What a run does (Lightning's RunningStage); `none` outside a run, as Lightning's None.
enum class Stage : std::uint8_t { fit, validate, test, predict, none };
std::string_view to_string(Stage stage);

/// Gradient clipping algorithm (Lightning's GradClipAlgorithmType).
enum class ClipAlgorithm : std::uint8_t { norm, value };
std::string_view to_string(ClipAlgorithm algorithm);

/// What a step returns: named tensors. "loss" is the one the trainer backpropagates.
using StepOutput = Batch;

/// The dataloaders a data hook answers with.
using DataLoaders = std::vector<std::shared_ptr<data::DataLoader>>;

/// Fields every hook event has.
struct HookEvent {
  Trainer* trainer = nullptr;
  Module* module = nullptr;
};

/// Static traits of a hook; see event.hpp for their meaning.
struct HookTraits {
  Pairing pairing = Pairing::none;
  LogRule log = LogRule::forbidden;
  OrderRule order = OrderRule::standard;
  std::uint8_t vetoes = 0;  ///< ActionSet bits
};

/// A compile-time string, so hook names can be template arguments.
template <std::size_t N>
struct HookName {
  constexpr HookName(const char (&s)[N]) {  // NOLINT: implicit by design
    for (std::size_t i = 0; i < N; ++i) text[i] = s[i];
  }
  constexpr std::string_view view() const { return {text, N - 1}; }
  char text[N]{};
};

/// A hook whose only arguments are the trainer and the module.
template <HookName Name, HookTraits Traits = HookTraits{}>
struct PlainHook : HookEvent {
  static constexpr std::string_view name = Name.view();
  static constexpr Pairing pairing = Traits.pairing;
  static constexpr LogRule log = Traits.log;
  static constexpr OrderRule order = Traits.order;
  static constexpr ActionSet vetoes = ActionSet::from_bits(Traits.vetoes);
};

namespace detail {
inline constexpr std::uint8_t kStopFit = 1u << 3;
inline constexpr std::uint8_t kAllVetoes = (1u << 1) | (1u << 2) | (1u << 3);
std::string describe_batch(const Batch& batch);
std::string describe_outputs(const StepOutput& outputs);
std::string describe_eval_index(std::int64_t batch_idx, std::int64_t dataloader_idx,
                                bool several_loaders);
}  // namespace detail

// ---- lifecycle ------------------------------------------------------------------------------

using PrepareData = PlainHook<"prepare_data">;
using ConfigureModel = PlainHook<"configure_model">;
/// Deprecated in Lightning 2.2 in favour of configure_model; emitted just before it.
using ConfigureShardedModel = PlainHook<"configure_sharded_model">;
using FitStart = PlainHook<"on_fit_start", {.pairing = Pairing::start, .vetoes = detail::kStopFit}>;
using FitEnd = PlainHook<"on_fit_end", {.pairing = Pairing::end}>;
using SanityCheckStart = PlainHook<"on_sanity_check_start", {.pairing = Pairing::start}>;
using SanityCheckEnd = PlainHook<"on_sanity_check_end", {.pairing = Pairing::end}>;
using TrainStart =
    PlainHook<"on_train_start",
              {.pairing = Pairing::start, .log = LogRule::epoch, .vetoes = detail::kStopFit}>;
using TrainEnd = PlainHook<"on_train_end", {.pairing = Pairing::end}>;
using ValidationStart =
    PlainHook<"on_validation_start", {.pairing = Pairing::start, .log = LogRule::epoch}>;
using ValidationEnd =
    PlainHook<"on_validation_end", {.pairing = Pairing::end, .vetoes = detail::kStopFit}>;
using TestStart = PlainHook<"on_test_start", {.pairing = Pairing::start, .log = LogRule::epoch}>;
using TestEnd = PlainHook<"on_test_end", {.pairing = Pairing::end}>;
using PredictStart = PlainHook<"on_predict_start", {.pairing = Pairing::start}>;
using PredictEnd = PlainHook<"on_predict_end", {.pairing = Pairing::end}>;

/// setup(stage): the data module first, then callbacks, then the module.
struct Setup : HookEvent {
  static constexpr std::string_view name = "setup";
  static constexpr Pairing pairing = Pairing::start;
  static constexpr OrderRule order = OrderRule::data_module_first;
  static constexpr LogRule log = LogRule::forbidden;
  Stage stage = Stage::fit;
  std::string describe() const { return "stage=" + std::string(to_string(stage)); }
};

/// teardown(stage): the data module first, then callbacks, then the module.
struct Teardown : HookEvent {
  static constexpr std::string_view name = "teardown";
  static constexpr Pairing pairing = Pairing::end;
  static constexpr OrderRule order = OrderRule::data_module_first;
  static constexpr LogRule log = LogRule::forbidden;
  Stage stage = Stage::fit;
  std::string describe() const { return "stage=" + std::string(to_string(stage)); }
};

/// configure_callbacks(): the module may add callbacks for this run.
struct ConfigureCallbacks : HookEvent {
  static constexpr std::string_view name = "configure_callbacks";
  static constexpr LogRule log = LogRule::forbidden;
  std::vector<std::shared_ptr<Callback>> callbacks;
};

/// configure_optimizers(): the module fills `config`.
struct ConfigureOptimizers : HookEvent {
  static constexpr std::string_view name = "configure_optimizers";
  static constexpr LogRule log = LogRule::forbidden;
  OptimizerConfig* config = nullptr;
};

/// on_exception(exception): something threw inside a run; the run then ends with that exception.
struct ExceptionRaised : HookEvent {
  static constexpr std::string_view name = "on_exception";
  static constexpr LogRule log = LogRule::forbidden;
  std::exception_ptr exception;
  std::string what;
  std::string describe() const { return what; }
};

// ---- epochs ---------------------------------------------------------------------------------

using TrainEpochStart =
    PlainHook<"on_train_epoch_start",
              {.pairing = Pairing::start, .log = LogRule::epoch, .vetoes = detail::kStopFit}>;
/// Callbacks, then the module, then monitoring and checkpoint callbacks.
using TrainEpochEnd = PlainHook<"on_train_epoch_end", {.pairing = Pairing::end,
                                                       .log = LogRule::epoch,
                                                       .order = OrderRule::module_before_monitoring,
                                                       .vetoes = detail::kStopFit}>;
using ValidationEpochStart =
    PlainHook<"on_validation_epoch_start", {.pairing = Pairing::start, .log = LogRule::epoch}>;
using ValidationEpochEnd =
    PlainHook<"on_validation_epoch_end",
              {.pairing = Pairing::end, .log = LogRule::epoch, .vetoes = detail::kStopFit}>;
using TestEpochStart =
    PlainHook<"on_test_epoch_start", {.pairing = Pairing::start, .log = LogRule::epoch}>;
using TestEpochEnd =
    PlainHook<"on_test_epoch_end", {.pairing = Pairing::end, .log = LogRule::epoch}>;
using PredictEpochStart = PlainHook<"on_predict_epoch_start", {.pairing = Pairing::start}>;
using PredictEpochEnd = PlainHook<"on_predict_epoch_end", {.pairing = Pairing::end}>;

// ---- model mode -----------------------------------------------------------------------------

using ValidationModelZeroGrad = PlainHook<"on_validation_model_zero_grad">;
using ValidationModelEval = PlainHook<"on_validation_model_eval">;
using ValidationModelTrain = PlainHook<"on_validation_model_train">;
using TestModelEval = PlainHook<"on_test_model_eval">;
using TestModelTrain = PlainHook<"on_test_model_train">;
using PredictModelEval = PlainHook<"on_predict_model_eval">;

// ---- data -----------------------------------------------------------------------------------

/// The *_dataloader() hooks: answered by the data module when one is attached, else the module.
template <HookName Name>
struct DataloaderHook : HookEvent {
  static constexpr std::string_view name = Name.view();
  static constexpr LogRule log = LogRule::forbidden;
  DataLoaders loaders;
};
using TrainDataloader = DataloaderHook<"train_dataloader">;
using ValDataloader = DataloaderHook<"val_dataloader">;
using TestDataloader = DataloaderHook<"test_dataloader">;
using PredictDataloader = DataloaderHook<"predict_dataloader">;

/// on_before_batch_transfer(batch, dataloader_idx): may replace `batch`.
struct BeforeBatchTransfer : HookEvent {
  static constexpr std::string_view name = "on_before_batch_transfer";
  static constexpr LogRule log = LogRule::forbidden;
  Batch batch;
  std::int64_t dataloader_idx = 0;
  std::string describe() const;
};

/// transfer_batch_to_device(batch, device, dataloader_idx): moves `batch` to `device`.
struct TransferBatchToDevice : HookEvent {
  static constexpr std::string_view name = "transfer_batch_to_device";
  static constexpr LogRule log = LogRule::forbidden;
  Batch batch;
  c10::Device device = c10::Device(c10::kCPU);
  std::int64_t dataloader_idx = 0;
  std::string describe() const;
};

/// on_after_batch_transfer(batch, dataloader_idx): may replace `batch`.
struct AfterBatchTransfer : HookEvent {
  static constexpr std::string_view name = "on_after_batch_transfer";
  static constexpr LogRule log = LogRule::forbidden;
  Batch batch;
  std::int64_t dataloader_idx = 0;
  std::string describe() const;
};

// ---- batches --------------------------------------------------------------------------------

/// on_train_batch_start(batch, batch_idx). The one hook that can skip: SkipBatch skips this
/// batch, SkipRestOfEpoch is Lightning's -1, StopFit is should_stop (see the verdict table).
struct TrainBatchStart : HookEvent {
  static constexpr std::string_view name = "on_train_batch_start";
  static constexpr Pairing pairing = Pairing::start;
  static constexpr LogRule log = LogRule::step;
  static constexpr ActionSet vetoes = ActionSet::from_bits(detail::kAllVetoes);
  Batch batch;
  std::int64_t batch_idx = 0;
  std::string describe() const;
};

/// on_train_batch_end(outputs, batch, batch_idx): `outputs` holds the detached loss (divided by
/// accumulate_grad_batches) and the step's other outputs.
struct TrainBatchEnd : HookEvent {
  static constexpr std::string_view name = "on_train_batch_end";
  static constexpr Pairing pairing = Pairing::end;
  static constexpr LogRule log = LogRule::step;
  static constexpr ActionSet vetoes = ActionSet::from_bits(detail::kStopFit);
  StepOutput outputs;
  Batch batch;
  std::int64_t batch_idx = 0;
  std::string describe() const;
};

/// on_{validation,test,predict}_batch_start(batch, batch_idx[, dataloader_idx]).
/// `dataloader_idx` is shown in traces only with several loaders, as Lightning passes it.
template <HookName Name, LogRule Log>
struct EvalBatchStart : HookEvent {
  static constexpr std::string_view name = Name.view();
  static constexpr Pairing pairing = Pairing::start;
  static constexpr LogRule log = Log;
  static constexpr ActionSet vetoes = ActionSet::from_bits(1u << 1);  // SkipBatch
  Batch batch;
  std::int64_t batch_idx = 0;
  std::int64_t dataloader_idx = 0;
  bool several_loaders = false;
  std::string describe() const {
    return detail::describe_batch(batch) + ", " +
           detail::describe_eval_index(batch_idx, dataloader_idx, several_loaders);
  }
};

/// on_{validation,test,predict}_batch_end(outputs, batch, batch_idx[, dataloader_idx]).
template <HookName Name, LogRule Log>
struct EvalBatchEnd : HookEvent {
  static constexpr std::string_view name = Name.view();
  static constexpr Pairing pairing = Pairing::end;
  static constexpr LogRule log = Log;
  static constexpr ActionSet vetoes = ActionSet::from_bits(detail::kStopFit);
  StepOutput outputs;
  Batch batch;
  std::int64_t batch_idx = 0;
  std::int64_t dataloader_idx = 0;
  bool several_loaders = false;
  std::string describe() const {
    return detail::describe_outputs(outputs) + ", " + detail::describe_batch(batch) + ", " +
           detail::describe_eval_index(batch_idx, dataloader_idx, several_loaders);
  }
};

using ValidationBatchStart = EvalBatchStart<"on_validation_batch_start", LogRule::eval_step>;
using ValidationBatchEnd = EvalBatchEnd<"on_validation_batch_end", LogRule::eval_step>;
using TestBatchStart = EvalBatchStart<"on_test_batch_start", LogRule::eval_step>;
using TestBatchEnd = EvalBatchEnd<"on_test_batch_end", LogRule::eval_step>;
using PredictBatchStart = EvalBatchStart<"on_predict_batch_start", LogRule::forbidden>;
using PredictBatchEnd = EvalBatchEnd<"on_predict_batch_end", LogRule::forbidden>;

// ---- steps ----------------------------------------------------------------------------------

/// training_step(batch, batch_idx): the module fills `output` ("loss" for automatic optimization).
struct TrainingStep : HookEvent {
  static constexpr std::string_view name = "training_step";
  static constexpr LogRule log = LogRule::step;
  Batch batch;
  std::int64_t batch_idx = 0;
  StepOutput output;
  std::string describe() const;
};

/// {validation,test,predict}_step(batch, batch_idx[, dataloader_idx]): the module fills `output`.
template <HookName Name, LogRule Log>
struct EvalStep : HookEvent {
  static constexpr std::string_view name = Name.view();
  static constexpr LogRule log = Log;
  Batch batch;
  std::int64_t batch_idx = 0;
  std::int64_t dataloader_idx = 0;
  bool several_loaders = false;
  StepOutput output;
  std::string describe() const {
    return detail::describe_batch(batch) + ", " +
           detail::describe_eval_index(batch_idx, dataloader_idx, several_loaders);
  }
};
using ValidationStep = EvalStep<"validation_step", LogRule::eval_step>;
using TestStep = EvalStep<"test_step", LogRule::eval_step>;
using PredictStep = EvalStep<"predict_step", LogRule::forbidden>;

// ---- optimization ---------------------------------------------------------------------------

/// on_before_zero_grad(optimizer).
struct BeforeZeroGrad : HookEvent {
  static constexpr std::string_view name = "on_before_zero_grad";
  static constexpr LogRule log = LogRule::step;
  torch::optim::Optimizer* optimizer = nullptr;
  std::size_t optimizer_idx = 0;
  std::string describe() const { return "optimizer=" + std::to_string(optimizer_idx); }
};

/// optimizer_zero_grad(epoch, batch_idx, optimizer).
struct OptimizerZeroGrad : HookEvent {
  static constexpr std::string_view name = "optimizer_zero_grad";
  static constexpr LogRule log = LogRule::step;
  std::int64_t epoch = 0;
  std::int64_t batch_idx = 0;
  torch::optim::Optimizer* optimizer = nullptr;
  std::size_t optimizer_idx = 0;
  std::string describe() const;
};

/// on_before_backward(loss): `loss` is attached to the graph and already divided by
/// accumulate_grad_batches.
struct BeforeBackward : HookEvent {
  static constexpr std::string_view name = "on_before_backward";
  static constexpr LogRule log = LogRule::step;
  at::Tensor loss;
  std::string describe() const;
};

/// backward(loss): the module runs the backward pass.
struct Backward : HookEvent {
  static constexpr std::string_view name = "backward";
  static constexpr LogRule log = LogRule::step;
  at::Tensor loss;
  std::string describe() const;
};

using AfterBackward = PlainHook<"on_after_backward", {.log = LogRule::step}>;

/// on_before_optimizer_step(optimizer): gradients are accumulated and not clipped yet.
struct BeforeOptimizerStep : HookEvent {
  static constexpr std::string_view name = "on_before_optimizer_step";
  static constexpr LogRule log = LogRule::step;
  torch::optim::Optimizer* optimizer = nullptr;
  std::size_t optimizer_idx = 0;
  std::string describe() const { return "optimizer=" + std::to_string(optimizer_idx); }
};

/// configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm).
struct ConfigureGradientClipping : HookEvent {
  static constexpr std::string_view name = "configure_gradient_clipping";
  static constexpr LogRule log = LogRule::step;
  torch::optim::Optimizer* optimizer = nullptr;
  std::size_t optimizer_idx = 0;
  std::optional<double> gradient_clip_val;
  std::optional<ClipAlgorithm> gradient_clip_algorithm;
  std::string describe() const;
};

/// optimizer_step(epoch, batch_idx, optimizer, closure): the module calls `closure` (training
/// step, zero-grad, backward, on_before_optimizer_step, clipping) and steps the optimizer.
struct OptimizerStep : HookEvent {
  static constexpr std::string_view name = "optimizer_step";
  static constexpr LogRule log = LogRule::step;
  OptimizerStep() = default;
  /// Copies (for async observers) leave the closure behind: it refers to the loop's stack.
  OptimizerStep(const OptimizerStep& other)
      : HookEvent(other),
        epoch(other.epoch),
        batch_idx(other.batch_idx),
        optimizer(other.optimizer),
        optimizer_idx(other.optimizer_idx) {}
  OptimizerStep& operator=(const OptimizerStep&) = delete;
  std::int64_t epoch = 0;
  std::int64_t batch_idx = 0;
  torch::optim::Optimizer* optimizer = nullptr;
  std::size_t optimizer_idx = 0;
  std::function<void()> closure;
  std::string describe() const;
};

/// lr_scheduler_step(scheduler, metric): `metric` is set only for schedulers with a monitor.
struct LrSchedulerStep : HookEvent {
  static constexpr std::string_view name = "lr_scheduler_step";
  static constexpr LogRule log = LogRule::forbidden;
  SchedulerConfig* scheduler = nullptr;
  std::size_t scheduler_idx = 0;
  std::optional<double> metric;
  std::string describe() const;
};

// ---- checkpoints ----------------------------------------------------------------------------

/// state_dict(): each stateful callback writes its state into the checkpoint ("callbacks", under
/// its state_key), then the data module (under its name).
struct StateDict : HookEvent {
  static constexpr std::string_view name = "state_dict";
  static constexpr LogRule log = LogRule::forbidden;
  Checkpoint* checkpoint = nullptr;
};

/// load_state_dict(state): each callback with state in the checkpoint reads it back (the data
/// module reads its state during on_load_checkpoint, where Lightning restores it).
struct LoadStateDict : HookEvent {
  static constexpr std::string_view name = "load_state_dict";
  static constexpr LogRule log = LogRule::forbidden;
  const Checkpoint* checkpoint = nullptr;
};

/// on_save_checkpoint(checkpoint): add anything else to the checkpoint being written.
struct SaveCheckpoint : HookEvent {
  static constexpr std::string_view name = "on_save_checkpoint";
  static constexpr LogRule log = LogRule::forbidden;
  Checkpoint* checkpoint = nullptr;
};

/// on_load_checkpoint(checkpoint): restore what on_save_checkpoint added. As in Lightning the
/// module goes first, then the data module restores its state (load_state_dict), then the
/// callbacks, which only take part when fitting.
struct LoadCheckpoint : HookEvent {
  static constexpr std::string_view name = "on_load_checkpoint";
  static constexpr LogRule log = LogRule::forbidden;
  static constexpr OrderRule order = OrderRule::module_first;
  const Checkpoint* checkpoint = nullptr;
  bool fitting = true;
};

// ---- the async lane's byte budget -----------------------------------------------------------

namespace detail {
/// Bytes of the tensor storages `batch` keeps alive, on whatever device (a view keeps its whole
/// storage; a storage shared by two fields counts twice).
inline std::size_t batch_bytes(const Batch& batch) {
  std::size_t n = 0;
  for (const auto& field : batch)
    if (field.second.defined() && field.second.has_storage()) n += field.second.storage().nbytes();
  return n;
}
template <class E>
concept HasBatch = requires(const E& e) {
  { e.batch } -> std::convertible_to<const Batch&>;
};
template <class E>
concept HasOutputs = requires(const E& e) {
  { e.outputs } -> std::convertible_to<const StepOutput&>;
};
template <class E>
concept HasOutput = requires(const E& e) {
  { e.output } -> std::convertible_to<const StepOutput&>;
};
template <class E>
concept CarriesBatch = std::derived_from<E, HookEvent> &&
    (HasBatch<E> || HasOutputs<E> || HasOutput<E>);
}  // namespace detail

/// A queued async copy of a hook event that carries a batch or a step's outputs keeps their
/// tensors alive: that is what the async lane's byte budget counts for it (events/event.hpp).
template <detail::CarriesBatch E>
struct EventBytes<E> {
  static std::size_t of(const E& e) {
    std::size_t n = sizeof(E);
    if constexpr (detail::HasBatch<E>) n += detail::batch_bytes(e.batch);
    if constexpr (detail::HasOutputs<E>) n += detail::batch_bytes(e.outputs);
    if constexpr (detail::HasOutput<E>) n += detail::batch_bytes(e.output);
    return n;
  }
};

}  // namespace hookline
