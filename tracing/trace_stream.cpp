#include "hookline/tracing/trace_stream.hpp"

#include "hookline/tracing/trace_codec.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace hookline {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

struct Chunk {
  std::shared_ptr<const std::string> text;
  std::size_t records = 0;
};

struct Client {
  explicit Client(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::deque<Chunk> queue;
  std::size_t backlog = 0;  // records queued
  bool writing = false;
  bool dropping = false;
  bool closed = false;
  std::string peer;
  char read_buffer[256];
};

}  // namespace

struct TraceStreamServer::Impl {
  explicit Impl(Options o) : options(std::move(o)) {}

  Options options;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::uint16_t port = 0;
  std::atomic<std::size_t> connected{0};
  std::atomic<std::uint64_t> accepted{0}, dropped{0};

  // Filled by the emitting threads, drained by the network thread.
  std::mutex mutex;
  std::string pending;
  std::size_t pending_count = 0;
  std::size_t overflowed = 0;  // records not queued because the network thread fell behind
  bool posted = false;
  // While every record so far fits in max_backlog, they are kept (network thread: `history`),
  // so a client that connects early (before the run, or before its accept was handled) gets the
  // whole stream; formatting starts with the first record, whether or not a client is there.
  std::atomic<bool> keep_history{true};
  std::string history;
  std::size_t history_count = 0;

  // Network thread only.
  std::set<std::shared_ptr<Client>> clients;
  bool closing = false;

  void accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted && acceptor.is_open()) accept();
        return;
      }
      auto c = std::make_shared<Client>(std::move(socket));
      boost::system::error_code ignored;
      const auto remote = c->socket.remote_endpoint(ignored);
      c->peer = remote.address().to_string(ignored) + ":" + std::to_string(remote.port());
      clients.insert(c);
      connected.fetch_add(1, std::memory_order_relaxed);
      accepted.fetch_add(1, std::memory_order_relaxed);
      c->queue.push_back({std::make_shared<const std::string>(
                              "{\"kind\":\"hello\",\"producer\":\"hookline\",\"version\":1,"
                              "\"pid\":" +
                              std::to_string(::getpid()) + "}\n"),
                          0});
      if (keep_history.load(std::memory_order_relaxed) && history_count > 0) {
        // Not counted in its backlog: a client that joins late would be dropped at once.
        c->queue.push_back({std::make_shared<const std::string>(history), 0});
      }
      start_write(c);
      start_read(c);
      accept();
    });
  }

  // Reads (and ignores) what the client sends, to notice when it goes away.
  void start_read(const std::shared_ptr<Client>& c) {
    c->socket.async_read_some(asio::buffer(c->read_buffer),
                              [this, c](const boost::system::error_code& ec, std::size_t) {
                                if (ec) {
                                  close(c);
                                  return;
                                }
                                start_read(c);
                              });
  }

  void start_write(const std::shared_ptr<Client>& c) {
    if (c->writing || c->closed) return;
    if (c->queue.empty()) {
      if (c->dropping || closing) close(c);
      return;
    }
    c->writing = true;
    const Chunk chunk = c->queue.front();
    asio::async_write(c->socket, asio::buffer(*chunk.text),
                      [this, c, chunk](const boost::system::error_code& ec, std::size_t) {
                        c->writing = false;
                        if (ec || c->closed) {
                          close(c);
                          return;
                        }
                        c->queue.pop_front();
                        c->backlog -= chunk.records;
                        start_write(c);
                      });
  }

  void close(const std::shared_ptr<Client>& c) {
    if (c->closed) return;
    c->closed = true;
    boost::system::error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
    if (clients.erase(c)) connected.fetch_sub(1, std::memory_order_relaxed);
  }

  // Stops sending to `c`: discards what is queued for it (`lost` counts those records and any
  // it was not given), sends a last line {"kind":"notice","message":"dropped: ...","lost":N}
  // after the chunk being written, and closes the connection once that line is sent (or when the
  // server closes).
  void drop(const std::shared_ptr<Client>& c, const std::string& why, std::size_t lost) {
    if (c->dropping || c->closed) return;
    c->dropping = true;
    dropped.fetch_add(1, std::memory_order_relaxed);
    // Keep the chunk being written (asio reads from it); discard the rest.
    lost += c->backlog;
    if (c->writing && !c->queue.empty()) {
      c->queue.erase(c->queue.begin() + 1, c->queue.end());
      c->backlog = c->queue.front().records;
      lost -= c->backlog;
    } else {
      c->queue.clear();
      c->backlog = 0;
    }
    const std::string message = "dropped: " + why + "; " + std::to_string(lost) +
                                " records lost, and no record after this line is sent";
    std::string line = "{\"kind\":\"notice\",\"message\":";
    append_json_string(line, message);
    line += ",\"lost\":" + std::to_string(lost) + "}\n";
    c->queue.push_back({std::make_shared<const std::string>(std::move(line)), 0});
    if (options.announce)
      std::fprintf(stderr, "hookline: trace stream dropped client %s: %s\n", c->peer.c_str(),
                   message.c_str());
    start_write(c);
  }

  void drain() {
    std::string text;
    std::size_t n = 0, lost = 0;
    {
      std::lock_guard lock(mutex);
      text.swap(pending);
      n = pending_count;
      pending_count = 0;
      posted = false;
      lost = std::exchange(overflowed, 0);
    }
    const std::vector<std::shared_ptr<Client>> now(clients.begin(), clients.end());
    if (lost > 0) {
      keep_history.store(false, std::memory_order_relaxed);
      for (const auto& c : now)
        drop(c,
             "the network thread fell more than " + std::to_string(options.max_backlog) +
                 " records behind",
             lost + n);
      return;
    }
    if (n == 0) return;
    auto chunk = std::make_shared<const std::string>(std::move(text));
    if (keep_history.load(std::memory_order_relaxed)) {
      if (history_count + n <= options.max_backlog) {
        history += *chunk;
        history_count += n;
      } else {
        keep_history.store(false, std::memory_order_relaxed);
        std::string().swap(history);
      }
    }
    for (const auto& c : now) {
      if (c->dropping || c->closed) continue;
      if (c->backlog + n > options.max_backlog) {
        drop(c,
             "client too slow (more than " + std::to_string(options.max_backlog) +
                 " records behind)",
             n);
        continue;
      }
      c->queue.push_back({chunk, n});
      c->backlog += n;
      start_write(c);
    }
  }
};

TraceStreamServer::TraceStreamServer() : TraceStreamServer(Options{}) {}

TraceStreamServer::TraceStreamServer(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& impl = *impl_;
  const std::string& host = impl.options.host;
  try {
    const auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host);
    const tcp::endpoint endpoint(address, impl.options.port);
    impl.acceptor.open(endpoint.protocol());
    impl.acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl.acceptor.bind(endpoint);
    impl.acceptor.listen();
    impl.port = impl.acceptor.local_endpoint().port();
  } catch (const std::exception& e) {
    throw std::runtime_error("trace stream: cannot listen on " + host + ":" +
                             std::to_string(impl.options.port) + ": " + e.what() +
                             "; choose another port (0 picks a free one)");
  }
  impl.accept();
  impl.thread = std::thread([&impl] { impl.io.run(); });
  if (impl.options.announce)
    std::fprintf(stderr, "hookline: trace stream on %s:%u (hookline-trace tail %s:%u)\n",
                 host.c_str(), static_cast<unsigned>(impl.port), host.c_str(),
                 static_cast<unsigned>(impl.port));
}

TraceStreamServer::~TraceStreamServer() {
  Impl& impl = *impl_;
  // Send what is pending; close each client once its queue is empty.
  asio::post(impl.io, [&impl] {
    impl.drain();
    impl.closing = true;
    boost::system::error_code ignored;
    impl.acceptor.close(ignored);
    const std::vector<std::shared_ptr<Client>> now(impl.clients.begin(), impl.clients.end());
    for (const auto& c : now) impl.start_write(c);
  });
  const auto deadline = std::chrono::steady_clock::now() + impl.options.close_timeout;
  while (impl.connected.load(std::memory_order_relaxed) > 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  asio::post(impl.io, [&impl] {
    const std::vector<std::shared_ptr<Client>> now(impl.clients.begin(), impl.clients.end());
    for (const auto& c : now) impl.close(c);
    impl.io.stop();
  });
  impl.work.reset();
  if (impl.thread.joinable()) impl.thread.join();
}

void TraceStreamServer::write(const TraceRecord& record) {
  Impl& impl = *impl_;
  if (impl.connected.load(std::memory_order_relaxed) == 0 &&
      !impl.keep_history.load(std::memory_order_relaxed))
    return;
  std::lock_guard lock(impl.mutex);
  if (impl.pending_count >= impl.options.max_backlog) {
    ++impl.overflowed;
  } else {
    append_json(impl.pending, record);
    impl.pending += '\n';
    ++impl.pending_count;
  }
  if (!impl.posted) {
    impl.posted = true;
    asio::post(impl.io, [&impl] { impl.drain(); });
  }
}

std::uint16_t TraceStreamServer::port() const {
  return impl_->port;
}
const std::string& TraceStreamServer::host() const {
  return impl_->options.host;
}
std::size_t TraceStreamServer::clients() const {
  return impl_->connected.load(std::memory_order_relaxed);
}
std::uint64_t TraceStreamServer::accepted() const {
  return impl_->accepted.load(std::memory_order_relaxed);
}
std::uint64_t TraceStreamServer::dropped() const {
  return impl_->dropped.load(std::memory_order_relaxed);
}

}  // namespace hookline
