// hookline: SignalConnector, how SIGTERM/SIGINT end a run resumably (Lightning's
// _SignalConnector), and how the ranks of a DDP run agree on verdicts, stops and signals.
#pragma once

#include "hookline/core/signals.hpp"
#include "hookline/core/strategy.hpp"
#include "hookline/core/trainer_state.hpp"
#include "hookline/events/verdict.hpp"

#include <optional>

namespace hookline {

class SignalConnector {
 public:
  SignalConnector(Strategy& strategy, TrainerState& state) : strategy_(strategy), state_(state) {}

  /// Watches SIGTERM/SIGINT for the run (TrainerOptions::handle_signals); stop() ends that.
  void start(bool handle_signals);
  void stop() { watch_.reset(); }

  /// Single process: throws RunInterrupted when a signal arrived (loops call it at every batch
  /// boundary). Under DDP signals are agreed on in agree() instead.
  void check() const {
    if (strategy_.distributed()) return;
    if (watch_ && watch_->received() != 0) [[unlikely]]
      throw RunInterrupted(watch_->received());
  }

  /// DDP: every rank's verdict `action`, should_stop flag and pending signal, reduced (the
  /// strongest wins) so all ranks act alike; throws RunInterrupted on every rank when one got a
  /// signal. Returns the agreed action. Single process: `action`, at no cost.
  Action agree(Action action = Action::Continue) {
    if (!strategy_.distributed()) return action;
    return agree_distributed(action);
  }

 private:
  Action agree_distributed(Action action);

  Strategy& strategy_;
  TrainerState& state_;
  std::optional<SignalWatch> watch_;
};

}  // namespace hookline
