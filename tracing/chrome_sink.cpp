#include "hookline/tracing/chrome_sink.hpp"

#include "hookline/tracing/trace_codec.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <tuple>

namespace hookline {

namespace {

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
    append_json_string(a, r.stage);
  }
  if (r.epoch != TraceRecord::kNone) a += ",\"epoch\":" + std::to_string(r.epoch);
  if (r.global_step != TraceRecord::kNone) a += ",\"global_step\":" + std::to_string(r.global_step);
  if (r.batch_idx != TraceRecord::kNone) a += ",\"batch_idx\":" + std::to_string(r.batch_idx);
  if (r.dataloader_idx != TraceRecord::kNone)
    a += ",\"dataloader_idx\":" + std::to_string(r.dataloader_idx);
  a += ",\"bus\":" + std::to_string(r.bus);
  a += ",\"verdict\":";
  append_json_string(a, to_string(r.verdict));
  if (!r.by.empty()) {
    a += ",\"by\":";
    append_json_string(a, r.by);
  }
  if (!r.reason.empty()) {
    a += ",\"reason\":";
    append_json_string(a, r.reason);
  }
  if (r.aborted) a += ",\"aborted\":true";
  if (!r.args.empty()) {
    a += ",\"args\":";
    append_json_string(a, r.args);
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
  append_json_string(j, name);
  j += ",\"cat\":";
  append_json_string(j, cat);
  j += ",\"ph\":\"X\",\"ts\":";
  append_us(j, ts);
  j += ",\"dur\":";
  append_us(j, std::max<std::int64_t>(dur, 0));
  j += ",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid) + ",\"args\":";
  j += args;
  j += '}';
  return e;
}

// A record's track: its tid (async calls get tracks of their own, 1000 + thread) and name.
std::int64_t track_of(const TraceRecord& r, std::string& name) {
  const bool async = r.kind == TraceRecord::Kind::call && r.lane == Lane::async;
  name = (async ? "async lane, thread " : "sync lane, thread ") + std::to_string(r.thread);
  return async ? 1000 + std::int64_t{r.thread} : std::int64_t{r.thread};
}

// The slice of one call or emission.
ChromeEvent record_slice(const TraceRecord& r, std::int64_t tid) {
  std::string args;
  context_args(args, r);
  if (r.kind == TraceRecord::Kind::call) {
    std::string name(r.subscriber);
    name += '.';
    name.append(r.event);
    return slice(name, "call", r.rank, tid, r.start_ns, r.duration_ns, 2, args);
  }
  return slice(r.aborted ? std::string(r.event) + " (aborted)" : std::string(r.event), "emit",
               r.rank, tid, r.start_ns, r.duration_ns, 1, args);
}

// The metadata events that name and order a rank's process.
template <class Add>
void process_metadata(std::int32_t rank, Add&& add) {
  add("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(rank) +
      ",\"args\":{\"name\":\"rank " + std::to_string(rank) + "\"}}");
  add("{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":" + std::to_string(rank) +
      ",\"args\":{\"sort_index\":" + std::to_string(rank) + "}}");
}

// The metadata events that name and order a track.
template <class Add>
void track_metadata(std::int32_t rank, std::int64_t tid, const std::string& name, Add&& add) {
  std::string m = "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" + std::to_string(rank) +
                  ",\"tid\":" + std::to_string(tid) + ",\"args\":{\"name\":";
  append_json_string(m, name);
  add(m + "}}");
  add("{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":" + std::to_string(rank) + ",\"tid\":" +
      std::to_string(tid) + ",\"args\":{\"sort_index\":" + std::to_string(tid) + "}}");
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
    std::string track_name;
    const std::int64_t tid = track_of(r, track_name);
    auto& track = tracks[{r.rank, tid}];
    if (track.empty()) track = std::move(track_name);
    events.push_back(record_slice(r, tid));
    if (r.kind != TraceRecord::Kind::emit || r.pairing == Pairing::none || r.aborted) continue;
    auto& stack = open[{r.rank, r.bus, r.thread}];
    std::string name = span_name(r.event);
    if (r.pairing == Pairing::start) {
      // A start with no end (a skipped batch) gives way to the next start of its pair.
      if (!stack.empty() && stack.back().name == name) stack.pop_back();
      stack.push_back(Open{std::move(name), &r});
    } else {
      auto it =
          std::find_if(stack.rbegin(), stack.rend(), [&](const Open& o) { return o.name == name; });
      if (it == stack.rend()) continue;
      const std::size_t keep = static_cast<std::size_t>(stack.rend() - it) - 1;
      span(stack[keep], r.start_ns + r.duration_ns, true);
      stack.resize(keep);  // starts above it never ended: dropped
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
    process_metadata(rank, add);
  }
  for (const auto& [key, name] : tracks) track_metadata(key.first, key.second, name, add);
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
  last_stream_ = std::chrono::steady_clock::now();
}

ChromeSink::~ChromeSink() {
  try {
    auto held = lock();
    write_file();
  } catch (...) {
    // Nothing to do from a destructor.
  }
}

void ChromeSink::write_locked(const TraceRecord& record, Lock& held) {
  (void)held;
  records_.emplace_back().assign(record, names_);
  const std::size_t waiting = records_.size() - streamed_;
  if (waiting >= kStreamRecords ||
      (waiting % 64 == 0 && std::chrono::steady_clock::now() - last_stream_ >= kStreamPeriod))
    stream();
}

void ChromeSink::flush_locked(Lock& held) {
  (void)held;
  write_file();
}

void ChromeSink::stream() {
  std::string text;
  bool first = !streaming_;
  if (!streaming_) {  // a new file, in the array form: "[" and events, no closing "]" needed
    text = "[\n";
    streamed_ = 0;
    stream_ranks_.clear();
    stream_tracks_.clear();
  }
  auto add = [&](const std::string& json) {
    if (!first) text += ",\n";
    first = false;
    text += json;
  };
  for (std::size_t i = streamed_; i < records_.size(); ++i) {
    const TraceRecord r = records_[i].view();
    std::string track_name;
    const std::int64_t tid = track_of(r, track_name);
    if (stream_ranks_.insert(r.rank).second) process_metadata(r.rank, add);
    if (stream_tracks_.insert({r.rank, tid}).second) track_metadata(r.rank, tid, track_name, add);
    add(record_slice(r, tid).json);
  }
  std::ofstream out(path_, (streaming_ ? std::ios::app : std::ios::trunc) | std::ios::binary);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.flush();
  if (!out) std::fprintf(stderr, "hookline: cannot write the Chrome trace '%s'\n", path_.c_str());
  streaming_ = true;
  streamed_ = records_.size();
  last_stream_ = std::chrono::steady_clock::now();
}

void ChromeSink::write_file() {
  if (written_ == records_.size() && written_ != 0) return;
  std::vector<TraceRecord> views;
  views.reserve(records_.size());
  for (const auto& r : records_) views.push_back(r.view());
  std::ofstream out(path_, std::ios::trunc | std::ios::binary);
  write_chrome_trace(out, views);
  if (!out) std::fprintf(stderr, "hookline: cannot write the Chrome trace '%s'\n", path_.c_str());
  written_ = records_.size();
  streaming_ = false;  // the file is whole; records that come later start a streamed one again
}

}  // namespace hookline
