// hookline: tracing a Trainer's event stream.
//
// The trainer-side half of tracing (the bus side is tracing/): a TraceContext that adds
// the run's stage, epoch, global_step and rank to every record, and batch_idx / dataloader_idx
// where the event carries them; and the ways to turn tracing on:
//
//   enable_tracing(trainer, "run.jsonl,summary");   // from code, or from a recipe's spec string
//   HOOKLINE_TRACE=ring:10000 ./train               // from the environment, read by every
//                                                   // Trainer when it is constructed
//
// The spec syntax is in tracing/trace_spec.hpp. The recorder stays attached to trainer.bus()
// until the trainer is destroyed (files are flushed at the end of each run and then).
#pragma once

#include "hookline/core/defaults.hpp"
#include "hookline/tracing/trace.hpp"
#include "hookline/tracing/trace_spec.hpp"

#include <memory>
#include <string_view>

namespace hookline {

class Trainer;

/// The environment variable every Trainer reads when constructed.
inline constexpr const char* kTraceEnvironmentVariable = "HOOKLINE_TRACE";

/// The TraceContext of `trainer` (which must outlive it).
std::shared_ptr<const TraceContext> trace_context(Trainer& trainer);

// enable_tracing(trainer, spec) and trace_from_environment(trainer) are declared in
// core/defaults.hpp (the Trainer calls them) and defined in tracing.cpp here.

}  // namespace hookline
