#include "hookline/tracing/trace_sinks.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace hookline {

// ---- StoredRecord ---------------------------------------------------------------------------

void StoredRecord::assign(const TraceRecord& r) {
  record = r;
  subscriber.assign(r.subscriber);
  by.assign(r.by);
  reason.assign(r.reason);
  args.assign(r.args);
  record.subscriber = subscriber;
  record.by = by;
  record.reason = reason;
  record.args = args;
}

// ---- NamePool and CompactRecord -------------------------------------------------------------

namespace detail {

const std::string* NamePool::intern(std::string_view name) {
  Cached& c = cache_[(reinterpret_cast<std::uintptr_t>(name.data()) >> 3) % 64];
  if (c.key == name.data() && c.value->size() == name.size() &&
      std::equal(name.begin(), name.end(), c.value->begin()))
    return c.value;
  auto it = pool_.find(name);
  if (it == pool_.end()) it = pool_.emplace(name).first;
  c.key = name.data();
  c.value = &*it;
  return c.value;
}

void CompactRecord::assign(const TraceRecord& r, NamePool& names) {
  seq = r.seq;
  parent = r.parent;
  start_ns = r.start_ns;
  duration_ns = r.duration_ns;
  epoch = r.epoch;
  global_step = r.global_step;
  batch_idx = r.batch_idx;
  dataloader_idx = r.dataloader_idx;
  event = r.event.data();
  event_size = static_cast<std::uint16_t>(r.event.size());
  stage = r.stage.data();
  stage_size = static_cast<std::uint8_t>(r.stage.size());
  subscriber = r.subscriber.empty() ? nullptr : names.intern(r.subscriber);
  if (!r.by.empty() || !r.reason.empty() || !r.args.empty()) [[unlikely]] {
    if (!extra) extra = std::make_unique<Extra>();
    extra->by.assign(r.by);
    extra->reason.assign(r.reason);
    extra->args.assign(r.args);
  } else if (extra) [[unlikely]] {
    extra.reset();
  }
  rank = r.rank;
  depth = r.depth;
  thread = r.thread;
  bus = r.bus;
  kind = static_cast<std::uint8_t>(r.kind);
  lane = static_cast<std::uint8_t>(r.lane);
  verdict = static_cast<std::uint8_t>(r.verdict);
  pairing = static_cast<std::uint8_t>(r.pairing);
  aborted = r.aborted;
}

TraceRecord CompactRecord::view() const {
  TraceRecord r;
  r.kind = static_cast<TraceRecord::Kind>(kind);
  r.lane = static_cast<Lane>(lane);
  r.verdict = static_cast<Action>(verdict);
  r.pairing = static_cast<Pairing>(pairing);
  r.aborted = aborted != 0;
  r.depth = depth;
  r.thread = thread;
  r.bus = bus;
  r.rank = rank;
  r.seq = seq;
  r.parent = parent;
  r.start_ns = start_ns;
  r.duration_ns = duration_ns;
  r.epoch = epoch;
  r.global_step = global_step;
  r.batch_idx = batch_idx;
  r.dataloader_idx = dataloader_idx;
  if (event) r.event = std::string_view(event, event_size);
  if (stage) r.stage = std::string_view(stage, stage_size);
  if (subscriber) r.subscriber = *subscriber;
  if (extra) {
    r.by = extra->by;
    r.reason = extra->reason;
    r.args = extra->args;
  }
  return r;
}

}  // namespace detail

// ---- JsonlSink ------------------------------------------------------------------------------

namespace {
constexpr std::size_t kMaxQueued = 1 << 16;  // records; emitters wait beyond this
constexpr auto kWriterPeriod = std::chrono::milliseconds(20);
}  // namespace

JsonlSink::JsonlSink(const std::string& path, bool append)
    : file_(std::make_unique<std::ofstream>(
          path, append ? std::ios::app | std::ios::binary : std::ios::trunc | std::ios::binary)),
      out_(file_.get()) {
  if (!*file_)
    throw std::runtime_error("trace: cannot open '" + path +
                             "' for writing; check the directory exists and is writable");
  writer_ = std::thread([this] { run(); });
}

JsonlSink::JsonlSink(std::ostream& out) : out_(&out) {
  writer_ = std::thread([this] { run(); });
}

JsonlSink::~JsonlSink() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void JsonlSink::write(const TraceRecord& record) {
  std::unique_lock lock(mutex_);
  if (pending_.size() >= kMaxQueued) [[unlikely]] {
    wake_.notify_one();
    done_.wait(lock, [&] { return pending_.size() < kMaxQueued || stop_; });
  }
  pending_.emplace_back().assign(record, names_);
  ++queued_;
}

void JsonlSink::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = queued_;
  flush_requested_ = true;
  wake_.notify_one();
  done_.wait(lock, [&] { return written_ >= target; });
}

std::uint64_t JsonlSink::lines() const {
  std::lock_guard lock(mutex_);
  return written_;
}

// The writer thread: every few milliseconds, or when asked, formats what is queued and writes it.
void JsonlSink::run() {
  std::string text;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, kWriterPeriod,
                   [&] { return stop_ || flush_requested_ || pending_.size() >= kMaxQueued / 2; });
    const bool stopping = stop_;
    const bool flushing = std::exchange(flush_requested_, false) || stopping;
    writing_.swap(pending_);
    const std::uint64_t n = writing_.size();
    done_.notify_all();  // emitters waiting for room
    lock.unlock();
    for (const auto& r : writing_) {
      append_json(text, r.view());
      text += '\n';
      if (text.size() >= (1 << 16)) {
        out_->write(text.data(), static_cast<std::streamsize>(text.size()));
        text.clear();
      }
    }
    out_->write(text.data(), static_cast<std::streamsize>(text.size()));
    text.clear();
    if (flushing) out_->flush();
    lock.lock();
    // A burst (a slow disk, a loaded machine) may have grown the queue to kMaxQueued records;
    // give that memory back instead of holding the high-water mark for the rest of the run.
    if (writing_.capacity() > 8192)
      decltype(writing_)().swap(writing_);
    else
      writing_.clear();
    written_ += n;
    done_.notify_all();
    if (stopping && pending_.empty()) break;
  }
}

// ---- RingBufferSink -------------------------------------------------------------------------

RingBufferSink::RingBufferSink() : RingBufferSink(Options{}) {}

RingBufferSink::RingBufferSink(Options options) : options_(std::move(options)) {
  if (options_.capacity == 0)
    throw std::invalid_argument("RingBufferSink: capacity must be at least 1");
  slots_.resize(options_.capacity);
}

void RingBufferSink::write(const TraceRecord& record) {
  {
    std::lock_guard lock(mutex_);
    slots_[pos_].assign(record, names_);
    if (++pos_ == slots_.size()) pos_ = 0;
    ++next_;
  }
  if (record.kind == TraceRecord::Kind::emit && !options_.path.empty()) [[unlikely]] {
    for (const auto& name : options_.dump_on) {
      if (record.event == name) {
        const std::size_t n = dump(options_.path);
        {
          std::lock_guard lock(mutex_);
          ++dumps_;
        }
        if (options_.announce)
          std::fprintf(stderr, "hookline: %s: the last %zu trace records were written to %s\n",
                       name.c_str(), n, options_.path.c_str());
        break;
      }
    }
  }
}

std::vector<StoredRecord> RingBufferSink::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<StoredRecord> out;
  const std::uint64_t n = std::min<std::uint64_t>(next_, slots_.size());
  out.reserve(n);
  for (std::uint64_t i = next_ - n; i < next_; ++i)
    out.emplace_back(slots_[i % slots_.size()].view());
  return out;
}

std::size_t RingBufferSink::dump(const std::string& path) const {
  const std::vector<StoredRecord> records = snapshot();
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  if (!out) {
    std::fprintf(stderr, "hookline: cannot write the trace ring buffer to '%s'\n", path.c_str());
    return 0;
  }
  std::string text;
  for (const auto& r : records) {
    append_json(text, r.record);
    text += '\n';
  }
  out << text;
  return records.size();
}

std::uint64_t RingBufferSink::written() const {
  std::lock_guard lock(mutex_);
  return next_;
}

std::uint64_t RingBufferSink::dumps() const {
  std::lock_guard lock(mutex_);
  return dumps_;
}

// ---- DurationStats and TraceSummary ---------------------------------------------------------

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

void SummarySink::write(const TraceRecord& record) {
  std::lock_guard lock(mutex_);
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
  std::lock_guard lock(mutex_);
  summary_.print(out, options_.tables);
}

TraceSummary SummarySink::summary() const {
  std::lock_guard lock(mutex_);
  return summary_;
}

// ---- Chrome trace ---------------------------------------------------------------------------

namespace {

void append_escaped(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

// Microseconds with nanosecond digits, as Chrome's "ts"/"dur" take them.
void append_us(std::string& out, std::int64_t ns) {
  if (ns < 0) {
    out += '-';
    ns = -ns;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ns / 1000),
                static_cast<long long>(ns % 1000));
  out += buf;
}

// The span a paired hook belongs to: on_train_epoch_start -> train_epoch; setup/teardown -> run.
std::string span_name(std::string_view event) {
  if (event == "setup" || event == "teardown") return "run";
  std::string_view s = event;
  if (s.substr(0, 3) == "on_") s.remove_prefix(3);
  for (std::string_view suffix : {"_start", "_end"})
    if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
      s.remove_suffix(suffix.size());
      break;
    }
  return std::string(s);
}

struct ChromeEvent {
  std::int32_t pid = 0;
  std::int64_t tid = 0;
  std::int64_t ts = 0, dur = 0;
  int order = 0;  // span 0, emit 1, call 2: the enclosing one first when they start together
  std::size_t index = 0;
  std::string json;
};

void context_args(std::string& a, const TraceRecord& r) {
  a += "{\"seq\":";
  a += std::to_string(r.seq);
  if (!r.stage.empty()) {
    a += ",\"stage\":";
    append_escaped(a, r.stage);
  }
  if (r.epoch != TraceRecord::kNone) a += ",\"epoch\":" + std::to_string(r.epoch);
  if (r.global_step != TraceRecord::kNone) a += ",\"global_step\":" + std::to_string(r.global_step);
  if (r.batch_idx != TraceRecord::kNone) a += ",\"batch_idx\":" + std::to_string(r.batch_idx);
  if (r.dataloader_idx != TraceRecord::kNone)
    a += ",\"dataloader_idx\":" + std::to_string(r.dataloader_idx);
  a += ",\"bus\":" + std::to_string(r.bus);
  a += ",\"verdict\":";
  append_escaped(a, to_string(r.verdict));
  if (!r.by.empty()) {
    a += ",\"by\":";
    append_escaped(a, r.by);
  }
  if (!r.reason.empty()) {
    a += ",\"reason\":";
    append_escaped(a, r.reason);
  }
  if (r.aborted) a += ",\"aborted\":true";
  if (!r.args.empty()) {
    a += ",\"args\":";
    append_escaped(a, r.args);
  }
  a += '}';
}

ChromeEvent slice(std::string_view name, std::string_view cat, std::int32_t pid, std::int64_t tid,
                  std::int64_t ts, std::int64_t dur, int order, const std::string& args) {
  ChromeEvent e;
  e.pid = pid;
  e.tid = tid;
  e.ts = ts;
  e.dur = dur;
  e.order = order;
  std::string& j = e.json;
  j += "{\"name\":";
  append_escaped(j, name);
  j += ",\"cat\":";
  append_escaped(j, cat);
  j += ",\"ph\":\"X\",\"ts\":";
  append_us(j, ts);
  j += ",\"dur\":";
  append_us(j, std::max<std::int64_t>(dur, 0));
  j += ",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid) + ",\"args\":";
  j += args;
  j += '}';
  return e;
}

}  // namespace

void write_chrome_trace(std::ostream& out, const std::vector<TraceRecord>& records) {
  std::vector<ChromeEvent> events;
  events.reserve(records.size() + records.size() / 4);
  // Tracks: (rank, tid) -> name. Async calls get tracks of their own (tid 1000 + thread).
  std::map<std::pair<std::int32_t, std::int64_t>, std::string> tracks;
  struct Open {
    std::string name;
    const TraceRecord* start;
  };
  // Open paired spans per (rank, bus, thread).
  std::map<std::tuple<std::int32_t, std::uint32_t, std::uint32_t>, std::vector<Open>> open;
  std::int64_t last_ns = 0;

  auto span = [&](const Open& o, std::int64_t end_ns, bool finished) {
    const TraceRecord& s = *o.start;
    std::string args;
    context_args(args, s);
    events.push_back(slice(finished ? o.name : o.name + " (unfinished)", "span", s.rank, s.thread,
                           s.start_ns, end_ns - s.start_ns, 0, args));
  };

  for (const TraceRecord& r : records) {
    last_ns = std::max(last_ns, r.start_ns + r.duration_ns);
    const bool async = r.kind == TraceRecord::Kind::call && r.lane == Lane::async;
    const std::int64_t tid = async ? 1000 + std::int64_t{r.thread} : std::int64_t{r.thread};
    auto& track = tracks[{r.rank, tid}];
    if (track.empty())
      track = (async ? "async lane, thread " : "sync lane, thread ") + std::to_string(r.thread);
    std::string args;
    context_args(args, r);
    if (r.kind == TraceRecord::Kind::call) {
      std::string name(r.subscriber);
      name += '.';
      name.append(r.event);
      events.push_back(slice(name, "call", r.rank, tid, r.start_ns, r.duration_ns, 2, args));
    } else {
      events.push_back(slice(r.aborted ? std::string(r.event) + " (aborted)" : std::string(r.event),
                             "emit", r.rank, tid, r.start_ns, r.duration_ns, 1, args));
      if (r.pairing == Pairing::none || r.aborted) continue;
      auto& stack = open[{r.rank, r.bus, r.thread}];
      std::string name = span_name(r.event);
      if (r.pairing == Pairing::start) {
        // A start with no end (a skipped batch) gives way to the next start of its pair.
        if (!stack.empty() && stack.back().name == name) stack.pop_back();
        stack.push_back(Open{std::move(name), &r});
      } else {
        auto it = std::find_if(stack.rbegin(), stack.rend(),
                               [&](const Open& o) { return o.name == name; });
        if (it == stack.rend()) continue;
        const std::size_t keep = static_cast<std::size_t>(stack.rend() - it) - 1;
        span(stack[keep], r.start_ns + r.duration_ns, true);
        stack.resize(keep);  // starts above it never ended: dropped
      }
    }
  }
  for (auto& [key, stack] : open)
    for (const Open& o : stack) span(o, last_ns, false);

  std::stable_sort(events.begin(), events.end(), [](const ChromeEvent& a, const ChromeEvent& b) {
    return std::tie(a.pid, a.tid, a.ts, b.dur, a.order) <
           std::tie(b.pid, b.tid, b.ts, a.dur, b.order);
  });

  std::string text = "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"hookline\"},";
  text += "\"traceEvents\":[\n";
  bool first = true;
  auto add = [&](const std::string& json) {
    if (!first) text += ",\n";
    first = false;
    text += json;
  };
  std::map<std::int32_t, bool> ranks;
  for (const auto& [key, name] : tracks) ranks[key.first] = true;
  for (const auto& [rank, unused] : ranks) {
    (void)unused;
    add("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(rank) +
        ",\"args\":{\"name\":\"rank " + std::to_string(rank) + "\"}}");
    add("{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":" + std::to_string(rank) +
        ",\"args\":{\"sort_index\":" + std::to_string(rank) + "}}");
  }
  for (const auto& [key, name] : tracks) {
    std::string m = "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" + std::to_string(key.first) +
                    ",\"tid\":" + std::to_string(key.second) + ",\"args\":{\"name\":";
    append_escaped(m, name);
    add(m + "}}");
    add("{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":" + std::to_string(key.first) +
        ",\"tid\":" + std::to_string(key.second) +
        ",\"args\":{\"sort_index\":" + std::to_string(key.second) + "}}");
  }
  out << text;
  text.clear();
  for (const ChromeEvent& e : events) {
    add(e.json);
    if (text.size() > (1 << 16)) {
      out << text;
      text.clear();
    }
  }
  text += "\n]}\n";
  out << text;
}

ChromeSink::ChromeSink(std::string path) : path_(std::move(path)) {
  std::ofstream probe(path_, std::ios::trunc);
  if (!probe)
    throw std::runtime_error("trace: cannot open '" + path_ +
                             "' for writing; check the directory exists and is writable");
}

ChromeSink::~ChromeSink() {
  try {
    write_file();
  } catch (...) {
    // Nothing to do from a destructor.
  }
}

void ChromeSink::write(const TraceRecord& record) {
  std::lock_guard lock(mutex_);
  records_.emplace_back().assign(record, names_);
}

void ChromeSink::flush() {
  write_file();
}

void ChromeSink::write_file() {
  std::lock_guard lock(mutex_);
  if (written_ == records_.size() && written_ != 0) return;
  std::vector<TraceRecord> views;
  views.reserve(records_.size());
  for (const auto& r : records_) views.push_back(r.view());
  std::ofstream out(path_, std::ios::trunc | std::ios::binary);
  write_chrome_trace(out, views);
  if (!out) std::fprintf(stderr, "hookline: cannot write the Chrome trace '%s'\n", path_.c_str());
  written_ = records_.size();
}

}  // namespace hookline
