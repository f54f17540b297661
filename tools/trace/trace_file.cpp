#include "trace_file.hpp"

#include <fnmatch.h>

#include <cstdio>
#include <fstream>
#include <iostream>

namespace hookline::trace_tool {

namespace {

using nlohmann::json;

const json* find(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string get_string(const json& j, const char* key, const std::string& where, bool required) {
  const json* v = find(j, key);
  if (v == nullptr) {
    if (required) throw InputError(where + ": missing field '" + key + "'");
    return {};
  }
  if (!v->is_string())
    throw InputError(where + ": field '" + key + "' must be a string, not " + v->type_name());
  return v->get<std::string>();
}

std::int64_t get_int(const json& j, const char* key, const std::string& where, bool required,
                     std::int64_t fallback) {
  const json* v = find(j, key);
  if (v == nullptr) {
    if (required) throw InputError(where + ": missing field '" + key + "'");
    return fallback;
  }
  if (!v->is_number_integer())
    throw InputError(where + ": field '" + key + "' must be an integer, not " + v->type_name());
  return v->get<std::int64_t>();
}

bool glob_any(const std::vector<std::string>& patterns, const std::string& value) {
  if (patterns.empty()) return true;
  for (const auto& p : patterns)
    if (::fnmatch(p.c_str(), value.c_str(), 0) == 0) return true;
  return false;
}

Action parse_action(const std::string& s) {
  if (s == "SkipBatch") return Action::SkipBatch;
  if (s == "SkipRestOfEpoch") return Action::SkipRestOfEpoch;
  if (s == "StopFit") return Action::StopFit;
  return Action::Continue;
}

}  // namespace

TraceRecord Record::view() const {
  TraceRecord r;
  r.kind = is_emit() ? TraceRecord::Kind::emit : TraceRecord::Kind::call;
  r.lane = lane == "async" ? Lane::async : Lane::sync;
  r.verdict = parse_action(verdict);
  r.pairing = pair == "start" ? Pairing::start : pair == "end" ? Pairing::end : Pairing::none;
  r.aborted = aborted;
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
  r.event = event;
  r.stage = stage;
  r.subscriber = subscriber;
  r.by = by;
  r.reason = reason;
  r.args = args;
  return r;
}

std::optional<Record> parse_record(const std::string& line, std::size_t line_number,
                                   const std::string& where) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return std::nullopt;
  Record r;
  r.line = line_number;
  r.text = line;
  if (!r.text.empty() && r.text.back() == '\r') r.text.pop_back();
  try {
    r.json = json::parse(r.text);
  } catch (const json::parse_error& e) {
    // nlohmann says "[json.exception.parse_error.101] parse error at line 1, column 64: ...";
    // the line is the file's, so keep the column and the reason.
    std::string what = e.what();
    if (auto p = what.find("column "); p != std::string::npos) what = what.substr(p);
    throw InputError(where + ": bad JSON at " + what);
  } catch (const json::exception& e) {
    // Valid syntax nlohmann cannot represent, e.g. "number overflow parsing '6E6181071'" (found
    // by fuzz_trace_lines).
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    throw InputError(where + ": bad JSON: " + what);
  }
  if (!r.json.is_object())
    throw InputError(where + ": a record must be a JSON object, not " +
                     std::string(r.json.type_name()));
  r.kind = get_string(r.json, "kind", where, true);
  if (r.kind == "hello" || r.kind == "notice") return std::nullopt;
  if (r.kind != "emit" && r.kind != "call")
    throw InputError(where + ": field 'kind' is '" + r.kind + "'; expected 'emit' or 'call'");
  r.event = get_string(r.json, "event", where, true);
  r.seq = static_cast<std::uint64_t>(get_int(r.json, "seq", where, true, 0));
  r.subscriber = get_string(r.json, "subscriber", where, r.kind == "call");
  r.stage = get_string(r.json, "stage", where, false);
  r.lane = get_string(r.json, "lane", where, false);
  if (r.lane.empty()) r.lane = "sync";
  r.verdict = get_string(r.json, "verdict", where, false);
  if (r.verdict.empty()) r.verdict = "Continue";
  r.by = get_string(r.json, "by", where, false);
  r.reason = get_string(r.json, "reason", where, false);
  r.args = get_string(r.json, "args", where, false);
  r.pair = get_string(r.json, "pair", where, false);
  r.parent = static_cast<std::uint64_t>(get_int(r.json, "parent", where, false, 0));
  r.epoch = get_int(r.json, "epoch", where, false, TraceRecord::kNone);
  r.global_step = get_int(r.json, "global_step", where, false, TraceRecord::kNone);
  r.batch_idx = get_int(r.json, "batch_idx", where, false, TraceRecord::kNone);
  r.dataloader_idx = get_int(r.json, "dataloader_idx", where, false, TraceRecord::kNone);
  r.start_ns = get_int(r.json, "start_ns", where, false, 0);
  r.duration_ns = get_int(r.json, "duration_ns", where, false, 0);
  r.rank = static_cast<std::int32_t>(get_int(r.json, "rank", where, false, 0));
  r.bus = static_cast<std::uint32_t>(get_int(r.json, "bus", where, false, 0));
  r.thread = static_cast<std::uint32_t>(get_int(r.json, "thread", where, false, 0));
  r.depth = static_cast<std::uint32_t>(get_int(r.json, "depth", where, false, 0));
  if (const json* a = find(r.json, "aborted")) {
    if (!a->is_boolean()) throw InputError(where + ": field 'aborted' must be true or false");
    r.aborted = a->get<bool>();
  }
  return r;
}

std::vector<Record> load_trace(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) throw InputError(path + ": cannot open the file for reading");
    in = &file;
  }
  std::vector<Record> out;
  std::string line;
  std::size_t n = 0;
  while (std::getline(*in, line)) {
    ++n;
    if (auto r = parse_record(line, n, path + ":" + std::to_string(n)))
      out.push_back(std::move(*r));
  }
  if (in->bad()) throw InputError(path + ": read error after line " + std::to_string(n));
  return out;
}

Range Range::parse(const std::string& text, const std::string& option) {
  auto number = [&](const std::string& s) -> std::int64_t {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(s, &used);
      if (used != s.size()) throw std::invalid_argument(s);
      return v;
    } catch (const std::exception&) {
      throw InputError(option + " '" + text + "': expected N, A..B, A.. or ..B (integers)");
    }
  };
  Range r;
  const auto dots = text.find("..");
  if (dots == std::string::npos) {
    r.low = r.high = number(text);
  } else {
    const std::string a = text.substr(0, dots), b = text.substr(dots + 2);
    if (a.empty() && b.empty())
      throw InputError(option + " '" + text + "': give at least one end of the range");
    if (!a.empty()) r.low = number(a);
    if (!b.empty()) r.high = number(b);
    if (r.low > r.high) throw InputError(option + " '" + text + "': the range is empty");
  }
  return r;
}

bool Selection::matches(const Record& r) const {
  if (!glob_any(events, r.event)) return false;
  if (!subscribers.empty() && (r.kind != "call" || !glob_any(subscribers, r.subscriber)))
    return false;
  if (!glob_any(stages, r.stage)) return false;
  if (!glob_any(kinds, r.kind)) return false;
  if (!lanes.empty() && (r.kind != "call" || !glob_any(lanes, r.lane))) return false;
  if (epoch && (r.epoch == TraceRecord::kNone || !epoch->contains(r.epoch))) return false;
  if (step && (r.global_step == TraceRecord::kNone || !step->contains(r.global_step))) return false;
  if (batch && (r.batch_idx == TraceRecord::kNone || !batch->contains(r.batch_idx))) return false;
  if (rank && r.rank != *rank) return false;
  return true;
}

std::string format_text(const Record& r) {
  char buf[512];
  auto num = [](std::int64_t v) {
    return v == TraceRecord::kNone ? std::string("-") : std::to_string(v);
  };
  std::string who = r.kind == "call" ? r.subscriber + (r.lane == "async" ? " (async)" : "") : "";
  std::snprintf(
      buf, sizeof buf, "%8llu %-4s %-30s %-22s %-8s ep %-3s step %-6s batch %-5s %10.1f us %s",
      static_cast<unsigned long long>(r.seq), r.kind.c_str(), r.event.c_str(), who.c_str(),
      r.stage.c_str(), num(r.epoch).c_str(), num(r.global_step).c_str(), num(r.batch_idx).c_str(),
      static_cast<double>(r.duration_ns) / 1e3, r.verdict.c_str());
  std::string out = buf;
  if (!r.by.empty()) out += " by " + r.by;
  if (!r.reason.empty()) out += ": " + r.reason;
  if (r.aborted) out += " (aborted)";
  return out;
}

}  // namespace hookline::trace_tool
