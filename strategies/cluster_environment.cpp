#include "hookline/strategies/cluster_environment.hpp"

#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace hookline {

namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

int env_int(const char* name, int fallback) {
  const auto text = env(name);
  if (!text) return fallback;
  int out = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), out);
  if (ec != std::errc() || end != text->data() + text->size() || out < 0)
    throw std::runtime_error(std::string("environment variable ") + name + "='" + *text +
                             "' is not a non-negative integer");
  return out;
}

void check(const ClusterEnvironment& e) {
  if (e.world_size < 1 || e.global_rank >= e.world_size)
    throw std::runtime_error("distributed environment (" + e.source + "): rank " +
                             std::to_string(e.global_rank) + " is outside a world of " +
                             std::to_string(e.world_size));
  if (e.local_rank >= e.local_world_size)
    throw std::runtime_error("distributed environment (" + e.source + "): local rank " +
                             std::to_string(e.local_rank) + " is outside " +
                             std::to_string(e.local_world_size) + " local processes");
  if (e.master_port < 1 || e.master_port > 65535)
    throw std::runtime_error("MASTER_PORT=" + std::to_string(e.master_port) + " is not a TCP port");
}

}  // namespace

std::optional<ClusterEnvironment> ClusterEnvironment::detect() {
  ClusterEnvironment e;
  if (env("RANK") && env("WORLD_SIZE")) {
    e.source = "torchrun";
    e.global_rank = env_int("RANK", 0);
    e.world_size = env_int("WORLD_SIZE", 1);
    e.local_rank = env_int("LOCAL_RANK", e.global_rank);
    e.local_world_size = env_int("LOCAL_WORLD_SIZE", e.world_size);
    e.node_rank = env_int("GROUP_RANK", 0);
  } else if (env("SLURM_PROCID") && env("SLURM_NTASKS")) {
    e.source = "slurm";
    e.global_rank = env_int("SLURM_PROCID", 0);
    e.world_size = env_int("SLURM_NTASKS", 1);
    e.local_rank = env_int("SLURM_LOCALID", 0);
    e.local_world_size = env_int("SLURM_NTASKS_PER_NODE", e.world_size);
    e.node_rank = env_int("SLURM_NODEID", 0);
    e.master_port = 10000 + env_int("SLURM_JOB_ID", 0) % 20000;
  } else {
    return std::nullopt;
  }
  if (auto addr = env("MASTER_ADDR")) e.master_addr = *addr;
  e.master_port = env_int("MASTER_PORT", e.master_port);
  check(e);
  return e;
}

}  // namespace hookline
