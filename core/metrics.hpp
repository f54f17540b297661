// hookline: metrics logged with Module::log, aggregated like Lightning's.
//
// A value logged with on_step goes to logged_metrics at the next logging step (every
// log_every_n_steps optimizer steps) and to callback_metrics at once. A value logged with
// on_epoch is accumulated over the epoch (weighted by batch_size for `mean`) and reduced when the
// epoch ends. With both, the step value is called "<name>_step" and the epoch value
// "<name>_epoch"; callback_metrics also has "<name>" (the latest of the two).
// Where log() may be called, and its defaults, follow Lightning 2.2's table (see events/event.hpp
// LogRule); anything else is a clear error.
#pragma once

#include "hookline/events/event.hpp"

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

/// How epoch values are reduced.
enum class Reduce { mean, sum, max, min };

/// Lightning's log() options, chainable: `LogOptions().prog_bar(true).on_epoch(true)`.
struct LogOptions {
  std::optional<bool> on_step_;
  std::optional<bool> on_epoch_;
  bool prog_bar_ = false;
  bool logger_ = true;
  Reduce reduce_fx_ = Reduce::mean;
  bool sync_dist_ = false;
  bool add_dataloader_idx_ = true;
  std::optional<std::int64_t> batch_size_;

  LogOptions& on_step(bool v) {
    on_step_ = v;
    return *this;
  }
  LogOptions& on_epoch(bool v) {
    on_epoch_ = v;
    return *this;
  }
  LogOptions& prog_bar(bool v) {
    prog_bar_ = v;
    return *this;
  }
  LogOptions& logger(bool v) {
    logger_ = v;
    return *this;
  }
  LogOptions& reduce_fx(Reduce r) {
    reduce_fx_ = r;
    return *this;
  }
  /// Reduce across processes before use (a no-op on one process).
  LogOptions& sync_dist(bool v) {
    sync_dist_ = v;
    return *this;
  }
  /// With several evaluation dataloaders, suffix the name with "/dataloader_idx_N" (Lightning's
  /// default). Off: the name is used as it is, and each dataloader must log its own names.
  LogOptions& add_dataloader_idx(bool v) {
    add_dataloader_idx_ = v;
    return *this;
  }
  /// Weight of this value in an epoch mean (default: the current batch's size).
  LogOptions& batch_size(std::int64_t n) {
    batch_size_ = n;
    return *this;
  }
};

/// Which loop a value was logged in; each has its own epoch accumulators.
enum class Phase { train, validation, test };

using MetricMap = std::map<std::string, double>;

class MetricStore {
 public:
  /// Records `value` logged as `name` from hook `hook` in `phase`. `dataloader_idx` is set while
  /// an evaluation with several dataloaders runs (Lightning keeps the last one through the epoch
  /// end hooks). Throws std::logic_error (hook forbids logging, or forbidden on_step/on_epoch) or
  /// std::invalid_argument (bad name/value).
  void log(const std::string& name, double value, const LogOptions& options, const EventInfo& hook,
           Phase phase, std::int64_t default_batch_size,
           std::optional<std::int64_t> dataloader_idx = std::nullopt);
  /// Reduces the epoch accumulators of `phase` into the metric maps and clears them. Returns, for
  /// each of `num_dataloaders` evaluation dataloaders, the epoch values it logged for loggers plus
  /// those logged from the epoch-end hooks: what Lightning's validate() and test() return.
  std::vector<MetricMap> end_epoch(Phase phase, std::size_t num_dataloaders = 1);
  /// Moves pending step values into logged_metrics (called at logging steps).
  void flush_steps();
  /// Forgets everything logged in `phase` (e.g. after the sanity check).
  void reset(Phase phase);
  void clear();

  /// Everything the store holds (maps, pending step values, epoch accumulators), for checkpoints,
  /// so a resumed run logs exactly what an uninterrupted one would.
  c10::IValue state() const;
  /// Restores state(); throws std::invalid_argument when `state` is not one.
  void load_state(const c10::IValue& state);

  const MetricMap& callback_metrics() const { return callback_; }
  const MetricMap& logged_metrics() const { return logged_; }
  const MetricMap& progress_bar_metrics() const { return progress_bar_; }

 private:
  struct Accumulator {
    Reduce reduce = Reduce::mean;
    double weighted_sum = 0, weight = 0, sum = 0, max = 0, min = 0;
    std::int64_t count = 0;
    bool prog_bar = false, logger = true;
    Phase phase = Phase::train;
    std::string key;    // name in the metric maps
    std::string alias;  // bare name also set in callback_metrics ("" if the same as key)
    std::int64_t dataloader_idx = -1;  // -1: logged outside a several-dataloader evaluation
    bool from_epoch_end = false;       // logged from an epoch-end hook
  };
  std::map<std::string, Accumulator> epoch_;  // by key
  std::map<std::string, double> pending_steps_;
  MetricMap callback_, logged_, progress_bar_;
};

}  // namespace hookline
