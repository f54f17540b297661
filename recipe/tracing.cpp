#include "hookline/recipe/tracing.hpp"

#include "hookline/core/trainer.hpp"
#include "hookline/hooks/hooks.hpp"

#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace hookline {

namespace {

using Extractor = void (*)(TraceFields&, const void*);

template <class E>
void extract(TraceFields& r, const void* payload) {
  const E& e = *static_cast<const E*>(payload);
  if constexpr (requires { e.batch_idx; }) r.batch_idx = e.batch_idx;
  if constexpr (requires { e.dataloader_idx; }) r.dataloader_idx = e.dataloader_idx;
}

template <class... E>
void register_extractors(std::array<Extractor, kMaxEventTypes>& table) {
  ((table[event_id<E>()] = &extract<E>), ...);
}

// Per event id: how to read batch_idx / dataloader_idx from its payload (null: nothing to read).
const std::array<Extractor, kMaxEventTypes>& extractors() {
  static const std::array<Extractor, kMaxEventTypes> table = [] {
    std::array<Extractor, kMaxEventTypes> t{};
    register_extractors<TrainBatchStart, TrainBatchEnd, TrainingStep, ValidationBatchStart,
                        ValidationBatchEnd, TestBatchStart, TestBatchEnd, PredictBatchStart,
                        PredictBatchEnd, ValidationStep, TestStep, PredictStep, OptimizerZeroGrad,
                        OptimizerStep, BeforeBatchTransfer, TransferBatchToDevice,
                        AfterBatchTransfer>(t);
    return t;
  }();
  return table;
}

class TrainerContext final : public TraceContext {
 public:
  explicit TrainerContext(Trainer& trainer) : trainer_(&trainer), table_(&extractors()) {}

  void fill_state(TraceFields& r) const override {
    r.stage = to_string(trainer_->stage());
    r.epoch = trainer_->current_epoch();
    r.global_step = trainer_->global_step();
    r.rank = trainer_->bus().rank();
  }

  void fill_payload(TraceFields& r, const EventInfo& event, const void* payload) const override {
    if (payload == nullptr || event.id >= table_->size()) return;
    if (const Extractor f = (*table_)[event.id]) f(r, payload);
  }

 private:
  Trainer* trainer_;
  const std::array<Extractor, kMaxEventTypes>* table_;
};

// The process's rank under DDP: the bus has it once the strategy is set up; before that (tracing
// is configured in the Trainer's constructor) the launcher's RANK variable tells, as Lightning's.
int process_rank(Trainer& trainer) {
  if (const int rank = trainer.bus().rank(); rank != 0) return rank;
  const char* text = std::getenv("RANK");
  int rank = 0;
  if (text == nullptr || std::from_chars(text, text + std::strlen(text), rank).ec != std::errc() ||
      rank < 0)
    return 0;
  return rank;
}

}  // namespace

std::shared_ptr<const TraceContext> trace_context(Trainer& trainer) {
  return std::make_shared<const TrainerContext>(trainer);
}

std::shared_ptr<TraceRecorder> enable_tracing(Trainer& trainer, std::string_view spec) {
  return configure_tracing(trainer.bus(), spec, trace_context(trainer), process_rank(trainer));
}

std::shared_ptr<TraceRecorder> trace_from_environment(Trainer& trainer) {
  const char* spec = std::getenv(kTraceEnvironmentVariable);
  if (spec == nullptr || *spec == '\0') return nullptr;
  try {
    return enable_tracing(trainer, spec);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(kTraceEnvironmentVariable) + "='" + spec +
                                "': " + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(kTraceEnvironmentVariable) + "='" + spec +
                             "': " + e.what());
  }
}

}  // namespace hookline
