// hookline: ThroughputMonitor, Lightning 2.2's callback that measures how fast each stage runs
// (batches, samples, items and FLOPs per second) and logs it, plus Throughput, the windowed
// counter it is built on (Lightning's lightning.fabric.utilities.throughput.Throughput).
//
//   trainer.add_callback(std::make_shared<ThroughputMonitor>(
//       [](const Batch& b) { return b.batch_size(); },
//       ThroughputMonitorOptions().window_size(50)));
//
// - Stages "train", "validate", "test", "predict". Each has a clock started at its *_start hook
//   (validation outside the sanity check only) and a Throughput fed at every batch end with the
//   seconds since then, the batches seen (the stage's running total: training batches of the
//   fit, evaluation batches over every run of that stage) and batches * batch_size_fn(batch).
// - Logged, through the trainer's loggers as Lightning's logger connector does, under
//   "<stage><sep><key>": time, batches, samples (lengths with a length_fn) at every logging step,
//   and, once the window of window_size updates is full, device<sep>batches_per_sec and
//   device<sep>samples_per_sec (device<sep>items_per_sec with a length_fn, device<sep>flops_per_sec
//   and device<sep>mfu with flops). The world size is 1, so, as in Lightning, the global
//   batches_per_sec / samples_per_sec (equal to the device ones) are not logged.
// - When: training, at on_train_batch_end of a batch that ends an accumulation window, if it is a
//   logging step (log_every_n_steps), at the step "batches that stepped" with "epoch" added;
//   evaluation, at each batch end whose index in this run is a multiple of log_every_n_steps, at
//   the step "evaluation batches so far". Validation inside a fit does not count as training time.
// - flops_per_batch stands for Lightning's `pl_module.flops_per_batch` attribute; available_flops
//   for its per-device peak (Lightning finds none for a CPU either).
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/chained_options.hpp"
#include "hookline/core/metrics.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace hookline {

/// Throughput over a rolling window of the last `window_size` updates.
class Throughput {
 public:
  /// Throws std::invalid_argument for world_size < 1 or window_size < 2.
  explicit Throughput(std::optional<double> available_flops = std::nullopt, int world_size = 1,
                      int window_size = 100, std::string separator = "/");

  /// time: seconds since the start (non-decreasing); batches, samples, lengths: totals so far
  /// (non-decreasing, samples >= batches, lengths >= samples); flops: per device since the
  /// previous update. Throws std::invalid_argument when a total goes down or an order is broken,
  /// std::logic_error when lengths are given for some updates only.
  void update(double time, std::int64_t batches, std::int64_t samples,
              std::optional<std::int64_t> lengths = std::nullopt,
              std::optional<double> flops = std::nullopt);
  /// time, batches, samples (lengths) of the last update, and the rates once the window is full.
  /// Empty before the first update.
  MetricMap compute() const;
  void reset();

  const std::deque<double>& times() const { return time_; }
  const std::string& separator() const { return separator_; }

 private:
  std::optional<double> available_flops_;
  int world_size_;
  std::size_t window_;
  std::string separator_;
  std::deque<double> time_;
  std::deque<std::int64_t> batches_, samples_, lengths_;
  std::deque<double> flops_;
};

class ThroughputMonitorOptions {
  /// Items (e.g. tokens) in a batch; unset: no lengths / items_per_sec.
  HOOKLINE_CHAINED_OPTION(ThroughputMonitorOptions, std::function<std::int64_t(const Batch&)>,
                          length_fn, nullptr)
  HOOKLINE_CHAINED_OPTION(ThroughputMonitorOptions, int, window_size, 100)
  HOOKLINE_CHAINED_OPTION(ThroughputMonitorOptions, std::string, separator, "/")
  /// Lightning's `flops_per_batch` attribute of the module: FLOPs of one batch, or nullopt.
  HOOKLINE_CHAINED_OPTION(ThroughputMonitorOptions,
                          std::function<std::optional<double>(const Module&)>, flops_per_batch,
                          nullptr)
  /// Peak FLOPs per second of the device (for device/mfu); Lightning finds none for a CPU.
  HOOKLINE_CHAINED_OPTION(ThroughputMonitorOptions, std::optional<double>, available_flops,
                          std::nullopt)
  /// Seconds of a monotonic clock (default: steady_clock); tests replace it, as Lightning's tests
  /// patch time.perf_counter.
  HOOKLINE_CHAINED_OPTION(ThroughputMonitorOptions, std::function<double()>, clock, nullptr)
};

class ThroughputMonitor : public Callback {
 public:
  /// batch_size_fn: the samples in a batch. Throws std::invalid_argument when it is empty or the
  /// window_size is below 2.
  explicit ThroughputMonitor(std::function<std::int64_t(const Batch&)> batch_size_fn,
                             ThroughputMonitorOptions options = {});
  const ThroughputMonitorOptions& options() const { return options_; }
  /// The Throughput of a stage ("train", "validate", "test", "predict"), or null before it ran.
  const Throughput* throughput(const std::string& stage) const;

  void setup(Trainer& trainer, Module& module, Stage stage) override;
  void on_train_start(Trainer& trainer, Module& module) override;
  void on_train_batch_end(Trainer& trainer, Module& module, const StepOutput& outputs,
                          const Batch& batch, std::int64_t batch_idx) override;
  void on_validation_start(Trainer& trainer, Module& module) override;
  void on_validation_batch_end(Trainer& trainer, Module& module, const StepOutput& outputs,
                               const Batch& batch, std::int64_t batch_idx,
                               std::int64_t dataloader_idx) override;
  void on_validation_end(Trainer& trainer, Module& module) override;
  void on_test_start(Trainer& trainer, Module& module) override;
  void on_test_batch_end(Trainer& trainer, Module& module, const StepOutput& outputs,
                         const Batch& batch, std::int64_t batch_idx,
                         std::int64_t dataloader_idx) override;
  void on_predict_start(Trainer& trainer, Module& module) override;
  void on_predict_batch_end(Trainer& trainer, Module& module, const StepOutput& outputs,
                            const Batch& batch, std::int64_t batch_idx,
                            std::int64_t dataloader_idx) override;

 private:
  struct StageState {
    Throughput throughput;
    double t0 = 0;
    std::int64_t lengths = 0;
    std::int64_t total = 0;    // batches of this stage so far (Lightning's total.ready)
    std::int64_t current = 0;  // batches of this run (Lightning's current.ready)
  };
  double now() const;
  StageState& state(const std::string& stage);
  void start(const std::string& stage);
  void update(Module& module, const Batch& batch, const std::string& stage);
  void compute(Trainer& trainer, const std::string& stage, std::optional<std::int64_t> step);
  void eval_batch_end(Trainer& trainer, Module& module, const Batch& batch,
                      const std::string& stage);

  std::function<std::int64_t(const Batch&)> batch_size_fn_;
  ThroughputMonitorOptions options_;
  std::map<std::string, StageState> stages_;
};

}  // namespace hookline
