// hookline: tracing a Trainer's event stream.
//
// The trainer-side half of tracing (the bus side is events/trace*.hpp): a TraceContext that adds
// the run's stage, epoch, global_step and rank to every record, and batch_idx / dataloader_idx
// where the event carries them; and the ways to turn tracing on:
//
//   enable_tracing(trainer, "run.jsonl,summary");   // from code, or from a recipe's spec string
//   HOOKLINE_TRACE=ring:10000 ./train               // from the environment, read by every
//                                                   // Trainer when it is constructed
//
// The spec syntax is in events/trace_spec.hpp. The recorder stays attached to trainer.bus()
// until the trainer is destroyed (files are flushed at the end of each run and then).
#pragma once

#include "hookline/events/trace.hpp"
#include "hookline/events/trace_spec.hpp"

#include <memory>
#include <string_view>

namespace hookline {

class Trainer;

/// The environment variable every Trainer reads when constructed.
inline constexpr const char* kTraceEnvironmentVariable = "HOOKLINE_TRACE";

/// The TraceContext of `trainer` (which must outlive it).
std::shared_ptr<const TraceContext> trace_context(Trainer& trainer);

/// Traces `trainer`'s bus as `spec` says (see trace_spec.hpp), replacing any tracer; "" or "off"
/// turns tracing off. Returns the recorder (null when off). Call it between runs. Throws
/// std::invalid_argument for a bad spec, std::runtime_error when a file or port cannot be opened.
std::shared_ptr<TraceRecorder> enable_tracing(Trainer& trainer, std::string_view spec);

/// Applies HOOKLINE_TRACE (if set and not empty) to `trainer`; the Trainer constructor calls it.
/// A bad value throws std::invalid_argument naming the variable.
std::shared_ptr<TraceRecorder> trace_from_environment(Trainer& trainer);

}  // namespace hookline
