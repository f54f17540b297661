// hookline: the local launcher, which turns one process into the N processes of a CPU (or
// single-node GPU) DDP run, like Lightning's subprocess script launcher.
//
// The process that calls launch(n) becomes rank 0; it starts ranks 1..n-1 by running its own
// program again with the same arguments and torchrun's variables set (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT = a free port),
// so each of them reaches the same Trainer::fit and joins the process group there.
// - Children die with their parent (PR_SET_PDEATHSIG) and get the SIGTERM/SIGINT rank 0 gets.
//   Inside a run the trainer watches the signal on every rank and the ranks agree on the step to
//   stop at (all throw RunInterrupted there, rank 0 writes the exception checkpoint); outside a
//   run rank 0 ends the way the signal ends a process. Ranks that end by the signal (or exit
//   128 + it) after an interrupted run are not failures.
// - A rank that fails writes its error where the launcher finds it; the launcher then stops the
//   other ranks and rank 0's run fails with RankFailure ("rank 1 failed (exit code 1): ...")
//   within a bounded time, instead of waiting on a collective forever.
// - At exit, rank 0 waits for the other ranks, and exits non-zero if one of them failed.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace hookline {

/// Another rank of this run failed: its rank, exit status and error message.
class RankFailure : public std::runtime_error {
 public:
  RankFailure(int rank, int exit_code, const std::string& message);
  int rank() const { return rank_; }
  int exit_code() const { return exit_code_; }

 private:
  int rank_;
  int exit_code_;
};

namespace launcher {

/// Starts ranks 1..n-1 (n >= 2) and sets this process's environment to rank 0's. Throws
/// std::runtime_error when a process cannot be started.
void launch(int n);
/// Whether this process launched others.
bool launched();
/// The first failure of a launched rank seen so far; with `wait_seconds`, waits that long for one.
std::optional<RankFailure> failure(double wait_seconds = 0);
/// Records this process's error for the launcher (a launched rank calls it before it exits).
void report_error(int rank, const std::string& message);
/// Waits for the launched ranks to exit and removes the error directory
/// ($TMPDIR/hookline_ddp_*); returns the first failure, if any.
std::optional<RankFailure> wait_all();
/// The run was interrupted by `signal` (RunInterrupted): ranks stopped by it are not failures.
void interrupted(int signal);

}  // namespace launcher
}  // namespace hookline
