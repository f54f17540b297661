// hookline: the threads behind DataLoader's num_workers (internal to the data layer).
//
// Contract: a pool of `workers` threads computes the batches of one pass at a time. A pass is a
// range [first, end) of batch numbers and a task that computes batch k; workers claim the numbers
// in increasing order, at most `window` ahead of the batch the consumer asks for next, and run the
// tasks in parallel. take(k) hands the batches out strictly in order k = first, first + 1, ...
// whatever worker computed them, so the result never depends on the worker count or on timing.
// A task's exception is kept and rethrown by the take() of its batch. A take() that would wait may
// help: the consumer's thread claims the next unclaimed batch of the window and computes it
// itself (as worker -1), then looks for its batch again; batches depend on k only, so this
// changes when a batch is made, never what it holds. start_pass() and cancel()
// drop the previous pass: its batches computed later are discarded, and a task still running can
// notice through `cancelled()` and return early. The destructor stops and joins every thread
// (waiting for tasks that are running to return).
#pragma once

#include <hookline/hooks/batch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace hookline::data::detail {

class WorkerPool {
 public:
  /// Computes batch `k` on worker `worker`; `cancelled()` turns true once the pass is dropped.
  using Task =
      std::function<Batch(std::int64_t k, int worker, const std::function<bool()>& cancelled)>;

  /// Starts `workers` threads; each first calls `init(worker_id)` (if set). An exception from
  /// `init` is rethrown by the next take().
  WorkerPool(int workers, std::int64_t window, std::function<void(int)> init);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Drops the current pass and starts computing batches [first, end) with `task`. With `owners`
  /// (one worker id per batch of [0, end)), batch k is computed by worker owners[k] only, each
  /// worker taking its batches in order (streams read by one thread); without, by any worker.
  void start_pass(std::int64_t first, std::int64_t end, Task task,
                  const std::vector<int>& owners = {});
  /// Drops the current pass (the workers go idle).
  void cancel();
  /// Batch `k` of the pass (the next in order), waiting for it up to `timeout` (zero: forever).
  /// Rethrows the task's exception; throws DataLoaderTimeout (see dataloader.hpp) through
  /// `on_timeout` when the wait runs out. With `help` (only for passes without owners), instead
  /// of waiting it computes unclaimed batches of the window itself.
  Batch take(std::int64_t k, std::chrono::nanoseconds timeout,
             const std::function<void()>& on_timeout, bool help = false);
  int workers() const { return static_cast<int>(threads_.size()); }

 private:
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };
  void run(int worker, const std::function<void(int)>& init);
  // Under the lock: the batch `worker` may compute now, or -1.
  std::int64_t claimable(int worker) const;

  std::mutex mutex_;
  std::condition_variable work_;   // workers wait for a batch to compute
  std::condition_variable ready_;  // the consumer waits for its batch
  std::vector<std::thread> threads_;
  // Bumped when a pass is dropped; read by running tasks for every sample, so on a cache line of
  // its own (the fields around it are written at every claim).
  struct alignas(64) Generation {
    std::atomic<std::uint64_t> value{0};
  };
  Generation generation_;
  bool stop_ = false;
  Task task_;
  std::int64_t next_ = 0;      // next batch to claim
  std::int64_t end_ = 0;       // end of the pass
  std::int64_t consumer_ = 0;  // next batch the consumer takes
  std::int64_t window_ = 1;
  std::vector<std::vector<std::int64_t>> queues_;  // with owners: each worker's batches, in order
  std::vector<std::size_t> queued_;                // with owners: each worker's next in its queue
  std::map<std::int64_t, Result> results_;
  std::exception_ptr init_error_;
};

}  // namespace hookline::data::detail
