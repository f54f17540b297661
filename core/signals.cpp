#include "hookline/core/signals.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

namespace hookline {

namespace {

const char* signal_name(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "a signal";
  }
}

// Calls a handler that was installed before ours (not SIG_DFL or SIG_IGN).
void call_previous(const struct sigaction& previous, int signal) {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction) previous.sa_sigaction(signal, nullptr, nullptr);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
             previous.sa_handler != nullptr) {
    previous.sa_handler(signal);
  }
}

}  // namespace

RunInterrupted::RunInterrupted(int signal)
    : std::runtime_error(std::string("the run was interrupted by ") + signal_name(signal) + " (" +
                         std::to_string(signal) +
                         "); its checkpoints are resumable: fit again with ckpt_path \"last\""),
      signal_(signal) {}

struct SignalWatch::Impl {
  struct sigaction previous_term {};
  struct sigaction previous_int {};
  boost::asio::io_context io;
  boost::asio::signal_set set{io};
  std::function<void(const boost::system::error_code&, int)> on_signal;
  std::thread thread;
};

SignalWatch::SignalWatch() : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  ::sigaction(SIGTERM, nullptr, &impl.previous_term);
  ::sigaction(SIGINT, nullptr, &impl.previous_int);
  impl.set.add(SIGTERM);
  impl.set.add(SIGINT);
  // Runs on the watcher thread, never in signal context: records the signal and re-arms.
  impl.on_signal = [this, &impl](const boost::system::error_code& error, int signal) {
    if (error) return;
    int expected = 0;
    if (!received_.compare_exchange_strong(expected, signal) && signal == SIGINT) {
      // A second SIGINT: end now, the way an unhandled SIGINT does.
      std::signal(SIGINT, SIG_DFL);
      std::raise(SIGINT);
    }
    call_previous(signal == SIGTERM ? impl.previous_term : impl.previous_int, signal);
    impl.set.async_wait(impl.on_signal);
  };
  impl.set.async_wait(impl.on_signal);
  impl.thread = std::thread([&impl] { impl.io.run(); });
}

SignalWatch::~SignalWatch() {
  boost::system::error_code ignored;
  impl_->set.cancel(ignored);
  impl_->set.clear(ignored);
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  ::sigaction(SIGTERM, &impl_->previous_term, nullptr);
  ::sigaction(SIGINT, &impl_->previous_int, nullptr);
}

}  // namespace hookline
