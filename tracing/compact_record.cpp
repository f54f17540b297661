#include "hookline/tracing/compact_record.hpp"

#include <algorithm>

namespace hookline::detail {

const std::string* NamePool::intern(std::string_view name) {
  Cached& c = cache_[(reinterpret_cast<std::uintptr_t>(name.data()) >> 3) % 64];
  if (c.key == name.data() && c.value->size() == name.size() &&
      std::equal(name.begin(), name.end(), c.value->begin()))
    return c.value;
  auto it = pool_.find(name);
  if (it == pool_.end()) it = pool_.emplace(name).first;
  c.key = name.data();
  c.value = &*it;
  return c.value;
}

void CompactRecord::assign(const TraceRecord& r, NamePool& names) {
  seq = r.seq;
  parent = r.parent;
  start_ns = r.start_ns;
  duration_ns = r.duration_ns;
  epoch = r.epoch;
  global_step = r.global_step;
  batch_idx = r.batch_idx;
  dataloader_idx = r.dataloader_idx;
  event = r.event.data();
  event_size = static_cast<std::uint16_t>(r.event.size());
  stage = r.stage.data();
  stage_size = static_cast<std::uint8_t>(r.stage.size());
  subscriber = r.subscriber.empty() ? nullptr : names.intern(r.subscriber);
  if (!r.by.empty() || !r.reason.empty() || !r.args.empty()) [[unlikely]] {
    if (!extra) extra = std::make_unique<Extra>();
    extra->by.assign(r.by);
    extra->reason.assign(r.reason);
    extra->skip_by.assign(r.skip_by);
    extra->skip_reason.assign(r.skip_reason);
    extra->args.assign(r.args);
  } else if (extra) [[unlikely]] {
    extra.reset();
  }
  rank = r.rank;
  depth = r.depth;
  thread = r.thread;
  bus = r.bus;
  kind = static_cast<std::uint8_t>(r.kind);
  lane = static_cast<std::uint8_t>(r.lane);
  verdict = static_cast<std::uint8_t>(r.verdict);
  skip = static_cast<std::uint8_t>(r.skip);
  pairing = static_cast<std::uint8_t>(r.pairing);
  aborted = r.aborted;
}

TraceRecord CompactRecord::view() const {
  TraceRecord r;
  r.kind = static_cast<TraceRecord::Kind>(kind);
  r.lane = static_cast<Lane>(lane);
  r.verdict = static_cast<Action>(verdict);
  r.skip = static_cast<Action>(skip);
  r.pairing = static_cast<Pairing>(pairing);
  r.aborted = aborted != 0;
  r.depth = depth;
  r.thread = thread;
  r.bus = bus;
  r.rank = rank;
  r.seq = seq;
  r.parent = parent;
  r.start_ns = start_ns;
  r.duration_ns = duration_ns;
  r.epoch = epoch;
  r.global_step = global_step;
  r.batch_idx = batch_idx;
  r.dataloader_idx = dataloader_idx;
  if (event) r.event = std::string_view(event, event_size);
  if (stage) r.stage = std::string_view(stage, stage_size);
  if (subscriber) r.subscriber = *subscriber;
  if (extra) {
    r.by = extra->by;
    r.reason = extra->reason;
    r.skip_by = extra->skip_by;
    r.skip_reason = extra->skip_reason;
    r.args = extra->args;
  }
  return r;
}

}  // namespace hookline::detail
