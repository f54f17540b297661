#include "hookline/events/dispatch_policy.hpp"

#include <algorithm>
#include <array>

namespace hookline {

namespace {
// Band index (priority / width) in the order each rule calls them.
constexpr std::array<std::array<int, 6>, 4> kBandOrder{{
    // tuner, callback, monitoring, checkpoint, data_module, module
    {0, 1, 2, 3, 4, 5},  // standard
    {1, 2, 3, 4, 0, 5},  // data_module_first
    {0, 1, 4, 5, 2, 3},  // module_before_monitoring
    {2, 3, 4, 5, 1, 0},  // module_first
}};
}  // namespace

int band_rank(OrderRule rule, int priority) {
  if (priority < 0) return -1;
  const int band = priority / band::width;
  if (band >= 6) return band;
  return kBandOrder[static_cast<std::size_t>(rule)][static_cast<std::size_t>(band)];
}

void LightningOrder::arrange(const EventInfo& event, std::vector<Placement>& order) const {
  if (event.order == OrderRule::standard) return;  // already in priority order
  std::stable_sort(order.begin(), order.end(), [&](const Placement& a, const Placement& b) {
    return band_rank(event.order, a.subscription->priority) <
           band_rank(event.order, b.subscription->priority);
  });
}

ReverseEndOrder::ReverseEndOrder(Scope scope, std::shared_ptr<const DispatchPolicy> base)
    : scope_(scope), base_(base ? std::move(base) : std::make_shared<LightningOrder>()) {}

void ReverseEndOrder::arrange(const EventInfo& event, std::vector<Placement>& order) const {
  base_->arrange(event, order);
  if (event.pairing != Pairing::end) return;
  if (scope_ == Scope::all) {
    std::reverse(order.begin(), order.end());
    return;
  }
  auto first = order.begin();
  while (first != order.end()) {
    const int rank = band_rank(event.order, first->subscription->priority);
    auto last = std::find_if(first, order.end(), [&](const Placement& p) {
      return band_rank(event.order, p.subscription->priority) != rank;
    });
    std::reverse(first, last);
    first = last;
  }
}

SynchronousOnly::SynchronousOnly(std::shared_ptr<const DispatchPolicy> base)
    : base_(base ? std::move(base) : std::make_shared<LightningOrder>()) {}

void SynchronousOnly::arrange(const EventInfo& event, std::vector<Placement>& order) const {
  base_->arrange(event, order);
  for (auto& p : order) p.lane = Lane::sync;
}

}  // namespace hookline
