// hookline: the typed event bus.
//
// One channel per event type. The subscriptions of a channel live in a Boost.Signals2 signal,
// which owns their order (integer groups = priorities, ties in registration order), connections,
// blocking and tracking. Emissions do not go through Signals2's invocation machinery: the bus
// flattens the signal's current slots into a snapshot (ordered by the DispatchPolicy) when the
// subscriptions change, and an emission walks that snapshot. So subscribing stays Signals2, and an
// emission costs about as much as a loop of std::function calls.
//
// Rules an emission follows:
//   - Sync subscribers run in the emitting thread, in dispatch order; their verdicts fold into the
//     returned Outcome (strongest action wins, first in order keeps the credit). An exception from
//     a sync subscriber propagates out of emit() at once; later subscribers are not called.
//   - Async subscribers get a copy of the event on their own strand (see async_lane.hpp); they
//     observe and cannot veto. One copy serves every async subscriber of an emission.
//   - Subscribing during an emission (from a handler or another thread) takes effect from the
//     next emission. Disconnecting or blocking takes effect at once: a subscriber not yet reached
//     by a running emission is skipped, and so is a queued async call that has not started (it is
//     checked when it starts). A handler already running in another thread is not interrupted:
//     an owner that dies disconnects first with Connection::disconnect_and_wait (or uses `track`).
//   - A tracked subscriber runs only while its tracked object lives: each call, sync or async,
//     locks it for its duration, and a call (or queued async call) finding it expired is skipped.
//   - What a queued async call keeps alive until it runs or is skipped: the event's copy (every
//     member, so the tensors of a Batch it carries), and the subscription's handler with whatever
//     it captured. Not what the event points to: raw pointers (trainer, module) are not owned.
//     The lane bounds both the number of queued calls and the bytes of queued copies, by
//     approx_bytes(event) (event.hpp): see AsyncLane::Options.
//   - With no subscribers and no tracer, emit() returns after two loads; use wants<E>() or
//     emit_new<E>(...) to skip building the payload too.
#pragma once

#include "hookline/events/async_lane.hpp"
#include "hookline/events/bands.hpp"
#include "hookline/events/channel.hpp"
#include "hookline/events/dispatch_policy.hpp"
#include "hookline/events/event.hpp"
#include "hookline/events/filter.hpp"
#include "hookline/events/tracer.hpp"
#include "hookline/events/verdict.hpp"

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace hookline {

/// How to subscribe. Chainable: `SubscribeOptions().named("ckpt").priority(band::checkpoint)`;
/// each setter has a getter of the same name (`options.priority()`).
class SubscribeOptions {
 public:
  SubscribeOptions& named(std::string name) {
    name_ = std::move(name);
    return *this;
  }
  const std::string& name() const { return name_; }
  SubscribeOptions& priority(int p) {
    priority_ = p;
    return *this;
  }
  int priority() const { return priority_; }
  SubscribeOptions& lane(Lane l) {
    lane_ = l;
    return *this;
  }
  Lane lane() const { return lane_; }
  /// Called only while a tracer is attached: for a handler that does nothing (a hook left at its
  /// default), which a trace should still show but an untraced emission need not call.
  SubscribeOptions& only_when_traced(bool on) {
    only_when_traced_ = on;
    return *this;
  }
  bool only_when_traced() const { return only_when_traced_; }
  /// The handler does what the emitter does itself when nobody else listens: a hook left at a
  /// default that has work (backward, optimizer_step, ...). It is called like any other
  /// subscriber, but Bus::wants<E>() does not count it, so an emitter that asks audience<E>()
  /// first can run the default directly and skip the emission. The Trainer does so for its hook
  /// events, running its module's default: only the module's own hooks are marked so there.
  SubscribeOptions& runs_default(bool on) {
    runs_default_ = on;
    return *this;
  }
  bool runs_default() const { return runs_default_; }
  /// Groups subscriptions so Bus::disconnect_owner(owner) removes them together.
  SubscribeOptions& owner(const void* o) {
    owner_ = o;
    return *this;
  }
  const void* owner() const { return owner_; }
  SubscribeOptions& filter(Filter f) {
    filter_ = std::move(f);
    return *this;
  }
  const Filter& filter() const { return filter_; }
  /// Disconnects automatically once `object` has expired (Signals2 tracking). Each call locks
  /// `object` for its duration; an async call whose object expired while it was queued is skipped.
  SubscribeOptions& track(std::weak_ptr<const void> object) {
    track_ = std::move(object);
    return *this;
  }
  /// The tracked object, if track() was called.
  const std::optional<std::weak_ptr<const void>>& track() const { return track_; }

 private:
  std::string name_ = "anonymous";
  int priority_ = band::callback;
  Lane lane_ = Lane::sync;
  const void* owner_ = nullptr;
  Filter filter_;
  std::optional<std::weak_ptr<const void>> track_;
  bool only_when_traced_ = false;
  bool runs_default_ = false;
};

/// Handle on one subscription. Copyable; does not disconnect when destroyed (see ScopedConnection).
class Connection {
 public:
  Connection() = default;
  /// Removes the subscription. Safe to call twice, from a handler, or from another thread. Once
  /// it returns, no call of the subscriber starts: async calls still queued are skipped. An async
  /// call that had already started may still be running on the lane: see disconnect_and_wait.
  void disconnect();
  /// disconnect(), then waits until no async call of the subscriber is running: after it, the
  /// handler is not running and will not run again, so its owner may die. Called from inside that
  /// subscriber's own async call, it disconnects and returns false at once without waiting (the
  /// running call is the caller's: it ends when the handler returns); otherwise returns true.
  /// Two async handlers waiting so for each other deadlock, as two threads joining each other do.
  bool disconnect_and_wait();
  bool connected() const;
  /// Blocks the subscriber until `unblock()`; blocks nest (two blocks need two unblocks).
  void block();
  void unblock();
  bool blocked() const;
  /// Name, priority, lane, owner and registration serial (empty info once disconnected).
  SubscriptionInfo info() const;

 private:
  friend class Bus;
  friend class detail::Channel;
  explicit Connection(std::weak_ptr<detail::Entry> entry) : entry_(std::move(entry)) {}
  static void disconnect_entry(detail::Entry& entry);
  std::weak_ptr<detail::Entry> entry_;
};

/// Disconnects when destroyed. Movable, not copyable.
class ScopedConnection {
 public:
  ScopedConnection() = default;
  ScopedConnection(Connection c) : connection_(std::move(c)) {}  // NOLINT: implicit by design
  ~ScopedConnection() { connection_.disconnect(); }
  ScopedConnection(ScopedConnection&&) noexcept = default;
  ScopedConnection& operator=(ScopedConnection&& other) noexcept {
    if (this != &other) {
      connection_.disconnect();
      connection_ = std::move(other.connection_);
      other.connection_ = Connection();
    }
    return *this;
  }
  ScopedConnection(const ScopedConnection&) = delete;
  ScopedConnection& operator=(const ScopedConnection&) = delete;
  const Connection& connection() const { return connection_; }
  /// Gives up ownership: the subscription stays.
  Connection release() { return std::exchange(connection_, Connection()); }

 private:
  Connection connection_;
};

/// Blocks a subscription for its lifetime (like Signals2's shared_connection_block).
class BlockGuard {
 public:
  explicit BlockGuard(Connection c) : connection_(std::move(c)) { connection_.block(); }
  ~BlockGuard() { connection_.unblock(); }
  BlockGuard(const BlockGuard&) = delete;
  BlockGuard& operator=(const BlockGuard&) = delete;

 private:
  Connection connection_;
};

class Sink;

class Bus {
 public:
  struct Options {
    std::shared_ptr<const DispatchPolicy> policy;  ///< default: LightningOrder
    AsyncLane::Options async;                      ///< the async lane (created on first use)
  };

  Bus();
  explicit Bus(Options options);
  /// Runs pending async work, then disconnects everything.
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  /// Subscribes `handler` to E. The handler takes `E&`, `const E&` or nothing and returns void
  /// or Verdict. Async subscribers must take `const E&` (or nothing).
  template <Event E, class F>
  Connection on(F&& handler, SubscribeOptions options = {}) {
    auto entry = std::make_shared<detail::TypedEntry<E>>();
    entry->handler = detail::adapt_handler<E>(std::forward<F>(handler), *entry);
    return attach(event_info<E>(), std::move(entry), std::move(options));
  }

  /// Who an emission of E would reach, for an emitter that can run the defaults itself.
  enum class Audience {
    nobody,    ///< no subscriber would be called, and no tracer watches
    defaults,  ///< only subscribers marked runs_default
    others,    ///< the tracer, or some subscriber not marked runs_default
  };
  template <Event E>
  Audience audience() const {
    if (tracer_raw_.load(std::memory_order_acquire) != nullptr) return Audience::others;
    const detail::Channel* ch = channels_[event_id<E>()].load(std::memory_order_acquire);
    if (ch == nullptr) return Audience::nobody;
    if (ch->wanted() != 0) return Audience::others;  // -1 (changed since) counts as others
    return ch->hint() != 0 ? Audience::defaults : Audience::nobody;
  }

  /// Whether an emission of E would reach the tracer or a subscriber not marked runs_default.
  /// When false, emitting E would at most run defaults the emitter can run itself.
  template <Event E>
  bool wants() const {
    return audience<E>() == Audience::others;
  }

  /// Emits `event` and folds the sync subscribers' verdicts.
  template <Event E>
  Outcome emit(E& event) {
    return emit_any(any(event));
  }
  template <Event E>
  requires(!std::is_lvalue_reference_v<E>) Outcome emit(E&& event) {
    E local = std::move(event);
    return emit(local);
  }

  /// Builds E from `args` only if an emission would reach anyone, then emits it.
  template <Event E, class... Args>
  Outcome emit_new(Args&&... args) {
    if (audience<E>() == Audience::nobody) return {};
    E event{std::forward<Args>(args)...};
    return emit(event);
  }

  /// Removes every subscription made with `SubscribeOptions::owner(owner)`; returns how many.
  std::size_t disconnect_owner(const void* owner);
  /// The subscriptions made with `SubscribeOptions::owner(owner)` (e.g. to block them together).
  std::vector<Connection> connections(const void* owner);
  /// Removes every subscription of every event type.
  std::size_t disconnect_all();

  /// Connected, unblocked subscribers of E, in dispatch order with their effective lanes (those
  /// called only when traced included: see SubscriptionInfo::only_when_traced).
  template <Event E>
  std::vector<SubscriptionInfo> subscribers() {
    detail::Channel* ch = channels_[event_id<E>()].load(std::memory_order_acquire);
    return ch ? ch->subscribers(*policy_) : std::vector<SubscriptionInfo>{};
  }
  template <Event E>
  std::size_t subscriber_count() const {
    const detail::Channel* ch = channels_[event_id<E>()].load(std::memory_order_acquire);
    return ch ? ch->size() : 0;
  }

  /// Replaces the dispatch policy; takes effect at the next emission of each event type.
  /// Call it while nothing emits.
  void set_policy(std::shared_ptr<const DispatchPolicy> policy);
  const DispatchPolicy& policy() const { return *policy_; }

  /// The process rank, for Filter::rank_zero (set by the strategy). Default 0.
  void set_rank(int rank) { rank_.store(rank, std::memory_order_relaxed); }
  int rank() const { return rank_.load(std::memory_order_relaxed); }

  /// Attaches (or, with nullptr, detaches) the trace interceptor. Set it while nothing emits.
  void set_tracer(std::shared_ptr<Tracer> tracer);
  std::shared_ptr<Tracer> tracer() const { return tracer_; }

  /// Waits for the async lane; rethrows the first async subscriber failure since the last flush.
  void flush();
  /// The async lane (created on first use).
  AsyncLane& async_lane();

  /// A subscribe-only view of this bus, tagging subscriptions with `owner` (and, where a
  /// subscription does not set them, `name` and `priority`).
  Sink sink(const void* owner = nullptr, std::string name = {}, std::optional<int> priority = {});

 private:
  friend class HookEmitter;

  // Every emission goes through one untemplated function, emit_any: the code of a training
  // step's 14 emissions is one copy, which stays in the instruction cache, instead of one per
  // event type. The event's type is needed only to trace it and to copy it for the async lane.
  using TypedDispatch = Outcome (*)(Bus& bus, const detail::Snapshot& snap, void* event);
  using TypedTraced = Outcome (*)(Bus& bus, detail::Channel* ch, void* event, Tracer& tracer);
  /// An event seen through its address, with the typed operations emit_any may need.
  struct AnyEvent {
    std::size_t id;
    void* event;
    TypedDispatch dispatch;  // a sync and async dispatch (some slot is on the async lane)
    TypedTraced traced;      // a traced emission
  };
  template <Event E>
  static AnyEvent any(E& event) {
    return {event_id<E>(), &event, &dispatch_erased<E>, &traced_erased<E>};
  }
  /// emit(event), for `any(event)`. Private: the bus's public face emits typed events; the
  /// trainer's HookEmitter (core/hook_emitter.hpp) keeps one untyped path for all its hooks.
  Outcome emit_any(const AnyEvent& e);
  Connection attach(const EventInfo& info, std::shared_ptr<detail::Entry> entry,
                    SubscribeOptions options);
  detail::Channel& channel(const EventInfo& info);
  void post_async(detail::Entry& entry, std::function<void()> task);

  // An untraced emission: sync subscribers called through Entry::invoke.
  Outcome emit_plain(detail::Channel& ch, void* event, TypedDispatch typed);
  template <class E>
  static Outcome dispatch_erased(Bus& bus, const detail::Snapshot& snap, void* event) {
    return bus.dispatch(snap, *static_cast<E*>(event), nullptr, 0);
  }
  template <class E>
  static Outcome traced_erased(Bus& bus, detail::Channel* ch, void* event, Tracer& tracer) {
    return bus.emit_traced(ch, *static_cast<E*>(event), tracer);
  }

  template <class E>
  Outcome emit_traced(detail::Channel* ch, E& event, Tracer& tracer) {
    const std::uint64_t seq = seq_.fetch_add(1, std::memory_order_relaxed) + 1;
    tracer.on_emit(event_info<E>(), &event, seq);
    Outcome out;
    if (ch != nullptr) {  // hint() does not count only_when_traced subscribers
      const detail::Channel::Read read(*ch, *policy_);
      out = dispatch(read.snapshot(), event, &tracer, seq);
    }
    tracer.on_emit_end(event_info<E>(), seq, out);
    return out;
  }

  template <class E>
  Outcome dispatch(const detail::Snapshot& snap, E& event, Tracer* tracer, std::uint64_t seq) {
    Outcome out;
    Folding folding;
    std::shared_ptr<const E> copy;  // one copy for every async subscriber of this emission
    std::weak_ptr<void> charge;     // its share of the lane's byte budget, held by the tasks
    const int rank = rank_.load(std::memory_order_relaxed);
    for (const detail::Slot& slot : tracer != nullptr ? snap.traced : snap.slots) {
      detail::Entry& entry = *slot.entry;
      std::shared_ptr<const void> alive;
      if (!takes(entry, &event, rank, alive)) continue;
      auto& handler = static_cast<detail::TypedEntry<E>&>(entry).handler;
      if (slot.lane == Lane::async) {
        std::shared_ptr<void> held = charge.lock();
        if (!held) {  // the first async slot, or every task holding the copy has ended
          held = async_lane().reserve(approx_bytes(copy ? *copy : event), entry.info.name);
          charge = held;
        }
        if (!copy) copy = std::make_shared<const E>(event);
        post_async(entry, [&handler, copy, held = std::move(held), keep = slot.entry, tracer, seq] {
          const detail::AsyncCall call(*keep);
          if (!call) return;  // disconnected, blocked or expired since this emission
          const auto start = Tracer::Clock::now();
          handler(const_cast<E&>(*copy));  // async handlers take const E& (checked at subscribe)
          if (tracer)
            tracer->on_call(event_info<E>(), keep->info, Lane::async, seq, copy.get(), start,
                            Tracer::Clock::now(), Action::Continue);
        });
        continue;
      }
      if (tracer == nullptr) {
        Verdict v = handler(event);
        if (v.action != Action::Continue) [[unlikely]]
          fold(event_info<E>(), slot, std::move(v), out, folding);
      } else {
        const auto start = Tracer::Clock::now();
        Verdict v = handler(event);
        tracer->on_call(event_info<E>(), entry.info, slot.lane, seq, &event, start,
                        Tracer::Clock::now(), v.action);
        if (v.action != Action::Continue) fold(event_info<E>(), slot, std::move(v), out, folding);
      }
    }
    if (folding.winner != nullptr) [[unlikely]]
      record_vetoes(out, folding);
    return out;
  }

  // The verdicts of one emission as they are folded: the winner, and the strongest skip when a
  // stop outranked it.
  struct Folding {
    const detail::Slot* winner = nullptr;
    Verdict winning;
    const detail::Slot* skipper = nullptr;
    Verdict skipping;
  };
  static void record_vetoes(Outcome& out, Folding& folding);

  // Whether `entry` takes this emission: connected and unblocked, its tracked object alive (held
  // in `alive` for the call), its filter passing.
  static bool takes(detail::Entry& entry, const void* event, int rank,
                    std::shared_ptr<const void>& alive) {
    if (entry.state.load(std::memory_order_acquire) != 0) return false;
    if (entry.tracked) {
      alive = entry.track.lock();
      if (!alive) {
        detail::expired(entry);
        return false;
      }
    }
    if (entry.filtered) {
      const auto n = entry.reached.fetch_add(1, std::memory_order_relaxed) + 1;
      if (!entry.filter.admits(n, rank, event)) return false;
    }
    return true;
  }

  // Adds a verdict other than Continue to the emission's outcome (see verdict.hpp).
  static void fold(const EventInfo& info, const detail::Slot& slot, Verdict&& v, Outcome& out,
                   Folding& folding);

  std::array<std::atomic<detail::Channel*>, kMaxEventTypes> channels_{};
  std::vector<std::shared_ptr<detail::Channel>> owned_channels_;
  mutable std::mutex mutex_;  // guards owned_channels_, policy changes, async lane creation
  std::shared_ptr<const DispatchPolicy> policy_;
  std::atomic<int> rank_{0};
  std::shared_ptr<Tracer> tracer_;
  std::atomic<Tracer*> tracer_raw_{nullptr};
  std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::uint64_t> serial_{0};
  AsyncLane::Options async_options_;
  std::unique_ptr<AsyncLane> async_;
  std::atomic<AsyncLane*> async_raw_{nullptr};
};

/// Subscribe-only view of a Bus, given to callbacks and packs: they can listen, not emit.
/// Subscriptions made through it default to the sink's owner, name and priority.
class Sink {
 public:
  Sink(Bus& bus, const void* owner, std::string name = {}, std::optional<int> priority = {})
      : bus_(&bus), owner_(owner), name_(std::move(name)), priority_(priority) {}
  /// Like Bus::on, with this sink's defaults where `options` leaves them unset.
  template <Event E, class F>
  Connection on(F&& handler, SubscribeOptions options = {}) {
    if (options.owner() == nullptr) options.owner(owner_);
    if (options.name() == SubscribeOptions().name() && !name_.empty()) options.named(name_);
    if (options.priority() == SubscribeOptions().priority() && priority_)
      options.priority(*priority_);
    return bus_->on<E>(std::forward<F>(handler), std::move(options));
  }
  const void* owner() const { return owner_; }
  int rank() const { return bus_->rank(); }

 private:
  Bus* bus_;
  const void* owner_;
  std::string name_;
  std::optional<int> priority_;
};

}  // namespace hookline
