#include "hookline/core/defaults.hpp"

#include "hookline/core/trainer_options.hpp"
#include "hookline/strategies/cluster_environment.hpp"
#include "hookline/strategies/ddp.hpp"

#include <ATen/Context.h>
#include <c10/core/DeviceType.h>

#include <stdexcept>
#include <string>

namespace hookline {

namespace {

// Checked when the Trainer is built, before any hook: LibTorch's own error would come only when
// the module is moved, after setup, prepare_data and configure_model ran.
void check_device_exists(const c10::Device& device) {
  if (device.is_cpu()) return;
  const std::string name = "TrainerOptions::device(\"" + device.str() + "\")";
  if (!device.is_cuda())
    throw std::invalid_argument(name + ": hookline runs on \"cpu\" and \"cuda:N\" devices only");
  if (!at::hasCUDA())
    throw std::invalid_argument(name + ": this LibTorch has no CUDA (a CPU-only build, or no " +
                                "GPU driver); use device(\"cpu\"), or a CUDA build of LibTorch " +
                                "on a machine with a GPU");
  const int count = static_cast<int>(at::getNumGPUs());
  if (device.has_index() && device.index() >= count)
    throw std::invalid_argument(name + ": this machine has " + std::to_string(count) +
                                " CUDA device(s) (cuda:0 to cuda:" + std::to_string(count - 1) +
                                "); pick one of them");
}

}  // namespace

std::shared_ptr<Strategy> make_strategy(const TrainerOptions& options) {
  c10::Device device = options.device();
  if (options.accelerator() == "cuda" && !device.is_cuda()) device = c10::Device(c10::kCUDA, 0);
  if (options.accelerator() == "cpu" && !device.is_cpu())
    throw std::invalid_argument("TrainerOptions: accelerator \"cpu\" but device " + device.str() +
                                "; leave one of them to the other");
  check_device_exists(device);
  const std::int64_t processes = options.devices() * options.num_nodes();
  bool ddp = options.strategy() == "ddp";
  if (options.strategy() == "auto") {
    if (processes > 1) ddp = true;
    // Started by torchrun / srun with several processes: DDP without being asked.
    if (auto env = ClusterEnvironment::detect(); env && env->world_size > 1) ddp = true;
  }
  if (!ddp) return std::make_shared<SingleDeviceStrategy>(device);
  DDPOptions ddp_options;
  ddp_options.timeout = options.process_group_timeout();
  int devices = static_cast<int>(options.devices());
  int nodes = static_cast<int>(options.num_nodes());
  // A launcher that set the world decides the process count when devices was left at 1.
  if (auto env = ClusterEnvironment::detect(); env && processes == 1 && env->world_size > 1) {
    devices = env->local_world_size;
    nodes = env->world_size / std::max(1, env->local_world_size);
  }
  return std::make_shared<DDPStrategy>(device, devices, nodes, ddp_options);
}

}  // namespace hookline
