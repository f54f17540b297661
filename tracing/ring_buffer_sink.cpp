#include "hookline/tracing/ring_buffer_sink.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <utility>

namespace hookline {

RingBufferSink::RingBufferSink() : RingBufferSink(Options{}) {}

RingBufferSink::RingBufferSink(Options options) : options_(std::move(options)) {
  if (options_.capacity == 0)
    throw std::invalid_argument("RingBufferSink: capacity must be at least 1");
  slots_.resize(options_.capacity);
}

void RingBufferSink::write_locked(const TraceRecord& record, Lock& held) {
  slots_[pos_].assign(record, names_);
  if (++pos_ == slots_.size()) pos_ = 0;
  ++next_;
  if (record.kind != TraceRecord::Kind::emit || options_.path.empty()) [[likely]]
    return;
  for (const auto& name : options_.dump_on) {
    if (record.event == name) {
      held.unlock();  // dump() takes the lock to copy the records
      const std::size_t n = dump(options_.path);
      held.lock();
      ++dumps_;
      if (options_.announce)
        std::fprintf(stderr, "hookline: %s: the last %zu trace records were written to %s\n",
                     name.c_str(), n, options_.path.c_str());
      break;
    }
  }
}

std::vector<StoredRecord> RingBufferSink::snapshot() const {
  auto held = lock();
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
  auto held = lock();
  return next_;
}

std::uint64_t RingBufferSink::dumps() const {
  auto held = lock();
  return dumps_;
}

}  // namespace hookline
