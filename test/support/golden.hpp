// Building blocks of expected Lightning 2.2 hook sequences (docs/lightning-hook-order.md §2.0),
// and helpers that run a trainer with a HookRecorder. A line "cb+lm.X" stands for "cb.X" then
// "lm.X" (callbacks before the module).
#pragma once

#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <string>
#include <vector>

namespace golden {

using Lines = std::vector<std::string>;

inline void append(Lines& to, const Lines& more) {
  to.insert(to.end(), more.begin(), more.end());
}

/// on_before_batch_transfer, transfer_batch_to_device, on_after_batch_transfer.
Lines transfer(int dataloader_idx, int n = 4);
/// One automatic-optimization batch that steps (accumulate_grad_batches = 1).
Lines train_batch(int epoch, int batch_idx, int n = 4);
/// One evaluation batch: transfer, batch_start, step, batch_end.
Lines eval_batch(const std::string& noun, int batch_idx, int dataloader_idx, bool several,
                 const std::string& output_key);
/// A whole evaluation run of `batches` batches per loader.
Lines eval_run(const std::string& noun, const std::string& loader_noun, int batches,
               bool request_loader, const std::string& output_key, int loaders = 1);
inline Lines val_run(int batches, bool request_loader, int loaders = 1) {
  return eval_run("validation", "val", batches, request_loader, "x", loaders);
}
/// Sanity check with `batches` validation batches per loader.
Lines sanity_check(int batches, int loaders = 1);
/// configure_callbacks .. on_fit_start, and the end of a fit.
Lines fit_prologue();
Lines fit_epilogue();
/// configure_callbacks .. configure_model for validate/test/predict, and teardown.
Lines stage_prologue(const std::string& stage);
Lines stage_epilogue(const std::string& stage);

/// Runs `stage` with one NamedCallback "cb" and returns the recorded calls.
Lines run(hookline::Module& model, hookline::TrainerOptions options, hookline::Stage stage);
inline Lines run_fit(hookline::Module& model, hookline::TrainerOptions options) {
  return run(model, std::move(options), hookline::Stage::fit);
}

/// Compares full sequences and, on mismatch, reports the first differing line with context.
void check(const Lines& actual, const Lines& expected_with_pairs);

}  // namespace golden

// ---- additions for golden_loop_tests.cpp --------------------------------------------------------
namespace golden {

/// One automatic-optimization training batch under gradient accumulation (§2.f): `zero_grad`
/// says whether the closure runs the zero-grad hooks (batch_idx % N == 0), `step` whether the
/// batch steps (window full or last batch). `clip_val` is how the trace prints
/// gradient_clip_val ("none", or std::to_string of the value).
Lines accumulating_batch(int epoch, int batch_idx, bool zero_grad, bool step,
                         const std::string& clip_val = "none", int n = 4);
/// One manual-optimization batch (§2.k) whose training_step runs opt.zero_grad(),
/// manual_backward(loss) and opt.step() on optimizer 0: the backward hooks and
/// on_before_optimizer_step complete before training_step does.
Lines manual_batch(int batch_idx, int n = 4);
/// train_dataloader, [val_dataloader], on_train_start: the start of a fit loop without a sanity
/// check (§2.a notes: val_dataloader is requested before on_train_start when epoch 0 validates).
Lines train_start(bool request_val_loader);
/// In-training validation after a stepping batch: on_validation_model_zero_grad, then a VAL_RUN.
Lines fit_validation(int batches, bool request_loader, int loaders = 1);
/// Subscribes a fresh HookRecorder to `trainer`'s bus and returns it.
std::shared_ptr<test_support::HookRecorder> record(hookline::Trainer& trainer);
/// Fits `model` with a fresh HookRecorder on `trainer`'s bus and checks the calls against
/// `expected` (see check).
void fit_and_check(hookline::Trainer& trainer, hookline::Module& model, const Lines& expected);
/// TrainerOptions without the progress bar, the model summary and checkpointing: the golden
/// traces list only the hooks of the loops under test.
hookline::TrainerOptions plain_options();
/// How many times `line` occurs in `lines`.
std::size_t count(const Lines& lines, const std::string& line);

}  // namespace golden
