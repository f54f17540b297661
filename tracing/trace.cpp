#include "hookline/tracing/trace.hpp"

#include <algorithm>
#include <array>

namespace hookline {

namespace {

using Clock = Tracer::Clock;

// One emission in progress on this thread. Emissions nest (a hook emitted from inside another),
// so each thread keeps a stack; frames of several recorders may share it.
struct Frame {
  const void* owner;
  std::uint64_t seq;
  std::uintptr_t address;  // on_emit's frame address: deeper emissions have lower ones
  const EventInfo* event;
  const void* payload;
  std::uint64_t parent;
  std::uint32_t depth;
  bool started;  // a sync call returned: start/end are set
  Clock::time_point start, end;
  TraceFields context;  // stage, epoch, global_step, rank, batch_idx, dataloader_idx
};

// What a thread keeps: its number, its stack of emissions, and a record to fill (so a record
// costs no 200-byte zeroing). Reached through a trivially destructible pointer (one TLS load);
// the owner below frees it when the thread ends.
struct ThreadState {
  std::vector<Frame> frames;
  std::uint32_t number = 0;
  TraceRecord scratch;
  bool scratch_busy = false;  // a sink emitted on a traced bus from inside write()
};
std::atomic<std::uint32_t> g_threads{0};
std::atomic<std::uint32_t> g_recorders{0};
thread_local ThreadState* t_state = nullptr;
thread_local std::unique_ptr<ThreadState> t_state_owner;

[[gnu::noinline]] ThreadState& make_thread_state() {
  t_state_owner = std::make_unique<ThreadState>();
  t_state_owner->number = g_threads.fetch_add(1, std::memory_order_relaxed) + 1;
  t_state_owner->frames.reserve(16);
  t_state = t_state_owner.get();
  return *t_state;
}
inline ThreadState& thread_state() {
  return t_state ? *t_state : make_thread_state();
}

const Clock::time_point g_epoch = trace_epoch();

std::int64_t since_epoch(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - g_epoch).count();
}

std::int64_t nanos(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

// Sets every field of `r` (a reused record) to its default, field by field.
void reset(TraceRecord& r) {
  r.stage = {};
  r.epoch = r.global_step = r.batch_idx = r.dataloader_idx = TraceFields::kNone;
  r.rank = 0;
  r.kind = TraceRecord::Kind::call;
  r.lane = Lane::sync;
  r.verdict = r.skip = Action::Continue;
  r.pairing = Pairing::none;
  r.aborted = false;
  r.depth = r.thread = r.bus = 0;
  r.seq = r.parent = 0;
  r.start_ns = r.duration_ns = 0;
  r.event = r.subscriber = r.by = r.reason = r.skip_by = r.skip_reason = r.args = {};
}

void copy_context(TraceFields& to, const TraceFields& from) {
  to.stage = from.stage;
  to.epoch = from.epoch;
  to.global_step = from.global_step;
  to.rank = from.rank;
  to.batch_idx = from.batch_idx;
  to.dataloader_idx = from.dataloader_idx;
}

// A record to fill: the thread's scratch record, or (re-entered from a sink) a fresh one.
class RecordSlot {
 public:
  explicit RecordSlot(ThreadState& ts) : ts_(ts), own_(!ts.scratch_busy) {
    if (own_) {
      ts_.scratch_busy = true;
      reset(ts_.scratch);
    } else {
      local_ = std::make_unique<TraceRecord>();
    }
  }
  ~RecordSlot() {
    if (own_) ts_.scratch_busy = false;
  }
  RecordSlot(const RecordSlot&) = delete;
  RecordSlot& operator=(const RecordSlot&) = delete;
  TraceRecord& get() { return own_ ? ts_.scratch : *local_; }

 private:
  ThreadState& ts_;
  bool own_;
  std::unique_ptr<TraceRecord> local_;
};

}  // namespace

std::string_view to_string(TraceRecord::Kind kind) {
  return kind == TraceRecord::Kind::emit ? "emit" : "call";
}

std::string_view to_string(Lane lane) {
  return lane == Lane::sync ? "sync" : "async";
}

std::string_view pairing_name(Pairing pairing) {
  switch (pairing) {
    case Pairing::start:
      return "start";
    case Pairing::end:
      return "end";
    default:
      return "";
  }
}

Clock::time_point trace_epoch() {
  static const Clock::time_point epoch = Clock::now();
  return epoch;
}

// ---- TraceRecorder --------------------------------------------------------------------------

// The run state of the last kSlots emissions, by seq, for async calls (which run on another
// thread, after the emitting thread moved on). A slot is valid when its seq reads the same before
// and after its fields; fields are stored with release and read with acquire, so a reader that
// sees a newer field also sees the slot's seq change.
struct TraceRecorder::Shared {
  static constexpr std::size_t kSlots = 1024;
  struct Slot {
    std::atomic<std::uint64_t> seq{0};
    std::atomic<const char*> stage_data{nullptr};
    std::atomic<std::size_t> stage_size{0};
    std::atomic<std::int64_t> epoch{0}, global_step{0};
    std::atomic<std::int32_t> rank{0};
  };
  std::array<Slot, kSlots> slots;
  // Per event id: 0 not looked at yet, 1 no flush, 2 flush after it.
  std::array<std::atomic<std::uint8_t>, kMaxEventTypes> flush{};

  void put(std::uint64_t seq, const TraceFields& c) {
    Slot& s = slots[seq % kSlots];
    s.seq.store(0, std::memory_order_release);
    s.stage_data.store(c.stage.data(), std::memory_order_release);
    s.stage_size.store(c.stage.size(), std::memory_order_release);
    s.epoch.store(c.epoch, std::memory_order_release);
    s.global_step.store(c.global_step, std::memory_order_release);
    s.rank.store(c.rank, std::memory_order_release);
    s.seq.store(seq, std::memory_order_release);
  }
  bool get(std::uint64_t seq, TraceFields& c) const {
    const Slot& s = slots[seq % kSlots];
    if (s.seq.load(std::memory_order_acquire) != seq) return false;
    const char* data = s.stage_data.load(std::memory_order_acquire);
    const std::size_t size = s.stage_size.load(std::memory_order_acquire);
    const std::int64_t epoch = s.epoch.load(std::memory_order_acquire);
    const std::int64_t step = s.global_step.load(std::memory_order_acquire);
    const std::int32_t rank = s.rank.load(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_acquire) != seq) return false;
    c.stage = std::string_view(data, size);
    c.epoch = epoch;
    c.global_step = step;
    c.rank = rank;
    return true;
  }
};

TraceRecorder::TraceRecorder(std::vector<std::shared_ptr<TraceSink>> sinks,
                             std::shared_ptr<const TraceContext> context)
    : TraceRecorder(std::move(sinks), std::move(context), Options{}) {}

TraceRecorder::TraceRecorder(std::vector<std::shared_ptr<TraceSink>> sinks,
                             std::shared_ptr<const TraceContext> context, Options options)
    : sinks_(std::move(sinks)),
      context_(context ? std::move(context) : std::make_shared<const TraceContext>()),
      options_(std::move(options)),
      id_(g_recorders.fetch_add(1, std::memory_order_relaxed) + 1),
      shared_(std::make_unique<Shared>()) {
  std::erase(sinks_, nullptr);
  trace_epoch();
}

TraceRecorder::~TraceRecorder() {
  flush();
  // Frames this recorder left open on this thread (emissions cut short) would outlive it.
  std::erase_if(thread_state().frames, [this](const Frame& f) { return f.owner == this; });
}

void TraceRecorder::flush() {
  for (const auto& sink : sinks_) sink->flush();
}

void TraceRecorder::write(const TraceRecord& record) {
  for (const auto& sink : sinks_) sink->write(record);
}

bool TraceRecorder::flushes_after(const EventInfo& event) {
  auto& flag = shared_->flush[event.id];
  std::uint8_t f = flag.load(std::memory_order_relaxed);
  if (f == 0) [[unlikely]] {
    const bool yes = std::find(options_.flush_on.begin(), options_.flush_on.end(), event.name) !=
                     options_.flush_on.end();
    f = yes ? 2 : 1;
    flag.store(f, std::memory_order_relaxed);
  }
  return f == 2;
}

namespace {

// Writes the emit record of a frame that never reached on_emit_end.
template <class Write>
void write_aborted(ThreadState& ts, const Frame& f, std::uint32_t bus, Clock::time_point start,
                   Clock::time_point now, Write&& write) {
  RecordSlot slot(ts);
  TraceRecord& r = slot.get();
  copy_context(r, f.context);
  r.kind = TraceRecord::Kind::emit;
  r.aborted = true;
  r.event = f.event->name;
  r.pairing = f.event->pairing;
  r.seq = f.seq;
  r.parent = f.parent;
  r.depth = f.depth;
  r.bus = bus;
  r.thread = ts.number;
  r.start_ns = since_epoch(start);
  r.duration_ns = nanos(now - start);
  write(r);
}

}  // namespace

void TraceRecorder::on_emit(const EventInfo& event, const void* payload, std::uint64_t seq) {
  const auto address = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  ThreadState& ts = thread_state();
  auto& frames = ts.frames;
  // Own frames at this depth or shallower belong to emissions an exception unwound.
  if (!frames.empty() && frames.back().address <= address) [[unlikely]] {
    const Clock::time_point now = Clock::now();
    Clock::time_point earliest = now;
    while (!frames.empty() && frames.back().address <= address) {
      Frame f = frames.back();
      if (f.owner != this) break;  // another recorder's; it cleans up its own
      frames.pop_back();
      const Clock::time_point start = f.started ? std::min(f.start, earliest) : earliest;
      earliest = start;
      write_aborted(ts, f, id_, start, now, [this](const TraceRecord& r) { write(r); });
    }
  }
  if (frames.size() >= 4096) [[unlikely]]  // leaked by recorders that died mid-emission
    frames.erase(frames.begin(), frames.begin() + 2048);
  std::uint64_t parent = 0;
  std::uint32_t depth = 0;
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
    if (it->owner == this) {
      parent = it->seq;
      depth = it->depth + 1;
      break;
    }
  }
  Frame& f = frames.emplace_back(Frame{this, seq, address, &event, payload, parent, depth, false,
                                       Clock::time_point(), Clock::time_point(), TraceFields()});
  context_->fill_state(f.context);
  context_->fill_payload(f.context, event, payload);
  shared_->put(seq, f.context);
}

void TraceRecorder::on_call(const EventInfo& event, const SubscriptionInfo& subscriber, Lane lane,
                            std::uint64_t seq, const void* payload, Clock::time_point start,
                            Clock::time_point end, Action verdict) {
  ThreadState& ts = thread_state();
  RecordSlot slot(ts);
  TraceRecord& r = slot.get();
  if (lane == Lane::sync) {
    Frame* frame = nullptr;
    for (auto it = ts.frames.rbegin(); it != ts.frames.rend(); ++it) {
      if (it->owner == this && it->seq == seq) {
        frame = &*it;
        break;
      }
    }
    if (frame != nullptr) [[likely]] {
      copy_context(r, frame->context);
      if (!frame->started) {
        frame->started = true;
        frame->start = start;
      }
      frame->end = end;
    } else {  // the recorder was attached during this emission
      context_->fill_state(r);
      context_->fill_payload(r, event, payload);
    }
  } else {
    shared_->get(seq, r);
    context_->fill_payload(r, event, payload);
  }
  r.lane = lane;
  r.verdict = verdict;
  r.seq = seq;
  r.bus = id_;
  r.thread = ts.number;
  r.event = event.name;
  r.subscriber = subscriber.name;
  r.start_ns = since_epoch(start);
  r.duration_ns = nanos(end - start);
  if (options_.args && event.describe && payload) [[unlikely]] {
    const std::string args = event.describe(payload);
    r.args = args;
    write(r);
    return;
  }
  write(r);
}

void TraceRecorder::on_emit_end(const EventInfo& event, std::uint64_t seq, const Outcome& outcome) {
  ThreadState& ts = thread_state();
  auto& frames = ts.frames;
  std::size_t index = frames.size();
  while (index > 0 && !(frames[index - 1].owner == this && frames[index - 1].seq == seq)) --index;
  // Own frames above this one are nested emissions whose exception a subscriber caught.
  if (index > 0 && index < frames.size()) [[unlikely]] {
    const Clock::time_point now = Clock::now();
    Clock::time_point earliest = now;
    for (std::size_t i = frames.size(); i-- > index;) {
      const Frame inner = frames[i];
      if (inner.owner != this) continue;
      frames.erase(frames.begin() + static_cast<std::ptrdiff_t>(i));
      const Clock::time_point s = inner.started ? std::min(inner.start, earliest) : earliest;
      earliest = s;
      write_aborted(ts, inner, id_, s, now, [this](const TraceRecord& rec) { write(rec); });
    }
  }
  RecordSlot slot(ts);
  TraceRecord& r = slot.get();
  Clock::time_point start, end;
  const void* payload = nullptr;
  bool timed = false;
  if (index > 0) [[likely]] {
    const Frame& f = frames[index - 1];
    copy_context(r, f.context);
    r.parent = f.parent;
    r.depth = f.depth;
    payload = f.payload;
    if (f.started) {
      start = f.start;
      end = f.end;
      timed = true;
    }
    frames.erase(frames.begin() + static_cast<std::ptrdiff_t>(index - 1));
  } else {  // the recorder was attached during this emission
    context_->fill_state(r);
  }
  if (!timed) start = end = Clock::now();
  r.kind = TraceRecord::Kind::emit;
  r.verdict = outcome.action;
  r.pairing = event.pairing;
  r.seq = seq;
  r.bus = id_;
  r.thread = ts.number;
  r.event = event.name;
  r.start_ns = since_epoch(start);
  r.duration_ns = nanos(end - start);
  if (outcome.veto) [[unlikely]] {
    r.by = outcome.veto->subscriber;
    r.reason = outcome.veto->reason;
    if (outcome.skip) {
      r.skip = outcome.skip->action;
      r.skip_by = outcome.skip->subscriber;
      r.skip_reason = outcome.skip->reason;
    }
  }
  std::string args;
  if (options_.args && event.describe && payload) [[unlikely]] {
    args = event.describe(payload);
    r.args = args;
  }
  write(r);
  if (flushes_after(event)) [[unlikely]]
    flush();
}

}  // namespace hookline
