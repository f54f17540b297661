// hookline: Strategy, where a run's model lives and how its processes talk (Lightning's
// Strategy).
//
// The trainer asks its strategy for the root device, for the rank and world size, and for every
// collective it needs (barrier, broadcast, all-reduce, all-gather, the reduction of a decision);
// the rest of the code never talks to a process group directly. Two strategies ship:
// - SingleDeviceStrategy: one process, one device (CPU or cuda:N); every collective is the
//   identity, so single-process runs pay nothing for the abstraction.
// - DDPStrategy (ddp.hpp): data-parallel over c10d (Gloo on CPU, NCCL on CUDA when built in).
// The Trainer picks one from TrainerOptions (accelerator, devices, strategy, num_nodes); see
// make_strategy in core/defaults.hpp.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace hookline {

enum class ReduceOp { sum, mean, max, min };

class Strategy {
 public:
  virtual ~Strategy() = default;

  /// "single_device", "ddp", ...
  virtual std::string name() const = 0;
  /// The device this process's model copy and batches live on.
  virtual c10::Device root_device() const = 0;

  virtual int world_size() const { return 1; }
  virtual int global_rank() const { return 0; }
  virtual int local_rank() const { return 0; }
  virtual int node_rank() const { return 0; }
  bool is_global_zero() const { return global_rank() == 0; }
  bool distributed() const { return world_size() > 1; }

  /// Once per run, before any hook: joins (or launches) the processes of the run.
  virtual void setup_environment() {}
  /// After configure_model, with the module on root_device(): DDP broadcasts rank 0's weights
  /// and starts synchronizing gradients.
  virtual void setup_module(torch::nn::Module& /*module*/) {}
  /// At the end of a run: stops whatever setup_module started.
  virtual void teardown_module() {}

  /// Waits until every process gets here (`name` appears in timeout errors).
  virtual void barrier(const std::string& /*name*/ = {}) {}
  /// `tensor` as process `src` has it (in place; also returned).
  virtual at::Tensor broadcast(at::Tensor tensor, int /*src*/ = 0) { return tensor; }
  virtual std::string broadcast(const std::string& text, int /*src*/ = 0) { return text; }
  /// The reduction of `tensor` over all processes (in place; also returned).
  virtual at::Tensor all_reduce(at::Tensor tensor, ReduceOp /*op*/ = ReduceOp::sum) {
    return tensor;
  }
  /// Every process's `tensor`, by rank (same shape on every rank).
  virtual std::vector<at::Tensor> all_gather(const at::Tensor& tensor) { return {tensor}; }
  /// `all`: true when every process decided true; otherwise true when any did.
  virtual bool reduce_boolean_decision(bool decision, bool /*all*/ = true) { return decision; }

  /// Around a backward pass: `sync` is false on batches that accumulate without stepping
  /// (Lightning's no_sync), so DDP skips the gradient all-reduce there.
  virtual void prepare_for_backward(bool /*sync*/) {}
  /// After the backward pass: DDP waits for the gradient all-reduce and averages.
  virtual void finish_backward() {}

  /// A run of this process failed with `message` (before on_exception returns it to the caller).
  /// DDP: a rank other than 0 leaves the error for the launcher; rank 0, when another rank's
  /// failure broke its collective, throws that rank's error (RankFailure) instead.
  virtual void run_failed(const std::string& /*message*/) {}
};

class SingleDeviceStrategy final : public Strategy {
 public:
  explicit SingleDeviceStrategy(c10::Device device = c10::Device(c10::kCPU)) : device_(device) {}
  std::string name() const override { return "single_device"; }
  c10::Device root_device() const override { return device_; }

 private:
  c10::Device device_;
};

}  // namespace hookline
