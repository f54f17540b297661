#include "hookline/events/async_lane.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>

namespace hookline {

namespace {
thread_local const AsyncLane* tls_current_lane = nullptr;
}  // namespace

struct AsyncLane::Pool {
  explicit Pool(std::size_t threads) : pool(threads) {}
  boost::asio::thread_pool pool;
};

class AsyncLane::Strand {
 public:
  explicit Strand(boost::asio::thread_pool& pool) : strand(pool.get_executor()) {}
  boost::asio::strand<boost::asio::thread_pool::executor_type> strand;
};

AsyncLane::AsyncLane() : AsyncLane(Options{}) {}

AsyncLane::AsyncLane(Options options) : options_(options) {
  if (options_.threads == 0) throw std::invalid_argument("AsyncLane: threads must be at least 1");
  if (options_.capacity == 0) throw std::invalid_argument("AsyncLane: capacity must be at least 1");
  if (options_.max_bytes == 0)
    throw std::invalid_argument(
        "AsyncLane: max_bytes must be at least 1 (SIZE_MAX for no byte budget)");
  pool_ = std::make_unique<Pool>(options_.threads);
}

AsyncLane::~AsyncLane() {
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return pending_ == 0; });
  }
  pool_->pool.join();
}

std::shared_ptr<AsyncLane::Strand> AsyncLane::make_strand() {
  return std::make_shared<Strand>(pool_->pool);
}

void AsyncLane::post(Strand& strand, std::function<void()> task, const std::string& who) {
  {
    std::unique_lock lock(mutex_);
    if (pending_ >= options_.capacity && tls_current_lane != this) {
      if (options_.when_full == WhenFull::fail)
        throw QueueFull("async lane full (" + std::to_string(options_.capacity) +
                        " pending) when posting to '" + who +
                        "'; raise AsyncLane::Options::capacity or use WhenFull::block");
      ++waits_;
      room_.wait(lock, [&] { return pending_ < options_.capacity; });
    }
    ++pending_;
  }
  boost::asio::post(strand.strand, [this, task = std::move(task)]() mutable {
    const AsyncLane* previous = tls_current_lane;
    tls_current_lane = this;
    try {
      task();
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
    }
    // What the task holds (an event copy and its reservation) goes before the task counts as
    // done, so a flush or the destructor never returns while it is alive.
    task = nullptr;
    tls_current_lane = previous;
    finish_one();
  });
}

std::shared_ptr<void> AsyncLane::reserve(std::size_t bytes, const std::string& who) {
  {
    std::unique_lock lock(mutex_);
    const auto fits = [&] {
      return pending_bytes_ == 0 ||
             bytes <= options_.max_bytes - std::min(pending_bytes_, options_.max_bytes);
    };
    if (!fits() && tls_current_lane != this) {
      if (options_.when_full == WhenFull::fail)
        throw QueueFull("async lane over its byte budget (" + std::to_string(pending_bytes_) +
                        " of " + std::to_string(options_.max_bytes) + " bytes queued, " +
                        std::to_string(bytes) + " more) when posting to '" + who +
                        "'; raise AsyncLane::Options::max_bytes or use WhenFull::block");
      ++waits_;
      room_.wait(lock, fits);
    }
    pending_bytes_ += bytes;
  }
  // The handle owns nothing but the reservation; it points at the lane so that it tests true.
  return std::shared_ptr<void>(static_cast<void*>(this), [bytes](void* lane) {
    static_cast<AsyncLane*>(lane)->release(bytes);
  });
}

void AsyncLane::release(std::size_t bytes) {
  {
    std::lock_guard lock(mutex_);
    pending_bytes_ -= bytes;
  }
  room_.notify_all();
}

void AsyncLane::finish_one() {
  std::lock_guard lock(mutex_);
  --pending_;
  ++completed_;
  if (pending_ < options_.capacity) room_.notify_all();
  if (pending_ == 0) idle_.notify_all();
}

void AsyncLane::flush() {
  std::exception_ptr failure;
  {
    std::unique_lock lock(mutex_);
    if (tls_current_lane == this)
      throw std::logic_error(
          "AsyncLane::flush called from an async subscriber: it would wait for "
          "itself; flush from the emitting thread");
    idle_.wait(lock, [&] { return pending_ == 0; });
    std::swap(failure, failure_);
  }
  if (failure) std::rethrow_exception(failure);
}

std::size_t AsyncLane::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

std::size_t AsyncLane::pending_bytes() const {
  std::lock_guard lock(mutex_);
  return pending_bytes_;
}

std::uint64_t AsyncLane::completed() const {
  std::lock_guard lock(mutex_);
  return completed_;
}

std::uint64_t AsyncLane::waits() const {
  std::lock_guard lock(mutex_);
  return waits_;
}

}  // namespace hookline
