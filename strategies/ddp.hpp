// hookline: DDPStrategy, distributed data parallel over c10d (Lightning's DDPStrategy).
//
//   Trainer trainer(TrainerOptions().strategy("ddp").devices(2));  // 2 CPU processes, Gloo
//
// - Processes: from torchrun / SLURM variables when they are set, else the local launcher
//   starts `devices` processes on this machine (launcher.hpp). One process group per process,
//   made at the first run and kept for the following ones (fit, then test, ...).
// - Backend: "gloo" on CPU; "nccl" on CUDA when LibTorch was built with it (HOOKLINE_HAS_NCCL),
//   otherwise asking for it is an error that says how to build against a CUDA LibTorch.
// - Model: rank 0's parameters and buffers are broadcast to every rank at setup; gradients are
//   averaged after backward in buckets (the first 1 MB, then bucket_cap_mb), each bucket's
//   all-reduce started as soon as autograd has produced all of its gradients, so communication
//   overlaps the rest of the backward pass. Batches that accumulate without stepping skip the
//   all-reduce (Lightning's no_sync); the stepping batch averages the accumulated gradients.
// - Collectives time out after `timeout` (default 30 minutes, as torch.distributed), so a rank
//   that died cannot hang the others forever.
#pragma once

#include "hookline/core/strategy.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace hookline {

struct DDPOptions {
  std::string process_group_backend;  ///< "" = gloo on CPU, nccl on CUDA
  std::chrono::milliseconds timeout = std::chrono::minutes(30);
  double bucket_cap_mb = 25;
  double first_bucket_mb = 1;
};

/// Counters of the gradient synchronization, for benchmarks and tests.
struct GradSyncStats {
  std::int64_t backward_passes = 0;  ///< passes that synchronized
  std::int64_t skipped = 0;          ///< passes under no_sync
  std::int64_t buckets = 0;          ///< all-reduces started
  double wait_seconds = 0;           ///< time finish_backward waited for them
};

class DDPStrategy final : public Strategy {
 public:
  /// `devices`: processes on this node when this strategy launches them itself.
  DDPStrategy(c10::Device accelerator_device, int devices, int num_nodes, DDPOptions options = {});
  ~DDPStrategy() override;

  std::string name() const override { return "ddp"; }
  c10::Device root_device() const override;
  int world_size() const override;
  int global_rank() const override;
  int local_rank() const override;
  int node_rank() const override;

  void setup_environment() override;
  void setup_module(torch::nn::Module& module) override;
  void teardown_module() override;

  void barrier(const std::string& name = {}) override;
  at::Tensor broadcast(at::Tensor tensor, int src = 0) override;
  std::string broadcast(const std::string& text, int src = 0) override;
  at::Tensor all_reduce(at::Tensor tensor, ReduceOp op = ReduceOp::sum) override;
  std::vector<at::Tensor> all_gather(const at::Tensor& tensor) override;
  bool reduce_boolean_decision(bool decision, bool all = true) override;

  void prepare_for_backward(bool sync) override;
  void finish_backward() override;
  void run_failed(const std::string& message) override;

  const GradSyncStats& grad_sync_stats() const { return stats_; }
  const DDPOptions& options() const { return options_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  c10::Device device_;
  int devices_;
  int num_nodes_;
  DDPOptions options_;
  GradSyncStats stats_;
};

}  // namespace hookline
