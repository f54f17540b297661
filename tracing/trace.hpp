// hookline: the trace recorder, the interceptor behind every trace sink.
//
// A TraceRecorder is a Tracer (tracer.hpp): attached to a bus, it turns each emission and each
// subscriber call into a TraceRecord and hands it to its sinks (trace_sinks.hpp: JSON lines,
// Chrome trace, ring buffer, summary; trace_stream.hpp: a live TCP stream). A record's JSON line
// is in trace_codec.hpp. Nothing changes in the subscribers: anything on the bus is traced.
//
//   auto recorder = std::make_shared<TraceRecorder>(
//       std::vector<std::shared_ptr<TraceSink>>{std::make_shared<JsonlSink>("run.jsonl")});
//   bus.set_tracer(recorder);
//
// Or from a spec string, as HOOKLINE_TRACE takes it (trace_spec.hpp):
//   configure_tracing(bus, "run.jsonl,ring:10000,summary");
//
// Records, in the order they finish (so a hook that runs inside another comes first):
//   kind "call"  one subscriber returned: its name, lane, thread, start and duration, verdict
//   kind "emit"  one emission's synchronous part is over: its start (first call) and duration
//                (to the last call), the enclosing emission on the same thread (`parent`,
//                `depth`), the folded verdict and who gave it and why (`by`, `reason`; with a stop,
//                also a skip: `skip`, `skip_by`, `skip_reason`). An emission cut short by an
//                exception is recorded with `aborted` set when the thread next emits at the same or
//                a shallower depth (on_exception, for a run).
// Every record carries the emission's `seq` (numbered per bus from 1), the recorder's `bus`
// number (per process, from 1), and what the TraceContext knows: for a Trainer the stage, epoch,
// global_step, batch_idx and dataloader_idx where the event has them, and the rank.
#pragma once

#include "hookline/events/tracer.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hookline {

/// What a TraceContext knows about a record: the run's state and the payload's indices.
struct TraceFields {
  static constexpr std::int64_t kNone = -1;  ///< an integer field that does not apply
  std::string_view stage;  ///< "fit", "validate", "test", "predict" ("" when unknown); static
  std::int64_t epoch = kNone;
  std::int64_t global_step = kNone;
  std::int64_t batch_idx = kNone;
  std::int64_t dataloader_idx = kNone;
  std::int32_t rank = 0;
};

/// One traced emission or subscriber call. Sinks get it by const reference during write() and
/// copy what they keep. String views point to storage that outlives the program's use of them
/// (event and stage names are static; the others live until write() returns).
struct TraceRecord : TraceFields {
  enum class Kind : std::uint8_t { emit, call };

  Kind kind = Kind::call;
  Lane lane = Lane::sync;
  Action verdict = Action::Continue;
  Action skip = Action::Continue;   ///< emit: a skip given beside a winning StopFit (both apply)
  Pairing pairing = Pairing::none;  ///< emit records of paired events (on_x_start/on_x_end)
  bool aborted = false;             ///< emit: unwound by an exception before it ended
  std::uint32_t depth = 0;          ///< emit: enclosing emissions on this thread
  std::uint32_t thread = 0;         ///< small per-process thread number, from 1
  std::uint32_t bus = 0;            ///< the recorder's number in this process, from 1
  std::uint64_t seq = 0;            ///< the emission (shared by its calls)
  std::uint64_t parent = 0;         ///< emit: the enclosing emission on this thread, 0 if none
  std::int64_t start_ns = 0;        ///< since the process's trace epoch (trace_epoch())
  std::int64_t duration_ns = 0;
  std::string_view event;        ///< the hook name
  std::string_view subscriber;   ///< call: who (module, data module, callback name)
  std::string_view by;           ///< emit: who gave the winning verdict
  std::string_view reason;       ///< emit: why
  std::string_view skip_by;      ///< emit: who gave `skip`
  std::string_view skip_reason;  ///< emit: why
  std::string_view args;         ///< the payload's describe(), when the recorder renders it
};

/// "emit" / "call", "sync" / "async", "start" / "end" / "" (for JSON and tables).
std::string_view to_string(TraceRecord::Kind kind);
std::string_view to_string(Lane lane);
std::string_view pairing_name(Pairing pairing);

/// The zero of every record's start_ns: the first time anything in the process asked for it.
Tracer::Clock::time_point trace_epoch();

/// Where a trace goes. write() may be called from several threads at once (the emitting thread,
/// the async lane) and must be cheap: it runs inside the emission.
class TraceSink {
 public:
  virtual ~TraceSink() = default;
  virtual void write(const TraceRecord& record) = 0;
  /// Pushes buffered output out (files, sockets). Called at run boundaries and on demand.
  virtual void flush() {}
};

/// What the bus does not know about a run: a Trainer fills stage, epoch, global_step and rank,
/// and reads batch_idx / dataloader_idx from the payloads that have them (recipe/tracing.hpp).
class TraceContext {
 public:
  virtual ~TraceContext() = default;
  /// The run's state (stage, epoch, global_step, rank); called on the emitting thread when an
  /// emission starts. `stage` must name static storage.
  virtual void fill_state(TraceFields&) const {}
  /// What the payload tells (batch_idx, dataloader_idx); called on any thread (async calls get
  /// their copy of the payload).
  virtual void fill_payload(TraceFields&, const EventInfo&, const void*) const {}
};

class TraceRecorder final : public Tracer {
 public:
  struct Options {
    /// Render each payload's describe() into `args` (costly: off by default).
    bool args = false;
    /// Emissions whose end makes every sink flush (run boundaries).
    std::vector<std::string> flush_on = {"teardown", "on_exception"};
  };

  explicit TraceRecorder(std::vector<std::shared_ptr<TraceSink>> sinks = {},
                         std::shared_ptr<const TraceContext> context = nullptr);
  TraceRecorder(std::vector<std::shared_ptr<TraceSink>> sinks,
                std::shared_ptr<const TraceContext> context, Options options);
  /// Flushes the sinks.
  ~TraceRecorder() override;
  TraceRecorder(const TraceRecorder&) = delete;
  TraceRecorder& operator=(const TraceRecorder&) = delete;

  void on_emit(const EventInfo& event, const void* payload, std::uint64_t seq) override;
  void on_call(const EventInfo& event, const SubscriptionInfo& subscriber, Lane lane,
               std::uint64_t seq, const void* payload, Clock::time_point start,
               Clock::time_point end, Action verdict) override;
  void on_emit_end(const EventInfo& event, std::uint64_t seq, const Outcome& outcome) override;

  const std::vector<std::shared_ptr<TraceSink>>& sinks() const { return sinks_; }
  /// The first sink of type S, or null.
  template <class S>
  std::shared_ptr<S> sink() const {
    for (const auto& s : sinks_)
      if (auto typed = std::dynamic_pointer_cast<S>(s)) return typed;
    return nullptr;
  }
  void flush();
  /// This recorder's `bus` number.
  std::uint32_t id() const { return id_; }

 private:
  struct Shared;  // the run state of recent emissions, for async calls, and flush flags
  void write(const TraceRecord& record);
  bool flushes_after(const EventInfo& event);

  std::vector<std::shared_ptr<TraceSink>> sinks_;
  std::shared_ptr<const TraceContext> context_;
  Options options_;
  std::uint32_t id_;
  std::unique_ptr<Shared> shared_;
};

}  // namespace hookline
