// hookline: LambdaCallback, any hook as a std::function (Lightning 2.2's LambdaCallback).
//
//   LambdaHooks hooks;
//   hooks.on_train_epoch_end = [](Trainer& t, Module&) { std::printf("%lld\n", t.current_epoch());
//   }; trainer.add_callback(std::make_shared<LambdaCallback>(hooks));
//
// Unset hooks do nothing. To veto from a hook, call veto_current(...) on the LambdaCallback
// (capture a pointer to it). Give each LambdaCallback of a trainer its own name: it is its state
// key, and a trainer's state keys are distinct.
#pragma once

#include "hookline/core/callback.hpp"

#include <functional>
#include <string>

namespace hookline {

class LambdaCallback;

struct LambdaHooks {
  using Plain = std::function<void(Trainer&, Module&)>;
  using BatchStart = std::function<void(Trainer&, Module&, const Batch&, std::int64_t)>;
  using EvalBatchStart =
      std::function<void(Trainer&, Module&, const Batch&, std::int64_t, std::int64_t)>;
  using BatchEnd =
      std::function<void(Trainer&, Module&, const StepOutput&, const Batch&, std::int64_t)>;
  using EvalBatchEnd = std::function<void(Trainer&, Module&, const StepOutput&, const Batch&,
                                          std::int64_t, std::int64_t)>;
  using WithOptimizer = std::function<void(Trainer&, Module&, torch::optim::Optimizer&)>;

  std::function<void(Trainer&, Module&, Stage)> setup, teardown;
  Plain on_fit_start, on_fit_end, on_sanity_check_start, on_sanity_check_end, on_train_start,
      on_train_end, on_validation_start, on_validation_end, on_test_start, on_test_end,
      on_predict_start, on_predict_end, on_train_epoch_start, on_train_epoch_end,
      on_validation_epoch_start, on_validation_epoch_end, on_test_epoch_start, on_test_epoch_end,
      on_predict_epoch_start, on_predict_epoch_end, on_after_backward;
  BatchStart on_train_batch_start;
  BatchEnd on_train_batch_end;
  EvalBatchStart on_validation_batch_start, on_test_batch_start, on_predict_batch_start;
  EvalBatchEnd on_validation_batch_end, on_test_batch_end, on_predict_batch_end;
  WithOptimizer on_before_zero_grad, on_before_optimizer_step;
  std::function<void(Trainer&, Module&, const at::Tensor&)> on_before_backward;
  std::function<void(Trainer&, Module&, const std::exception_ptr&)> on_exception;
  std::function<void(Trainer&, Module&, Checkpoint&)> on_save_checkpoint;
  std::function<void(Trainer&, Module&, const Checkpoint&)> on_load_checkpoint;
};

class LambdaCallback : public Callback {
 public:
  explicit LambdaCallback(LambdaHooks hooks, std::string name = "lambda_callback",
                          int priority = band::callback)
      : Callback(std::move(name), priority), hooks_(std::move(hooks)) {}

  const LambdaHooks& hooks() const { return hooks_; }
  /// Vetoes the event being handled (for hooks that accept a verdict), like Callback::veto.
  void veto_current(Action action, std::string reason) { veto(action, std::move(reason)); }

  void setup(Trainer& t, Module& m, Stage s) override { call(hooks_.setup, t, m, s); }
  void teardown(Trainer& t, Module& m, Stage s) override { call(hooks_.teardown, t, m, s); }
  void on_fit_start(Trainer& t, Module& m) override { call(hooks_.on_fit_start, t, m); }
  void on_fit_end(Trainer& t, Module& m) override { call(hooks_.on_fit_end, t, m); }
  void on_sanity_check_start(Trainer& t, Module& m) override {
    call(hooks_.on_sanity_check_start, t, m);
  }
  void on_sanity_check_end(Trainer& t, Module& m) override {
    call(hooks_.on_sanity_check_end, t, m);
  }
  void on_train_start(Trainer& t, Module& m) override { call(hooks_.on_train_start, t, m); }
  void on_train_end(Trainer& t, Module& m) override { call(hooks_.on_train_end, t, m); }
  void on_validation_start(Trainer& t, Module& m) override {
    call(hooks_.on_validation_start, t, m);
  }
  void on_validation_end(Trainer& t, Module& m) override { call(hooks_.on_validation_end, t, m); }
  void on_test_start(Trainer& t, Module& m) override { call(hooks_.on_test_start, t, m); }
  void on_test_end(Trainer& t, Module& m) override { call(hooks_.on_test_end, t, m); }
  void on_predict_start(Trainer& t, Module& m) override { call(hooks_.on_predict_start, t, m); }
  void on_predict_end(Trainer& t, Module& m) override { call(hooks_.on_predict_end, t, m); }
  void on_train_epoch_start(Trainer& t, Module& m) override {
    call(hooks_.on_train_epoch_start, t, m);
  }
  void on_train_epoch_end(Trainer& t, Module& m) override { call(hooks_.on_train_epoch_end, t, m); }
  void on_validation_epoch_start(Trainer& t, Module& m) override {
    call(hooks_.on_validation_epoch_start, t, m);
  }
  void on_validation_epoch_end(Trainer& t, Module& m) override {
    call(hooks_.on_validation_epoch_end, t, m);
  }
  void on_test_epoch_start(Trainer& t, Module& m) override {
    call(hooks_.on_test_epoch_start, t, m);
  }
  void on_test_epoch_end(Trainer& t, Module& m) override { call(hooks_.on_test_epoch_end, t, m); }
  void on_predict_epoch_start(Trainer& t, Module& m) override {
    call(hooks_.on_predict_epoch_start, t, m);
  }
  void on_predict_epoch_end(Trainer& t, Module& m) override {
    call(hooks_.on_predict_epoch_end, t, m);
  }
  void on_train_batch_start(Trainer& t, Module& m, const Batch& b, std::int64_t i) override {
    call(hooks_.on_train_batch_start, t, m, b, i);
  }
  void on_train_batch_end(Trainer& t, Module& m, const StepOutput& o, const Batch& b,
                          std::int64_t i) override {
    call(hooks_.on_train_batch_end, t, m, o, b, i);
  }
  void on_validation_batch_start(Trainer& t, Module& m, const Batch& b, std::int64_t i,
                                 std::int64_t d) override {
    call(hooks_.on_validation_batch_start, t, m, b, i, d);
  }
  void on_validation_batch_end(Trainer& t, Module& m, const StepOutput& o, const Batch& b,
                               std::int64_t i, std::int64_t d) override {
    call(hooks_.on_validation_batch_end, t, m, o, b, i, d);
  }
  void on_test_batch_start(Trainer& t, Module& m, const Batch& b, std::int64_t i,
                           std::int64_t d) override {
    call(hooks_.on_test_batch_start, t, m, b, i, d);
  }
  void on_test_batch_end(Trainer& t, Module& m, const StepOutput& o, const Batch& b, std::int64_t i,
                         std::int64_t d) override {
    call(hooks_.on_test_batch_end, t, m, o, b, i, d);
  }
  void on_predict_batch_start(Trainer& t, Module& m, const Batch& b, std::int64_t i,
                              std::int64_t d) override {
    call(hooks_.on_predict_batch_start, t, m, b, i, d);
  }
  void on_predict_batch_end(Trainer& t, Module& m, const StepOutput& o, const Batch& b,
                            std::int64_t i, std::int64_t d) override {
    call(hooks_.on_predict_batch_end, t, m, o, b, i, d);
  }
  void on_before_zero_grad(Trainer& t, Module& m, torch::optim::Optimizer& o) override {
    call(hooks_.on_before_zero_grad, t, m, o);
  }
  void on_before_backward(Trainer& t, Module& m, const at::Tensor& loss) override {
    call(hooks_.on_before_backward, t, m, loss);
  }
  void on_after_backward(Trainer& t, Module& m) override { call(hooks_.on_after_backward, t, m); }
  void on_before_optimizer_step(Trainer& t, Module& m, torch::optim::Optimizer& o) override {
    call(hooks_.on_before_optimizer_step, t, m, o);
  }
  void on_exception(Trainer& t, Module& m, const std::exception_ptr& e) override {
    call(hooks_.on_exception, t, m, e);
  }
  void on_save_checkpoint(Trainer& t, Module& m, Checkpoint& c) override {
    call(hooks_.on_save_checkpoint, t, m, c);
  }
  void on_load_checkpoint(Trainer& t, Module& m, const Checkpoint& c) override {
    call(hooks_.on_load_checkpoint, t, m, c);
  }

 private:
  template <class F, class... A>
  static void call(const F& f, A&&... args) {
    if (f) f(std::forward<A>(args)...);
  }
  LambdaHooks hooks_;
};

}  // namespace hookline
