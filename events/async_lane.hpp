// hookline: the async lane, where observer-only subscribers run off the training thread.
//
// Each async subscription gets its own strand on a Boost.Asio thread pool, so one subscriber sees
// events in emission order and never runs concurrently with itself, while different subscribers
// may run in parallel. The queue is bounded: when `capacity` tasks are pending, a post either
// waits for room (WhenFull::block, back-pressure) or throws QueueFull (WhenFull::fail). Nothing is
// ever dropped. Tasks posted from inside the lane (an async subscriber that emits) skip the bound,
// so the lane cannot deadlock on itself.
//
// flush() waits until every task posted before it has run, then rethrows the first exception an
// async subscriber threw since the last flush (an async failure is never lost silently).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace hookline {

/// Thrown by AsyncLane::post when the queue is full and the lane was set to fail.
class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class AsyncLane {
 public:
  enum class WhenFull { block, fail };
  struct Options {
    std::size_t threads = 1;         ///< worker threads of the pool
    std::size_t capacity = 1 << 16;  ///< pending tasks before back-pressure
    WhenFull when_full = WhenFull::block;
  };

  /// One serial queue (one per async subscription).
  class Strand;

  AsyncLane();
  explicit AsyncLane(Options options);
  /// Runs every pending task, then stops the pool. Exceptions still pending are discarded.
  ~AsyncLane();
  AsyncLane(const AsyncLane&) = delete;
  AsyncLane& operator=(const AsyncLane&) = delete;

  std::shared_ptr<Strand> make_strand();
  /// Queues `task` on `strand`; blocks or throws QueueFull when the queue is full.
  /// `who` names the subscriber in error messages.
  void post(Strand& strand, std::function<void()> task, const std::string& who);
  /// Waits for every task posted so far; rethrows the first async failure since the last flush.
  void flush();

  const Options& options() const { return options_; }
  std::size_t pending() const;
  std::uint64_t completed() const;
  /// How many posts had to wait for room (back-pressure events).
  std::uint64_t waits() const;

 private:
  struct Pool;
  void finish_one();

  Options options_;
  std::unique_ptr<Pool> pool_;
  mutable std::mutex mutex_;
  std::condition_variable room_;  // signalled when pending drops below capacity
  std::condition_variable idle_;  // signalled when pending reaches zero
  std::size_t pending_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t waits_ = 0;
  std::exception_ptr failure_;
};

}  // namespace hookline
