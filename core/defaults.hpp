// hookline: what every Trainer gets from the layers above core/.
//
// core/ knows no concrete callback, logger or strategy. The Trainer's constructor asks for its
// defaults through these functions, which core/ declares and the layers that know the concrete
// types define: make_strategy in strategies/strategy.cpp, trainer_defaults and
// trace_from_environment in recipe/. The library links them together; the include graph keeps
// pointing down (test/layering checks it).
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/logger.hpp"
#include "hookline/core/strategy.hpp"

#include <memory>
#include <string_view>
#include <vector>

namespace hookline {

class Trainer;
class TrainerOptions;
class TraceRecorder;

/// The strategy TrainerOptions ask for (Lightning's accelerator connector): the one given with
/// strategy(shared_ptr), else "ddp" when strategy is "ddp", or when it is "auto" and devices > 1,
/// num_nodes > 1 or the environment says WORLD_SIZE > 1 (torchrun, SLURM); else a single device
/// (TrainerOptions::device, or accelerator "cuda" -> cuda:0). Throws std::invalid_argument for
/// an unknown strategy or accelerator, and for CUDA without a CUDA build or device.
std::shared_ptr<Strategy> make_strategy(const TrainerOptions& options);

/// What Lightning's callback and logger connectors add to a Trainer.
struct TrainerDefaults {
  std::vector<std::shared_ptr<Callback>> callbacks;  ///< added after the user's, in this order
  std::vector<std::shared_ptr<Logger>> loggers;      ///< the run's loggers
};

/// The defaults for `options` beside the callbacks the user gave (packs' included): a progress
/// bar, a model summary and a ModelCheckpoint unless turned off or given, and the loggers given
/// in the options, else one TensorBoardLogger. Throws std::invalid_argument when an option turns
/// off what `given` holds (enable_progress_bar(false) with a progress bar, ...).
TrainerDefaults trainer_defaults(const TrainerOptions& options,
                                 const std::vector<std::shared_ptr<Callback>>& given);

/// Applies HOOKLINE_TRACE (if set and not empty) to `trainer`; the Trainer constructor calls it.
/// A bad value throws std::invalid_argument naming the variable.
std::shared_ptr<TraceRecorder> trace_from_environment(Trainer& trainer);

/// Traces `trainer`'s bus as `spec` says (tracing/trace_spec.hpp), replacing any tracer; "" or
/// "off" turns tracing off. Returns the recorder (null when off). Call it between runs. Throws
/// std::invalid_argument for a bad spec, std::runtime_error when a file or port cannot be opened.
std::shared_ptr<TraceRecorder> enable_tracing(Trainer& trainer, std::string_view spec);

}  // namespace hookline
