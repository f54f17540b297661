// hookline: the base of the trace sinks, with the lock inside (as spdlog's base_sink<Mutex>):
// write() and flush() are final and take the sink's lock; a sink implements write_locked() and,
// if it buffers, flush_locked(), and locks with lock() in its other members.
#pragma once

#include "hookline/tracing/trace.hpp"

#include <mutex>

namespace hookline {

class LockedSink : public TraceSink {
 public:
  void write(const TraceRecord& record) final {
    Lock held(mutex_);
    write_locked(record, held);
  }
  void flush() final {
    Lock held(mutex_);
    flush_locked(held);
  }

 protected:
  using Lock = std::unique_lock<std::mutex>;
  /// Called with `held` locked; a sink may wait on it (a condition variable) or unlock it for a
  /// while, and must leave it locked.
  virtual void write_locked(const TraceRecord& record, Lock& held) = 0;
  virtual void flush_locked(Lock& held) { (void)held; }
  /// The sink's lock, for its other members (readers, destructor, threads of its own).
  Lock lock() const { return Lock(mutex_); }

 private:
  mutable std::mutex mutex_;
};

}  // namespace hookline
