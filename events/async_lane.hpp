// hookline: the async lane, where observer-only subscribers run off the training thread.
//
// Each async subscription gets its own strand on a Boost.Asio thread pool, so one subscriber sees
// events in emission order and never runs concurrently with itself, while different subscribers
// may run in parallel.
//
// The queue is bounded twice: by the number of pending tasks (`capacity`) and by the bytes the
// queued event copies keep alive (`max_bytes`). A queued copy holds everything in the event: for a
// hook event that carries a Batch, its tensors, which a slow observer would otherwise pile up one
// batch per step. The bus reserves approx_bytes(event) (event.hpp) for each copy before making it
// and gives them back when the last task holding the copy ends. When either bound is reached, a
// post or reservation waits for room (WhenFull::block, back-pressure on the emitting thread) or
// throws QueueFull (WhenFull::fail). A copy larger than the whole budget is let through when
// nothing else is reserved, so it cannot wait forever. Nothing accepted is dropped by the lane
// (the bus skips a queued call whose subscriber disconnected: see bus.hpp). Tasks posted and
// reservations made from inside the lane (an async subscriber that emits) skip both bounds, so
// the lane cannot deadlock on itself.
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
    std::size_t threads = 1;      ///< worker threads of the pool
    std::size_t capacity = 1024;  ///< pending tasks before back-pressure
    WhenFull when_full = WhenFull::block;
    std::size_t max_bytes = 64u << 20;  ///< bytes of queued event copies before back-pressure
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
  /// Reserves `bytes` of the byte budget, for an event copy that tasks will hold; blocks or
  /// throws QueueFull when they do not fit. The bytes are given back when the last copy of the
  /// returned handle is destroyed: let the tasks hold it (and this lane outlive them).
  std::shared_ptr<void> reserve(std::size_t bytes, const std::string& who);
  /// Waits for every task posted so far; rethrows the first async failure since the last flush.
  void flush();

  const Options& options() const { return options_; }
  std::size_t pending() const;
  /// Bytes reserved by handles still alive (queued event copies).
  std::size_t pending_bytes() const;
  std::uint64_t completed() const;
  /// How many posts and reservations had to wait for room (back-pressure events).
  std::uint64_t waits() const;

 private:
  struct Pool;
  void finish_one();
  void release(std::size_t bytes);

  Options options_;
  std::unique_ptr<Pool> pool_;
  mutable std::mutex mutex_;
  std::condition_variable room_;  // signalled when a task ends or bytes are given back
  std::condition_variable idle_;  // signalled when pending reaches zero
  std::size_t pending_ = 0;
  std::size_t pending_bytes_ = 0;
  std::uint64_t completed_ = 0;
  std::uint64_t waits_ = 0;
  std::exception_ptr failure_;
};

}  // namespace hookline
