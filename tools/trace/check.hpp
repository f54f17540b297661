// hookline-trace check: a trace against the hook grammar of fit / validate / test / predict.
#pragma once

#include "trace_file.hpp"

#include <string>
#include <vector>

namespace hookline::trace_tool {

struct CheckResult {
  bool ok = true;
  std::string message;  ///< the first violation, with its place and context
  std::size_t runs = 0, emissions = 0;
  std::vector<std::string> stages;  ///< of the runs checked, in order
};

/// Checks the emit records of `records` (each rank and bus apart, in seq order): the order of the
/// hooks (what may follow what, start/end pairing) and their nesting (only the closure's hooks
/// inside optimizer_step, only manual-optimization hooks inside training_step, checkpoint saves
/// anywhere). Verdicts count: after a SkipBatch the batch's step is absent, after a
/// SkipRestOfEpoch the epoch ends. A run may end at any point with on_exception. Events that are
/// not Lightning hooks (user events) may appear anywhere. `file` names the trace in messages.
CheckResult check_trace(const std::vector<Record>& records, const std::string& file);

}  // namespace hookline::trace_tool
