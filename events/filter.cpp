#include "hookline/events/filter.hpp"

#include <stdexcept>

namespace hookline {

Filter Filter::make(Kind kind, std::uint64_t n) {
  Filter f;
  f.clauses_.push_back(Clause{kind, n, 0, {}});
  return f;
}

Filter Filter::every_n(std::uint64_t n) {
  if (n == 0) throw std::invalid_argument("Filter::every_n(0): n must be at least 1");
  return make(Kind::every_n, n);
}

Filter Filter::once_at(std::uint64_t k) {
  if (k == 0)
    throw std::invalid_argument("Filter::once_at(0): emissions count from 1; use once_at(1)");
  return make(Kind::once_at, k);
}

Filter Filter::before(std::uint64_t n) {
  return make(Kind::before, n);
}
Filter Filter::after(std::uint64_t n) {
  return make(Kind::after, n);
}
Filter Filter::rank_zero() {
  return make(Kind::rank_zero, 0);
}

Filter operator&&(Filter a, Filter b) {
  for (auto& clause : b.clauses_) a.clauses_.push_back(std::move(clause));
  return a;
}

std::string Filter::describe() const {
  std::string out;
  for (const auto& c : clauses_) {
    if (!out.empty()) out += " && ";
    switch (c.kind) {
      case Kind::every_n:
        out += "every_n(" + std::to_string(c.n) + ")";
        break;
      case Kind::once_at:
        out += "once_at(" + std::to_string(c.n) + ")";
        break;
      case Kind::before:
        out += "before(" + std::to_string(c.n) + ")";
        break;
      case Kind::after:
        out += "after(" + std::to_string(c.n) + ")";
        break;
      case Kind::rank_zero:
        out += "rank_zero()";
        break;
      case Kind::predicate:
        out += "when(...)";
        break;
    }
  }
  return out.empty() ? "all" : out;
}

void Filter::check_event(std::size_t event_id, std::string_view event_name) const {
  for (const auto& c : clauses_) {
    if (c.kind == Kind::predicate && c.event_id != event_id)
      throw std::invalid_argument(
          "Filter::when<E>: predicate written for another event type than '" +
          std::string(event_name) + "'; declare the predicate on the subscribed event's type");
  }
}

bool Filter::admits(std::uint64_t count, int rank, const void* payload) const {
  for (const auto& c : clauses_) {
    switch (c.kind) {
      case Kind::every_n:
        if (count % c.n != 0) return false;
        break;
      case Kind::once_at:
        if (count != c.n) return false;
        break;
      case Kind::before:
        if (count >= c.n) return false;
        break;
      case Kind::after:
        if (count <= c.n) return false;
        break;
      case Kind::rank_zero:
        if (rank != 0) return false;
        break;
      case Kind::predicate:
        if (!c.predicate(payload)) return false;
        break;
    }
  }
  return true;
}

}  // namespace hookline
