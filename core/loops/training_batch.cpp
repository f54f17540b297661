// hookline: one training batch: its hooks, automatic and manual optimization, LR schedulers.
#include "hookline/core/trainer.hpp"

#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/loops/autocast.hpp"

#include <torch/optim/optimizer.h>

#include <numeric>
#include <stdexcept>

namespace hookline {

namespace {

// Gives a batch lent to a hook back to its owner, even when the hook throws.
struct BatchReturn {
  Batch& owner;
  Batch& lent;
  ~BatchReturn() { owner = std::move(lent); }
};

// `t` detached from autograd: what Tensor::detach() returns (same storage, sizes, strides and
// version counter, no grad), built directly for the plain dense tensors a step returns, which
// saves detach()'s trip through the operator dispatcher and its view bookkeeping (about a
// microsecond a step on small models). Anything else goes through detach().
at::Tensor fast_detach(const at::Tensor& t) {
  if (!t.defined()) return t;
  if (t.layout() != c10::kStrided || t.is_quantized() || !t.has_storage() || t.is_nested() ||
      t.is_inference() || t.unsafeGetTensorImpl()->is_python_dispatch())
    return t.detach();
  const c10::TensorImpl& impl = *t.unsafeGetTensorImpl();
  return at::Tensor(impl.shallow_copy_and_detach(impl.version_counter(),
                                                 /*allow_tensor_metadata_change=*/false));
}

// The output a batch-end hook sees: the step's outputs with "loss" replaced by `loss`, detached.
StepOutput detached_outputs(StepOutput step_output, const at::Tensor& loss) {
  for (auto& [key, value] : step_output)
    value = fast_detach(key == "loss" && loss.defined() ? loss : value);
  return step_output;
}

}  // namespace

// Runs one training batch; returns false when the rest of the epoch is skipped.
bool Trainer::run_training_batch(Batch& batch, std::int64_t batch_idx, bool is_last) {
  batch = transfer(std::move(batch), 0);
  current_batch_size_ = batch.batch_size();
  metrics_.on_batch_start(Phase::train, std::nullopt);

  Action asked = Action::Continue;
  if (bus_.wants<TrainBatchStart>()) {  // its default does nothing
    TrainBatchStart start;
    start.batch = std::move(batch);
    start.batch_idx = batch_idx;
    asked = emit(start).action;
    batch = std::move(start.batch);
  }
  const Action action = agree(asked);  // every rank agrees, whether or not it emitted
  if (action == Action::SkipRestOfEpoch) return false;

  const std::int64_t steps_before = global_step_;
  const bool runs = action != Action::SkipBatch;
  StepOutput outputs;
  if (runs) {
    if (module_->automatic_optimization())
      automatic_step(batch, batch_idx, is_last, outputs);
    else
      manual_step(batch, batch_idx, outputs);
  }
  // From here a checkpoint resumes after this batch (see finish_training_batch).
  progress_.batches_done = batch_idx + 1;
  progress_.tail_pending = true;
  progress_.last_ran_step = runs;
  progress_.last_stepped = global_step_ != steps_before;
  progress_.validated = false;
  if (runs) {
    TrainBatchEnd end;
    end.outputs = std::move(outputs);
    end.batch = std::move(batch);
    end.batch_idx = batch_idx;
    emit(end);
  }
  finish_training_batch(batch_idx);
  return true;
}

// The rest of a training batch after on_train_batch_end: logging, the validation check, the
// step-interval plateau schedulers. A run resumed from a checkpoint saved in between starts here.
void Trainer::finish_training_batch(std::int64_t batch_idx) {
  // Lightning's logger connector: the step values into the metric maps at every batch end, to
  // the loggers every log_every_n_steps batches that stepped (or when a stop is requested).
  metrics_.on_batch_end(Phase::train);
  const bool is_last = batch_idx == num_training_batches_ - 1;
  const std::int64_t n =
      module_->automatic_optimization() ? options_.accumulate_grad_batches() : std::int64_t{1};
  const bool accumulating = (batch_idx + 1) % n != 0 && !is_last;
  if (!accumulating) {
    const std::int64_t every = options_.log_every_n_steps();
    const bool update_logs =
        every > 0 && ((batches_that_stepped_ + 1) % every == 0 || should_stop_);
    if (update_logs || options_.fast_dev_run() > 0)
      send_metrics(metrics_.logger_values(Phase::train));
  }
  const bool stepped = progress_.last_stepped;
  if (time_is_up()) set_should_stop(true, "max_time reached");

  const bool stop_requested = should_stop_ && can_stop_early();
  // Validation is on unless limited away or known to have no batches (loaders not requested yet
  // count as present: they are requested inside the first validation run, as in Lightning).
  const bool val_enabled =
      options_.limit_val_batches().positive() &&
      (!val_loaders_requested_ ||
       std::accumulate(num_val_batches_.begin(), num_val_batches_.end(), std::int64_t{0}) > 0);
  if (!progress_.validated && val_enabled && should_check_val_epoch() &&
      ((batch_idx + 1) % val_check_batch_ == 0 || stop_requested)) {
    if (stepped) {
      ValidationModelZeroGrad zero;
      emit(zero);
    }
    metrics_.begin_nested_evaluation();
    evaluation_loop(EvalKind::validation, false);
    metrics_.end_nested_evaluation();
  }
  update_lr_schedulers(Interval::step, batch_idx, true);
  // Lightning counts a batch that ends an accumulation window whether or not it stepped.
  if (!accumulating) ++batches_that_stepped_;
  if (should_stop_) post_to_loggers([](Logger& logger) { logger.save(); }, "loggers: save");
  progress_.tail_pending = false;
}

void Trainer::automatic_step(Batch& batch, std::int64_t batch_idx, bool is_last,
                             StepOutput& outputs) {
  const std::int64_t n = options_.accumulate_grad_batches();
  const bool should_step = (batch_idx + 1) % n == 0 || is_last;
  torch::optim::Optimizer& optimizer = *optimizer_config_.optimizers[0];
  StepOutput step_output;
  at::Tensor loss;
  bool closure_ran = false;

  auto closure = [&] {
    closure_ran = true;
    {
      detail::AutocastScope autocast(options_.precision() == Precision::bf16_mixed);
      TrainingStep step;
      step.batch = std::move(batch);  // lent to the hook and taken back: no copy per step
      step.batch_idx = batch_idx;
      BatchReturn give_back{batch, step.batch};
      emit(step);
      step_output = std::move(step.output);
    }
    if (step_output.contains("loss")) {
      loss = step_output["loss"];
      if (!loss.defined() || loss.numel() != 1)
        throw std::invalid_argument(
            "training_step returned a 'loss' that is not a scalar tensor; return the loss to "
            "minimise as a one-element tensor");
      if (n > 1) loss = loss / static_cast<double>(n);
    } else if (!step_output.empty()) {
      // Lightning raises for a dict without "loss"; only None (our {}) skips the batch.
      std::string keys;
      for (const std::string& key : step_output.names())
        keys += (keys.empty() ? "'" : ", '") + key + "'";
      throw std::invalid_argument(
          module_->module_name() +
          ".training_step returned outputs without a 'loss' (keys: " + keys +
          "); under automatic optimization the outputs must hold the loss to minimise as "
          "\"loss\". Return {} to skip the batch, or set automatic_optimization(false) to "
          "optimize manually");
    }
    // Hooks nobody would be called for (on_before_*, on_after_backward default to nothing) are
    // not emitted; those whose default has work run it directly when only the default listens.
    if (batch_idx % n == 0) {
      if (bus_.wants<BeforeZeroGrad>()) {
        BeforeZeroGrad before_zero;
        before_zero.optimizer = &optimizer;
        emit(before_zero);
      }
      OptimizerZeroGrad zero;
      zero.epoch = current_epoch_;
      zero.batch_idx = batch_idx;
      zero.optimizer = &optimizer;
      emit_or_default(zero);
    }
    if (loss.defined()) {
      if (bus_.wants<BeforeBackward>()) {
        BeforeBackward before;
        before.loss = loss;
        emit(before);
      }
      Backward backward;
      backward.loss = loss;
      strategy_->prepare_for_backward(should_step);  // DDP: no_sync on accumulating batches
      emit_or_default(backward);
      strategy_->finish_backward();
      if (bus_.wants<AfterBackward>()) {
        AfterBackward after;
        emit(after);
      }
    }
    if (should_step) {
      if (bus_.wants<BeforeOptimizerStep>()) {
        BeforeOptimizerStep before_step;
        before_step.optimizer = &optimizer;
        emit(before_step);
      }
      ConfigureGradientClipping clip;
      clip.optimizer = &optimizer;
      clip.gradient_clip_val = options_.gradient_clip_val();
      clip.gradient_clip_algorithm = options_.gradient_clip_algorithm();
      emit_or_default(clip);
    }
  };

  if (should_step) {
    OptimizerStep step;
    step.epoch = current_epoch_;
    step.batch_idx = batch_idx;
    step.optimizer = &optimizer;
    step.closure = [&closure] { closure(); };  // one reference: no allocation per step
    emit_or_default(step);
    if (!closure_ran)
      throw std::logic_error(module_->module_name() +
                             ".optimizer_step() did not run the closure it was given; call "
                             "optimizer.step(closure) or closure() before stepping");
    after_optimizer_step();
    update_lr_schedulers(Interval::step, batch_idx, false);
    if (is_last) update_lr_schedulers(Interval::epoch, batch_idx, false);
  } else {
    closure();
  }
  outputs = detached_outputs(std::move(step_output), loss);
}

void Trainer::manual_step(Batch& batch, std::int64_t batch_idx, StepOutput& outputs) {
  detail::AutocastScope autocast(options_.precision() == Precision::bf16_mixed);
  TrainingStep step;
  step.batch = std::move(batch);
  step.batch_idx = batch_idx;
  {
    BatchReturn give_back{batch, step.batch};
    emit(step);
  }
  at::Tensor loss = step.output.contains("loss") ? step.output["loss"] : at::Tensor();
  outputs = detached_outputs(std::move(step.output), loss);
}

void Trainer::after_optimizer_step() {
  ++global_step_;
}

void Trainer::update_lr_schedulers(Interval interval, std::int64_t batch_idx, bool plateau_pass) {
  if (!module_->automatic_optimization()) return;
  auto& schedulers = optimizer_config_.schedulers;
  for (std::size_t i = 0; i < schedulers.size(); ++i) {
    SchedulerConfig& config = schedulers[i];
    const bool plateau = !config.monitor_.empty();
    if (config.interval_ != interval || plateau != plateau_pass) continue;
    const std::int64_t count = interval == Interval::step ? batch_idx + 1 : current_epoch_ + 1;
    if (count % config.frequency_ != 0) continue;
    LrSchedulerStep step;
    step.scheduler = &config;
    step.scheduler_idx = i;
    if (plateau) {
      const auto& metrics = callback_metrics();
      auto it = metrics.find(config.monitor_);
      if (it == metrics.end()) {
        std::string available;
        for (const auto& [key, value] : metrics) available += (available.empty() ? "" : ", ") + key;
        throw std::invalid_argument(
            "scheduler '" + config.name_ + "' monitors '" + config.monitor_ +
            "', which was not logged (logged: " + (available.empty() ? "nothing" : available) +
            "); log it with Module::log or change monitor()");
      }
      step.metric = it->second;
    }
    emit_or_default(step);
  }
}

}  // namespace hookline
