#include "hookline/tracing/trace_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace hookline {

namespace {

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

void append_string(std::string& out, std::string_view s) {
  out += '"';
  const bool plain = std::none_of(s.begin(), s.end(), [](char c) {
    return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  });
  if (plain) {
    out.append(s);
  } else {
    for (char c : s) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\r':
          out += "\\r";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
          } else {
            out += c;
          }
      }
    }
  }
  out += '"';
}

void field(std::string& out, std::string_view key, std::int64_t v) {
  out += ",\"";
  out.append(key);
  out += "\":";
  append_int(out, v);
}

void field(std::string& out, std::string_view key, std::string_view v) {
  out += ",\"";
  out.append(key);
  out += "\":";
  append_string(out, v);
}

Action parse_verdict(std::string_view s) {
  for (Action a : {Action::SkipBatch, Action::SkipRestOfEpoch, Action::StopFit})
    if (s == to_string(a)) return a;
  return Action::Continue;
}

// A string field: absent is "" (or an error when required).
std::string text(const TraceFieldReader& in, const char* key, bool required) {
  auto v = in.string(key);
  if (!v && required) in.fail(std::string("missing field '") + key + "'");
  return v ? std::move(*v) : std::string();
}

std::int64_t number(const TraceFieldReader& in, const char* key, std::int64_t fallback) {
  return in.integer(key).value_or(fallback);
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  append_string(out, s);
}

void append_json(std::string& out, const TraceRecord& r) {
  out += "{\"seq\":";
  append_int(out, static_cast<std::int64_t>(r.seq));
  field(out, "kind", to_string(r.kind));
  field(out, "event", r.event);
  if (r.kind == TraceRecord::Kind::call) field(out, "subscriber", r.subscriber);
  if (!r.stage.empty()) field(out, "stage", r.stage);
  if (r.epoch != TraceRecord::kNone) field(out, "epoch", r.epoch);
  if (r.global_step != TraceRecord::kNone) field(out, "global_step", r.global_step);
  if (r.batch_idx != TraceRecord::kNone) field(out, "batch_idx", r.batch_idx);
  if (r.dataloader_idx != TraceRecord::kNone) field(out, "dataloader_idx", r.dataloader_idx);
  field(out, "rank", r.rank);
  field(out, "bus", r.bus);
  field(out, "thread", r.thread);
  if (r.kind == TraceRecord::Kind::call) {
    field(out, "lane", to_string(r.lane));
  } else {
    field(out, "parent", static_cast<std::int64_t>(r.parent));
    field(out, "depth", r.depth);
    if (r.pairing != Pairing::none) field(out, "pair", pairing_name(r.pairing));
  }
  field(out, "start_ns", r.start_ns);
  field(out, "duration_ns", r.duration_ns);
  field(out, "verdict", to_string(r.verdict));
  if (!r.by.empty()) field(out, "by", r.by);
  if (!r.reason.empty()) field(out, "reason", r.reason);
  if (r.skip != Action::Continue) {
    field(out, "skip", to_string(r.skip));
    field(out, "skip_by", r.skip_by);
    field(out, "skip_reason", r.skip_reason);
  }
  if (r.aborted) out += ",\"aborted\":true";
  if (!r.args.empty()) field(out, "args", r.args);
  out += '}';
}

void StoredRecord::assign(const TraceRecord& r) {
  record = r;
  event.assign(r.event);
  stage.assign(r.stage);
  subscriber.assign(r.subscriber);
  by.assign(r.by);
  reason.assign(r.reason);
  skip_by.assign(r.skip_by);
  skip_reason.assign(r.skip_reason);
  args.assign(r.args);
  bind();
}

void StoredRecord::bind() {
  record.event = event;
  record.stage = stage;
  record.subscriber = subscriber;
  record.by = by;
  record.reason = reason;
  record.skip_by = skip_by;
  record.skip_reason = skip_reason;
  record.args = args;
}

bool decode_record(const TraceFieldReader& in, StoredRecord& out) {
  const std::string kind = text(in, "kind", true);
  if (kind == "hello" || kind == "notice") return false;
  if (kind != "emit" && kind != "call")
    in.fail("field 'kind' is '" + kind + "'; expected 'emit' or 'call'");
  const bool call = kind == "call";
  TraceRecord& r = out.record;
  r = TraceRecord{};
  r.kind = call ? TraceRecord::Kind::call : TraceRecord::Kind::emit;
  out.event = text(in, "event", true);
  auto seq = in.integer("seq");
  if (!seq) in.fail("missing field 'seq'");
  r.seq = static_cast<std::uint64_t>(*seq);
  out.subscriber = text(in, "subscriber", call);
  out.stage = text(in, "stage", false);
  r.lane = text(in, "lane", false) == "async" ? Lane::async : Lane::sync;
  r.verdict = parse_verdict(text(in, "verdict", false));
  out.by = text(in, "by", false);
  out.reason = text(in, "reason", false);
  r.skip = parse_verdict(text(in, "skip", false));
  out.skip_by = text(in, "skip_by", false);
  out.skip_reason = text(in, "skip_reason", false);
  out.args = text(in, "args", false);
  const std::string pair = text(in, "pair", false);
  r.pairing = pair == "start" ? Pairing::start : pair == "end" ? Pairing::end : Pairing::none;
  r.parent = static_cast<std::uint64_t>(number(in, "parent", 0));
  r.epoch = number(in, "epoch", TraceRecord::kNone);
  r.global_step = number(in, "global_step", TraceRecord::kNone);
  r.batch_idx = number(in, "batch_idx", TraceRecord::kNone);
  r.dataloader_idx = number(in, "dataloader_idx", TraceRecord::kNone);
  r.start_ns = number(in, "start_ns", 0);
  r.duration_ns = number(in, "duration_ns", 0);
  r.rank = static_cast<std::int32_t>(number(in, "rank", 0));
  r.bus = static_cast<std::uint32_t>(number(in, "bus", 0));
  r.thread = static_cast<std::uint32_t>(number(in, "thread", 0));
  r.depth = static_cast<std::uint32_t>(number(in, "depth", 0));
  r.aborted = in.boolean("aborted").value_or(false);
  out.bind();
  return true;
}

}  // namespace hookline
