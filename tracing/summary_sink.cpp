#include "hookline/tracing/summary_sink.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

namespace hookline {

namespace {
constexpr int kSubBits = 6;  // 64 buckets per power of two
constexpr std::int64_t kSub = 1 << kSubBits;
}  // namespace

std::size_t DurationStats::bucket(std::int64_t ns) {
  const auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
  if (v < static_cast<std::uint64_t>(2 * kSub)) return static_cast<std::size_t>(v);
  const int shift = std::bit_width(v) - (kSubBits + 1);  // v >> shift is in [64, 128)
  return static_cast<std::size_t>(shift + 1) * kSub + static_cast<std::size_t>(v >> shift) - kSub;
}

std::int64_t DurationStats::bucket_mid(std::size_t index) {
  const auto i = static_cast<std::int64_t>(index);
  if (i < 2 * kSub) return i;
  const std::int64_t shift = i / kSub - 1;
  const std::int64_t low = (i % kSub + kSub) << shift;
  return low + ((std::int64_t{1} << shift) - 1) / 2;
}

void DurationStats::add(std::int64_t ns) {
  if (count_ == 0 || ns < min_) min_ = ns;
  if (count_ == 0 || ns > max_) max_ = ns;
  ++count_;
  total_ += ns;
  const std::size_t b = bucket(ns);
  if (b >= buckets_.size()) buckets_.resize(b + 1, 0);
  ++buckets_[b];
}

std::int64_t DurationStats::quantile(double q) const {
  if (count_ == 0) return 0;
  const auto rank =
      static_cast<std::uint64_t>(std::max(1.0, std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(bucket_mid(i), min_, max_);
  }
  return max_;
}

std::pair<DurationStats*, DurationStats*> TraceSummary::rows(TraceRecord::Kind kind,
                                                             std::string_view event,
                                                             std::string_view subscriber) {
  auto row = [](std::map<std::string, DurationStats, std::less<>>& map, std::string_view key) {
    auto it = map.find(key);
    if (it == map.end()) it = map.emplace(std::string(key), DurationStats{}).first;
    return &it->second;
  };
  if (kind == TraceRecord::Kind::emit) return {row(hooks_, event), nullptr};
  std::string key(subscriber);
  key += '.';
  key.append(event);
  return {row(subscribers_, subscriber), row(calls_, key)};
}

void TraceSummary::add(const TraceRecord& r) {
  ++records_;
  if (r.kind == TraceRecord::Kind::emit && r.aborted) return;
  auto [first, second] = rows(r.kind, r.event, r.subscriber);
  first->add(r.duration_ns);
  if (second) second->add(r.duration_ns);
}

void TraceSummary::print(std::ostream& out, const std::vector<Table>& tables,
                         std::size_t top) const {
  auto table = [&](const char* title, const std::map<std::string, DurationStats, std::less<>>& m) {
    std::vector<std::pair<const std::string*, const DurationStats*>> rows;
    for (const auto& [k, v] : m) rows.emplace_back(&k, &v);
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return a.second->total() > b.second->total();
    });
    if (top > 0 && rows.size() > top) rows.resize(top);
    std::size_t width = std::string_view(title).size();
    for (const auto& row : rows) width = std::max(width, row.first->size());
    char line[512];
    std::snprintf(line, sizeof line, "%-*s %9s %12s %10s %10s %10s %10s\n", static_cast<int>(width),
                  title, "count", "total ms", "mean us", "p50 us", "p99 us", "max us");
    out << line;
    for (const auto& [key, s] : rows) {
      std::snprintf(line, sizeof line, "%-*s %9llu %12.3f %10.2f %10.2f %10.2f %10.2f\n",
                    static_cast<int>(width), key->c_str(),
                    static_cast<unsigned long long>(s->count()), s->total() / 1e6, s->mean() / 1e3,
                    s->quantile(0.5) / 1e3, s->quantile(0.99) / 1e3, s->max() / 1e3);
      out << line;
    }
  };
  bool first = true;
  for (Table t : tables) {
    if (!first) out << '\n';
    first = false;
    switch (t) {
      case Table::hooks:
        table("hook (emission, inclusive)", hooks_);
        break;
      case Table::subscribers:
        table("subscriber (all its calls)", subscribers_);
        break;
      case Table::calls:
        table("subscriber.hook", calls_);
        break;
    }
  }
}

SummarySink::SummarySink() : SummarySink(Options{}) {}
SummarySink::SummarySink(Options options) : options_(std::move(options)) {}

SummarySink::~SummarySink() {
  if (!options_.print_at_end) return;
  try {
    if (options_.path.empty()) {
      std::cerr << "hookline trace summary\n";
      print(std::cerr);
    } else {
      std::ofstream out(options_.path, std::ios::trunc);
      print(out);
      if (!out)
        std::fprintf(stderr, "hookline: cannot write the trace summary to '%s'\n",
                     options_.path.c_str());
    }
  } catch (...) {
    // Nothing to do from a destructor.
  }
}

void SummarySink::write_locked(const TraceRecord& record, Lock& held) {
  (void)held;
  summary_.count();
  if (record.kind == TraceRecord::Kind::emit && record.aborted) return;
  const bool call = record.kind == TraceRecord::Kind::call;
  const Key key{record.event.data(), call ? names_.intern(record.subscriber) : nullptr};
  auto it = rows_.find(key);
  if (it == rows_.end())
    it = rows_.emplace(key, summary_.rows(record.kind, record.event, record.subscriber)).first;
  it->second.first->add(record.duration_ns);
  if (it->second.second) it->second.second->add(record.duration_ns);
}

void SummarySink::print(std::ostream& out) const {
  auto held = lock();
  summary_.print(out, options_.tables);
}

TraceSummary SummarySink::summary() const {
  auto held = lock();
  return summary_;
}

}  // namespace hookline
