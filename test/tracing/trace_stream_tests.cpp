// The live trace stream over loopback TCP: clients get a hello and every record; several clients
// at once; a client that does not read is dropped with a notice and never stalls the emitter.
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include "hookline/tracing/trace.hpp"
#include "hookline/tracing/trace_stream.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <istream>
#include <thread>

using namespace hookline;
using namespace test_events;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// A blocking loopback client.
struct LineClient {
  explicit LineClient(std::uint16_t port) : socket(io) {
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  // The next line, or "" at end of stream.
  std::string line() {
    boost::system::error_code ec;
    asio::read_until(socket, buffer, '\n', ec);
    if (ec && buffer.size() == 0) return {};
    std::istream in(&buffer);
    std::string out;
    std::getline(in, out);
    return out;
  }
  asio::io_context io;
  tcp::socket socket;
  asio::streambuf buffer;
};

template <class Predicate>
bool wait_for(Predicate p, std::chrono::milliseconds limit = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!p()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

TraceStreamServer::Options quiet() {
  TraceStreamServer::Options o;
  o.announce = false;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(trace_stream)

BOOST_AUTO_TEST_CASE(several_clients_get_hello_and_every_record) {
  auto server = std::make_shared<TraceStreamServer>(quiet());
  BOOST_TEST(server->port() != 0);
  BOOST_TEST(server->host() == "127.0.0.1");
  std::vector<std::unique_ptr<LineClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(std::make_unique<LineClient>(server->port()));
  BOOST_REQUIRE(wait_for([&] { return server->clients() == 3; }));
  for (auto& c : clients) {
    const auto hello = nlohmann::json::parse(c->line());
    BOOST_TEST(hello["kind"] == "hello");
  }
  {
    Bus bus;
    bus.set_tracer(
        std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{server}));
    bus.on<Gate>([] {}, SubscribeOptions().named("g"));
    for (int i = 0; i < 100; ++i) bus.emit(Gate{i});
  }
  for (auto& c : clients) {
    int calls = 0, emits = 0;
    for (int i = 0; i < 200; ++i) {
      const auto record = nlohmann::json::parse(c->line());
      BOOST_TEST(record["event"] == "on_gate");
      (record["kind"] == "call" ? calls : emits)++;
    }
    BOOST_TEST(calls == 100);
    BOOST_TEST(emits == 100);
  }
  server.reset();  // closes the connections after sending what was queued
  for (auto& c : clients) BOOST_TEST(c->line().empty());
}

BOOST_AUTO_TEST_CASE(a_client_that_does_not_read_is_dropped_with_a_notice) {
  auto options = quiet();
  options.max_backlog = 64;
  options.close_timeout = 5000ms;
  auto server = std::make_shared<TraceStreamServer>(options);
  LineClient slow(server->port());
  BOOST_REQUIRE(wait_for([&] { return server->clients() == 1; }));
  Bus bus;
  bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{server}));
  bus.on<Gate>([] {}, SubscribeOptions().named("a-rather-long-subscriber-name-to-fill-buffers"));
  // The client reads nothing: the kernel's buffers fill, then its queue, then it is dropped.
  // The emitter never waits for it.
  const auto start = std::chrono::steady_clock::now();
  int emitted = 0;
  while (server->dropped() == 0 && emitted < 2000000) {
    bus.emit(Gate{emitted++});
    if (emitted % 1000 == 0) std::this_thread::sleep_for(1ms);  // let the network thread drain
  }
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(server->dropped() == 1u);
  BOOST_TEST(took < 60s);
  // Reading now, the client finds the records sent before, then the notice, then the end.
  std::string last, line;
  int lines = 0;
  while (!(line = slow.line()).empty()) {
    last = line;
    ++lines;
  }
  BOOST_TEST(lines > 1);
  const auto notice = nlohmann::json::parse(last);
  BOOST_TEST(notice["kind"] == "notice");
  BOOST_TEST(notice["message"].get<std::string>().find("dropped") != std::string::npos);
  BOOST_TEST(wait_for([&] { return server->clients() == 0; }));
}

BOOST_AUTO_TEST_CASE(a_taken_port_is_reported) {
  TraceStreamServer first(quiet());
  auto options = quiet();
  options.port = first.port();
  BOOST_CHECK_EXCEPTION(
      TraceStreamServer{options}, std::runtime_error, [&](const std::runtime_error& e) {
        return std::string(e.what()).find(std::to_string(first.port())) != std::string::npos;
      });
}

BOOST_AUTO_TEST_SUITE_END()
