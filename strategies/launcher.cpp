#include "hookline/strategies/launcher.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace hookline {

RankFailure::RankFailure(int rank, int exit_code, const std::string& message)
    : std::runtime_error("rank " + std::to_string(rank) + " failed (exit code " +
                         std::to_string(exit_code) + "): " + message),
      rank_(rank),
      exit_code_(exit_code) {}

namespace launcher {
namespace {

constexpr const char* kErrorDirVariable = "HOOKLINE_DDP_ERROR_DIR";

struct Child {
  int rank;
  pid_t pid;
  bool done = false;
};

struct State {
  std::mutex mutex;
  std::vector<Child> children;
  std::optional<RankFailure> failure;
  // The first rank that ended by SIGTERM / SIGINT (or exited 128 + one): a failure unless the
  // run was interrupted by a signal, when every rank stops that way.
  std::optional<RankFailure> signaled;
  std::string error_dir;
};

State& state() {
  static State* s = new State();  // leaked: used from atexit and signal paths
  return *s;
}

std::atomic<bool> g_launched{false};
std::atomic<int> g_interrupted{0};  // the signal that interrupted the run, 0: none
pid_t g_children[256];
std::atomic<int> g_child_count{0};

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot find a free port for MASTER_PORT: " + error);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  if (args.empty()) throw std::runtime_error("cannot read /proc/self/cmdline to start the ranks");
  return args;
}

std::string read_error(int rank) {
  std::ifstream in(state().error_dir + "/rank_" + std::to_string(rank) + ".txt");
  std::ostringstream text;
  text << in.rdbuf();
  const std::string message = text.str();
  return message.empty() ? "it exited without a message (see its output above)" : message;
}

// Reaps children that exited; records the first failure. Returns whether all are done.
bool reap(bool block) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  bool all_done = true;
  for (Child& child : s.children) {
    if (child.done) continue;
    int status = 0;
    const pid_t got = ::waitpid(child.pid, &status, block ? 0 : WNOHANG);
    if (got == 0 || (got < 0 && errno == EINTR)) {
      all_done = false;
      continue;
    }
    child.done = true;
    int code = 0;
    if (got > 0 && WIFEXITED(status)) code = WEXITSTATUS(status);
    if (got > 0 && WIFSIGNALED(status)) code = 128 + WTERMSIG(status);
    const bool by_signal = code == 128 + SIGTERM || code == 128 + SIGINT;
    if (code != 0 && by_signal && !s.signaled)
      s.signaled.emplace(child.rank, code,
                         "it was stopped by signal " + std::to_string(code - 128));
    else if (code != 0 && !by_signal && !s.failure)
      s.failure.emplace(child.rank, code, read_error(child.rank));
  }
  return all_done;
}

// The first failure: a rank that failed, or one stopped by a signal when the run was not.
std::optional<RankFailure> first_failure(State& s) {
  if (s.failure) return s.failure;
  if (s.signaled && g_interrupted.load() == 0) return s.signaled;
  return std::nullopt;
}

// SIGTERM / SIGINT on rank 0: the other ranks get it too. Inside a run the trainer watches the
// signal (core/signals.hpp) and calls this from its watcher thread, its own handler installed:
// the ranks then agree on the step to stop at, and the run ends resumably on every rank. Outside
// a run (this is the handler itself), the process ends the way the signal ends it.
void forward_signal(int signal) {
  g_interrupted.store(signal);
  const int n = g_child_count.load();
  for (int i = 0; i < n; ++i) ::kill(g_children[i], signal);
  struct sigaction current {};
  ::sigaction(signal, nullptr, &current);
  if (current.sa_handler != forward_signal) return;  // a run handles it
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

void at_exit() {
  if (!g_launched) return;
  if (auto failed = wait_all()) {
    std::fprintf(stderr, "hookline: %s\n", failed->what());
    std::fflush(stderr);
    std::_Exit(1);
  }
}

}  // namespace

void launch(int n) {
  if (n < 2) throw std::invalid_argument("launcher::launch: needs at least 2 processes");
  if (n > 256) throw std::invalid_argument("launcher::launch: at most 256 local processes");
  if (g_launched) throw std::logic_error("launcher::launch: this process already launched ranks");
  const std::vector<std::string> args = own_arguments();
  const int port = free_port();
  // $TMPDIR/hookline_ddp_XXXXXX (/tmp by default); removed when the ranks are done.
  std::error_code ec;
  std::string dir_template = std::filesystem::temp_directory_path(ec).string();
  if (ec || dir_template.empty()) dir_template = "/tmp";
  dir_template += "/hookline_ddp_XXXXXX";
  if (::mkdtemp(dir_template.data()) == nullptr)
    throw std::runtime_error(std::string("cannot make the ranks' error directory: ") +
                             std::strerror(errno));
  State& s = state();
  s.error_dir = dir_template;
  const auto set = [](const char* name, const std::string& value) {
    ::setenv(name, value.c_str(), 1);
  };
  set("WORLD_SIZE", std::to_string(n));
  set("LOCAL_WORLD_SIZE", std::to_string(n));
  set("GROUP_RANK", "0");
  set("MASTER_ADDR", "127.0.0.1");
  set("MASTER_PORT", std::to_string(port));
  set(kErrorDirVariable, s.error_dir);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  for (int rank = 1; rank < n; ++rank) {
    set("RANK", std::to_string(rank));
    set("LOCAL_RANK", std::to_string(rank));
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) std::_Exit(1);  // the parent died before prctl
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "hookline: cannot start rank %d: %s\n", rank, std::strerror(errno));
      std::_Exit(127);
    }
    {
      std::lock_guard lock(s.mutex);
      s.children.push_back({rank, pid});
    }
    g_children[g_child_count.load()] = pid;
    g_child_count.fetch_add(1);
  }
  set("RANK", "0");
  set("LOCAL_RANK", "0");
  g_launched = true;
  struct sigaction action {};
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
  std::atexit(at_exit);
}

bool launched() {
  return g_launched;
}

std::optional<RankFailure> failure(double wait_seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(wait_seconds * 1000));
  while (true) {
    if (g_launched) reap(false);
    {
      std::lock_guard lock(state().mutex);
      if (auto failed = first_failure(state())) return failed;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void report_error(int rank, const std::string& message) {
  const char* dir = std::getenv(kErrorDirVariable);
  if (dir == nullptr || *dir == '\0') return;
  std::ofstream(std::string(dir) + "/rank_" + std::to_string(rank) + ".txt") << message;
}

std::optional<RankFailure> wait_all() {
  if (!g_launched) return std::nullopt;
  // Once one rank failed, the others may wait on it in a collective: stop them.
  while (!reap(false)) {
    bool failed;
    {
      std::lock_guard lock(state().mutex);
      failed = first_failure(state()).has_value();
      if (failed)
        for (const Child& child : state().children)
          if (!child.done) ::kill(child.pid, SIGTERM);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::error_code ec;
  std::filesystem::remove_all(state().error_dir, ec);
  std::lock_guard lock(state().mutex);
  return first_failure(state());
}

void interrupted(int signal) {
  g_interrupted.store(signal);
}

}  // namespace launcher
}  // namespace hookline
