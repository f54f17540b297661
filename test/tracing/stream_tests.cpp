// The live stream: a client that connects early gets the whole stream; a dropped client is told
// how many records it lost, even when it reads again only after a while.
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include "hookline/events/bus.hpp"
#include "hookline/tracing/trace_stream.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <istream>
#include <thread>

using namespace hookline;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

struct Reader {
  explicit Reader(std::uint16_t port) : socket(io) {
    socket.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  // Every line until the server closes.
  std::vector<nlohmann::json> all() {
    std::vector<nlohmann::json> out;
    for (;;) {
      boost::system::error_code ec;
      asio::read_until(socket, buffer, '\n', ec);
      if (ec && buffer.size() == 0) return out;
      std::istream in(&buffer);
      std::string line;
      std::getline(in, line);
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
  }
  asio::io_context io;
  asio::ip::tcp::socket socket;
  asio::streambuf buffer;
};

TraceStreamServer::Options quiet() {
  TraceStreamServer::Options o;
  o.announce = false;
  return o;
}

// Waits (10 s at most) for a client, then traces `bus` to `server` and emits until the server
// drops the client (which does not read).
void flood_until_dropped(const std::shared_ptr<TraceStreamServer>& server, Bus& bus) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server->clients() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  BOOST_REQUIRE(server->clients() == 1u);
  bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{server}));
  bus.on<test_events::Gate>([] {},
                            SubscribeOptions().named("a-rather-long-subscriber-name-to-fill"));
  int emitted = 0;
  while (server->dropped() == 0 && emitted < 2000000) {
    bus.emit(test_events::Gate{emitted++});
    if (emitted % 1000 == 0) std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(trace_stream_delivery)

BOOST_AUTO_TEST_CASE(a_client_that_connects_early_gets_the_whole_stream) {
  auto server = std::make_shared<TraceStreamServer>(quiet());
  Bus bus;
  bus.set_tracer(std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{server}));
  bus.on<test_events::Gate>([] {}, SubscribeOptions().named("g"));
  // The run starts before the server has handled the client's connection.
  for (int i = 0; i < 20; ++i) bus.emit(test_events::Gate{i});
  Reader client(server->port());
  for (int i = 20; i < 40; ++i) bus.emit(test_events::Gate{i});
  // (A server that ends before accepting a connection closes it unanswered.)
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server->accepted() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  bus.set_tracer(nullptr);
  std::thread closer([&] { server.reset(); });
  const auto lines = client.all();
  closer.join();
  BOOST_REQUIRE(!lines.empty());
  BOOST_TEST(lines.front()["kind"] == "hello");
  BOOST_REQUIRE(lines.size() == 1u + 80u);  // hello, then a call and an emit per emission
  BOOST_TEST(lines[1]["seq"] == 1);
}

BOOST_AUTO_TEST_CASE(a_dropped_client_that_reads_late_gets_the_notice_with_the_records_lost) {
  auto options = quiet();
  options.max_backlog = 64;  // close_timeout stays the default (1 s)
  auto server = std::make_shared<TraceStreamServer>(options);
  Reader slow(server->port());
  Bus bus;
  flood_until_dropped(server, bus);
  BOOST_REQUIRE(server->dropped() == 1u);
  std::this_thread::sleep_for(1500ms);  // longer than close_timeout before reading again
  const auto lines = slow.all();
  BOOST_REQUIRE(lines.size() > 1u);
  const auto& notice = lines.back();
  BOOST_TEST(notice["kind"] == "notice");
  BOOST_REQUIRE(notice.contains("lost"));
  BOOST_TEST(notice["lost"].get<std::int64_t>() > 0);
  BOOST_TEST(notice["message"].get<std::string>().find("records lost") != std::string::npos);
  bus.set_tracer(nullptr);
}

// hookline-trace tail behind a pipe that is not read for a while: the server drops it, and tail
// says how many records were lost and exits 1. (The tool sits at ../tools/ from this runner.)
BOOST_AUTO_TEST_CASE(tail_says_how_many_records_were_lost_and_exits_1) {
  const auto tool = std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() /
                    "tools" / "hookline-trace";
  if (!std::filesystem::exists(tool)) {
    BOOST_TEST_MESSAGE("hookline-trace is not built; skipped");
    return;
  }
  auto options = quiet();
  options.max_backlog = 64;
  options.close_timeout = 5000ms;
  auto server = std::make_shared<TraceStreamServer>(options);
  const std::string err = (std::filesystem::temp_directory_path() /
                           ("hookline-tail-" + std::to_string(::getpid()) + ".txt"))
                              .string();
  const std::string command = "bash -c '" + tool.string() + " tail " +
                              std::to_string(server->port()) + " 2>" + err +
                              " | (sleep 2; cat >/dev/null); exit ${PIPESTATUS[0]}'";
  int status = -1;
  std::thread tail([&] { status = std::system(command.c_str()); });
  Bus bus;
  flood_until_dropped(server, bus);
  tail.join();
  bus.set_tracer(nullptr);
  std::ifstream in(err);
  const std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(err);
  BOOST_TEST(server->dropped() == 1u);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 1);
  const auto at = said.find("the server dropped this client: ");
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, said);
  BOOST_TEST(std::isdigit(static_cast<unsigned char>(said[at + 32])) != 0, said);
}

BOOST_AUTO_TEST_SUITE_END()
