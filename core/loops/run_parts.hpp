// hookline: RunParts, the parts of a trainer that the fit's loops and connectors share.
#pragma once

#include "hookline/core/hook_emitter.hpp"
#include "hookline/core/loops/data_connector.hpp"
#include "hookline/core/loops/progress.hpp"
#include "hookline/core/metrics.hpp"
#include "hookline/core/optimization.hpp"
#include "hookline/core/strategy.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/core/trainer_state.hpp"

namespace hookline {

/// The trainer's options and state, how it emits hooks, its strategy, metrics, optimizers and
/// data, and the fit's counters.
struct RunParts {
  const TrainerOptions& options;
  TrainerState& state;
  HookEmitter& hooks;
  Strategy& strategy;
  MetricStore& metrics;
  OptimizerConfig& optimizers;
  DataConnector& data;
  FitProgress& progress;
  EpochProgress& epoch;
};

}  // namespace hookline
