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

// The fields of one parsed line, for the codec; errors name the line.
class JsonFields final : public TraceFieldReader {
 public:
  JsonFields(const json& j, const std::string& where) : j_(j), where_(where) {}
  std::optional<std::string> string(const char* key) const override {
    return get<std::string>(key, &json::is_string, "a string");
  }
  std::optional<std::int64_t> integer(const char* key) const override {
    return get<std::int64_t>(key, &json::is_number_integer, "an integer");
  }
  std::optional<bool> boolean(const char* key) const override {
    return get<bool>(key, &json::is_boolean, nullptr);
  }
  [[noreturn]] void fail(const std::string& what) const override {
    throw InputError(where_ + ": " + what);
  }

 private:
  // `expected` names the type ("an integer"); null for booleans ("true or false").
  template <class T>
  std::optional<T> get(const char* key, bool (json::*is)() const noexcept,
                       const char* expected) const {
    const json* v = find(j_, key);
    if (v == nullptr) return std::nullopt;
    if (!(v->*is)())
      fail(std::string("field '") + key + "' must be " +
           (expected ? std::string(expected) + ", not " + v->type_name() : "true or false"));
    return v->get<T>();
  }
  const json& j_;
  const std::string& where_;
};

bool glob_any(const std::vector<std::string>& patterns, std::string_view value) {
  if (patterns.empty()) return true;
  const std::string text(value);
  for (const auto& p : patterns)
    if (::fnmatch(p.c_str(), text.c_str(), 0) == 0) return true;
  return false;
}

}  // namespace

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
  if (!decode_record(JsonFields(r.json, where), r.stored)) return std::nullopt;
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

bool Selection::matches(const Record& record) const {
  const TraceRecord& r = record.view();
  const bool call = record.is_call();
  if (!glob_any(events, r.event)) return false;
  if (!subscribers.empty() && (!call || !glob_any(subscribers, r.subscriber))) return false;
  if (!glob_any(stages, r.stage)) return false;
  if (!glob_any(kinds, to_string(r.kind))) return false;
  if (!lanes.empty() && (!call || !glob_any(lanes, to_string(r.lane)))) return false;
  if (epoch && (r.epoch == TraceRecord::kNone || !epoch->contains(r.epoch))) return false;
  if (step && (r.global_step == TraceRecord::kNone || !step->contains(r.global_step))) return false;
  if (batch && (r.batch_idx == TraceRecord::kNone || !batch->contains(r.batch_idx))) return false;
  if (rank && r.rank != *rank) return false;
  return true;
}

std::string format_text(const Record& record) {
  const TraceRecord& r = record.view();
  char buf[512];
  auto num = [](std::int64_t v) {
    return v == TraceRecord::kNone ? std::string("-") : std::to_string(v);
  };
  std::string who;
  if (record.is_call()) {
    who = r.subscriber;
    if (r.lane == Lane::async) who += " (async)";
  }
  const std::string event(r.event), stage(r.stage), verdict(to_string(r.verdict));
  std::snprintf(
      buf, sizeof buf, "%8llu %-4s %-30s %-22s %-8s ep %-3s step %-6s batch %-5s %10.1f us %s",
      static_cast<unsigned long long>(r.seq), to_string(r.kind).data(), event.c_str(), who.c_str(),
      stage.c_str(), num(r.epoch).c_str(), num(r.global_step).c_str(), num(r.batch_idx).c_str(),
      static_cast<double>(r.duration_ns) / 1e3, verdict.c_str());
  std::string out = buf;
  if (!r.by.empty()) out.append(" by ").append(r.by);
  if (!r.reason.empty()) out.append(": ").append(r.reason);
  if (r.aborted) out += " (aborted)";
  return out;
}

}  // namespace hookline::trace_tool
