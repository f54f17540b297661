#include "hookline/strategies/ddp.hpp"

#include "hookline/core/signals.hpp"
#include "hookline/strategies/cluster_environment.hpp"
#include "hookline/strategies/launcher.hpp"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/nn/module.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#ifdef HOOKLINE_HAS_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace hookline {

namespace {

// The object collectives are called on: ProcessGroup in LibTorch 1.x, Backend from 2.0 on.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

// The process group of this process: made by the first DDP run, kept for the process's life
// (c10d cannot re-rendezvous on the same store cheaply, and later runs need the same peers).
struct Group {
  ClusterEnvironment env;
  std::string backend;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> collectives;
};

std::mutex g_group_mutex;
Group* g_group = nullptr;  // leaked on purpose: destroying c10d objects at exit can hang

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::max:
      return c10d::ReduceOp::MAX;
    case ReduceOp::min:
      return c10d::ReduceOp::MIN;
    default:
      return c10d::ReduceOp::SUM;
  }
}

}  // namespace

// ---- gradient buckets --------------------------------------------------------------------

struct DDPStrategy::Impl {
  Group* group = nullptr;
  int world = 1;

  struct Bucket {
    std::vector<std::size_t> params;  // indices into `params`
    std::size_t pending = 0;          // gradients still to come in this pass
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<at::Tensor> params;  // trainable parameters, in the module's order
  std::vector<std::size_t> bucket_of;
  std::vector<Bucket> buckets;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<std::uintptr_t> hook_keys;
  std::size_t next_launch = 0;
  bool syncing = false;
  std::int64_t launched = 0;

  void build_buckets(double first_mb, double cap_mb) {
    // Reverse order: gradients tend to arrive from the last layer to the first.
    buckets.clear();
    bucket_of.assign(params.size(), 0);
    double limit = first_mb * 1024 * 1024;
    double filled = 0;
    for (std::size_t k = params.size(); k-- > 0;) {
      const double bytes = static_cast<double>(params[k].numel() * params[k].element_size());
      if (buckets.empty() || (filled > 0 && filled + bytes > limit)) {
        if (!buckets.empty()) limit = cap_mb * 1024 * 1024;
        buckets.emplace_back();
        filled = 0;
      }
      buckets.back().params.push_back(k);
      bucket_of[k] = buckets.size() - 1;
      filled += bytes;
    }
  }

  void launch(std::size_t b) {
    Bucket& bucket = buckets[b];
    std::vector<at::Tensor> pieces;
    pieces.reserve(bucket.params.size());
    for (std::size_t k : bucket.params) {
      const at::Tensor& grad = params[k].grad();
      pieces.push_back(grad.defined() ? grad.reshape({-1})
                                      : at::zeros({params[k].numel()}, params[k].options()));
    }
    bucket.flat = at::cat(pieces);
    std::vector<at::Tensor> tensors{bucket.flat};
    bucket.work = group->collectives->allreduce(tensors);
    ++launched;
  }

  // Launches, in bucket order (the same on every rank), every bucket whose gradients are all in.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) launch(next_launch++);
  }

  void on_ready(std::size_t k) {
    if (!syncing) return;
    Bucket& bucket = buckets[bucket_of[k]];
    if (bucket.pending > 0) --bucket.pending;
    launch_ready();
  }

  void remove_hooks() {
    for (std::size_t k = 0; k < accumulators.size(); ++k)
      if (accumulators[k]) accumulators[k]->del_post_hook(hook_keys[k]);
    accumulators.clear();
    hook_keys.clear();
    params.clear();
    buckets.clear();
  }
};

// ---- the strategy --------------------------------------------------------------------------

DDPStrategy::DDPStrategy(c10::Device accelerator_device, int devices, int num_nodes,
                         DDPOptions options)
    : impl_(std::make_unique<Impl>()),
      device_(accelerator_device),
      devices_(devices),
      num_nodes_(num_nodes),
      options_(std::move(options)) {
  if (devices_ < 1) throw std::invalid_argument("DDP: devices must be >= 1");
  if (num_nodes_ < 1) throw std::invalid_argument("DDP: num_nodes must be >= 1");
  if (options_.bucket_cap_mb <= 0 || options_.first_bucket_mb <= 0)
    throw std::invalid_argument("DDP: bucket sizes must be > 0 MB");
  const std::string& backend = options_.process_group_backend;
  if (!backend.empty() && backend != "gloo" && backend != "nccl")
    throw std::invalid_argument("DDP: unknown process_group_backend '" + backend +
                                "'; use \"gloo\" (CPU) or \"nccl\" (CUDA)");
#ifndef HOOKLINE_HAS_NCCL
  if (backend == "nccl" || device_.is_cuda())
    throw std::invalid_argument(
        "DDP on CUDA needs NCCL, and this hookline was built against a LibTorch without it "
        "(Debian's libtorch-dev is CPU-only); build against an official CUDA LibTorch 2.x "
        "(cmake -DTorch_DIR=<libtorch>/share/cmake/Torch) or use the CPU with gloo");
#endif
}

DDPStrategy::~DDPStrategy() {
  impl_->remove_hooks();
}

c10::Device DDPStrategy::root_device() const {
  if (device_.is_cuda())
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank()));
  return device_;
}

int DDPStrategy::world_size() const {
  return impl_->group ? impl_->group->env.world_size : 1;
}
int DDPStrategy::global_rank() const {
  return impl_->group ? impl_->group->env.global_rank : 0;
}
int DDPStrategy::local_rank() const {
  return impl_->group ? impl_->group->env.local_rank : 0;
}
int DDPStrategy::node_rank() const {
  return impl_->group ? impl_->group->env.node_rank : 0;
}

namespace {

// Every rank says it reached the store. Rank 0 of a launched run waits for all of them while it
// watches the launcher, so a rank that dies before it joins (a HOOKLINE_TRACE it cannot open, a
// crash at startup) ends the run with that rank's error at once, instead of rank 0 waiting for
// the whole timeout.
void wait_for_ranks(c10d::Store& store, const ClusterEnvironment& env,
                    std::chrono::milliseconds timeout) {
  store.set("hookline_joined_" + std::to_string(env.global_rank), std::vector<std::uint8_t>{1});
  if (env.global_rank != 0 || !launcher::launched()) return;
  std::vector<std::string> keys;
  for (int rank = 0; rank < env.world_size; ++rank)
    keys.push_back("hookline_joined_" + std::to_string(rank));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!store.check(keys)) {
    if (auto failed = launcher::failure()) throw *failed;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error(
          "DDP: the other ranks did not join within the process group "
          "timeout (" +
          std::to_string(timeout.count()) + " ms)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

void DDPStrategy::setup_environment() {
  std::lock_guard lock(g_group_mutex);
  if (g_group == nullptr) {
    auto env = ClusterEnvironment::detect();
    if (!env) {
      if (num_nodes_ > 1)
        throw std::runtime_error(
            "DDP with num_nodes > 1 needs a launcher on every node: start the program with "
            "torchrun (RANK, WORLD_SIZE, MASTER_ADDR, ...) or srun");
      if (devices_ > 1) launcher::launch(devices_);
      env = ClusterEnvironment::detect();
      if (!env) {  // devices(1): a world of one, no launcher
        env = ClusterEnvironment{};
        env->source = "single process";
      }
    }
    if (env->world_size != devices_ * num_nodes_ && env->source != "single process")
      throw std::runtime_error("DDP: the environment (" + env->source +
                               ") has WORLD_SIZE=" + std::to_string(env->world_size) +
                               ", but devices(" + std::to_string(devices_) + ") x num_nodes(" +
                               std::to_string(num_nodes_) +
                               ") = " + std::to_string(devices_ * num_nodes_) +
                               "; make them agree (or leave devices to the launcher)");
    auto group = std::make_unique<Group>();
    group->env = *env;
    group->backend = options_.process_group_backend.empty() ? (device_.is_cuda() ? "nccl" : "gloo")
                                                            : options_.process_group_backend;
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(env->master_port);
    store_options.isServer = env->global_rank == 0;
    store_options.numWorkers = env->world_size;
    // Launched ranks are waited for below, watching the launcher for one that dies first.
    store_options.waitWorkers = !launcher::launched();
    store_options.timeout = options_.timeout;
    group->store = c10::make_intrusive<c10d::TCPStore>(env->master_addr, store_options);
    wait_for_ranks(*group->store, *env, options_.timeout);
    if (group->backend == "gloo") {
      auto gloo = c10d::ProcessGroupGloo::Options::create(options_.timeout);
      const bool loopback = env->master_addr == "127.0.0.1" || env->master_addr == "localhost";
      gloo->devices.push_back(loopback
                                  ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                  : c10d::ProcessGroupGloo::createDefaultDevice());
      group->collectives = c10::make_intrusive<c10d::ProcessGroupGloo>(
          group->store, env->global_rank, env->world_size, gloo);
    } else {
#ifdef HOOKLINE_HAS_NCCL
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = options_.timeout;
      group->collectives = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          group->store, env->global_rank, env->world_size, nccl);
#endif
    }
    g_group = group.release();
  }
  impl_->group = g_group;
  impl_->world = g_group->env.world_size;
}

void DDPStrategy::setup_module(torch::nn::Module& module) {
  impl_->remove_hooks();
  if (impl_->group == nullptr) return;
  // Every rank starts from rank 0's weights and buffers.
  {
    at::NoGradGuard no_grad;
    for (auto& p : module.parameters()) broadcast(p.data());
    for (auto& b : module.buffers()) broadcast(b);
  }
  for (auto& p : module.parameters())
    if (p.requires_grad()) impl_->params.push_back(p);
  impl_->build_buckets(options_.first_bucket_mb, options_.bucket_cap_mb);
  Impl* impl = impl_.get();
  for (std::size_t k = 0; k < impl_->params.size(); ++k) {
    auto accumulator = torch::autograd::impl::grad_accumulator(impl_->params[k]);
    if (!accumulator) throw std::logic_error("DDP: a trainable parameter has no grad accumulator");
    const auto key =
        accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [impl, k](const torch::autograd::variable_list& outputs,
                      const torch::autograd::variable_list&) {
              impl->on_ready(k);
              return outputs;
            }));
    impl_->accumulators.push_back(std::move(accumulator));
    impl_->hook_keys.push_back(key);
  }
}

void DDPStrategy::teardown_module() {
  impl_->remove_hooks();
}

void DDPStrategy::barrier(const std::string& name) {
  if (world_size() < 2) return;
  try {
    impl_->group->collectives->barrier()->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error("DDP barrier" + (name.empty() ? std::string() : " '" + name + "'") +
                             " failed: " + e.what());
  }
}

at::Tensor DDPStrategy::broadcast(at::Tensor tensor, int src) {
  if (world_size() < 2) return tensor;
  std::vector<at::Tensor> tensors{tensor};
  c10d::BroadcastOptions options;
  options.rootRank = src;
  impl_->group->collectives->broadcast(tensors, options)->wait();
  return tensor;
}

std::string DDPStrategy::broadcast(const std::string& text, int src) {
  if (world_size() < 2) return text;
  at::Tensor size = at::tensor({static_cast<std::int64_t>(text.size())}, at::kLong);
  broadcast(size, src);
  at::Tensor bytes = at::empty({size.item<std::int64_t>()}, at::kByte);
  if (global_rank() == src) std::copy(text.begin(), text.end(), bytes.data_ptr<std::uint8_t>());
  broadcast(bytes, src);
  const auto* data = bytes.data_ptr<std::uint8_t>();
  return std::string(data, data + bytes.numel());
}

at::Tensor DDPStrategy::all_reduce(at::Tensor tensor, ReduceOp op) {
  if (world_size() < 2) return tensor;
  std::vector<at::Tensor> tensors{tensor};
  c10d::AllreduceOptions options;
  options.reduceOp = to_c10d(op);
  impl_->group->collectives->allreduce(tensors, options)->wait();
  if (op == ReduceOp::mean) tensor.div_(world_size());
  return tensor;
}

std::vector<at::Tensor> DDPStrategy::all_gather(const at::Tensor& tensor) {
  if (world_size() < 2) return {tensor};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world_size(); ++r) out[0].push_back(at::empty_like(tensor));
  std::vector<at::Tensor> in{tensor.contiguous()};
  impl_->group->collectives->allgather(out, in)->wait();
  return out[0];
}

bool DDPStrategy::reduce_boolean_decision(bool decision, bool all) {
  if (world_size() < 2) return decision;
  at::Tensor votes = at::tensor({decision ? 1 : 0}, at::kInt);
  all_reduce(votes, ReduceOp::sum);
  const int yes = votes.item<int>();
  return all ? yes == world_size() : yes > 0;
}

void DDPStrategy::prepare_for_backward(bool sync) {
  Impl& impl = *impl_;
  impl.syncing = sync && world_size() > 1 && !impl.buckets.empty();
  if (!impl.syncing) {
    ++stats_.skipped;
    return;
  }
  for (auto& bucket : impl.buckets) {
    bucket.pending = bucket.params.size();
    bucket.work.reset();
  }
  impl.next_launch = 0;
  impl.launched = 0;
}

void DDPStrategy::finish_backward() {
  Impl& impl = *impl_;
  if (!impl.syncing) return;
  impl.syncing = false;
  // Parameters that got no gradient this pass still take part (as zeros), in bucket order.
  for (auto& bucket : impl.buckets) bucket.pending = 0;
  impl.launch_ready();
  const auto started = std::chrono::steady_clock::now();
  const double scale = 1.0 / world_size();
  for (auto& bucket : impl.buckets) {
    bucket.work->wait();
    bucket.flat.mul_(scale);
    std::int64_t offset = 0;
    for (std::size_t k : bucket.params) {
      at::Tensor& param = impl.params[k];
      const std::int64_t n = param.numel();
      at::Tensor averaged = bucket.flat.narrow(0, offset, n).view(param.sizes());
      if (param.grad().defined())
        param.mutable_grad().copy_(averaged);
      else
        param.mutable_grad() = averaged.clone();
      offset += n;
    }
    bucket.flat = at::Tensor();
    bucket.work.reset();
  }
  stats_.wait_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stats_.buckets += impl.launched;
  ++stats_.backward_passes;
}

// A rank other than 0 leaves its error for the launcher; rank 0, when the failure came from
// another rank (its collective broke), fails with that rank's error instead. A run interrupted
// by a signal is no failure: every rank stopped at the same agreed step (SignalConnector), rank
// 0's launcher then takes the ranks that end by that signal as stopped, not failed.
void DDPStrategy::run_failed(const std::string& message) {
  try {
    if (const auto error = std::current_exception()) std::rethrow_exception(error);
  } catch (const RunInterrupted& interrupted) {
    launcher::interrupted(interrupted.signal());
    return;
  } catch (...) {
  }
  if (!is_global_zero()) {
    launcher::report_error(global_rank(), message);
    return;
  }
  if (!launcher::launched()) return;
  if (auto other = launcher::failure(5.0)) throw *other;
}

}  // namespace hookline
