#include "hookline/events/bus.hpp"

#include <boost/signals2/connection.hpp>
#include <boost/signals2/shared_connection_block.hpp>
#include <boost/signals2/signal.hpp>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace hookline {

namespace detail {

std::size_t next_event_id(std::string_view name) {
  static std::atomic<std::size_t> next{0};
  const std::size_t id = next.fetch_add(1, std::memory_order_relaxed);
  if (id >= kMaxEventTypes)
    throw std::length_error("too many event types (limit " + std::to_string(kMaxEventTypes) +
                            ") when registering '" + std::string(name) +
                            "'; raise hookline::kMaxEventTypes");
  return id;
}

// The Signals2 side of one subscription: its connection, and the blocks held on it.
struct Registration {
  boost::signals2::connection connection;
  std::vector<boost::signals2::shared_connection_block> blocks;
  std::mutex mutex;  // guards blocks
};

namespace {
std::atomic<std::size_t> g_entries_alive{0};
}  // namespace

Entry::Entry() : registration(std::make_unique<Registration>()) {
  g_entries_alive.fetch_add(1, std::memory_order_relaxed);
}
Entry::~Entry() {
  g_entries_alive.fetch_sub(1, std::memory_order_relaxed);
}
std::size_t Entry::alive() {
  return g_entries_alive.load(std::memory_order_relaxed);
}

// The Signals2 signal that holds a channel's subscriptions. Invoking it with a list collects the
// connected, unblocked, unexpired slots in group (priority) order: that is how snapshots are built.
using Collected = std::vector<std::shared_ptr<Entry>>;
struct Channel::Registry {
  boost::signals2::signal<void(Collected&), boost::signals2::optional_last_value<void>, int> signal;
};

Channel::Channel(const EventInfo& info) : info_(&info), registry_(std::make_unique<Registry>()) {}
Channel::~Channel() = default;

void Channel::add(const std::shared_ptr<Entry>& entry) {
  std::lock_guard lock(mutex_);
  using Slot = decltype(registry_->signal)::slot_type;
  Slot slot([entry](Collected& out) { out.push_back(entry); });
  if (entry->tracked) slot.track_foreign(entry->track);
  entry->registration->connection =
      registry_->signal.connect(entry->info.priority, slot, boost::signals2::at_back);
  entry->channel = weak_from_this();
  members_.push_back(entry);
  mark_stale(-1);
}

void Channel::remove(Entry& entry) {
  std::shared_ptr<const Snapshot> released;  // destroyed after unlocking (it owns handlers)
  std::lock_guard lock(mutex_);
  entry.registration->connection.disconnect();
  std::erase_if(members_, [&](const auto& m) { return m.get() == &entry; });
  // Signals2 keeps a disconnected slot in its list until an invocation (or a later connect)
  // sweeps it. Emissions never invoke the signal, so sweep here once the dead outnumber the
  // living: subscription churn then costs O(live subscribers) in time and memory, whatever the
  // emission pattern.
  if (++dead_ > members_.size()) {
    Collected live;
    collect(live);
  }
  mark_stale(members_.empty() ? 0 : -1);
  if (members_.empty()) released = retire();  // nothing left to call: release handlers now
}

void Channel::invalidate() {
  std::lock_guard lock(mutex_);
  mark_stale(-1);
}

void Channel::mark_stale(int count) {
  stale_ = true;
  current_.store(nullptr, std::memory_order_seq_cst);
  hint_.store(count, std::memory_order_release);
  wanted_.store(count, std::memory_order_release);
}

std::shared_ptr<const Snapshot> Channel::retire() {
  std::shared_ptr<const Snapshot> old = std::move(snapshot_);  // leaves snapshot_ empty
  // current_ no longer points at `old` (mark_stale ran), so a reader arriving from now on cannot
  // reach it; one counted in readers_ may be walking it.
  if (!old || readers_.load(std::memory_order_seq_cst) == 0) return old;
  retired_.push_back(std::move(old));
  has_retired_.store(true, std::memory_order_seq_cst);
  return nullptr;
}

void Channel::reclaim() {
  std::vector<std::shared_ptr<const Snapshot>> released;
  {
    std::lock_guard lock(mutex_);
    if (readers_.load(std::memory_order_seq_cst) != 0) return;  // the last reader reclaims
    released.swap(retired_);
    has_retired_.store(false, std::memory_order_seq_cst);
  }
}

std::shared_ptr<const Snapshot> Channel::snapshot(const DispatchPolicy& policy) {
  std::shared_ptr<const Snapshot> released;  // destroyed after unlocking (it owns handlers)
  std::lock_guard lock(mutex_);
  if (!stale_ && snapshot_) return snapshot_;
  Collected collected;
  collect(collected);
  std::vector<Placement> order;
  order.reserve(collected.size());
  for (std::size_t i = 0; i < collected.size(); ++i)
    order.push_back(Placement{&collected[i]->info, collected[i]->info.lane, i});
  policy.arrange(*info_, order);
  auto snap = std::make_shared<Snapshot>();
  int wanted = 0;
  snap->slots.reserve(order.size());
  snap->traced.reserve(order.size());
  for (const Placement& p : order) {
    if (p.slot >= collected.size())
      throw std::logic_error(std::string(policy.name()) + " changed Placement::slot for '" +
                             std::string(info_->name) +
                             "'; policies may only reorder and set lanes");
    auto& entry = collected[p.slot];
    if (p.lane == Lane::async && (!entry->can_run_async || entry->returns_verdict))
      throw std::invalid_argument(
          "subscriber '" + entry->info.name + "' of '" + std::string(info_->name) +
          "' was put on the async lane by " + std::string(policy.name()) +
          " but cannot run there: async handlers take `const E&` and return void");
    snap->traced.push_back(Slot{entry, p.lane});
    if (entry->info.only_when_traced) continue;
    snap->slots.push_back(Slot{entry, p.lane});
    if (!entry->info.runs_default) ++wanted;
    snap->has_async = snap->has_async || p.lane == Lane::async;
  }
  released = retire();
  snapshot_ = std::move(snap);
  stale_ = false;
  current_.store(snapshot_.get(), std::memory_order_seq_cst);
  hint_.store(static_cast<int>(snapshot_->slots.size()), std::memory_order_release);
  wanted_.store(wanted, std::memory_order_release);
  return snapshot_;
}

void Channel::collect(Collected& out) {
  // Invoking the signal sweeps its dead slots (Signals2 cleans up when an invocation met more
  // disconnected slots than connected ones) and drops expired tracked slots.
  registry_->signal(out);
  dead_ = 0;
  std::erase_if(members_, [](const auto& m) {
    if (m->registration->connection.connected()) return false;
    m->state.fetch_or(Entry::kDisconnected, std::memory_order_acq_rel);
    return true;
  });
}

std::size_t Channel::disconnect_owner(const void* owner) {
  std::vector<std::shared_ptr<Entry>> victims;
  {
    std::lock_guard lock(mutex_);
    for (const auto& m : members_)
      if (m->info.owner == owner) victims.push_back(m);
  }
  for (const auto& v : victims) Connection::disconnect_entry(*v);
  return victims.size();
}

std::vector<std::shared_ptr<Entry>> Channel::owned_by(const void* owner) const {
  std::vector<std::shared_ptr<Entry>> out;
  std::lock_guard lock(mutex_);
  for (const auto& m : members_)
    if (m->info.owner == owner) out.push_back(m);
  return out;
}

std::size_t Channel::disconnect_all() {
  std::vector<std::shared_ptr<Entry>> victims;
  {
    std::lock_guard lock(mutex_);
    victims = members_;
  }
  for (const auto& v : victims) Connection::disconnect_entry(*v);
  return victims.size();
}

std::size_t Channel::size() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& m : members_)
    if (m->state.load(std::memory_order_acquire) == 0) ++n;
  return n;
}

std::vector<SubscriptionInfo> Channel::subscribers(const DispatchPolicy& policy) {
  auto snap = snapshot(policy);
  std::vector<SubscriptionInfo> out;
  for (const auto& slot : snap->traced) {
    if (slot.entry->state.load(std::memory_order_acquire) != 0) continue;
    out.push_back(slot.entry->info);
    out.back().lane = slot.lane;
  }
  return out;
}

void expired(Entry& entry) {
  if (auto channel = entry.channel.lock()) channel->invalidate();
}

AsyncCall::AsyncCall(Entry& entry) : entry_(entry) {
  if (entry.tracked) {
    alive_ = entry.track.lock();
    if (!alive_) {
      expired(entry);
      return;
    }
  }
  // Checked under call_mutex, which disconnect_and_wait takes after disconnecting: a call either
  // sees the disconnection here, or is already marked running when the waiter looks.
  std::lock_guard lock(entry.call_mutex);
  if (entry.state.load(std::memory_order_acquire) != 0) return;
  entry.caller = std::this_thread::get_id();
  running_ = true;
}

AsyncCall::~AsyncCall() {
  if (!running_) return;
  alive_.reset();  // a waiter that returns may let the tracked object die at once
  {
    std::lock_guard lock(entry_.call_mutex);
    entry_.caller = std::thread::id();
  }
  entry_.call_done.notify_all();
}

void throw_bad_verdict(const EventInfo& event, const Entry& entry, Action action) {
  throw std::logic_error("subscriber '" + entry.info.name + "' returned " +
                         std::string(to_string(action)) + " from '" + std::string(event.name) +
                         "', which accepts only: " + event.vetoes.describe() +
                         "; return Verdict::proceed() there or veto from another hook");
}

}  // namespace detail

// ---- Connection -----------------------------------------------------------------------------

void Connection::disconnect_entry(detail::Entry& entry) {
  const auto before = entry.state.fetch_or(detail::Entry::kDisconnected, std::memory_order_acq_rel);
  if (before & detail::Entry::kDisconnected) return;
  {
    std::lock_guard lock(entry.registration->mutex);
    entry.registration->blocks.clear();
  }
  if (auto channel = entry.channel.lock()) {
    channel->remove(entry);
  } else {
    entry.registration->connection.disconnect();
  }
}

void Connection::disconnect() {
  if (auto entry = entry_.lock()) disconnect_entry(*entry);
}

bool Connection::disconnect_and_wait() {
  const auto entry = entry_.lock();
  if (!entry) return true;  // nothing holds the subscription, so no call of it runs
  disconnect_entry(*entry);
  std::unique_lock lock(entry->call_mutex);
  if (entry->caller == std::this_thread::get_id()) return false;  // from its own async call
  entry->call_done.wait(lock, [&] { return entry->caller == std::thread::id(); });
  return true;
}

bool Connection::connected() const {
  auto entry = entry_.lock();
  return entry &&
         (entry->state.load(std::memory_order_acquire) & detail::Entry::kDisconnected) == 0 &&
         !(entry->tracked && entry->track.expired());
}

void Connection::block() {
  auto entry = entry_.lock();
  if (!entry || !connected()) return;
  entry->state.fetch_add(detail::Entry::kBlockUnit, std::memory_order_acq_rel);
  {
    std::lock_guard lock(entry->registration->mutex);
    entry->registration->blocks.emplace_back(entry->registration->connection);
  }
  if (auto channel = entry->channel.lock()) channel->invalidate();
}

void Connection::unblock() {
  auto entry = entry_.lock();
  if (!entry) return;
  {
    std::lock_guard lock(entry->registration->mutex);
    if (entry->registration->blocks.empty()) return;
    entry->registration->blocks.pop_back();
  }
  entry->state.fetch_sub(detail::Entry::kBlockUnit, std::memory_order_acq_rel);
  if (auto channel = entry->channel.lock()) channel->invalidate();
}

bool Connection::blocked() const {
  auto entry = entry_.lock();
  return entry && entry->state.load(std::memory_order_acquire) >= detail::Entry::kBlockUnit;
}

SubscriptionInfo Connection::info() const {
  auto entry = entry_.lock();
  return entry ? entry->info : SubscriptionInfo{};
}

// ---- Bus ------------------------------------------------------------------------------------

Bus::Bus() : Bus(Options{}) {}

Bus::Bus(Options options)
    : policy_(options.policy ? std::move(options.policy) : std::make_shared<LightningOrder>()),
      async_options_(options.async) {}

Bus::~Bus() {
  if (async_) {
    try {
      async_->flush();
    } catch (...) {
      // A failure nobody flushed for: the bus is going away and cannot report it any more.
    }
  }
  disconnect_all();
  async_.reset();
}

detail::Channel& Bus::channel(const EventInfo& info) {
  if (auto* ch = channels_[info.id].load(std::memory_order_acquire)) return *ch;
  std::lock_guard lock(mutex_);
  if (auto* ch = channels_[info.id].load(std::memory_order_acquire)) return *ch;
  auto ch = std::make_shared<detail::Channel>(info);
  owned_channels_.push_back(ch);
  channels_[info.id].store(ch.get(), std::memory_order_release);
  return *ch;
}

Connection Bus::attach(const EventInfo& info, std::shared_ptr<detail::Entry> entry,
                       SubscribeOptions options) {
  if (options.lane() == Lane::async && !entry->can_run_async)
    throw std::invalid_argument("subscriber '" + options.name() + "' of '" +
                                std::string(info.name) +
                                "' asks for the async lane but takes the event by non-const "
                                "reference; async subscribers observe a copy: take `const E&`");
  if (options.lane() == Lane::async && entry->returns_verdict)
    throw std::invalid_argument("subscriber '" + options.name() + "' of '" +
                                std::string(info.name) +
                                "' asks for the async lane but returns a Verdict; async "
                                "subscribers observe and cannot veto: return void");
  if (options.track() && options.track()->expired())
    throw std::invalid_argument("subscriber '" + options.name() + "' of '" +
                                std::string(info.name) + "' tracks an object that has expired");
  options.filter().check_event(info.id, info.name);
  entry->info = SubscriptionInfo{
      options.name(),           options.priority(),         options.lane(),        options.owner(),
      serial_.fetch_add(1) + 1, options.only_when_traced(), options.runs_default()};
  entry->filter = options.filter();
  entry->filtered = !entry->filter.empty();
  entry->tracked = options.track().has_value();
  if (options.track()) entry->track = *options.track();
  channel(info).add(entry);
  return Connection(entry);
}

void Bus::post_async(detail::Entry& entry, std::function<void()> task) {
  AsyncLane& lane = async_lane();
  std::call_once(entry.strand_once, [&] { entry.strand = lane.make_strand(); });
  lane.post(*entry.strand, std::move(task), entry.info.name);
}

std::size_t Bus::disconnect_owner(const void* owner) {
  std::vector<std::shared_ptr<detail::Channel>> channels;
  {
    std::lock_guard lock(mutex_);
    channels = owned_channels_;
  }
  std::size_t n = 0;
  for (const auto& ch : channels) n += ch->disconnect_owner(owner);
  return n;
}

std::vector<Connection> Bus::connections(const void* owner) {
  std::vector<std::shared_ptr<detail::Channel>> channels;
  {
    std::lock_guard lock(mutex_);
    channels = owned_channels_;
  }
  std::vector<Connection> out;
  for (const auto& ch : channels)
    for (const auto& entry : ch->owned_by(owner)) out.push_back(Connection(entry));
  return out;
}

std::size_t Bus::disconnect_all() {
  std::vector<std::shared_ptr<detail::Channel>> channels;
  {
    std::lock_guard lock(mutex_);
    channels = owned_channels_;
  }
  std::size_t n = 0;
  for (const auto& ch : channels) n += ch->disconnect_all();
  return n;
}

void Bus::set_policy(std::shared_ptr<const DispatchPolicy> policy) {
  if (!policy) throw std::invalid_argument("Bus::set_policy: policy is null");
  std::vector<std::shared_ptr<detail::Channel>> channels;
  {
    std::lock_guard lock(mutex_);
    policy_ = std::move(policy);
    channels = owned_channels_;
  }
  for (const auto& ch : channels) ch->invalidate();
}

void Bus::set_tracer(std::shared_ptr<Tracer> tracer) {
  if (async_raw_.load(std::memory_order_acquire)) flush();
  tracer_raw_.store(tracer.get(), std::memory_order_release);
  tracer_ = std::move(tracer);
}

Outcome Bus::emit_any(const AnyEvent& e) {
  detail::Channel* ch = channels_[e.id].load(std::memory_order_acquire);
  if (Tracer* tracer = tracer_raw_.load(std::memory_order_acquire); tracer != nullptr) [[unlikely]]
    return e.traced(*this, ch, e.event, *tracer);
  if (ch == nullptr || ch->hint() == 0) return {};
  return emit_plain(*ch, e.event, e.dispatch);
}

Outcome Bus::emit_plain(detail::Channel& ch, void* event, TypedDispatch typed) {
  const detail::Channel::Read read(ch, *policy_);
  const detail::Snapshot& snap = read.snapshot();
  if (snap.has_async) [[unlikely]]
    return typed(*this, snap, event);
  // What dispatch<E> does for sync slots without a tracer, through Entry::invoke.
  Outcome out;
  Folding folding;
  const int rank = rank_.load(std::memory_order_relaxed);
  for (const detail::Slot& slot : snap.slots) {
    detail::Entry& entry = *slot.entry;
    std::shared_ptr<const void> alive;
    if (!takes(entry, event, rank, alive)) continue;
    Verdict v = entry.invoke(entry, event);
    if (v.action != Action::Continue) [[unlikely]]
      fold(ch.info(), slot, std::move(v), out, folding);
  }
  if (folding.winner != nullptr) [[unlikely]]
    record_vetoes(out, folding);
  return out;
}

void Bus::fold(const EventInfo& info, const detail::Slot& slot, Verdict&& v, Outcome& out,
               Folding& folding) {
  if (!info.vetoes.contains(v.action)) detail::throw_bad_verdict(info, *slot.entry, v.action);
  const auto keep_skip = [&](const detail::Slot& giver, Verdict&& skip) {
    if (folding.skipper == nullptr || skip.action > folding.skipping.action) {
      folding.skipper = &giver;
      folding.skipping = std::move(skip);
    }
  };
  if (v.action == Action::StopFit) {
    if (out.action == Action::StopFit) return;  // the first stop keeps the credit
    if (folding.winner != nullptr) keep_skip(*folding.winner, std::move(folding.winning));
  } else if (out.action == Action::StopFit) {  // a skip after a stop: both apply
    keep_skip(slot, std::move(v));
    return;
  } else if (v.action <= out.action) {
    return;
  }
  out.action = v.action;
  folding.winner = &slot;
  folding.winning = std::move(v);
}

void Bus::record_vetoes(Outcome& out, Folding& folding) {
  const auto veto = [](Action action, const detail::Slot& giver, Verdict& verdict) {
    return std::make_shared<const Veto>(Veto{
        action, giver.entry->info.name, std::move(verdict.reason), giver.entry->info.priority});
  };
  out.veto = veto(out.action, *folding.winner, folding.winning);
  if (folding.skipper != nullptr)
    out.skip = veto(folding.skipping.action, *folding.skipper, folding.skipping);
}

void Bus::flush() {
  if (auto* lane = async_raw_.load(std::memory_order_acquire)) lane->flush();
}

AsyncLane& Bus::async_lane() {
  if (auto* lane = async_raw_.load(std::memory_order_acquire)) return *lane;
  std::lock_guard lock(mutex_);
  if (!async_) {
    async_ = std::make_unique<AsyncLane>(async_options_);
    async_raw_.store(async_.get(), std::memory_order_release);
  }
  return *async_;
}

Sink Bus::sink(const void* owner, std::string name, std::optional<int> priority) {
  return Sink(*this, owner, std::move(name), priority);
}

}  // namespace hookline
