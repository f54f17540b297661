// hookline: every trace sink: JSON lines, Chrome trace-event JSON, an in-memory ring buffer dumped
// when a run fails, and a per-hook / per-subscriber time summary, one file each. (The live TCP
// stream is in trace_stream.hpp.) All are thread-safe (sink_base.hpp); attach them to a
// TraceRecorder (trace.hpp).
#pragma once

#include "hookline/tracing/chrome_sink.hpp"
#include "hookline/tracing/jsonl_sink.hpp"
#include "hookline/tracing/ring_buffer_sink.hpp"
#include "hookline/tracing/summary_sink.hpp"
#include "hookline/tracing/trace_codec.hpp"
