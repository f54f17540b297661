// Fault tests: a training program (fault_child) run as a child process and interrupted by
// SIGTERM (during training and during validation), by an exception from a callback, and by
// SIGKILL in the middle of a checkpoint write. Each must leave a loadable checkpoint, and a run
// resumed from it must end with the same weights as an uninterrupted run.
#include <boost/test/unit_test.hpp>

#include "child_process.hpp"

#include <hookline/core/checkpoint_io.hpp>

#include <ATen/ATen.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace hookline_test_fault_tests {

namespace fs = std::filesystem;

namespace {

std::string child_path() {
  return test_support::framework_argument("--fault-child=");
}

// A directory per test: hookline-fault-<random>.
struct TempDir : test_support::TempDir {
  TempDir() : test_support::TempDir("hookline-fault-") {}
};

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

// Runs the child to its end; returns its exit code, or -signal if a signal killed it.
int run_child(const std::vector<std::string>& extra, const TempDir& dir) {
  std::vector<std::string> args{child_path(), dir.path.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  const pid_t pid = spawn(args);
  BOOST_REQUIRE(pid > 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::vector<at::Tensor> final_weights(const TempDir& dir) {
  std::vector<at::Tensor> out;
  const auto dict = hookline::read_checkpoint_file(dir.file("final.ckpt")).toGenericDict();
  for (const auto& entry : dict) out.push_back(entry.value().toTensor());
  return out;
}

bool bitwise_equal(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size() || a.empty()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!at::equal(a[i], b[i])) return false;
  return true;
}

// The weights of an uninterrupted run (computed once).
const std::vector<at::Tensor>& reference() {
  static const std::vector<at::Tensor> weights = [] {
    TempDir dir;
    BOOST_REQUIRE_EQUAL(run_child({}, dir), 0);
    return final_weights(dir);
  }();
  return weights;
}

// Interrupts a run with `fault`, checks how it ended, resumes it, and compares the result.
void interrupt_and_resume(const std::vector<std::string>& fault, int expected_exit,
                          const std::string& where) {
  BOOST_REQUIRE_MESSAGE(!child_path().empty(), "run test_core with -- --fault-child=PATH");
  TempDir dir;
  BOOST_TEST(run_child(fault, dir) == expected_exit);
  std::string seen;
  std::ifstream(dir.file("on_exception_ran")) >> seen;
  BOOST_TEST(seen == where);  // on_exception ran, during training or validation
  BOOST_REQUIRE(fs::exists(dir.file("last.ckpt")));
  BOOST_CHECK_NO_THROW(hookline::read_checkpoint_file(dir.file("last.ckpt")));
  BOOST_TEST(!fs::exists(dir.file("final.ckpt")));
  BOOST_TEST(run_child({"--resume"}, dir) == 0);
  BOOST_TEST(bitwise_equal(final_weights(dir), reference()));
}

}  // namespace

// Label process_faults: the TSan run leaves these out (see test/CMakeLists.txt).
BOOST_AUTO_TEST_SUITE(faults, *boost::unit_test::label("process_faults"))

BOOST_AUTO_TEST_CASE(sigterm_during_training_exits_cleanly_and_resumes_exactly) {
  interrupt_and_resume({"--sigterm-at-step", "10"}, 128 + SIGTERM, "training");
}

BOOST_AUTO_TEST_CASE(sigterm_during_validation_exits_cleanly_and_resumes_exactly) {
  interrupt_and_resume({"--sigterm-in-validation", "12"}, 128 + SIGTERM, "validating");
}

BOOST_AUTO_TEST_CASE(an_exception_in_a_callback_keeps_the_last_checkpoint) {
  interrupt_and_resume({"--throw-at-step", "13"}, 4, "training");
}

// Issue 28: a SIGTERM in the sanity check of a resumed run (before the loop reaches the saved
// position) once wrote an exception checkpoint mixing the restored optimizer state with the
// initial weights, and the next resume trained on from it. What is on disk must resume exactly.
BOOST_AUTO_TEST_CASE(sigterm_in_a_resumed_runs_sanity_check_keeps_a_whole_checkpoint) {
  BOOST_REQUIRE_MESSAGE(!child_path().empty(), "run test_core with -- --fault-child=PATH");
  TempDir dir;
  BOOST_TEST(run_child({"--sigterm-at-step", "10"}, dir) == 128 + SIGTERM);
  BOOST_REQUIRE(fs::exists(dir.file("last.ckpt")));
  fs::remove(dir.file("on_exception_ran"));
  BOOST_TEST(run_child({"--resume", "--sigterm-in-sanity-check"}, dir) == 128 + SIGTERM);
  BOOST_TEST(fs::exists(dir.file("on_exception_ran")));  // it did try to save
  BOOST_CHECK_NO_THROW(hookline::read_checkpoint_file(dir.file("last.ckpt")));
  BOOST_TEST(!fs::exists(dir.file("final.ckpt")));
  BOOST_TEST(run_child({"--resume"}, dir) == 0);
  BOOST_TEST(bitwise_equal(final_weights(dir), reference()));
}

BOOST_AUTO_TEST_CASE(sigkill_during_checkpoint_writes_leaves_a_loadable_file) {
  BOOST_REQUIRE_MESSAGE(!child_path().empty(), "run test_core with -- --fault-child=PATH");
  std::mt19937 rng(11);
  for (int round = 0; round < 3; ++round) {
    TempDir dir;
    const pid_t pid = spawn({child_path(), dir.path.string(), "--save-forever"});
    BOOST_REQUIRE(pid > 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!fs::exists(dir.file("ready")) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    BOOST_REQUIRE(fs::exists(dir.file("ready")));
    // Somewhere inside one of the writes that follow the first.
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    BOOST_CHECK_NO_THROW(hookline::read_checkpoint_file(dir.file("last.ckpt")));
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_fault_tests
