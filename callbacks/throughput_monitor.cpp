#include "hookline/callbacks/throughput_monitor.hpp"

#include "hookline/core/loops/logger_connector.hpp"
#include "hookline/core/trainer.hpp"

#include <ATen/core/grad_mode.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace hookline {

namespace {
// Lightning's _MonotonicWindow: a total must not go down.
template <class T>
void push_monotonic(std::deque<T>& window, std::size_t size, T value, const char* what) {
  if (!window.empty() && value < window.back())
    throw std::invalid_argument(std::string("Throughput: expected ") + what +
                                " to increase, last: " + std::to_string(window.back()) +
                                ", current: " + std::to_string(value));
  window.push_back(value);
  if (window.size() > size) window.pop_front();
}
}  // namespace

Throughput::Throughput(std::optional<double> available_flops, int world_size, int window_size,
                       std::string separator)
    : available_flops_(available_flops),
      world_size_(world_size),
      window_(static_cast<std::size_t>(window_size > 0 ? window_size : 0)),
      separator_(std::move(separator)) {
  if (world_size < 1)
    throw std::invalid_argument("Throughput: world_size must be >= 1 (got " +
                                std::to_string(world_size) + ")");
  if (window_size < 2)
    throw std::invalid_argument("Throughput: window_size must be > 1 (got " +
                                std::to_string(window_size) + ")");
}

void Throughput::update(double time, std::int64_t batches, std::int64_t samples,
                        std::optional<std::int64_t> lengths, std::optional<double> flops) {
  if (samples < batches)
    throw std::invalid_argument("Expected samples (" + std::to_string(samples) +
                                ") to be greater or equal than batches (" +
                                std::to_string(batches) + ")");
  if (lengths && *lengths < samples)
    throw std::invalid_argument("Expected lengths (" + std::to_string(*lengths) +
                                ") to be greater or equal than samples (" +
                                std::to_string(samples) + ")");
  push_monotonic(time_, window_, time, "time");
  push_monotonic(batches_, window_, batches, "batches");
  push_monotonic(samples_, window_, samples, "samples");
  if (lengths) {
    push_monotonic(lengths_, window_, *lengths, "lengths");
    if (lengths_.size() != samples_.size())
      throw std::logic_error("Throughput: lengths were given for " +
                             std::to_string(lengths_.size()) + " updates but samples for " +
                             std::to_string(samples_.size()) + "; give lengths every time");
  }
  if (flops) {
    flops_.push_back(*flops * world_size_);
    if (flops_.size() > window_) flops_.pop_front();
  }
}

MetricMap Throughput::compute() const {
  MetricMap out;
  if (time_.empty()) return out;
  const std::string dev = "device" + separator_;
  out["time"] = time_.back();
  out["batches"] = static_cast<double>(batches_.back());
  out["samples"] = static_cast<double>(samples_.back());
  if (!lengths_.empty()) out["lengths"] = static_cast<double>(lengths_.back());
  const bool global = world_size_ > 1;
  const double elapsed = time_.back() - time_.front();
  if (time_.size() == window_) {
    const double batches_per_sec =
        static_cast<double>(batches_.back() - batches_.front()) / elapsed;
    const double samples_per_sec =
        static_cast<double>(samples_.back() - samples_.front()) / elapsed;
    out[dev + "batches_per_sec"] = batches_per_sec;
    out[dev + "samples_per_sec"] = samples_per_sec;
    if (global) {
      out["batches_per_sec"] = batches_per_sec * world_size_;
      out["samples_per_sec"] = samples_per_sec * world_size_;
    }
    if (lengths_.size() == window_) {
      const double items_per_sec =
          static_cast<double>(lengths_.back() - lengths_.front()) / elapsed;
      out[dev + "items_per_sec"] = items_per_sec;
      if (global) out["items_per_sec"] = items_per_sec * world_size_;
    }
  }
  if (flops_.size() == window_) {
    // The FLOPs of the first update were spent before the window's first time stamp.
    double sum = 0;
    for (double f : flops_) sum += f;
    const double flops_per_sec = (sum - flops_.front()) / elapsed;
    const double dev_flops_per_sec = flops_per_sec / world_size_;
    if (global) out["flops_per_sec"] = flops_per_sec;
    out[dev + "flops_per_sec"] = dev_flops_per_sec;
    if (available_flops_ && *available_flops_ != 0)
      out[dev + "mfu"] = dev_flops_per_sec / *available_flops_;
  }
  return out;
}

void Throughput::reset() {
  time_.clear();
  batches_.clear();
  samples_.clear();
  lengths_.clear();
  flops_.clear();
}

ThroughputMonitor::ThroughputMonitor(std::function<std::int64_t(const Batch&)> batch_size_fn,
                                     ThroughputMonitorOptions options)
    : Callback("ThroughputMonitor"),
      batch_size_fn_(std::move(batch_size_fn)),
      options_(std::move(options)) {
  if (!batch_size_fn_)
    throw std::invalid_argument(
        "ThroughputMonitor: batch_size_fn is empty; give a function that returns the number of "
        "samples in a batch");
  // Refuses a bad window_size now rather than at the first stage.
  static_cast<void>(Throughput(std::nullopt, 1, options_.window_size(), options_.separator()));
}

double ThroughputMonitor::now() const {
  if (options_.clock()) return options_.clock()();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const Throughput* ThroughputMonitor::throughput(const std::string& stage) const {
  auto it = stages_.find(stage);
  return it == stages_.end() ? nullptr : &it->second.throughput;
}

ThroughputMonitor::StageState& ThroughputMonitor::state(const std::string& stage) {
  auto it = stages_.find(stage);
  if (it == stages_.end())
    it = stages_
             .emplace(stage, StageState{Throughput(options_.available_flops(), 1,
                                                   options_.window_size(), options_.separator())})
             .first;
  return it->second;
}

void ThroughputMonitor::setup(Trainer& trainer, Module&, Stage stage) {
  // As Lightning, a fit measures validation too when it is enabled.
  switch (stage) {
    case Stage::fit:
      state("train");
      if (trainer.options().limit_val_batches().positive()) state("validate");
      break;
    case Stage::validate:
      state("validate");
      break;
    case Stage::test:
      state("test");
      break;
    case Stage::predict:
      state("predict");
      break;
    case Stage::none:
      break;
  }
}

void ThroughputMonitor::start(const std::string& stage) {
  StageState& s = state(stage);
  s.throughput.reset();
  s.lengths = 0;
  s.current = 0;
  s.t0 = now();
}

void ThroughputMonitor::update(Module& module, const Batch& batch, const std::string& stage) {
  at::NoGradGuard no_grad;  // in case a user function computes something
  StageState& s = state(stage);
  const double elapsed = now() - s.t0;
  std::optional<std::int64_t> lengths;
  if (options_.length_fn()) {
    s.lengths += options_.length_fn()(batch);
    lengths = s.lengths;
  }
  std::optional<double> flops;
  if (options_.flops_per_batch()) flops = options_.flops_per_batch()(module);
  const std::int64_t batch_size = batch_size_fn_(batch);
  s.throughput.update(elapsed, s.total, s.total * batch_size, lengths, flops);
}

void ThroughputMonitor::compute(Trainer& trainer, const std::string& stage,
                                std::optional<std::int64_t> step) {
  // Lightning's logger connector should_update_logs, for the loop that is running.
  const std::int64_t every = trainer.options().log_every_n_steps();
  if (every == 0) return;
  StageState& s = state(stage);
  const bool logging_step = stage == "train" ? trainer.logger_connector().should_update_logs()
                                             : s.current % every == 0 || trainer.should_stop();
  if (!logging_step) return;
  MetricMap metrics;
  for (const auto& [key, value] : s.throughput.compute())
    metrics[stage + options_.separator() + key] = value;
  trainer.logger_connector().log_metrics(std::move(metrics), step);
}

void ThroughputMonitor::on_train_start(Trainer& trainer, Module&) {
  if (trainer.bus().rank() != 0) return;
  start("train");
}

void ThroughputMonitor::on_train_batch_end(Trainer& trainer, Module& module, const StepOutput&,
                                           const Batch& batch, std::int64_t batch_idx) {
  if (trainer.bus().rank() != 0) return;
  ++state("train").total;
  update(module, batch, "train");
  // Only a batch that ends an accumulation window may log (Lightning's _should_accumulate).
  const std::int64_t n =
      module.automatic_optimization() ? trainer.options().accumulate_grad_batches() : 1;
  const bool is_last = batch_idx == trainer.num_training_batches() - 1;
  if ((batch_idx + 1) % n != 0 && !is_last) return;
  compute(trainer, "train", std::nullopt);
}

void ThroughputMonitor::eval_batch_end(Trainer& trainer, Module& module, const Batch& batch,
                                       const std::string& stage) {
  if (trainer.bus().rank() != 0) return;
  StageState& s = state(stage);
  ++s.total;
  ++s.current;
  update(module, batch, stage);
  compute(trainer, stage, s.total);
}

void ThroughputMonitor::on_validation_start(Trainer& trainer, Module&) {
  if (trainer.bus().rank() != 0 || trainer.sanity_checking()) return;
  start("validate");
}

void ThroughputMonitor::on_validation_batch_end(Trainer& trainer, Module& module, const StepOutput&,
                                                const Batch& batch, std::int64_t, std::int64_t) {
  if (trainer.sanity_checking()) return;
  eval_batch_end(trainer, module, batch, "validate");
}

// The time spent validating inside a fit (and between the last training batch and validation)
// is taken out of the training clock.
void ThroughputMonitor::on_validation_end(Trainer& trainer, Module&) {
  if (trainer.bus().rank() != 0 || trainer.sanity_checking() || trainer.stage() != Stage::fit)
    return;
  StageState& train = state("train");
  const StageState& val = state("validate");
  const auto& train_times = train.throughput.times();
  const auto& val_times = val.throughput.times();
  const double training_finished = train.t0 + (train_times.empty() ? 0.0 : train_times.back());
  const double gap = val.t0 - training_finished;
  const double val_time = val_times.empty() ? 0.0 : val_times.back();
  train.t0 += gap + val_time;
}

void ThroughputMonitor::on_test_start(Trainer& trainer, Module&) {
  if (trainer.bus().rank() != 0) return;
  start("test");
}

void ThroughputMonitor::on_test_batch_end(Trainer& trainer, Module& module, const StepOutput&,
                                          const Batch& batch, std::int64_t, std::int64_t) {
  eval_batch_end(trainer, module, batch, "test");
}

void ThroughputMonitor::on_predict_start(Trainer& trainer, Module&) {
  if (trainer.bus().rank() != 0) return;
  start("predict");
}

void ThroughputMonitor::on_predict_batch_end(Trainer& trainer, Module& module, const StepOutput&,
                                             const Batch& batch, std::int64_t, std::int64_t) {
  eval_batch_end(trainer, module, batch, "predict");
}

}  // namespace hookline
