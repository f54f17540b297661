#include "hookline/core/loops/signal_connector.hpp"

#include <ATen/ops/tensor.h>

namespace hookline {

void SignalConnector::start(bool handle_signals) {
  watch_.reset();
  if (handle_signals) watch_.emplace();
}

Action SignalConnector::agree_distributed(Action action) {
  const int signal = watch_ ? watch_->received() : 0;
  // One all-reduce (max) of: the verdict, should_stop, and signal + 1 (0: none).
  at::Tensor votes = at::tensor(
      {static_cast<int>(action), state_.should_stop ? 1 : 0, signal != 0 ? signal + 1 : 0},
      at::kInt);
  strategy_.all_reduce(votes, ReduceOp::max);
  const auto* v = votes.data_ptr<int>();
  if (v[2] != 0) throw RunInterrupted(v[2] - 1);
  if (v[1] != 0 && !state_.should_stop) state_.set_should_stop(true, "another rank asked to stop");
  return static_cast<Action>(v[0]);
}

}  // namespace hookline
