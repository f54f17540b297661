#include <hookline/core/data/worker_pool.hpp>

#include <stdexcept>
#include <utility>

namespace hookline::data::detail {

WorkerPool::WorkerPool(int workers, std::int64_t window, std::function<void(int)> init)
    : window_(window < 1 ? 1 : window) {
  threads_.reserve(static_cast<std::size_t>(workers));
  try {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w, init] { run(w, init); });
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    work_.notify_all();
    for (auto& thread : threads_) thread.join();
    throw;
  }
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    generation_.value.fetch_add(1);
    task_ = nullptr;
    results_.clear();
  }
  work_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void WorkerPool::start_pass(std::int64_t first, std::int64_t end, Task task,
                            const std::vector<int>& owners) {
  std::vector<std::vector<std::int64_t>> queues;
  if (!owners.empty()) {
    queues.resize(threads_.size());
    for (std::int64_t k = first; k < end; ++k)
      queues.at(static_cast<std::size_t>(owners.at(static_cast<std::size_t>(k)))).push_back(k);
  }
  {
    std::lock_guard lock(mutex_);
    queues_ = std::move(queues);
    queued_.assign(queues_.size(), 0);
    generation_.value.fetch_add(1);
    results_.clear();
    task_ = std::move(task);
    next_ = first;
    consumer_ = first;
    end_ = end;
  }
  work_.notify_all();
}

void WorkerPool::cancel() {
  Task old;  // destroyed outside the lock
  std::lock_guard lock(mutex_);
  generation_.value.fetch_add(1);
  results_.clear();
  old = std::move(task_);
  task_ = nullptr;
  next_ = end_ = consumer_ = 0;
  queues_.clear();
  queued_.clear();
}

std::int64_t WorkerPool::claimable(int worker) const {
  if (!task_) return -1;
  if (queues_.empty()) return next_ < end_ && next_ < consumer_ + window_ ? next_ : -1;
  const auto w = static_cast<std::size_t>(worker);
  if (queued_[w] >= queues_[w].size()) return -1;
  const std::int64_t k = queues_[w][queued_[w]];
  return k < consumer_ + window_ ? k : -1;
}

Batch WorkerPool::take(std::int64_t k, std::chrono::nanoseconds timeout,
                       const std::function<void()>& on_timeout, bool help) {
  std::unique_lock lock(mutex_);
  if (init_error_) std::rethrow_exception(init_error_);
  if (consumer_ != k) {  // the window slides to k
    consumer_ = k;
    work_.notify_all();
  }
  const auto has = [&] { return results_.count(k) != 0 || init_error_ != nullptr; };
  // Rather than wait, make the next unclaimed batch of the window here (the workers are busy).
  while (help && !has() && task_ && queues_.empty() && next_ < end_ &&
         next_ < consumer_ + window_) {
    const std::int64_t j = next_++;
    const std::uint64_t generation = generation_.value.load();
    Task task = task_;
    lock.unlock();
    Result result;
    static const std::function<bool()> never = [] { return false; };
    try {
      result.batch = task(j, -1, never);
    } catch (...) {
      result.error = std::current_exception();
    }
    task = nullptr;
    lock.lock();
    if (generation_.value.load() != generation)
      break;  // cannot happen: only the consumer drops passes
    results_.emplace(j, std::move(result));
  }
  if (timeout.count() > 0) {
    if (!ready_.wait_for(lock, timeout, has)) {
      lock.unlock();
      on_timeout();
      throw std::logic_error("WorkerPool::take: on_timeout returned");
    }
  } else {
    ready_.wait(lock, has);
  }
  if (init_error_) std::rethrow_exception(init_error_);
  auto node = results_.extract(k);
  consumer_ = k + 1;
  lock.unlock();
  work_.notify_all();
  if (node.mapped().error) std::rethrow_exception(node.mapped().error);
  return std::move(node.mapped().batch);
}

void WorkerPool::run(int worker, const std::function<void(int)>& init) {
  if (init) {
    try {
      init(worker);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!init_error_) init_error_ = std::current_exception();
      ready_.notify_all();
      return;
    }
  }
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [&] { return stop_ || claimable(worker) >= 0; });
    if (stop_) return;
    const std::int64_t k = claimable(worker);
    if (queues_.empty())
      ++next_;
    else
      ++queued_[static_cast<std::size_t>(worker)];
    const std::uint64_t generation = generation_.value.load();
    Task task = task_;  // a copy: the pass may be dropped while it runs
    lock.unlock();
    Result result;
    const std::function<bool()> cancelled = [&] { return generation_.value.load() != generation; };
    try {
      result.batch = task(k, worker, cancelled);
    } catch (...) {
      result.error = std::current_exception();
    }
    task = nullptr;
    lock.lock();
    if (generation_.value.load() == generation) {
      results_.emplace(k, std::move(result));
      ready_.notify_all();
    } else {
      lock.unlock();
      result = Result();  // a dropped pass's batch, freed outside the lock
      lock.lock();
    }
  }
}

}  // namespace hookline::data::detail
