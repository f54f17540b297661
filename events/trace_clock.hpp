// hookline: the clock of traces (Tracer::Clock).
//
// Tracing reads the clock twice per subscriber call, so the clock's cost is most of what a trace
// costs per event. std::chrono::steady_clock goes through clock_gettime (20-50 ns here); on x86
// TraceClock reads the CPU's time-stamp counter instead (a few ns) and scales it to nanoseconds
// with a factor measured once against steady_clock (5 ms, when the clock is first used). It does
// so only when the kernel itself keeps time with the TSC (its clocksource is "tsc", which it
// chooses only for an invariant, synchronized TSC); otherwise, and when
// HOOKLINE_TRACE_CLOCK=steady, it is steady_clock. Either way it is steady and counts nanoseconds.
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
#define HOOKLINE_TRACE_CLOCK_TSC 1
#endif

namespace hookline {

namespace detail {
struct TscScale {
  bool enabled = false;
  std::uint64_t base_tsc = 0;
  std::int64_t base_ns = 0;  // steady_clock's reading at base_tsc
  std::uint64_t mult = 0;    // nanoseconds per tick, times 2^32
};
/// Measured on first use (thread-safe).
const TscScale& tsc_scale() noexcept;
}  // namespace detail

struct TraceClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<TraceClock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
#ifdef HOOKLINE_TRACE_CLOCK_TSC
    const detail::TscScale& s = detail::tsc_scale();
    if (s.enabled) [[likely]] {
      const auto ticks = static_cast<std::int64_t>(__rdtsc() - s.base_tsc);
      const auto ns = static_cast<std::int64_t>(
          (static_cast<__int128>(ticks) * static_cast<__int128>(s.mult)) >> 32);
      return time_point(duration(s.base_ns + ns));
    }
#endif
    return steady();
  }
  /// steady_clock's reading, as a TraceClock time point.
  static time_point steady() noexcept {
    return time_point(
        std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch()));
  }
  /// Whether now() reads the time-stamp counter.
  static bool uses_tsc() noexcept;
};

}  // namespace hookline
