// DDP on loopback with Gloo, 2 processes (test/strategies/ddp_child.cpp launches its second rank):
// parity with one process over the same global batches, stop decisions taken on one rank only,
// checkpoints written once and resumed on 2 ranks, a failing rank ending the run with its error.
#include <boost/test/unit_test.hpp>

#include "child_process.hpp"
#include "ddp_limits.hpp"

#include <hookline/strategies/cluster_environment.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace hookline_test_ddp_tests {

namespace fs = std::filesystem;

namespace {

std::string child_path() {
  return test_support::framework_argument("--ddp-child=");
}

struct TempDir : test_support::TempDir {
  TempDir() : test_support::TempDir("hookline-ddp-") {}
};

struct Result {
  int exit_code = 0;
  std::string err;
  double seconds = 0;
};

// Starts ddp_child <scenario> <dir> with our environment plus `extra` ("NAME=value", replacing
// ours) and without torchrun's variables (the child launches its own ranks); stderr goes to
// <dir>/<scenario>.err.
pid_t spawn(const std::string& scenario, const TempDir& dir, std::vector<std::string> extra) {
  BOOST_REQUIRE_MESSAGE(!child_path().empty(), "run test_core with -- --ddp-child=PATH");
  const std::string err = (dir.path / (scenario + ".err")).string();
  std::vector<std::string> args{child_path(), scenario, dir.path.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> names{
      "RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "SLURM_PROCID=", "SLURM_NTASKS="};
  for (const auto& e : extra) names.push_back(e.substr(0, e.find('=') + 1));
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string var = *e;
    if (std::none_of(names.begin(), names.end(),
                     [&](const std::string& n) { return var.rfind(n, 0) == 0; }))
      extra.push_back(var);
  }
  std::vector<char*> env;
  for (auto& e : extra) env.push_back(e.data());
  env.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  BOOST_REQUIRE(spawned == 0);
  return pid;
}

// Runs ddp_child <scenario> <dir> to its end (spawn()).
Result run(const std::string& scenario, const TempDir& dir, std::vector<std::string> extra = {}) {
  const std::string err = (dir.path / (scenario + ".err")).string();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = spawn(scenario, dir, std::move(extra));
  int status = 0;
  ::waitpid(pid, &status, 0);
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = test_support::read_text(err);
  return r;
}

struct Report {
  int world = 0;
  long step = -1;
  long epoch = -1;
  std::string stop;
  std::vector<double> weights;
};

Report read_report(const TempDir& dir, int rank) {
  std::ifstream in(dir.path / ("rank" + std::to_string(rank) + ".txt"));
  BOOST_REQUIRE_MESSAGE(in.good(), "rank " << rank << " wrote no report");
  Report r;
  std::string word;
  in >> word >> r.world >> word >> r.step >> word >> r.epoch >> word;
  std::getline(in, r.stop);
  if (!r.stop.empty() && r.stop[0] == ' ') r.stop.erase(0, 1);
  double w = 0;
  while (in >> w) r.weights.push_back(w);
  return r;
}

double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  double out = 0;
  for (std::size_t i = 0; i < a.size(); ++i) out = std::max(out, std::abs(a[i] - b[i]));
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ddp)

BOOST_AUTO_TEST_CASE(two_processes_match_one_over_the_same_global_batches) {
  TempDir one, two, accumulate;
  BOOST_REQUIRE_EQUAL(run("single", one).exit_code, 0);
  const Result r = run("ddp", two);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const Report reference = read_report(one, 0);
  const Report rank0 = read_report(two, 0), rank1 = read_report(two, 1);
  BOOST_TEST(reference.world == 1);
  BOOST_TEST(rank0.world == 2);
  BOOST_TEST(rank0.step == 18);  // 96 samples / 16 per global batch x 3 epochs
  BOOST_TEST(rank1.step == 18);
  BOOST_TEST(reference.step == 18);
  BOOST_TEST(max_difference(rank0.weights, rank1.weights) == 0.0);  // identical replicas
  BOOST_TEST(fs::exists(two.path / "prepare_data_rank0"));          // prepare_data once per node
  BOOST_TEST(!fs::exists(two.path / "prepare_data_rank1"));
  BOOST_TEST(max_difference(rank0.weights, reference.weights) < 1e-5);
  // Accumulating 2 batches of 4 per rank (no_sync on the first) is the same global batch of 16.
  const Result acc = run("ddp_accumulate", accumulate);
  BOOST_REQUIRE_MESSAGE(acc.exit_code == 0, acc.err);
  const Report a0 = read_report(accumulate, 0);
  BOOST_TEST(a0.step == 18);
  BOOST_TEST(max_difference(a0.weights, reference.weights) < 1e-5);
}

BOOST_AUTO_TEST_CASE(a_stop_asked_on_rank_1_only_stops_both_at_the_same_step) {
  TempDir dir;
  const Result r = run("veto_rank1", dir);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const Report rank0 = read_report(dir, 0), rank1 = read_report(dir, 1);
  BOOST_TEST(rank1.step == 6 + 3);  // asked at batch 2 of epoch 1: that batch runs, then stop
  BOOST_TEST(rank0.step == rank1.step);
  BOOST_TEST(rank0.epoch == rank1.epoch);
  BOOST_TEST(rank1.stop.find("rank 1 wants to stop") != std::string::npos);
  BOOST_TEST(rank0.stop.find("another rank asked to stop") != std::string::npos);
  BOOST_TEST(max_difference(rank0.weights, rank1.weights) == 0.0);
}

BOOST_AUTO_TEST_CASE(early_stopping_on_rank_1_only_stops_both) {
  TempDir dir;
  const Result r = run("early_stop_rank1", dir);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const Report rank0 = read_report(dir, 0), rank1 = read_report(dir, 1);
  BOOST_TEST(rank1.epoch == 2);  // patience 1: no improvement at epoch 1 stops after it
  BOOST_TEST(rank0.epoch == rank1.epoch);
  BOOST_TEST(rank0.step == rank1.step);
  BOOST_TEST(rank1.stop.find("score did not improve") != std::string::npos, rank1.stop);
  BOOST_TEST(rank0.stop.find("another rank asked to stop") != std::string::npos, rank0.stop);
}

BOOST_AUTO_TEST_CASE(checkpoints_are_written_once_and_resume_on_two_ranks) {
  TempDir dir;
  const Result first = run("checkpoint", dir);
  BOOST_REQUIRE_MESSAGE(first.exit_code == 0, first.err);
  BOOST_TEST(fs::exists(dir.path / "ckpt" / "last.ckpt"));
  BOOST_TEST(fs::exists(dir.path / "manual_rank0.ckpt"));
  BOOST_TEST(!fs::exists(dir.path / "manual_rank1.ckpt"));  // rank 1 writes nothing
  BOOST_TEST(read_report(dir, 0).step == 12);
  const Result second = run("resume", dir);
  BOOST_REQUIRE_MESSAGE(second.exit_code == 0, second.err);
  const Report rank0 = read_report(dir, 0), rank1 = read_report(dir, 1);
  BOOST_TEST(rank0.step == 18);  // the third epoch only
  BOOST_TEST(rank1.step == 18);
  BOOST_TEST(max_difference(rank0.weights, rank1.weights) == 0.0);
  // The same as 3 uninterrupted epochs.
  TempDir straight;
  BOOST_REQUIRE_EQUAL(run("ddp", straight).exit_code, 0);
  BOOST_TEST(max_difference(rank0.weights, read_report(straight, 0).weights) < 1e-6);
}

BOOST_AUTO_TEST_CASE(a_rank_that_throws_ends_the_run_with_its_message,
                     *boost::unit_test::label("process_faults")) {
  TempDir dir;
  const Result r = run("throw_rank1", dir);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.err.find("rank 1 failed") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("boom from rank 1") != std::string::npos, r.err);
  BOOST_TEST(r.seconds < kNoHangSeconds);
  TempDir zero;
  const Result z = run("throw_rank0", zero);
  BOOST_TEST(z.exit_code != 0);
  BOOST_TEST(z.err.find("boom from rank 0") != std::string::npos, z.err);
  BOOST_TEST(z.seconds < kNoHangSeconds);
}

// Issue 29 item 7: SIGTERM to rank 0 of a 2-rank run is a clean, resumable stop on every rank:
// the ranks stop at the same step, rank 0 writes the exception checkpoint once, waits for rank
// 1, removes its temporary files and exits 128 + SIGTERM; the checkpoint resumes.
BOOST_AUTO_TEST_CASE(sigterm_to_rank_0_stops_every_rank_resumably,
                     *boost::unit_test::label("process_faults")) {
  BOOST_REQUIRE_MESSAGE(!child_path().empty(), "run test_core with -- --ddp-child=PATH");
  TempDir dir;
  const fs::path tmp = dir.path / "tmp";  // the child's TMPDIR: where the launcher's files go
  fs::create_directories(tmp);
  const std::string err = (dir.path / "sigterm.err").string();
  const pid_t pid = spawn("sigterm", dir, {"TMPDIR=" + tmp.string()});
  // Wait until both ranks train, then SIGTERM to rank 0 (the process we started).
  int status = 0;
  bool exited = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(dir.path / "training") && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_REQUIRE_MESSAGE(!exited && fs::exists(dir.path / "training"),
                        "the run did not start training: " << test_support::read_text(err));
  ::kill(pid, SIGTERM);
  const auto sent = std::chrono::steady_clock::now();
  ::waitpid(pid, &status, 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  const std::string stderr_text = test_support::read_text(err);
  BOOST_TEST_MESSAGE("rank 0's stderr:\n" << stderr_text);
  // Rank 0 exits as a process stopped by SIGTERM does, after its run ended resumably.
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 128 + SIGTERM);
  BOOST_TEST(seconds < kNoHangSeconds);
  BOOST_TEST(stderr_text.find("failed") == std::string::npos, stderr_text);
  BOOST_TEST(stderr_text.find("Connection closed") == std::string::npos, stderr_text);
  // Rank 1 is gone too (rank 0 waited for it and reaped it).
  long rank1_pid = 0;
  std::ifstream(dir.path / "pid1") >> rank1_pid;
  BOOST_REQUIRE(rank1_pid > 0);
  BOOST_TEST((::kill(static_cast<pid_t>(rank1_pid), 0) == -1 && errno == ESRCH));
  // Both ranks stopped at the same step, the checkpoint was written once, no temporary files.
  const Report rank0 = read_report(dir, 0), rank1 = read_report(dir, 1);
  BOOST_TEST(rank0.step > 0);
  BOOST_TEST(rank0.step == rank1.step);
  BOOST_TEST(rank0.step < 18);  // within the 3 epochs the resumed run trains
  BOOST_TEST(max_difference(rank0.weights, rank1.weights) == 0.0);
  BOOST_TEST(fs::exists(dir.path / "ckpt" / "on_exception.ckpt"));
  BOOST_TEST(std::distance(fs::directory_iterator(dir.path / "ckpt"), fs::directory_iterator()) ==
             1);
  BOOST_TEST(fs::is_empty(tmp), "left in TMPDIR: " << fs::directory_iterator(tmp)->path());
  // The checkpoint resumes where the ranks stopped, and the run ends as an uninterrupted one.
  const Result resumed = run("sigterm_resume", dir);
  BOOST_REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
  long resumed_step = -1;
  std::ifstream(dir.path / "resumed_step") >> resumed_step;
  BOOST_TEST(resumed_step == rank0.step);
  const Report end0 = read_report(dir, 0), end1 = read_report(dir, 1);
  BOOST_TEST(end0.step == 18);
  BOOST_TEST(end1.step == 18);
  TempDir straight;
  BOOST_REQUIRE_EQUAL(run("ddp", straight).exit_code, 0);
  BOOST_TEST(max_difference(end0.weights, read_report(straight, 0).weights) < 1e-6);
}

// Issue 29 (C): a rank whose tracing cannot start (HOOKLINE_TRACE names a file it cannot open)
// fails before it joins the process group; the run ends at once with its failure instead of
// rank 0 waiting for it until the process group timeout (kProcessGroupTimeoutSeconds).
BOOST_AUTO_TEST_CASE(a_rank_whose_tracing_fails_ends_the_run,
                     *boost::unit_test::label("process_faults")) {
  TempDir dir;
  fs::create_directories(dir.path / "r0");
  std::ofstream(dir.path / "r1") << "a file where rank 1's trace directory should be";
  // TMPDIR: rank 0 ends by an uncaught RankFailure (no atexit), its launcher files stay in dir.
  const Result r = run("ddp", dir,
                       {"HOOKLINE_TRACE=" + (dir.path / "r{rank}" / "t.jsonl").string(),
                        "TMPDIR=" + dir.path.string()});
  BOOST_TEST_MESSAGE(r.err);
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(r.err.find("rank 1 failed") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("HOOKLINE_TRACE") != std::string::npos, r.err);  // rank 1 says why
  BOOST_TEST(r.seconds < kNoHangSeconds);
  BOOST_TEST(!fs::exists(dir.path / "rank0.txt"));  // nothing trained
}

BOOST_AUTO_TEST_CASE(the_cluster_environment_is_read_and_checked) {
  ::setenv("RANK", "1", 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  ::setenv("MASTER_ADDR", "10.0.0.1", 1);
  ::setenv("MASTER_PORT", "1234", 1);
  auto env = hookline::ClusterEnvironment::detect();
  BOOST_REQUIRE(env.has_value());
  BOOST_TEST(env->source == "torchrun");
  BOOST_TEST(env->global_rank == 1);
  BOOST_TEST(env->world_size == 4);
  BOOST_TEST(env->master_addr == "10.0.0.1");
  BOOST_TEST(env->master_port == 1234);
  ::setenv("RANK", "4", 1);
  BOOST_CHECK_THROW(hookline::ClusterEnvironment::detect(), std::runtime_error);
  ::setenv("RANK", "one", 1);
  BOOST_CHECK_THROW(hookline::ClusterEnvironment::detect(), std::runtime_error);
  for (const char* name :
       {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"})
    ::unsetenv(name);
  BOOST_TEST(!hookline::ClusterEnvironment::detect().has_value());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_ddp_tests
