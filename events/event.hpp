// hookline: what the bus knows about an event type.
//
// Any struct can be an event. It must declare its name; the rest has defaults:
//
//   struct EpochSummary {
//     static constexpr std::string_view name = "on_epoch_summary";      // required
//     static constexpr hookline::ActionSet vetoes{hookline::Action::StopFit};  // default: none
//     static constexpr hookline::Pairing pairing = hookline::Pairing::none;  // default
//     static constexpr hookline::OrderRule order = hookline::OrderRule::standard;  // default
//     std::string describe() const;  // optional: arguments shown in traces
//     double loss;
//   };
//
// Built-in hook events (hooks.hpp) are declared exactly like this, so filters, dispatch policies
// and tracing treat user events and Lightning hooks alike.
#pragma once

#include "hookline/events/bands.hpp"
#include "hookline/events/verdict.hpp"

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hookline {

/// Whether an event opens or closes a paired span (on_x_start / on_x_end).
enum class Pairing { none, start, end };

/// Whether `Module::log` may be called while this event is dispatched, and its defaults
/// (Lightning 2.2's table of allowed logging hooks).
enum class LogRule : std::uint8_t {
  inherit,    ///< user events: the rule of the hook that emitted them
  forbidden,  ///< log() raises a clear error
  step,       ///< on_step/on_epoch both allowed; default on_step=true, on_epoch=false
  eval_step,  ///< on_step/on_epoch both allowed; default on_step=false, on_epoch=true
  epoch,      ///< only on_step=false, on_epoch=true (the default)
};

/// Static description of one event type.
struct EventInfo {
  std::size_t id = 0;     ///< dense id, assigned on first use
  std::string_view name;  ///< the hook name, e.g. "on_train_batch_start"
  Pairing pairing = Pairing::none;
  OrderRule order = OrderRule::standard;
  ActionSet vetoes;                ///< verdicts other than Continue that the event accepts
  LogRule log = LogRule::inherit;  ///< where Module::log may be called (hooks.hpp)
  /// Renders the payload's arguments for traces ("" when the event has no describe()).
  std::string (*describe)(const void* payload) = nullptr;
};

/// Most distinct event types one process may use (built-in hooks use about 70).
inline constexpr std::size_t kMaxEventTypes = 512;

namespace detail {
std::size_t next_event_id(std::string_view name);
}  // namespace detail

/// An event type: any class with a `static constexpr std::string_view name`.
template <class E>
concept Event = requires {
  { E::name } -> std::convertible_to<std::string_view>;
};

/// The EventInfo of E, built once.
template <Event E>
const EventInfo& event_info() {
  static const EventInfo info = [] {
    EventInfo i;
    i.name = E::name;
    if constexpr (requires { E::pairing; }) i.pairing = E::pairing;
    if constexpr (requires { E::order; }) i.order = E::order;
    if constexpr (requires { E::vetoes; }) i.vetoes = E::vetoes;
    if constexpr (requires { E::log; }) i.log = E::log;
    if constexpr (requires(const E& e) {
                    { e.describe() } -> std::convertible_to<std::string>;
                  }) {
      i.describe = [](const void* p) -> std::string {
        return static_cast<const E*>(p)->describe();
      };
    }
    i.id = detail::next_event_id(i.name);
    return i;
  }();
  return info;
}

/// About how many bytes a copy of an event keeps alive: what the async lane's byte budget counts
/// for each queued copy (AsyncLane::Options::max_bytes). By default sizeof(E); specialise it for
/// an event that shares a large buffer, as hooks.hpp does for the hook events carrying a Batch:
///
///   template <> struct hookline::EventBytes<Frame> {
///     static std::size_t of(const Frame& f) { return sizeof(Frame) + f.pixels->size(); }
///   };
template <class E>
struct EventBytes {
  static std::size_t of(const E&) { return sizeof(E); }
};

/// EventBytes<E>::of(event).
template <class E>
std::size_t approx_bytes(const E& event) {
  return EventBytes<E>::of(event);
}

/// Dense id of E (same as event_info<E>().id), cheap after the first call.
template <Event E>
std::size_t event_id() {
  static const std::size_t id = event_info<E>().id;
  return id;
}

}  // namespace hookline
