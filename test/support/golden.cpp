#include "golden.hpp"

#include <algorithm>
#include <sstream>

namespace golden {

namespace {
std::string batch(int n) {
  return "batch(n=" + std::to_string(n) + ")";
}
std::string eval_index(int batch_idx, int dataloader_idx, bool several) {
  std::string s = "batch_idx=" + std::to_string(batch_idx);
  if (several) s += ", dataloader_idx=" + std::to_string(dataloader_idx);
  return s;
}
}  // namespace

Lines transfer(int dataloader_idx, int n) {
  const std::string dl = "dataloader_idx=" + std::to_string(dataloader_idx);
  return {"lm.on_before_batch_transfer(" + batch(n) + ", " + dl + ")",
          "lm.transfer_batch_to_device(" + batch(n) + ", device=cpu, " + dl + ")",
          "lm.on_after_batch_transfer(" + batch(n) + ", " + dl + ")"};
}

Lines train_batch(int epoch, int batch_idx, int n) {
  const std::string idx = "batch_idx=" + std::to_string(batch_idx);
  const std::string e = "epoch=" + std::to_string(epoch);
  Lines out = transfer(0, n);
  append(out, {
                  "cb+lm.on_train_batch_start(" + batch(n) + ", " + idx + ")",
                  "lm.training_step(" + batch(n) + ", " + idx + ")",
                  "cb+lm.on_before_zero_grad(optimizer=0)",
                  "lm.optimizer_zero_grad(" + e + ", " + idx + ", optimizer=0)",
                  "cb+lm.on_before_backward(loss)",
                  "lm.backward(loss)",
                  "cb+lm.on_after_backward",
                  "cb+lm.on_before_optimizer_step(optimizer=0)",
                  "lm.configure_gradient_clipping(optimizer=0, gradient_clip_val=none, "
                  "gradient_clip_algorithm=none)",
                  "lm.optimizer_step(" + e + ", " + idx + ", optimizer=0, closure)",
                  "cb+lm.on_train_batch_end(outputs{loss}, " + batch(n) + ", " + idx + ")",
              });
  return out;
}

Lines eval_batch(const std::string& noun, int batch_idx, int dataloader_idx, bool several,
                 const std::string& output_key) {
  const std::string idx = eval_index(batch_idx, dataloader_idx, several);
  Lines out = transfer(dataloader_idx);
  append(out, {"cb+lm.on_" + noun + "_batch_start(" + batch(4) + ", " + idx + ")",
               "lm." + noun + "_step(" + batch(4) + ", " + idx + ")",
               "cb+lm.on_" + noun + "_batch_end(outputs{" + output_key + "}, " + batch(4) + ", " +
                   idx + ")"});
  return out;
}

Lines eval_run(const std::string& noun, const std::string& loader_noun, int batches,
               bool request_loader, const std::string& output_key, int loaders) {
  Lines out;
  if (request_loader) out.push_back("lm." + loader_noun + "_dataloader");
  append(out, {"lm.on_" + noun + "_model_eval", "cb+lm.on_" + noun + "_start",
               "cb+lm.on_" + noun + "_epoch_start"});
  for (int dl = 0; dl < loaders; ++dl)
    for (int i = 0; i < batches; ++i) append(out, eval_batch(noun, i, dl, loaders > 1, output_key));
  append(out, {"cb+lm.on_" + noun + "_epoch_end", "cb+lm.on_" + noun + "_end",
               "lm.on_" + noun + "_model_train"});
  return out;
}

Lines sanity_check(int batches, int loaders) {
  Lines out{"cb.on_sanity_check_start"};
  append(out, val_run(batches, true, loaders));
  out.push_back("cb.on_sanity_check_end");
  return out;
}

Lines fit_prologue() {
  return {"lm.configure_callbacks", "lm.prepare_data",    "cb.setup(stage=fit)",
          "lm.setup(stage=fit)",    "lm.configure_model", "lm.configure_optimizers",
          "cb+lm.on_fit_start"};
}

Lines fit_epilogue() {
  return {"cb+lm.on_train_end", "cb+lm.on_fit_end", "cb.teardown(stage=fit)",
          "lm.teardown(stage=fit)"};
}

Lines stage_prologue(const std::string& stage) {
  return {"lm.configure_callbacks", "lm.prepare_data", "cb.setup(stage=" + stage + ")",
          "lm.setup(stage=" + stage + ")", "lm.configure_model"};
}

Lines stage_epilogue(const std::string& stage) {
  return {"cb.teardown(stage=" + stage + ")", "lm.teardown(stage=" + stage + ")"};
}

Lines run(hookline::Module& model, hookline::TrainerOptions options, hookline::Stage stage) {
  hookline::Trainer trainer(std::move(options),
                            {std::make_shared<test_support::NamedCallback>("cb")});
  auto recorder = std::make_shared<test_support::HookRecorder>();
  trainer.bus().set_tracer(recorder);
  switch (stage) {
    case hookline::Stage::fit:
      trainer.fit(model);
      break;
    case hookline::Stage::validate:
      trainer.validate(model);
      break;
    case hookline::Stage::test:
      trainer.test(model);
      break;
    case hookline::Stage::predict:
      trainer.predict(model);
      break;
    case hookline::Stage::none:
      break;
  }
  return recorder->calls();
}

void check(const Lines& actual, const Lines& expected_with_pairs) {
  const Lines expected = test_support::expand(expected_with_pairs);
  if (actual == expected) {
    BOOST_TEST(true);
    return;
  }
  std::size_t i = 0;
  while (i < actual.size() && i < expected.size() && actual[i] == expected[i]) ++i;
  std::ostringstream msg;
  msg << "hook sequences differ at line " << i << " (actual " << actual.size()
      << " lines, expected " << expected.size() << ")\n";
  const std::size_t from = i >= 3 ? i - 3 : 0;
  for (std::size_t k = from; k < std::min(i + 6, std::max(actual.size(), expected.size())); ++k) {
    msg << (k == i ? ">> " : "   ") << k
        << "  actual: " << (k < actual.size() ? actual[k] : "<end>")
        << "\n       expected: " << (k < expected.size() ? expected[k] : "<end>") << "\n";
  }
  BOOST_ERROR(msg.str());
}

}  // namespace golden

// ---- additions for golden_loop_tests.cpp --------------------------------------------------------
namespace golden {

Lines accumulating_batch(int epoch, int batch_idx, bool zero_grad, bool step,
                         const std::string& clip_val, int n) {
  const std::string b = "batch(n=" + std::to_string(n) + ")";
  const std::string idx = "batch_idx=" + std::to_string(batch_idx);
  const std::string e = "epoch=" + std::to_string(epoch);
  Lines out = transfer(0, n);
  append(out, {"cb+lm.on_train_batch_start(" + b + ", " + idx + ")",
               "lm.training_step(" + b + ", " + idx + ")"});
  if (zero_grad)
    append(out, {"cb+lm.on_before_zero_grad(optimizer=0)",
                 "lm.optimizer_zero_grad(" + e + ", " + idx + ", optimizer=0)"});
  append(out, {"cb+lm.on_before_backward(loss)", "lm.backward(loss)", "cb+lm.on_after_backward"});
  if (step)
    append(out, {"cb+lm.on_before_optimizer_step(optimizer=0)",
                 "lm.configure_gradient_clipping(optimizer=0, gradient_clip_val=" + clip_val +
                     ", gradient_clip_algorithm=none)",
                 "lm.optimizer_step(" + e + ", " + idx + ", optimizer=0, closure)"});
  out.push_back("cb+lm.on_train_batch_end(outputs{loss}, " + b + ", " + idx + ")");
  return out;
}

Lines manual_batch(int batch_idx, int n) {
  const std::string b = "batch(n=" + std::to_string(n) + ")";
  const std::string idx = "batch_idx=" + std::to_string(batch_idx);
  Lines out = transfer(0, n);
  append(out,
         {"cb+lm.on_train_batch_start(" + b + ", " + idx + ")", "cb+lm.on_before_backward(loss)",
          "lm.backward(loss)", "cb+lm.on_after_backward",
          "cb+lm.on_before_optimizer_step(optimizer=0)", "lm.training_step(" + b + ", " + idx + ")",
          "cb+lm.on_train_batch_end(outputs{loss}, " + b + ", " + idx + ")"});
  return out;
}

Lines train_start(bool request_val_loader) {
  Lines out{"lm.train_dataloader"};
  if (request_val_loader) out.push_back("lm.val_dataloader");
  out.push_back("cb+lm.on_train_start");
  return out;
}

Lines fit_validation(int batches, bool request_loader, int loaders) {
  Lines out{"lm.on_validation_model_zero_grad"};
  append(out, val_run(batches, request_loader, loaders));
  return out;
}

std::shared_ptr<test_support::HookRecorder> record(hookline::Trainer& trainer) {
  auto recorder = std::make_shared<test_support::HookRecorder>();
  trainer.bus().set_tracer(recorder);
  return recorder;
}

void fit_and_check(hookline::Trainer& trainer, hookline::Module& model, const Lines& expected) {
  auto recorder = record(trainer);
  trainer.fit(model);
  check(recorder->calls(), expected);
}

hookline::TrainerOptions plain_options() {
  return hookline::TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false);
}

std::size_t count(const Lines& lines, const std::string& line) {
  return static_cast<std::size_t>(std::count(lines.begin(), lines.end(), line));
}

}  // namespace golden
