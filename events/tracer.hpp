// hookline: the bus-level trace interceptor.
//
// A Tracer attached to a Bus sees every emission (also those nobody subscribed to) and every
// subscriber call, with the time it took and its verdict. Sinks (JSON lines, Chrome trace, ring
// buffer, summaries) implement this interface. Tracer methods run in the thread that emits (or,
// for async subscribers, in the async lane), so implementations must be thread-safe.
#pragma once

#include "hookline/events/dispatch_policy.hpp"
#include "hookline/events/event.hpp"
#include "hookline/events/trace_clock.hpp"
#include "hookline/events/verdict.hpp"

#include <chrono>
#include <cstdint>

namespace hookline {

class Tracer {
 public:
  /// The TSC where the kernel trusts it, else steady_clock (see trace_clock.hpp).
  using Clock = TraceClock;
  virtual ~Tracer() = default;
  /// An emission starts; `seq` numbers emissions of one bus from 1.
  virtual void on_emit(const EventInfo& event, const void* payload, std::uint64_t seq) = 0;
  /// One subscriber returned from emission `seq` (`payload` as that subscriber left it; for async
  /// subscribers, their copy).
  virtual void on_call(const EventInfo& event, const SubscriptionInfo& subscriber, Lane lane,
                       std::uint64_t seq, const void* payload, Clock::time_point start,
                       Clock::time_point end, Action verdict) = 0;
  /// The emission's sync part is over; `outcome` is what the loop will see.
  virtual void on_emit_end(const EventInfo& event, std::uint64_t seq, const Outcome& outcome) = 0;
};

}  // namespace hookline
