// hookline: serving a trace live over TCP.
//
// A TraceStreamServer is a trace sink that listens on a TCP port (127.0.0.1 unless told
// otherwise) and sends every record to every connected client as one JSON line (the JSONL sink's
// format). A client first gets a hello line, {"kind":"hello","producer":"hookline",...}. Any
// number of clients may connect and leave during a run; `hookline-trace tail PORT` is one.
//
// Training never waits for a client: records are formatted on the emitting thread and handed to
// a network thread. Until the run has made more than `max_backlog` records they are also kept,
// so a client that connects early (before the run starts) gets the whole stream; after that,
// records are formatted only while a client is connected, and a client that connects gets them
// from then on. A client more than `max_backlog` records behind is dropped: its queue is
// discarded, it gets a last line
// {"kind":"notice","message":"dropped: ...; N records lost, ...","lost":N} (when it reads again,
// at the latest until the server closes), and the connection is closed.
#pragma once

#include "hookline/tracing/trace.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace hookline {

class TraceStreamServer final : public TraceSink {
 public:
  struct Options {
    std::string host = "127.0.0.1";   ///< the address to bind; "0.0.0.0" exposes the trace
    std::uint16_t port = 0;           ///< 0: any free port (see port())
    std::size_t max_backlog = 16384;  ///< records queued for one client before it is dropped
    std::chrono::milliseconds close_timeout{1000};  ///< at the end, how long clients may drain
    bool announce = true;  ///< say on stderr where it listens and whom it drops
  };

  /// Binds and starts listening; throws std::runtime_error naming host and port on failure.
  TraceStreamServer();
  explicit TraceStreamServer(Options options);
  /// Sends what is queued (for at most close_timeout), then closes every connection.
  ~TraceStreamServer() override;
  TraceStreamServer(const TraceStreamServer&) = delete;
  TraceStreamServer& operator=(const TraceStreamServer&) = delete;

  void write(const TraceRecord& record) override;

  /// The port it listens on (the one chosen when Options::port was 0).
  std::uint16_t port() const;
  const std::string& host() const;
  /// Clients connected now.
  std::size_t clients() const;
  /// Clients accepted since the start.
  std::uint64_t accepted() const;
  /// Clients dropped for being too slow.
  std::uint64_t dropped() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookline
