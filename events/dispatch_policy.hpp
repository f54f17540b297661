// hookline: dispatch policies, the pluggable rule that orders subscribers and picks their lane.
//
// When the subscriptions of an event type change, the bus lists them in priority order (ties in
// registration order) and hands that list to the bus's DispatchPolicy, which may reorder it and
// change lanes. The result is cached, so a policy costs nothing per emission.
//
// Shipped policies:
//   LightningOrder   bands in Lightning 2.2's order, honouring each event's OrderRule (default)
//   ReverseEndOrder  like its base, but the closing half of paired events (on_x_end) runs in
//                    reverse: A, B, C on start; C, B, A on end
//   SynchronousOnly  like its base, but every subscriber runs in the sync lane (deterministic
//                    debugging and tests)
#pragma once

#include "hookline/events/event.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hookline {

/// Where a subscriber runs: in the emitting thread (may veto) or on the async lane (observer).
enum class Lane { sync, async };

/// What a dispatch policy (and a tracer) sees of one subscription.
struct SubscriptionInfo {
  std::string name;        ///< for traces and veto records
  int priority = 0;        ///< lower runs first
  Lane lane = Lane::sync;  ///< the lane the subscriber asked for
  const void* owner = nullptr;
  std::uint64_t serial = 0;  ///< registration order, unique per bus
  /// Called only by traced emissions (SubscribeOptions::only_when_traced).
  bool only_when_traced = false;
  /// Runs the default the emitter would run itself (SubscribeOptions::runs_default).
  bool runs_default = false;
};

/// One subscriber's place in the dispatch order of an event.
struct Placement {
  const SubscriptionInfo* subscription = nullptr;
  Lane lane = Lane::sync;  ///< the lane it will run in; a policy may change it
  std::size_t slot = 0;    ///< internal: index into the bus's list; do not change
};

class DispatchPolicy {
 public:
  virtual ~DispatchPolicy() = default;
  /// Reorders `order` (given in priority order, ties by registration) and sets lanes for `event`.
  virtual void arrange(const EventInfo& event, std::vector<Placement>& order) const = 0;
  virtual std::string_view name() const = 0;
};

/// Position of `priority`'s band under `rule` (lower first); priorities outside the bands sort
/// before (negative) or after (>= 6000) all of them.
int band_rank(OrderRule rule, int priority);

/// The default: Lightning 2.2's order (see bands.hpp).
class LightningOrder final : public DispatchPolicy {
 public:
  void arrange(const EventInfo& event, std::vector<Placement>& order) const override;
  std::string_view name() const override { return "LightningOrder"; }
};

/// Reverses the closing half of paired events, after the base policy ordered them.
class ReverseEndOrder final : public DispatchPolicy {
 public:
  enum class Scope {
    all,          ///< the whole list is reversed (module/checkpoint bands move first on *_end)
    within_band,  ///< only subscribers of the same band swap places; bands keep their order
  };
  explicit ReverseEndOrder(Scope scope = Scope::all,
                           std::shared_ptr<const DispatchPolicy> base = nullptr);
  void arrange(const EventInfo& event, std::vector<Placement>& order) const override;
  std::string_view name() const override { return "ReverseEndOrder"; }

 private:
  Scope scope_;
  std::shared_ptr<const DispatchPolicy> base_;
};

/// Runs every subscriber in the sync lane, in the base policy's order.
class SynchronousOnly final : public DispatchPolicy {
 public:
  explicit SynchronousOnly(std::shared_ptr<const DispatchPolicy> base = nullptr);
  void arrange(const EventInfo& event, std::vector<Placement>& order) const override;
  std::string_view name() const override { return "SynchronousOnly"; }

 private:
  std::shared_ptr<const DispatchPolicy> base_;
};

}  // namespace hookline
