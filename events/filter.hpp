// hookline: subscription filters.
//
// A filter decides, at each emission that reaches a subscriber, whether the subscriber is called.
// Counting filters count the emissions that reached the subscription (connected and not blocked),
// starting at 1, whether or not earlier ones were admitted. Clauses combine with &&:
//
//   Filter::every_n(10) && Filter::after(100) && Filter::rank_zero()
//
// Filters run in the emitting thread, also for async subscribers, so counts are deterministic.
#pragma once

#include "hookline/events/event.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hookline {

class Filter {
 public:
  /// Admits everything.
  Filter() = default;

  /// The n-th, 2n-th, 3n-th ... emission. n >= 1.
  static Filter every_n(std::uint64_t n);
  /// Only the k-th emission (k >= 1).
  static Filter once_at(std::uint64_t k);
  /// Emissions 1 .. n-1.
  static Filter before(std::uint64_t n);
  /// Emissions n+1, n+2, ...
  static Filter after(std::uint64_t n);
  /// Only on the process whose bus rank is 0 (see Bus::set_rank).
  static Filter rank_zero();
  /// Emissions whose payload satisfies `predicate`. Only valid on subscriptions to E.
  template <Event E>
  static Filter when(std::function<bool(const E&)> predicate) {
    Filter f;
    f.clauses_.push_back(
        Clause{Kind::predicate, 0, event_id<E>(), [p = std::move(predicate)](const void* payload) {
                 return p(*static_cast<const E*>(payload));
               }});
    return f;
  }

  /// Both filters must admit.
  friend Filter operator&&(Filter a, Filter b);

  bool empty() const { return clauses_.empty(); }
  /// "every_n(10) && rank_zero()".
  std::string describe() const;

  /// Throws std::invalid_argument if a predicate clause was written for another event type.
  void check_event(std::size_t event_id, std::string_view event_name) const;
  /// Whether the `count`-th emission (1-based) with `payload` on a process of `rank` passes.
  bool admits(std::uint64_t count, int rank, const void* payload) const;

 private:
  enum class Kind { every_n, once_at, before, after, rank_zero, predicate };
  struct Clause {
    Kind kind;
    std::uint64_t n = 0;
    std::size_t event_id = 0;  // for predicates
    std::function<bool(const void*)> predicate;
  };
  static Filter make(Kind kind, std::uint64_t n);
  std::vector<Clause> clauses_;
};

}  // namespace hookline
