// hookline: how trace sinks keep records: interned subscriber names and a compact record (about
// 120 bytes) that turns back into a TraceRecord view.
#pragma once

#include "hookline/tracing/trace.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

namespace hookline::detail {

// Interns subscriber names, so stored records point at one copy of each (not thread-safe: sinks
// use it under their lock). A small cache on the caller's string address makes repeats cheap.
class NamePool {
 public:
  const std::string* intern(std::string_view name);

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Cached {
    const char* key = nullptr;
    const std::string* value = nullptr;
  };
  std::unordered_set<std::string, Hash, std::equal_to<>> pool_;
  Cached cache_[64];
};

// A record as sinks keep it: fixed fields, interned names, and the rare strings (veto, args) in
// a side allocation. About 120 bytes; assigning over a used one does not allocate.
struct CompactRecord {
  struct Extra {
    std::string by, reason, skip_by, skip_reason, args;
  };
  std::uint64_t seq = 0, parent = 0;
  std::int64_t start_ns = 0, duration_ns = 0, epoch = 0, global_step = 0, batch_idx = 0,
               dataloader_idx = 0;
  const char* event = nullptr;              // static (EventInfo names)
  const char* stage = nullptr;              // static (the context's stage names)
  const std::string* subscriber = nullptr;  // interned
  std::unique_ptr<Extra> extra;
  std::int32_t rank = 0;
  std::uint32_t depth = 0, thread = 0, bus = 0;
  std::uint16_t event_size = 0;
  std::uint8_t stage_size = 0, kind = 0, lane = 0, verdict = 0, skip = 0, pairing = 0, aborted = 0;

  void assign(const TraceRecord& r, NamePool& names);
  TraceRecord view() const;
};

}  // namespace hookline::detail
