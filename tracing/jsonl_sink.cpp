#include "hookline/tracing/jsonl_sink.hpp"

#include "hookline/tracing/trace_codec.hpp"

#include <chrono>
#include <stdexcept>
#include <utility>

namespace hookline {

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
    auto held = lock();
    stop_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void JsonlSink::write_locked(const TraceRecord& record, Lock& held) {
  if (pending_.size() >= kMaxQueued) [[unlikely]] {
    wake_.notify_one();
    done_.wait(held, [&] { return pending_.size() < kMaxQueued || stop_; });
  }
  pending_.emplace_back().assign(record, names_);
  ++queued_;
}

void JsonlSink::flush_locked(Lock& held) {
  const std::uint64_t target = queued_;
  flush_requested_ = true;
  wake_.notify_one();
  done_.wait(held, [&] { return written_ >= target; });
}

std::uint64_t JsonlSink::lines() const {
  auto held = lock();
  return written_;
}

// The writer thread: every few milliseconds, or when asked, formats what is queued and writes it.
void JsonlSink::run() {
  std::string text;
  auto held = lock();
  for (;;) {
    wake_.wait_for(held, kWriterPeriod,
                   [&] { return stop_ || flush_requested_ || pending_.size() >= kMaxQueued / 2; });
    const bool stopping = stop_;
    const bool flushing = std::exchange(flush_requested_, false) || stopping;
    writing_.swap(pending_);
    const std::uint64_t n = writing_.size();
    done_.notify_all();  // emitters waiting for room
    held.unlock();
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
    held.lock();
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

}  // namespace hookline
