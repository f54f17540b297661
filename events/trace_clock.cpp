#include "hookline/events/trace_clock.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace hookline {

namespace detail {

namespace {

TscScale calibrate() {
  TscScale s;
#ifdef HOOKLINE_TRACE_CLOCK_TSC
  if (const char* choice = std::getenv("HOOKLINE_TRACE_CLOCK");
      choice != nullptr && std::strcmp(choice, "steady") == 0)
    return s;
  std::ifstream source("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  std::string name;
  if (!(source >> name) || name != "tsc") return s;
  using Steady = std::chrono::steady_clock;
  const auto ns = [](Steady::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  };
  const Steady::time_point t0 = Steady::now();
  const std::uint64_t c0 = __rdtsc();
  Steady::time_point t1 = t0;
  std::uint64_t c1 = c0;
  while (t1 - t0 < std::chrono::milliseconds(5)) {
    t1 = Steady::now();
    c1 = __rdtsc();
  }
  if (c1 <= c0) return s;
  const auto elapsed = static_cast<unsigned __int128>(ns(t1) - ns(t0));
  s.mult = static_cast<std::uint64_t>((elapsed << 32) / (c1 - c0));
  s.base_tsc = c1;
  s.base_ns = ns(t1);
  s.enabled = s.mult > 0;
#endif
  return s;
}

}  // namespace

const TscScale& tsc_scale() noexcept {
  static const TscScale scale = calibrate();
  return scale;
}

}  // namespace detail

bool TraceClock::uses_tsc() noexcept {
  return detail::tsc_scale().enabled;
}

}  // namespace hookline
