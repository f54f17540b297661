// hookline: Module, our LightningModule.
//
// A Module is a torch::nn::Module with Lightning's hooks as virtual methods. When a run starts,
// the trainer subscribes the module to the hook events on the bus, in the `module` band, so the
// module is an ordinary subscriber: callbacks, the data module and the module are ordered by the
// same rules, and a trace shows them all. The per-batch hooks that do nothing by default
// (on_train_batch_start, on_before_backward, ...) and that the module's class does not override
// are called only when the bus is traced: a trace shows every call Lightning makes, and an
// untraced step does not pay for calls that do nothing. The hooks whose default has work
// (transfer_batch_to_device, optimizer_zero_grad, backward, configure_gradient_clipping,
// optimizer_step, lr_scheduler_step), when not overridden, are subscribed with
// SubscribeOptions::runs_default: when nothing else listens and no tracer watches, the trainer
// runs the same default without emitting the event.
//
//   class Classifier : public hookline::Module {
//    public:
//     Classifier() { net = register_module("net", torch::nn::Linear(784, 10)); }
//     StepOutput training_step(const Batch& b, std::int64_t) override {
//       auto loss = torch::nn::functional::cross_entropy(net(b["x"]), b["y"]);
//       log("train_loss", loss);
//       return {{"loss", loss}};
//     }
//     OptimizerConfig configure_optimizers() override {
//       return OptimizerConfig().add(std::make_shared<torch::optim::SGD>(parameters(), 0.1));
//     }
//     torch::nn::Linear net{nullptr};
//   };
#pragma once

#include "hookline/core/checkpoint.hpp"
#include "hookline/core/metrics.hpp"
#include "hookline/core/optimization.hpp"
#include "hookline/hooks/hooks.hpp"

#include <ATen/core/Dict.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

class Bus;
class Sink;

/// A module's tensors by name, in order: what a checkpoint keeps under "state_dict".
using TensorDict = c10::Dict<std::string, at::Tensor>;

/// An optimizer as seen by a module in manual optimization: its step() runs the hooks and counts
/// global_step, like Lightning's LightningOptimizer.
class ManualOptimizer {
 public:
  ManualOptimizer(torch::optim::Optimizer& optimizer, std::size_t index, Trainer& trainer)
      : optimizer_(&optimizer), index_(index), trainer_(&trainer) {}
  void zero_grad();
  /// Runs `closure` (if any), emits on_before_optimizer_step, steps, and advances global_step.
  void step(const std::function<void()>& closure = {});
  torch::optim::Optimizer& optimizer() { return *optimizer_; }

 private:
  torch::optim::Optimizer* optimizer_;
  std::size_t index_;
  Trainer* trainer_;
};

class Module : public torch::nn::Module {
 public:
  explicit Module(std::string name = "module");
  ~Module() override;

  // ---- steps (override training_step; the others when you use that stage) -----------------
  /// Returns {"loss": ...} (plus anything else) under automatic optimization.
  virtual StepOutput training_step(const Batch& batch, std::int64_t batch_idx) = 0;
  virtual StepOutput validation_step(const Batch& batch, std::int64_t batch_idx,
                                     std::int64_t dataloader_idx);
  virtual StepOutput test_step(const Batch& batch, std::int64_t batch_idx,
                               std::int64_t dataloader_idx);
  virtual StepOutput predict_step(const Batch& batch, std::int64_t batch_idx,
                                  std::int64_t dataloader_idx);
  /// Needed by fit(): at least one optimizer.
  virtual OptimizerConfig configure_optimizers();
  virtual std::vector<std::shared_ptr<Callback>> configure_callbacks() { return {}; }

  // ---- set-up and data ----------------------------------------------------------------------
  virtual void prepare_data() {}
  virtual void setup(Stage) {}
  virtual void teardown(Stage) {}
  virtual void configure_model() {}
  /// Deprecated (Lightning 2.2): use configure_model. Called only when the module's class
  /// overrides it, as in Lightning (see uses_configure_sharded_model).
  virtual void configure_sharded_model() {}
  /// Whether configure_sharded_model runs. Default: whether the class overrides it, read from its
  /// virtual table (core/overrides.hpp); false where the ABI does not tell, so a module there
  /// that still uses it returns true from this.
  virtual bool uses_configure_sharded_model() const;
  /// Used when no DataModule is attached.
  virtual DataLoaders train_dataloader() { return {}; }
  virtual DataLoaders val_dataloader() { return {}; }
  virtual DataLoaders test_dataloader() { return {}; }
  virtual DataLoaders predict_dataloader() { return {}; }
  virtual Batch on_before_batch_transfer(Batch batch, std::int64_t dataloader_idx);
  virtual Batch transfer_batch_to_device(Batch batch, c10::Device device,
                                         std::int64_t dataloader_idx);
  virtual Batch on_after_batch_transfer(Batch batch, std::int64_t dataloader_idx);

  // ---- lifecycle hooks ----------------------------------------------------------------------
  virtual void on_fit_start() {}
  virtual void on_fit_end() {}
  virtual void on_train_start() {}
  virtual void on_train_end() {}
  virtual void on_validation_start() {}
  virtual void on_validation_end() {}
  virtual void on_test_start() {}
  virtual void on_test_end() {}
  virtual void on_predict_start() {}
  virtual void on_predict_end() {}
  virtual void on_train_epoch_start() {}
  virtual void on_train_epoch_end() {}
  virtual void on_validation_epoch_start() {}
  virtual void on_validation_epoch_end() {}
  virtual void on_test_epoch_start() {}
  virtual void on_test_epoch_end() {}
  virtual void on_predict_epoch_start() {}
  virtual void on_predict_epoch_end() {}

  // ---- batch hooks --------------------------------------------------------------------------
  /// Return Verdict::skip_rest_of_epoch() for Lightning's -1.
  virtual Verdict on_train_batch_start(const Batch&, std::int64_t /*batch_idx*/) { return {}; }
  virtual void on_train_batch_end(const StepOutput&, const Batch&, std::int64_t /*batch_idx*/) {}
  virtual void on_validation_batch_start(const Batch&, std::int64_t, std::int64_t) {}
  virtual void on_validation_batch_end(const StepOutput&, const Batch&, std::int64_t,
                                       std::int64_t) {}
  virtual void on_test_batch_start(const Batch&, std::int64_t, std::int64_t) {}
  virtual void on_test_batch_end(const StepOutput&, const Batch&, std::int64_t, std::int64_t) {}
  virtual void on_predict_batch_start(const Batch&, std::int64_t, std::int64_t) {}
  virtual void on_predict_batch_end(const StepOutput&, const Batch&, std::int64_t, std::int64_t) {}

  // ---- model mode ---------------------------------------------------------------------------
  // Defaults: zero_grad(), eval(). Before the *_model_train hooks run, the trainer has already
  // put the module back in the mode it had before evaluation (as Lightning does when these hooks
  // are not overridden), so the defaults of those do nothing.
  virtual void on_validation_model_zero_grad();
  virtual void on_validation_model_eval();
  virtual void on_validation_model_train();
  virtual void on_test_model_eval();
  virtual void on_test_model_train();
  virtual void on_predict_model_eval();

  // ---- optimization -------------------------------------------------------------------------
  virtual void on_before_zero_grad(torch::optim::Optimizer&) {}
  virtual void optimizer_zero_grad(std::int64_t epoch, std::int64_t batch_idx,
                                   torch::optim::Optimizer& optimizer);
  virtual void on_before_backward(const at::Tensor& /*loss*/) {}
  virtual void backward(const at::Tensor& loss);
  virtual void on_after_backward() {}
  virtual void on_before_optimizer_step(torch::optim::Optimizer&) {}
  virtual void configure_gradient_clipping(torch::optim::Optimizer& optimizer,
                                           std::optional<double> gradient_clip_val,
                                           std::optional<ClipAlgorithm> gradient_clip_algorithm);
  /// Default: optimizer.step(closure), so the closure runs inside the step, as in Lightning.
  virtual void optimizer_step(std::int64_t epoch, std::int64_t batch_idx,
                              torch::optim::Optimizer& optimizer,
                              const std::function<void()>& closure);
  virtual void lr_scheduler_step(SchedulerConfig& scheduler, std::optional<double> metric);

  // ---- checkpoints --------------------------------------------------------------------------
  virtual void on_save_checkpoint(Checkpoint&) {}
  virtual void on_load_checkpoint(const Checkpoint&) {}
  /// What a checkpoint keeps under "state_dict" (Lightning's LightningModule.state_dict()), asked
  /// for first when saving. Default: every parameter, then every buffer, by its dotted name.
  /// Override to add tensors, rename keys or leave some out; load_state_dict gets what this gave.
  virtual TensorDict state_dict();
  /// Loads a checkpoint's "state_dict", right after on_load_checkpoint (Lightning's order), when
  /// resuming and for validate/test/predict with a ckpt_path. Default: refuses (std::
  /// invalid_argument with state_dict_mismatch's text, nothing changed) a state whose names,
  /// shapes or dtypes are not exactly this module's parameters and buffers, else copies each in
  /// place. Override for partial loading or renamed keys; throw to refuse (the run then fails
  /// with a CheckpointError and the module's parameters and buffers are put back).
  virtual void load_state_dict(const TensorDict& state);
  /// What the default load_state_dict refuses in `state` ("" when it fits): a missing or
  /// unexpected name, another shape or dtype.
  std::string state_dict_mismatch(const TensorDict& state) const;
  /// Hyperparameters (Lightning's save_hyperparameters): saved in every checkpoint under
  /// "hyper_parameters" and read back from a file with read_checkpoint_file.
  Checkpoint& hparams() { return hparams_; }
  const Checkpoint& hparams() const { return hparams_; }

  // ---- helpers for module code --------------------------------------------------------------
  /// Clips the gradients of this module's parameters (norm: total 2-norm; value: element-wise).
  void clip_gradients(torch::optim::Optimizer& optimizer, std::optional<double> gradient_clip_val,
                      std::optional<ClipAlgorithm> gradient_clip_algorithm);
  /// Logs a scalar (see metrics.hpp for where and how).
  void log(const std::string& name, double value, const LogOptions& options = {});
  void log(const std::string& name, const at::Tensor& value, const LogOptions& options = {});

  /// Manual optimization: set false in the constructor, then call optimizers(), manual_backward()
  /// and ManualOptimizer::step() from training_step.
  bool automatic_optimization() const { return automatic_optimization_; }
  void set_automatic_optimization(bool on) { automatic_optimization_ = on; }
  /// Runs on_before_backward, backward and on_after_backward for `loss`.
  void manual_backward(const at::Tensor& loss);
  std::vector<ManualOptimizer> optimizers();
  std::vector<SchedulerConfig>& lr_schedulers();

  /// The trainer running this module; throws std::logic_error outside a run.
  Trainer& trainer() const;
  bool attached() const { return trainer_ != nullptr; }
  c10::Device device() const;
  const std::string& module_name() const { return module_name_; }

 private:
  friend class Trainer;
  friend class HookEmitter;
  /// Subscribes every hook to `sink` in the module band. Batch-transfer and dataloader hooks are
  /// left out where the data module answers them; the per-batch hooks that do nothing by default
  /// and that this class does not override are called only by traced emissions.
  void subscribe(Sink& sink, bool dataloaders_from_data_module, bool before_transfer_elsewhere,
                 bool transfer_elsewhere, bool after_transfer_elsewhere);
  /// The module's handler of each hook whose default has work: what its subscription calls, and
  /// what the trainer calls directly when only that default would be reached.
  void handle(TransferBatchToDevice& e);
  void handle(const OptimizerZeroGrad& e);
  void handle(const Backward& e);
  void handle(const ConfigureGradientClipping& e);
  void handle(const OptimizerStep& e);
  void handle(const LrSchedulerStep& e);

  std::string module_name_;
  Checkpoint hparams_;
  Trainer* trainer_ = nullptr;
  bool automatic_optimization_ = true;
};

namespace detail {
/// Whether the class of `module` overrides load_state_dict (true when that cannot be told).
bool overrides_load_state_dict(const Module& module);
}  // namespace detail

}  // namespace hookline
