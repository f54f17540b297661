// Tracing under DDP: each rank writes its own files (STEM.rankN.EXT, or a {rank} placeholder)
// and listens on its own port (PORT + rank); a rank that cannot listen throws, naming itself.
#include <boost/test/unit_test.hpp>

#include "scratch.hpp"
#include "test_events.hpp"

#include "hookline/events/bus.hpp"
#include "hookline/tracing/trace_spec.hpp"
#include "hookline/tracing/trace_stream.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>
#include <stdexcept>

using namespace hookline;
using Kind = TraceSpec::Item::Kind;

namespace {

std::vector<nlohmann::json> lines_of(const std::string& path) {
  std::istringstream in(tracing_tests::read_text(path));
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// A context that says which rank a record comes from (as a Trainer's does).
struct RankContext final : TraceContext {
  explicit RankContext(int r) : rank(r) {}
  void fill_state(TraceFields& f) const override { f.rank = rank; }
  int rank;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(trace_ranks)

BOOST_AUTO_TEST_CASE(rank_n_writes_stem_rank_n_ext_and_listens_on_port_plus_n) {
  const auto spec = TraceSpec::parse(
      "/t/run.jsonl,chrome:/t/run.json,ring:10:/t/ring.jsonl,"
      "summary:/t/sum.txt,tcp:7790,summary");
  const auto zero = spec.for_rank(0);
  BOOST_TEST(zero.items[0].path == "/t/run.jsonl");
  BOOST_TEST(zero.items[4].port == 7790);
  const auto one = spec.for_rank(1);
  BOOST_TEST(one.items[0].path == "/t/run.rank1.jsonl");
  BOOST_TEST(one.items[1].path == "/t/run.rank1.json");
  BOOST_TEST(one.items[2].path == "/t/ring.rank1.jsonl");
  BOOST_TEST(one.items[3].path == "/t/sum.rank1.txt");
  BOOST_TEST(one.items[4].port == 7791);
  BOOST_TEST(one.items[4].key == "tcp:127.0.0.1:7791");
  BOOST_TEST(one.items[0].key == "jsonl:/t/run.rank1.jsonl");
  BOOST_TEST(one.items[5].path.empty());  // summary to stderr stays there
  // A ring without a dump path dumps to the default name, per rank.
  const auto ring = TraceSpec::parse("ring:5").for_rank(2);
  BOOST_TEST(std::filesystem::path(ring.items[0].path).filename() == "hookline-ring.rank2.jsonl");
  BOOST_TEST(TraceSpec::parse("tcp:0").for_rank(3).items[0].port == 0);  // any free port
}

BOOST_AUTO_TEST_CASE(a_rank_placeholder_names_every_rank_file) {
  const auto spec = TraceSpec::parse("/t/run-{rank}.jsonl");
  BOOST_TEST(spec.for_rank(0).items[0].path == "/t/run-0.jsonl");
  BOOST_TEST(spec.for_rank(1).items[0].path == "/t/run-1.jsonl");
}

BOOST_AUTO_TEST_CASE(a_port_above_65535_for_a_rank_is_refused) {
  BOOST_CHECK_EXCEPTION(TraceSpec::parse("tcp:65535").for_rank(1), std::invalid_argument,
                        [](const std::invalid_argument& e) {
                          return std::string(e.what()).find("PORT + rank") != std::string::npos;
                        });
}

BOOST_AUTO_TEST_CASE(two_ranks_with_one_spec_write_two_files) {
  tracing_tests::Scratch dir;
  const std::string spec = dir.file("ddp.jsonl");
  {
    Bus rank0, rank1;
    auto r0 = configure_tracing(rank0, spec, std::make_shared<RankContext>(0), 0);
    auto r1 = configure_tracing(rank1, spec, std::make_shared<RankContext>(1), 1);
    BOOST_TEST(r0->sinks()[0] != r1->sinks()[0]);
    for (int i = 0; i < 3; ++i) {
      rank0.emit(test_events::Ping{});
      rank1.emit(test_events::Ping{});
    }
    rank0.set_tracer(nullptr);
    rank1.set_tracer(nullptr);
  }
  const auto zero = lines_of(dir.file("ddp.jsonl")), one = lines_of(dir.file("ddp.rank1.jsonl"));
  BOOST_TEST(zero.size() == 3u);
  BOOST_TEST(one.size() == 3u);
  for (const auto& l : zero) BOOST_TEST(l["rank"] == 0);
  for (const auto& l : one) BOOST_TEST(l["rank"] == 1);
}

BOOST_AUTO_TEST_CASE(ranks_listen_on_port_plus_rank_and_a_taken_port_throws_naming_the_rank) {
  // A free port P for rank 0 whose neighbour P + 1 is free too.
  std::shared_ptr<TraceRecorder> r0, r1;
  Bus rank0, rank1;
  std::uint16_t port = 0;
  for (int attempt = 0; attempt < 20 && !r1; ++attempt) {
    TraceStreamServer::Options probe;
    probe.announce = false;
    port = TraceStreamServer(probe).port();
    if (port == 0 || port == 65535) continue;
    try {
      r0 = configure_tracing(rank0, "tcp:" + std::to_string(port), nullptr, 0);
      r1 = configure_tracing(rank1, "tcp:" + std::to_string(port), nullptr, 1);
    } catch (const std::runtime_error&) {
      r0.reset();
      rank0.set_tracer(nullptr);
    }
  }
  BOOST_REQUIRE(r1);
  BOOST_TEST(r0->sink<TraceStreamServer>()->port() == port);
  BOOST_TEST(r1->sink<TraceStreamServer>()->port() == port + 1);
  // A rank 1 whose PORT + 1 is taken (by a server outside the spec's shared sinks) says so.
  TraceStreamServer::Options quiet;
  quiet.announce = false;
  TraceStreamServer taken(quiet);
  BOOST_REQUIRE(taken.port() > 1);
  Bus other;
  BOOST_CHECK_EXCEPTION(
      configure_tracing(other, "tcp:" + std::to_string(taken.port() - 1), nullptr, 1),
      std::runtime_error, [&](const std::runtime_error& e) {
        const std::string what = e.what();
        return what.find("rank 1: ") == 0 &&
               what.find("cannot listen on 127.0.0.1:" + std::to_string(taken.port())) !=
                   std::string::npos &&
               what.find("PORT + rank") != std::string::npos;
      });
}

BOOST_AUTO_TEST_SUITE_END()
