// hookline: the bus's internals (detail): one subscription (Entry), a channel's subscriptions and
// its flattened dispatch order (Channel, Snapshot), and the adapter that gives every handler one
// signature. Bus (bus.hpp) is the interface; nothing here is meant to be used directly.
#pragma once

#include "hookline/events/async_lane.hpp"
#include "hookline/events/dispatch_policy.hpp"
#include "hookline/events/event.hpp"
#include "hookline/events/filter.hpp"
#include "hookline/events/verdict.hpp"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace hookline {

namespace detail {

class Channel;
struct Registration;  // the Signals2 connection; defined in bus.cpp

// The non-template part of one subscription.
struct Entry {
  Entry();
  ~Entry();
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;
  /// Subscriptions alive in this process (connected, or still referenced by a snapshot, a
  /// Connection being disconnected or an async task): what subscription churn must not grow.
  static std::size_t alive();

  static constexpr std::uint32_t kDisconnected = 1;
  static constexpr std::uint32_t kBlockUnit = 2;

  SubscriptionInfo info;
  Filter filter;
  bool can_run_async = false;  // the handler takes the event by const reference (or nothing)
  bool returns_verdict = false;
  std::weak_ptr<const void> track;
  std::atomic<std::uint64_t> reached{0};  // emissions that reached it, for counting filters
  std::once_flag strand_once;
  std::shared_ptr<AsyncLane::Strand> strand;  // set once, on first async delivery
  // The async call in progress (its strand runs one at a time), for disconnect_and_wait.
  std::mutex call_mutex;
  std::condition_variable call_done;
  std::thread::id caller;  // the thread running it; empty when none runs
  std::weak_ptr<Channel> channel;
  std::unique_ptr<Registration> registration;
  // What every emission reads, last: next to TypedEntry's handler, so that an emission touches
  // one or two cache lines of the subscription, not four.
  bool filtered = false;
  bool tracked = false;
  std::atomic<std::uint32_t> state{0};  // kDisconnected | blocks * kBlockUnit
  // Calls the typed handler with the event at `event` (an E*): lets one untemplated loop serve
  // every event type (see Bus::emit_plain).
  Verdict (*invoke)(Entry& self, void* event) = nullptr;
};

template <class E>
struct TypedEntry final : Entry {
  TypedEntry() {
    invoke = [](Entry& self, void* event) {
      return static_cast<TypedEntry&>(self).handler(*static_cast<E*>(event));
    };
  }
  std::function<Verdict(E&)> handler;
};

// One element of a channel's flattened dispatch order.
struct Slot {
  std::shared_ptr<Entry> entry;
  Lane lane;
};

struct Snapshot {
  std::vector<Slot> slots;   // what an untraced emission calls
  std::vector<Slot> traced;  // what a traced one calls: slots and the only_when_traced ones
  bool has_async = false;    // some untraced slot is on the async lane
};

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  explicit Channel(const EventInfo& info);
  ~Channel();

  const EventInfo& info() const { return *info_; }
  // Number of slots an untraced emission calls in the current snapshot, or -1 when
  // subscriptions changed since.
  int hint() const { return hint_.load(std::memory_order_acquire); }
  // As hint(), without the slots marked runs_default.
  int wanted() const { return wanted_.load(std::memory_order_acquire); }
  // The current dispatch order, rebuilt first if stale.
  std::shared_ptr<const Snapshot> snapshot(const DispatchPolicy& policy);

  // The current dispatch order for one emission, without a lock or a reference count when it is
  // fresh: the channel counts its readers, and a snapshot replaced while any reader is inside
  // is kept (retired) until the count drops to zero.
  class Read {
   public:
    Read(Channel& channel, const DispatchPolicy& policy) : channel_(channel) {
      channel_.readers_.fetch_add(1, std::memory_order_seq_cst);
      snap_ = channel_.current_.load(std::memory_order_seq_cst);
      if (snap_ == nullptr) [[unlikely]] {
        // The rebuilt snapshot stays owned by the channel, or by retired_ once replaced: this
        // reader is already counted.
        try {
          snap_ = channel_.snapshot(policy).get();
        } catch (...) {  // e.g. a policy's error: this reader was never constructed
          channel_.readers_.fetch_sub(1, std::memory_order_seq_cst);
          throw;
        }
      }
    }
    ~Read() {
      if (channel_.readers_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
          channel_.has_retired_.load(std::memory_order_seq_cst)) [[unlikely]]
        channel_.reclaim();
    }
    Read(const Read&) = delete;
    Read& operator=(const Read&) = delete;
    const Snapshot& snapshot() const { return *snap_; }

   private:
    Channel& channel_;
    const Snapshot* snap_;
  };

  void add(const std::shared_ptr<Entry>& entry);
  void remove(Entry& entry);
  void invalidate();
  std::size_t disconnect_owner(const void* owner);
  /// The connected members `owner` subscribed.
  std::vector<std::shared_ptr<Entry>> owned_by(const void* owner) const;
  std::size_t disconnect_all();
  std::size_t size() const;
  std::vector<SubscriptionInfo> subscribers(const DispatchPolicy& policy);

 private:
  struct Registry;  // the Boost.Signals2 signal
  // Invokes the signal: collects the live slots in priority order and lets Signals2 drop the
  // disconnected and expired ones. Caller holds mutex_.
  void collect(std::vector<std::shared_ptr<Entry>>& out);
  const EventInfo* info_;
  std::unique_ptr<Registry> registry_;
  mutable std::mutex mutex_;
  bool stale_ = false;
  std::size_t dead_ = 0;  // disconnections since the signal last dropped its dead slots
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<std::shared_ptr<Entry>> members_;
  // The lock-free view of snapshot_ for Read: null while stale. Replaced snapshots wait in
  // retired_ while readers_ > 0 (an emission may still walk them). What every emission reads
  // (hint_, wanted_, current_, readers_, has_retired_) sits together.
  std::atomic<int> hint_{0};
  std::atomic<int> wanted_{0};
  std::atomic<const Snapshot*> current_{nullptr};
  std::atomic<int> readers_{0};
  std::atomic<bool> has_retired_{false};
  std::vector<std::shared_ptr<const Snapshot>> retired_;
  // Drops snapshot_ (caller holds mutex_), keeping it in retired_ while a reader may see it;
  // returns what can be destroyed now, for the caller to release after unlocking.
  std::shared_ptr<const Snapshot> retire();
  // Drops the lock-free view and publishes `count` as hint() and wanted(): -1 (unknown until the
  // next snapshot) or 0 (no members). Caller holds mutex_.
  void mark_stale(int count);
  void reclaim();
};

// A tracked object of `entry` expired: rebuild the snapshot so Signals2 drops the slot.
void expired(Entry& entry);

// One async call of a subscription, begun when its queued task starts. It does not run (false)
// if the subscription was disconnected or blocked since the emission queued it, or if a tracked
// object has expired; otherwise it holds the tracked object and counts as the running call, for
// Connection::disconnect_and_wait, until destroyed.
class AsyncCall {
 public:
  explicit AsyncCall(Entry& entry);
  ~AsyncCall();
  AsyncCall(const AsyncCall&) = delete;
  AsyncCall& operator=(const AsyncCall&) = delete;
  explicit operator bool() const { return running_; }

 private:
  Entry& entry_;
  std::shared_ptr<const void> alive_;
  bool running_ = false;
};
[[noreturn]] void throw_bad_verdict(const EventInfo& event, const Entry& entry, Action action);

template <class E, class F>
std::function<Verdict(E&)> adapt_handler(F&& f, Entry& entry) {
  using Fn = std::decay_t<F>;
  if constexpr (std::is_invocable_v<Fn&, E&>) {
    entry.can_run_async = std::is_invocable_v<Fn&, const E&>;
    using R = std::invoke_result_t<Fn&, E&>;
    entry.returns_verdict = std::is_same_v<R, Verdict>;
    if constexpr (std::is_same_v<R, Verdict>) {
      return std::function<Verdict(E&)>(std::forward<F>(f));
    } else {
      static_assert(std::is_void_v<R>, "a handler returns void or hookline::Verdict");
      return [fn = Fn(std::forward<F>(f))](E& e) mutable -> Verdict {
        fn(e);
        return {};
      };
    }
  } else {
    static_assert(std::is_invocable_v<Fn&>,
                  "a handler takes the event (E& or const E&) or nothing");
    entry.can_run_async = true;
    using R = std::invoke_result_t<Fn&>;
    entry.returns_verdict = std::is_same_v<R, Verdict>;
    if constexpr (std::is_same_v<R, Verdict>) {
      return [fn = Fn(std::forward<F>(f))](E&) mutable -> Verdict { return fn(); };
    } else {
      static_assert(std::is_void_v<R>, "a handler returns void or hookline::Verdict");
      return [fn = Fn(std::forward<F>(f))](E&) mutable -> Verdict {
        fn();
        return {};
      };
    }
  }
}

}  // namespace detail

}  // namespace hookline
