// hookline: an optimizer's state in a checkpoint (internal to the trainer; see
// checkpoint_connector.cpp).
//
// LibTorch's own optimizer archives are TorchScript modules, and LibTorch's reader of those trusts
// its input: a damaged one crashes inside it (found by fuzz_checkpoint). So for LibTorch's SGD,
// Adam, AdamW, RMSprop and Adagrad the state is stored as plain values, in the layout of PyTorch's
// Optimizer.state_dict():
//
//   {"type": "Adam",
//    "state": {0: {"step": 3, "exp_avg": <tensor>, "exp_avg_sq": <tensor>,
//                  "max_exp_avg_sq": None}, ...},
//    "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-08, "weight_decay": 0.0,
//                      "amsgrad": False, "params": [0, 1, 2]}, ...]}
//
// Parameters are numbered across the groups in order, and only those with state appear in
// "state". Any other optimizer keeps LibTorch's archive (its bytes as a uint8 tensor), read by
// LibTorch; the checkpoint's checksums guard it against damage, not against a crafted file.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/optim/optimizer.h>

#include <cstddef>
#include <functional>
#include <string>

namespace hookline::detail {

/// The state of `optimizer` for a checkpoint. Its tensors share memory with the optimizer's:
/// copy the result before training goes on if it is written later.
c10::IValue optimizer_state(const torch::optim::Optimizer& optimizer);

/// Checks that `saved` (from optimizer_state) fits `optimizer`: the same type, parameter groups
/// and parameter counts, options of the right types, every state tensor shaped like its
/// parameter. Returns what puts the saved state in place; nothing changes before it is called.
/// Throws CheckpointError naming `path` and "optimizer <index>" when it does not fit.
std::function<void()> prepare_optimizer_load(const c10::IValue& saved,
                                             torch::optim::Optimizer& optimizer, std::size_t index,
                                             const std::string& path);

}  // namespace hookline::detail
