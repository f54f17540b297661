// Test helpers for the trainer suites: a recorder of hook calls and a small "boring" model.
#pragma once

#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/events/tracer.hpp>

#include <torch/torch.h>

#include <mutex>
#include <string>
#include <vector>

namespace test_support {

/// Records every subscriber call as "<who>.<hook>(<args>)", in completion order: a hook that
/// runs inside another (training_step inside optimizer_step) is listed first, exactly as
/// Lightning's tests/tests_pytorch/models/test_hooks.py records them.
/// <who> is "lm" for the module, "dm" for the data module and the subscriber name otherwise.
class HookRecorder final : public hookline::Tracer {
 public:
  explicit HookRecorder(bool with_args = true) : with_args_(with_args) {}
  void on_emit(const hookline::EventInfo&, const void*, std::uint64_t) override {}
  void on_call(const hookline::EventInfo& event, const hookline::SubscriptionInfo& who,
               hookline::Lane, std::uint64_t, const void* payload, Clock::time_point,
               Clock::time_point, hookline::Action) override {
    std::string line = who.name + "." + std::string(event.name);
    if (with_args_ && event.describe) line += "(" + event.describe(payload) + ")";
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(line));
  }
  void on_emit_end(const hookline::EventInfo&, std::uint64_t, const hookline::Outcome&) override {}

  std::vector<std::string> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  /// Only the calls of subscriber `who`, without the "<who>." prefix.
  std::vector<std::string> calls_of(const std::string& who) const;
  void clear() {
    std::lock_guard lock(mutex_);
    calls_.clear();
  }

 private:
  bool with_args_;
  mutable std::mutex mutex_;
  std::vector<std::string> calls_;
};

/// Random regression data: "x" [n, in], "y" [n, out], from a fixed seed.
std::shared_ptr<hookline::data::TensorDataset> random_dataset(std::int64_t n, std::int64_t in = 32,
                                                              std::int64_t out = 2,
                                                              std::uint64_t seed = 7);
std::shared_ptr<hookline::data::DataLoader> loader(std::int64_t n, std::int64_t batch_size = 4,
                                                   std::uint64_t seed = 7);

/// Lightning's BoringModel: one Linear layer, MSE loss, SGD; loaders of 64 samples in batches
/// of 4 unless set otherwise.
class BoringModel : public hookline::Module {
 public:
  BoringModel();
  hookline::StepOutput training_step(const hookline::Batch& batch, std::int64_t) override;
  hookline::StepOutput validation_step(const hookline::Batch& batch, std::int64_t,
                                       std::int64_t) override;
  hookline::StepOutput test_step(const hookline::Batch& batch, std::int64_t, std::int64_t) override;
  hookline::StepOutput predict_step(const hookline::Batch& batch, std::int64_t,
                                    std::int64_t) override;
  hookline::OptimizerConfig configure_optimizers() override;
  hookline::DataLoaders train_dataloader() override { return {loader(64)}; }
  hookline::DataLoaders val_dataloader() override;
  hookline::DataLoaders test_dataloader() override { return {loader(64)}; }
  hookline::DataLoaders predict_dataloader() override { return {loader(64)}; }

  torch::nn::Linear layer{nullptr};
  int num_val_loaders = 1;
};

/// Returns Lightning's -1 (Verdict::skip_rest_of_epoch) at batch 1 of epoch 0.
class SkipRestOfEpochModel : public BoringModel {
 public:
  hookline::Verdict on_train_batch_start(const hookline::Batch&, std::int64_t batch_idx) override {
    if (trainer().current_epoch() == 0 && batch_idx == 1)
      return hookline::Verdict::skip_rest_of_epoch("-1 at batch 1 of epoch 0");
    return {};
  }
};

/// Manual optimization: zero_grad, manual_backward, step, all inside training_step.
class ManualModel : public BoringModel {
 public:
  ManualModel() { set_automatic_optimization(false); }
  hookline::StepOutput training_step(const hookline::Batch& batch, std::int64_t) override {
    auto opt = optimizers()[0];
    opt.zero_grad();
    auto loss = torch::mse_loss(layer(batch["x"]), batch["y"]);
    manual_backward(loss);
    opt.step();
    return {{"loss", loss}};
  }
};

/// A callback named "cb" that does nothing: its hooks show up in traces.
class NamedCallback : public hookline::Callback {
 public:
  explicit NamedCallback(std::string name = "cb", int priority = hookline::band::callback)
      : Callback(std::move(name), priority) {}
};

/// Options for a silent, short run: no progress bar, summary, checkpoints, logger, sanity check
/// or validation (tests add what they exercise).
inline hookline::TrainerOptions quiet_options() {
  return hookline::TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .num_sanity_val_steps(0)
      .limit_val_batches(0)
      .enable_checkpointing(false)
      .logger(false);
}

/// Expands "cb+lm.hook(args)" into {"cb.hook(args)", "lm.hook(args)"}; other lines stay.
std::vector<std::string> expand(const std::vector<std::string>& lines);

}  // namespace test_support
