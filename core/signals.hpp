// hookline: SIGTERM and SIGINT as a resumable stop.
//
// While a run is in progress (TrainerOptions::handle_signals, on by default) the trainer watches
// SIGTERM and SIGINT with a Boost.Asio signal_set. The handler only records the signal; every loop
// (training, validation, the sanity check, test, predict) looks at it at each batch boundary and
// then throws RunInterrupted. Like any exception in a run, it reaches on_exception first, so
// checkpoint callbacks that save on exceptions (OnExceptionCheckpoint) write a resumable
// checkpoint, and the async lane and checkpoint writes are flushed before fit() throws. A second
// SIGINT ends the process at once. Handlers installed before the run are called too, and are put
// back when the run ends.
//
//   try {
//     trainer.fit(model, data, "last");
//   } catch (const hookline::RunInterrupted& e) {
//     return 128 + e.signal();  // resumable: run again with ckpt_path "last"
//   }
#pragma once

#include <atomic>
#include <memory>
#include <stdexcept>

namespace hookline {

/// Thrown by a run stopped by a signal; the run's checkpoints are resumable.
class RunInterrupted : public std::runtime_error {
 public:
  explicit RunInterrupted(int signal);
  /// The signal that stopped the run (SIGTERM or SIGINT).
  int signal() const { return signal_; }

 private:
  int signal_;
};

/// Watches SIGTERM and SIGINT while it lives (one per run).
class SignalWatch {
 public:
  SignalWatch();
  ~SignalWatch();
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  /// The first signal received, or 0.
  int received() const { return received_.load(std::memory_order_relaxed); }

 private:
  struct Impl;
  std::atomic<int> received_{0};
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookline
