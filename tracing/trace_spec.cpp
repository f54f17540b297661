#include "hookline/tracing/trace_spec.hpp"

#include "hookline/events/bus.hpp"
#include "hookline/tracing/trace_sinks.hpp"
#include "hookline/tracing/trace_stream.hpp"

#include <charconv>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

namespace hookline {

namespace {

constexpr const char* kForms =
    "PATH, jsonl:PATH, chrome:PATH, ring:N[:PATH], summary[:PATH], tcp:[HOST:]PORT, args, off";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

[[noreturn]] void bad(std::string_view item, const std::string& why) {
  throw std::invalid_argument("trace spec item '" + std::string(item) + "': " + why +
                              " (accepted: " + kForms + ")");
}

std::uint64_t number(std::string_view item, std::string_view text, const char* what) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    bad(item, std::string(what) + " '" + std::string(text) + "' is not a number");
  return v;
}

std::string absolute(std::string_view path) {
  std::error_code ec;
  auto p = std::filesystem::absolute(std::filesystem::path(std::string(path)), ec);
  return ec ? std::string(path) : p.lexically_normal().string();
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Sinks made from spec items, shared by every recorder of the process while any uses them.
struct Registry {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<TraceSink>> sinks;
  std::set<std::string> opened;  // files opened before: appended to, not truncated
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: sinks may outlive static destruction
  return *r;
}

// The canonical text of an item: shared sinks are looked up by it.
std::string key_of(const TraceSpec::Item& it) {
  using Kind = TraceSpec::Item::Kind;
  switch (it.kind) {
    case Kind::jsonl:
      return "jsonl:" + it.path;
    case Kind::chrome:
      return "chrome:" + it.path;
    case Kind::ring:
      return "ring:" + std::to_string(it.capacity) + ":" + it.path;
    case Kind::summary:
      return "summary:" + it.path;
    case Kind::tcp:
      return "tcp:" + it.host + ":" + std::to_string(it.port);
  }
  return {};
}

// `path` for rank `rank`: "{rank}" replaced, or STEM.rankN.EXT for rank N > 0.
std::string path_for_rank(const std::string& path, int rank) {
  const std::string r = std::to_string(rank);
  std::string out = path;
  bool placeholder = false;
  for (std::size_t at; (at = out.find("{rank}")) != std::string::npos; placeholder = true)
    out.replace(at, 6, r);
  if (placeholder || rank == 0 || path.empty()) return out;
  const std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + ".rank" + r + p.extension().string())).string();
}

std::shared_ptr<TraceSink> make_sink(const TraceSpec::Item& item, Registry& reg) {
  using Kind = TraceSpec::Item::Kind;
  switch (item.kind) {
    case Kind::jsonl: {
      const bool append = !reg.opened.insert(item.path).second;
      return std::make_shared<JsonlSink>(item.path, append);
    }
    case Kind::chrome:
      return std::make_shared<ChromeSink>(item.path);
    case Kind::ring: {
      RingBufferSink::Options o;
      o.capacity = item.capacity;
      if (!item.path.empty()) o.path = item.path;
      return std::make_shared<RingBufferSink>(o);
    }
    case Kind::summary: {
      SummarySink::Options o;
      o.path = item.path;
      return std::make_shared<SummarySink>(o);
    }
    case Kind::tcp: {
      TraceStreamServer::Options o;
      o.host = item.host;
      o.port = item.port;
      return std::make_shared<TraceStreamServer>(o);
    }
  }
  return nullptr;
}

}  // namespace

TraceSpec TraceSpec::parse(std::string_view spec) {
  TraceSpec out;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    const std::size_t comma = spec.find(',', pos);
    const std::string_view item = trim(
        spec.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    pos = comma == std::string_view::npos ? spec.size() + 1 : comma + 1;
    if (item.empty() || item == "off" || item == "0") continue;
    if (item == "args") {
      out.args = true;
      continue;
    }
    Item it;
    const std::size_t colon = item.find(':');
    const std::string_view head = item.substr(0, colon);
    const std::string_view rest =
        colon == std::string_view::npos ? std::string_view() : item.substr(colon + 1);
    if (head == "jsonl" || head == "chrome") {
      if (rest.empty()) bad(item, "a path is missing after '" + std::string(head) + ":'");
      it.kind = head == "jsonl" ? Item::Kind::jsonl : Item::Kind::chrome;
      it.path = absolute(rest);
    } else if (head == "ring") {
      if (rest.empty()) bad(item, "the number of records is missing: ring:N");
      const std::size_t c2 = rest.find(':');
      it.kind = Item::Kind::ring;
      it.capacity = number(item, rest.substr(0, c2), "ring size");
      if (it.capacity == 0) bad(item, "the ring must hold at least 1 record");
      if (c2 != std::string_view::npos) {
        if (rest.substr(c2 + 1).empty()) bad(item, "the dump path after 'ring:N:' is empty");
        it.path = absolute(rest.substr(c2 + 1));
      }
    } else if (head == "summary") {
      it.kind = Item::Kind::summary;
      if (!rest.empty()) it.path = absolute(rest);
    } else if (head == "tcp") {
      if (rest.empty()) bad(item, "the port is missing: tcp:PORT or tcp:HOST:PORT");
      it.kind = Item::Kind::tcp;
      const std::size_t c2 = rest.rfind(':');
      it.host = c2 == std::string_view::npos ? "127.0.0.1" : std::string(rest.substr(0, c2));
      const std::uint64_t port =
          number(item, c2 == std::string_view::npos ? rest : rest.substr(c2 + 1), "port");
      if (port > 65535) bad(item, "port " + std::to_string(port) + " is above 65535");
      if (it.host.empty()) bad(item, "the host before the port is empty");
      it.port = static_cast<std::uint16_t>(port);
    } else if (colon != std::string_view::npos && head.size() > 1 &&
               head.find('/') == std::string_view::npos &&
               head.find('.') == std::string_view::npos) {
      bad(item, "unknown kind '" + std::string(head) + "'");
    } else {
      it.kind = ends_with(item, ".json") ? Item::Kind::chrome : Item::Kind::jsonl;
      it.path = absolute(item);
    }
    it.key = key_of(it);
    out.items.push_back(std::move(it));
  }
  return out;
}

std::shared_ptr<TraceRecorder> make_trace_recorder(const TraceSpec& spec,
                                                   std::shared_ptr<const TraceContext> context) {
  if (spec.empty()) return nullptr;
  std::vector<std::shared_ptr<TraceSink>> sinks;
  {
    Registry& reg = registry();
    std::lock_guard lock(reg.mutex);
    for (const auto& item : spec.items) {
      // Port 0 asks for a fresh port each time: never shared.
      const bool shareable = !(item.kind == TraceSpec::Item::Kind::tcp && item.port == 0);
      std::shared_ptr<TraceSink> sink;
      if (shareable) {
        auto it = reg.sinks.find(item.key);
        if (it != reg.sinks.end()) sink = it->second.lock();
      }
      if (!sink) {
        sink = make_sink(item, reg);
        if (shareable) reg.sinks[item.key] = sink;
      }
      sinks.push_back(std::move(sink));
    }
  }
  TraceRecorder::Options options;
  options.args = spec.args;
  return std::make_shared<TraceRecorder>(std::move(sinks), std::move(context), options);
}

TraceSpec TraceSpec::for_rank(int rank) const {
  TraceSpec out = *this;
  for (Item& it : out.items) {
    if (it.kind == Item::Kind::ring && it.path.empty() && rank > 0)
      it.path = absolute(RingBufferSink::Options{}.path);  // the default dump path, per rank
    it.path = path_for_rank(it.path, rank);
    if (it.kind == Item::Kind::tcp && it.port != 0) {
      const long port = long{it.port} + rank;
      if (port > 65535)
        throw std::invalid_argument("trace spec item 'tcp:" + it.host + ":" +
                                    std::to_string(it.port) + "': rank " + std::to_string(rank) +
                                    " would listen on port " + std::to_string(port) +
                                    " (PORT + rank), above 65535; choose a lower port");
      it.port = static_cast<std::uint16_t>(port);
    }
    it.key = key_of(it);
  }
  return out;
}

std::shared_ptr<TraceRecorder> configure_tracing(Bus& bus, std::string_view spec,
                                                 std::shared_ptr<const TraceContext> context,
                                                 int rank) {
  const TraceSpec parsed = TraceSpec::parse(spec).for_rank(rank);
  std::shared_ptr<TraceRecorder> recorder;
  try {
    recorder = make_trace_recorder(parsed, std::move(context));
  } catch (const std::runtime_error& e) {
    if (rank == 0) throw;
    throw std::runtime_error("rank " + std::to_string(rank) + ": " + e.what() +
                             " (under DDP each rank writes FILE.rankN.EXT and listens on PORT + "
                             "rank; see tracing/trace_spec.hpp)");
  }
  bus.set_tracer(recorder);
  return recorder;
}

}  // namespace hookline
