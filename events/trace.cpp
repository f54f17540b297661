#include "hookline/events/trace.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

namespace hookline {

namespace {

using Clock = Tracer::Clock;

// One emission in progress on this thread. Emissions nest (a hook emitted from inside another),
// so each thread keeps a stack; frames of several recorders may share it.
struct Frame {
  const void* owner = nullptr;
  std::uint64_t seq = 0;
  std::uintptr_t address = 0;  // on_emit's frame address: deeper emissions have lower ones
  const EventInfo* event = nullptr;
  const void* payload = nullptr;
  std::uint64_t parent = 0;
  std::uint32_t depth = 0;
  bool started = false;  // a sync call returned: start/end are set
  Clock::time_point start, end;
  TraceRecord context;  // stage, epoch, global_step, rank, batch_idx, dataloader_idx
};

thread_local std::vector<Frame> t_frames;
thread_local std::uint32_t t_thread = 0;
std::atomic<std::uint32_t> g_threads{0};
std::atomic<std::uint32_t> g_recorders{0};

std::uint32_t thread_number() {
  if (t_thread == 0) t_thread = g_threads.fetch_add(1, std::memory_order_relaxed) + 1;
  return t_thread;
}

std::int64_t since_epoch(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - trace_epoch()).count();
}

void copy_context(TraceRecord& to, const TraceRecord& from) {
  to.stage = from.stage;
  to.epoch = from.epoch;
  to.global_step = from.global_step;
  to.rank = from.rank;
  to.batch_idx = from.batch_idx;
  to.dataloader_idx = from.dataloader_idx;
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

void append_string(std::string& out, std::string_view s) {
  out += '"';
  const bool plain = std::none_of(s.begin(), s.end(), [](char c) {
    return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  });
  if (plain) {
    out.append(s);
  } else {
    for (char c : s) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\r':
          out += "\\r";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
          } else {
            out += c;
          }
      }
    }
  }
  out += '"';
}

void field(std::string& out, std::string_view key, std::int64_t v) {
  out += ",\"";
  out.append(key);
  out += "\":";
  append_int(out, v);
}

void field(std::string& out, std::string_view key, std::string_view v) {
  out += ",\"";
  out.append(key);
  out += "\":";
  append_string(out, v);
}

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

void append_json(std::string& out, const TraceRecord& r) {
  out += "{\"seq\":";
  append_int(out, static_cast<std::int64_t>(r.seq));
  field(out, "kind", to_string(r.kind));
  field(out, "event", r.event);
  if (r.kind == TraceRecord::Kind::call) field(out, "subscriber", r.subscriber);
  if (!r.stage.empty()) field(out, "stage", r.stage);
  if (r.epoch != TraceRecord::kNone) field(out, "epoch", r.epoch);
  if (r.global_step != TraceRecord::kNone) field(out, "global_step", r.global_step);
  if (r.batch_idx != TraceRecord::kNone) field(out, "batch_idx", r.batch_idx);
  if (r.dataloader_idx != TraceRecord::kNone) field(out, "dataloader_idx", r.dataloader_idx);
  field(out, "rank", r.rank);
  field(out, "bus", r.bus);
  field(out, "thread", r.thread);
  if (r.kind == TraceRecord::Kind::call) {
    field(out, "lane", to_string(r.lane));
  } else {
    field(out, "parent", static_cast<std::int64_t>(r.parent));
    field(out, "depth", r.depth);
    if (r.pairing != Pairing::none) field(out, "pair", pairing_name(r.pairing));
  }
  field(out, "start_ns", r.start_ns);
  field(out, "duration_ns", r.duration_ns);
  field(out, "verdict", to_string(r.verdict));
  if (!r.by.empty()) field(out, "by", r.by);
  if (!r.reason.empty()) field(out, "reason", r.reason);
  if (r.aborted) out += ",\"aborted\":true";
  if (!r.args.empty()) field(out, "args", r.args);
  out += '}';
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

  void put(std::uint64_t seq, const TraceRecord& c) {
    Slot& s = slots[seq % kSlots];
    s.seq.store(0, std::memory_order_release);
    s.stage_data.store(c.stage.data(), std::memory_order_release);
    s.stage_size.store(c.stage.size(), std::memory_order_release);
    s.epoch.store(c.epoch, std::memory_order_release);
    s.global_step.store(c.global_step, std::memory_order_release);
    s.rank.store(c.rank, std::memory_order_release);
    s.seq.store(seq, std::memory_order_release);
  }
  bool get(std::uint64_t seq, TraceRecord& c) const {
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
  std::erase_if(t_frames, [this](const Frame& f) { return f.owner == this; });
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
  if (f == 0) {
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
void write_aborted(const Frame& f, std::uint32_t bus, Clock::time_point start,
                   Clock::time_point now, Write&& write) {
  TraceRecord r;
  copy_context(r, f.context);
  r.kind = TraceRecord::Kind::emit;
  r.aborted = true;
  r.event = f.event->name;
  r.pairing = f.event->pairing;
  r.seq = f.seq;
  r.parent = f.parent;
  r.depth = f.depth;
  r.bus = bus;
  r.thread = thread_number();
  r.start_ns = since_epoch(start);
  r.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - start).count();
  write(r);
}

}  // namespace

void TraceRecorder::on_emit(const EventInfo& event, const void* payload, std::uint64_t seq) {
  const auto address = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  auto& frames = t_frames;
  // Own frames at this depth or shallower belong to emissions an exception unwound.
  if (!frames.empty() && frames.back().address <= address) {
    const Clock::time_point now = Clock::now();
    Clock::time_point earliest = now;
    while (!frames.empty() && frames.back().address <= address) {
      Frame& f = frames.back();
      if (f.owner == this) {
        const Clock::time_point start = f.started ? std::min(f.start, earliest) : earliest;
        earliest = start;
        write_aborted(f, id_, start, now, [this](const TraceRecord& r) { write(r); });
        frames.pop_back();
      } else {
        break;  // another recorder's; it cleans up its own
      }
    }
  }
  if (frames.size() >= 4096) frames.erase(frames.begin(), frames.begin() + 2048);  // leaked
  Frame& f = frames.emplace_back();
  f.owner = this;
  f.seq = seq;
  f.address = address;
  f.event = &event;
  f.payload = payload;
  for (auto it = frames.rbegin() + 1; it != frames.rend(); ++it) {
    if (it->owner == this) {
      f.parent = it->seq;
      f.depth = it->depth + 1;
      break;
    }
  }
  context_->fill_state(f.context);
  context_->fill_payload(f.context, event, payload);
  shared_->put(seq, f.context);
}

void TraceRecorder::on_call(const EventInfo& event, const SubscriptionInfo& subscriber, Lane lane,
                            std::uint64_t seq, const void* payload, Clock::time_point start,
                            Clock::time_point end, Action verdict) {
  TraceRecord r;
  if (lane == Lane::sync) {
    Frame* frame = nullptr;
    for (auto it = t_frames.rbegin(); it != t_frames.rend(); ++it) {
      if (it->owner == this && it->seq == seq) {
        frame = &*it;
        break;
      }
    }
    if (frame != nullptr) {
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
  r.kind = TraceRecord::Kind::call;
  r.lane = lane;
  r.verdict = verdict;
  r.seq = seq;
  r.bus = id_;
  r.thread = thread_number();
  r.event = event.name;
  r.subscriber = subscriber.name;
  r.start_ns = since_epoch(start);
  r.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
  std::string args;
  if (options_.args && event.describe && payload) {
    args = event.describe(payload);
    r.args = args;
  }
  write(r);
}

void TraceRecorder::on_emit_end(const EventInfo& event, std::uint64_t seq, const Outcome& outcome) {
  auto& frames = t_frames;
  std::size_t index = frames.size();
  while (index > 0 && !(frames[index - 1].owner == this && frames[index - 1].seq == seq)) --index;
  TraceRecord r;
  Clock::time_point start, end;
  bool timed = false;
  if (index > 0) {
    // Own frames above this one are nested emissions whose exception a subscriber caught.
    if (index < frames.size()) {
      const Clock::time_point now = Clock::now();
      Clock::time_point earliest = now;
      for (std::size_t i = frames.size(); i-- > index;) {
        const Frame& inner = frames[i];
        if (inner.owner != this) continue;
        const Clock::time_point s = inner.started ? std::min(inner.start, earliest) : earliest;
        earliest = s;
        write_aborted(inner, id_, s, now, [this](const TraceRecord& rec) { write(rec); });
        frames.erase(frames.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    const Frame& f = frames[index - 1];
    copy_context(r, f.context);
    r.parent = f.parent;
    r.depth = f.depth;
    if (f.started) {
      start = f.start;
      end = f.end;
      timed = true;
    }
  } else {  // the recorder was attached during this emission
    context_->fill_state(r);
  }
  if (!timed) start = end = Clock::now();
  r.kind = TraceRecord::Kind::emit;
  r.verdict = outcome.action;
  r.pairing = event.pairing;
  r.seq = seq;
  r.bus = id_;
  r.thread = thread_number();
  r.event = event.name;
  r.start_ns = since_epoch(start);
  r.duration_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
  if (outcome.veto) {
    r.by = outcome.veto->subscriber;
    r.reason = outcome.veto->reason;
  }
  std::string args;
  if (options_.args && event.describe && index > 0 && frames[index - 1].payload) {
    args = event.describe(frames[index - 1].payload);
    r.args = args;
  }
  if (index > 0) frames.erase(frames.begin() + static_cast<std::ptrdiff_t>(index - 1));
  write(r);
  if (flushes_after(event)) flush();
}

}  // namespace hookline
