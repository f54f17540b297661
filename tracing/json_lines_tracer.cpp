#include "hookline/tracing/json_lines_tracer.hpp"

#include "hookline/tracing/trace_codec.hpp"

#include <cstdio>
#include <stdexcept>

namespace hookline {

std::string json_quote(const std::string& text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

JsonLinesTracer::JsonLinesTracer(std::ostream& out) : out_(&out) {}

JsonLinesTracer::JsonLinesTracer(const std::string& path)
    : file_(std::make_unique<std::ofstream>(path, std::ios::trunc)), out_(file_.get()) {
  if (!*file_)
    throw std::runtime_error("JsonLinesTracer: cannot open '" + path +
                             "' for writing; check the directory exists and is writable");
}

void JsonLinesTracer::on_emit(const EventInfo&, const void*, std::uint64_t) {}

void JsonLinesTracer::on_call(const EventInfo& event, const SubscriptionInfo& subscriber, Lane lane,
                              std::uint64_t seq, const void* payload, Clock::time_point start,
                              Clock::time_point end, Action verdict) {
  using std::chrono::duration_cast;
  using std::chrono::nanoseconds;
  std::string line =
      "{\"seq\":" + std::to_string(seq) +
      ",\"kind\":\"call\",\"event\":" + json_quote(std::string(event.name)) +
      ",\"subscriber\":" + json_quote(subscriber.name) + ",\"lane\":\"" +
      (lane == Lane::sync ? "sync" : "async") +
      "\",\"start_ns\":" + std::to_string(duration_cast<nanoseconds>(start - origin_).count()) +
      ",\"duration_ns\":" + std::to_string(duration_cast<nanoseconds>(end - start).count()) +
      ",\"verdict\":\"" + std::string(to_string(verdict)) + "\"";
  if (event.describe && payload) line += ",\"args\":" + json_quote(event.describe(payload));
  write(line + "}");
}

void JsonLinesTracer::on_emit_end(const EventInfo& event, std::uint64_t seq,
                                  const Outcome& outcome) {
  std::string line = "{\"seq\":" + std::to_string(seq) +
                     ",\"kind\":\"emit\",\"event\":" + json_quote(std::string(event.name)) +
                     ",\"verdict\":\"" + std::string(to_string(outcome.action)) + "\"";
  if (outcome.veto)
    line += ",\"by\":" + json_quote(outcome.veto->subscriber) +
            ",\"reason\":" + json_quote(outcome.veto->reason);
  if (outcome.skip)
    line += ",\"skip\":\"" + std::string(to_string(outcome.skip->action)) +
            "\",\"skip_by\":" + json_quote(outcome.skip->subscriber) +
            ",\"skip_reason\":" + json_quote(outcome.skip->reason);
  write(line + "}");
}

void JsonLinesTracer::write(const std::string& line) {
  std::lock_guard lock(mutex_);
  *out_ << line << '\n';
  ++lines_;
}

std::uint64_t JsonLinesTracer::lines() const {
  std::lock_guard lock(mutex_);
  return lines_;
}

}  // namespace hookline
