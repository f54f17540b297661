#include "hookline/core/loops/optimization.hpp"

#include "hookline/core/loops/autocast.hpp"

#include <torch/optim/optimizer.h>

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

bool AutomaticOptimization::run(Batch& batch, std::int64_t batch_idx, bool is_last,
                                StepOutput& outputs) {
  const std::int64_t n = options_.accumulate_grad_batches();
  const bool should_step = (batch_idx + 1) % n == 0 || is_last;
  torch::optim::Optimizer& optimizer = *optimizers_.optimizers[0];
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
      hooks_.emit(step);
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
          hooks_.module()->module_name() +
          ".training_step returned outputs without a 'loss' (keys: " + keys +
          "); under automatic optimization the outputs must hold the loss to minimise as "
          "\"loss\". Return {} to skip the batch, or set automatic_optimization(false) to "
          "optimize manually");
    }
    // Hooks nobody would be called for (on_before_*, on_after_backward default to nothing) are
    // not emitted; those whose default has work run it directly when only the default listens.
    if (batch_idx % n == 0) zero_grad(optimizer, batch_idx);
    if (loss.defined()) {
      if (hooks_.wants<BeforeBackward>()) {
        BeforeBackward before;
        before.loss = loss;
        hooks_.emit(before);
      }
      Backward backward;
      backward.loss = loss;
      strategy_.prepare_for_backward(should_step);  // DDP: no_sync on accumulating batches
      hooks_.emit_or_default(backward);
      strategy_.finish_backward();
      if (hooks_.wants<AfterBackward>()) {
        AfterBackward after;
        hooks_.emit(after);
      }
    }
    if (should_step) {
      if (hooks_.wants<BeforeOptimizerStep>()) {
        BeforeOptimizerStep before_step;
        before_step.optimizer = &optimizer;
        hooks_.emit(before_step);
      }
      ConfigureGradientClipping clip;
      clip.optimizer = &optimizer;
      clip.gradient_clip_val = options_.gradient_clip_val();
      clip.gradient_clip_algorithm = options_.gradient_clip_algorithm();
      hooks_.emit_or_default(clip);
    }
  };

  if (should_step) {
    OptimizerStep step;
    step.epoch = progress_.current_epoch;
    step.batch_idx = batch_idx;
    step.optimizer = &optimizer;
    step.closure = [&closure] { closure(); };  // one reference: no allocation per step
    hooks_.emit_or_default(step);
    if (!closure_ran)
      throw std::logic_error(hooks_.module()->module_name() +
                             ".optimizer_step() did not run the closure it was given; call "
                             "optimizer.step(closure) or closure() before stepping");
    ++progress_.global_step;
  } else {
    closure();
  }
  outputs = detached_outputs(std::move(step_output), loss);
  return should_step;
}

void AutomaticOptimization::skip(std::int64_t batch_idx, bool is_last) {
  const std::int64_t n = options_.accumulate_grad_batches();
  if (n == 1) return;  // every batch is a window of its own: the next one zeroes
  const bool opens = batch_idx % n == 0;
  const bool closes = (batch_idx + 1) % n == 0 || is_last;
  if (opens || closes) zero_grad(*optimizers_.optimizers[0], batch_idx);
}

void AutomaticOptimization::zero_grad(torch::optim::Optimizer& optimizer, std::int64_t batch_idx) {
  if (hooks_.wants<BeforeZeroGrad>()) {
    BeforeZeroGrad before_zero;
    before_zero.optimizer = &optimizer;
    hooks_.emit(before_zero);
  }
  OptimizerZeroGrad zero;
  zero.epoch = progress_.current_epoch;
  zero.batch_idx = batch_idx;
  zero.optimizer = &optimizer;
  hooks_.emit_or_default(zero);
}

void ManualOptimization::run(Batch& batch, std::int64_t batch_idx, StepOutput& outputs) {
  detail::AutocastScope autocast(options_.precision() == Precision::bf16_mixed);
  TrainingStep step;
  step.batch = std::move(batch);
  step.batch_idx = batch_idx;
  {
    BatchReturn give_back{batch, step.batch};
    hooks_.emit(step);
  }
  at::Tensor loss = step.output.contains("loss") ? step.output["loss"] : at::Tensor();
  outputs = detached_outputs(std::move(step.output), loss);
}

}  // namespace hookline
