// hookline: where a distributed run's processes learn who they are (Lightning's
// ClusterEnvironment): torchrun's variables, SLURM's, or none (a local launch to do).
//
// - torchrun (and hookline's own local launcher): RANK, WORLD_SIZE, LOCAL_RANK,
//   LOCAL_WORLD_SIZE, GROUP_RANK (node), MASTER_ADDR, MASTER_PORT.
// - SLURM (srun): SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID; MASTER_ADDR /
//   MASTER_PORT from the environment (default: 127.0.0.1 and a port derived from SLURM_JOB_ID).
// A set variable that is not a number, or a rank outside the world, throws std::runtime_error
// naming the variable.
#pragma once

#include <optional>
#include <string>

namespace hookline {

struct ClusterEnvironment {
  std::string source;  ///< "torchrun", "slurm"
  int world_size = 1;
  int global_rank = 0;
  int local_rank = 0;
  int local_world_size = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;

  /// The environment this process was started in, or nothing when no launcher set one.
  static std::optional<ClusterEnvironment> detect();
};

}  // namespace hookline
