// hookline: ScriptModule, a TorchScript model (Python's torch.jit.script + save) trained by the
// Trainer like any Module.
//
// The adapter loads the file and registers the script's parameters and buffers as its own (the
// same tensors, under the same dotted names), so optimizers, checkpoints, callbacks and hooks see
// an ordinary Module, and what training changes is what the script computes with. It takes from
// the script, when the script defines them:
//
//   forward(x)                                          -> the module's forward
//   training_step(batch: Dict[str, Tensor], batch_idx: int) -> Dict[str, Tensor]  ("loss" needed)
//   validation_step(batch: Dict[str, Tensor], batch_idx: int) -> Dict[str, Tensor]
//   configure_optimizers(self) -> Tuple[str, Dict[str, float]]
//       an optimizer by name ("SGD", "Adam", "AdamW") and its settings: lr, momentum, dampening,
//       weight_decay, nesterov (0/1), beta1, beta2, eps, amsgrad (0/1)
//
// and otherwise from ScriptModuleOptions (C++ functions), or fails naming the method to define.
// Every one-element tensor a step returns is logged under its key (the training step's "loss" as
// "train_loss"), so callbacks can monitor them. save_script() writes the trained model back as a
// TorchScript file that torch.jit.load reads in Python.
#pragma once

#include "hookline/core/module.hpp"

#include <torch/csrc/jit/api/module.h>

#include <functional>
#include <string>

namespace hookline {

class ScriptModule;

struct ScriptModuleOptions {
  using Step = std::function<StepOutput(ScriptModule&, const Batch&, std::int64_t batch_idx)>;
  /// Used when the script has no training_step / validation_step.
  Step training_step;
  Step validation_step;
  /// Used when the script has no configure_optimizers.
  std::function<OptimizerConfig(ScriptModule&)> configure_optimizers;
  /// Logs the one-element tensors the steps return (see above).
  bool log_step_outputs = true;
};

class ScriptModule : public Module {
 public:
  /// Loads the TorchScript file at `path`; throws std::invalid_argument naming the file and the
  /// fix when it cannot be read.
  explicit ScriptModule(const std::string& path, ScriptModuleOptions options = {},
                        std::string name = "script");

  /// The script's forward on `x`.
  at::Tensor forward(const at::Tensor& x);
  /// The script's method `method` on `inputs` (the module itself is passed as `self`).
  c10::IValue call(const std::string& method, std::vector<c10::IValue> inputs);
  /// Whether the script defines `method`.
  bool has_method(const std::string& method) const;

  StepOutput training_step(const Batch& batch, std::int64_t batch_idx) override;
  StepOutput validation_step(const Batch& batch, std::int64_t batch_idx,
                             std::int64_t dataloader_idx) override;
  OptimizerConfig configure_optimizers() override;
  void train(bool on = true) override;

  /// Writes the model, with its current (trained) parameters and buffers, as a TorchScript file
  /// (atomically); Python's torch.jit.load reads it.
  void save_script(const std::string& path) const;
  /// The TorchScript module itself (its tensors are this module's).
  torch::jit::Module& script() { return script_; }

 private:
  StepOutput run_step(const char* method, const Batch& batch, std::int64_t batch_idx,
                      bool training);

  std::string path_;
  torch::jit::Module script_;
  ScriptModuleOptions options_;
};

}  // namespace hookline
