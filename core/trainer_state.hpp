// hookline: where a Trainer's run is (Lightning's TrainerState and the flags its loops set).
#pragma once

#include "hookline/core/metrics.hpp"
#include "hookline/hooks/hooks.hpp"

#include <atomic>
#include <optional>
#include <string>

namespace hookline {

/// Where a run is: Lightning's TrainerStatus.
enum class Status { initializing, running, finished, interrupted };

/// The run's stage and what its loops are doing; owned by the Trainer, shared with its loops.
struct TrainerState {
  Status status = Status::initializing;
  Stage stage = Stage::none;         ///< the running stage; none between runs, as Lightning's None
  std::atomic<bool> running{false};  // read by add_pack on other threads
  bool training = false;
  bool sanity_checking = false;
  bool validating = false;
  bool should_stop = false;
  std::string stop_reason;  ///< who asked the run to stop, and why

  void set_should_stop(bool stop, std::string reason) {
    should_stop = stop;
    stop_reason = stop ? std::move(reason) : std::string();
  }
  /// The phase log() records into (Lightning's results of the running loop).
  Phase logging_phase() const {
    if (sanity_checking || validating || stage == Stage::validate) return Phase::validation;
    if (stage == Stage::test) return Phase::test;
    return Phase::train;
  }
  /// Lightning's trainer._active_loop: whose results the metric properties merge.
  std::optional<Phase> active_phase() const {
    if (!running) return std::nullopt;
    if (training) return Phase::train;
    if (sanity_checking || validating || stage == Stage::validate) return Phase::validation;
    if (stage == Stage::test) return Phase::test;
    return std::nullopt;
  }
};

}  // namespace hookline
