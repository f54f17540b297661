// hookline: EvaluationLoop, the loop of validation (inside a fit, its sanity check, or
// Trainer::validate), test and predict (Lightning's _EvaluationLoop and _PredictionLoop, which
// share one loop body here: the hooks differ by kind, the order does not).
#pragma once

#include "hookline/core/hook_emitter.hpp"
#include "hookline/core/loops/data_connector.hpp"
#include "hookline/core/loops/logger_connector.hpp"
#include "hookline/core/loops/progress.hpp"
#include "hookline/core/loops/signal_connector.hpp"
#include "hookline/core/metrics.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/core/trainer_state.hpp"

#include <cstdint>
#include <vector>

namespace hookline {

class EvaluationLoop {
 public:
  EvaluationLoop(const TrainerOptions& options, TrainerState& state, HookEmitter& hooks,
                 MetricStore& metrics, DataConnector& data, LoggerConnector& logger,
                 const SignalConnector& signals)
      : options_(options),
        state_(state),
        hooks_(hooks),
        metrics_(metrics),
        data_(data),
        logger_(logger),
        signals_(signals) {}

  /// Runs one evaluation of `kind`. `sanity`: the fit's sanity check (num_sanity_val_steps
  /// batches, nothing logged). `epoch`: the training epoch a validation runs inside, marked
  /// validated before on_validation_end (a checkpoint saved from there resumes after it).
  void run(EvalKind kind, bool sanity, EpochProgress* epoch = nullptr);

  /// What validate()/test() return: one map per dataloader (taken: empty afterwards).
  std::vector<MetricMap> take_results() { return std::move(results_); }
  /// Every predict_step output of the last predict (taken: empty afterwards).
  std::vector<StepOutput> take_predictions() { return std::move(predictions_); }
  void clear() {
    results_.clear();
    predictions_.clear();
  }

  const std::vector<std::int64_t>& num_sanity_batches() const { return num_sanity_batches_; }
  const std::vector<std::int64_t>& num_test_batches() const { return num_test_batches_; }
  const std::vector<std::int64_t>& num_predict_batches() const { return num_predict_batches_; }

 private:
  template <class Hooks>
  void run_kind(EvalKind kind, bool sanity, const DataLoaders& loaders,
                const std::vector<std::int64_t>& limits, EpochProgress* epoch);

  const TrainerOptions& options_;
  TrainerState& state_;
  HookEmitter& hooks_;
  MetricStore& metrics_;
  DataConnector& data_;
  LoggerConnector& logger_;
  const SignalConnector& signals_;
  std::vector<std::int64_t> num_sanity_batches_;
  std::vector<std::int64_t> num_test_batches_;
  std::vector<std::int64_t> num_predict_batches_;
  std::vector<MetricMap> results_;
  std::vector<StepOutput> predictions_;
};

}  // namespace hookline
