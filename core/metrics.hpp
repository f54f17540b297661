// hookline: metrics logged with Module::log, aggregated like Lightning's.
//
// A value logged with on_step is the step value: during training it is in callback_metrics at
// once and goes into logged_metrics (and progress_bar_metrics with prog_bar) at every batch end;
// log_every_n_steps only throttles what is sent to the loggers. A value logged with on_epoch is
// accumulated over the epoch (weighted by batch_size for `mean`) and reduced when the epoch ends.
// With both, the step value is called "<name>_step" and the epoch value "<name>_epoch";
// callback_metrics also has "<name>" (the latest of the two). Evaluation step values never reach
// callback_metrics, as in Lightning.
// Where log() may be called, and its defaults, follow Lightning 2.2's table (see events/event.hpp
// LogRule); anything else is a clear error.
#pragma once

#include "hookline/core/chained_options.hpp"
#include "hookline/events/event.hpp"

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace hookline {

/// How epoch values are reduced.
enum class Reduce { mean, sum, max, min };

/// Lightning's log() options, chainable: `LogOptions().prog_bar(true).on_epoch(true)`.
class LogOptions {
  /// Record the value at each step / for the epoch (default: by the hook, as Lightning does).
  HOOKLINE_CHAINED_OPTION(LogOptions, std::optional<bool>, on_step, std::nullopt)
  HOOKLINE_CHAINED_OPTION(LogOptions, std::optional<bool>, on_epoch, std::nullopt)
  HOOKLINE_CHAINED_OPTION(LogOptions, bool, prog_bar, false)
  HOOKLINE_CHAINED_OPTION(LogOptions, bool, logger, true)
  /// How epoch values are reduced.
  HOOKLINE_CHAINED_OPTION(LogOptions, Reduce, reduce_fx, Reduce::mean)
  /// Reduce across processes before use (a no-op on one process).
  HOOKLINE_CHAINED_OPTION(LogOptions, bool, sync_dist, false)
  /// With several evaluation dataloaders, suffix the name with "/dataloader_idx_N" (Lightning's
  /// default). Off: the name is used as it is, and each dataloader must log its own names.
  HOOKLINE_CHAINED_OPTION(LogOptions, bool, add_dataloader_idx, true)
  /// Weight of this value in an epoch mean (default: the current batch's size).
  HOOKLINE_CHAINED_OPTION(LogOptions, std::optional<std::int64_t>, batch_size, std::nullopt)
};

/// Which loop a value was logged in; each has its own collection of results.
enum class Phase { train, validation, test };

using MetricMap = std::map<std::string, double>;

/// Lightning's result collections and its logger connector's three dicts.
///
/// Each loop (train, validation, test) keeps one result per (hook, name[, dataloader]): the last
/// step value and the epoch accumulator. The loops tell the store where they are (batch start and
/// end, the end of the batches, epoch end), exactly where Lightning's loops call its logger
/// connector, and the three maps are updated there: at every batch end with the step values, at
/// every epoch end with the epoch values. Like Lightning's trainer properties, reading a map also
/// merges what the active loop's results hold right now (step values while batches run, epoch
/// values once they are done), and that merge stays in the map.
class MetricStore {
 public:
  /// Records `value` logged as `name` from hook `hook` in `phase`. Throws std::logic_error (hook
  /// forbids logging, or forbidden on_step/on_epoch) or std::invalid_argument (bad name/value,
  /// or the same name logged again from the same hook with other options).
  void log(const std::string& name, double value, const LogOptions& options, const EventInfo& hook,
           Phase phase, std::int64_t default_batch_size);

  // ---- the loops' calls (Lightning's _LoggerConnector) ----------------------------------------
  /// A batch of `phase` starts; `dataloader_idx` is set in an evaluation with several loaders.
  void on_batch_start(Phase phase, std::optional<std::int64_t> dataloader_idx);
  /// After the batch-end hooks: the step values go into the three maps.
  void on_batch_end(Phase phase);
  /// The batches are done (an epoch, or one evaluation dataloader): epoch values from here on.
  void epoch_end_reached() { first_loop_iter_ = -1; }
  /// Evaluation, before the epoch-end hooks: what follows is logged without a dataloader suffix.
  void end_dataloaders(Phase phase) { results_[index(phase)].dataloader_idx = -1; }
  /// After the epoch-end hooks: the epoch values go into the three maps.
  void on_epoch_end(Phase phase);
  /// Evaluation: the current dataloader's epoch values go into the maps; returns those for
  /// loggers (what validate()/test() return for that dataloader).
  MetricMap update_eval_epoch_metrics(Phase phase);
  /// What loggers get from `phase` now: step values while batches run, epoch values after.
  MetricMap logger_values(Phase phase) const { return values(phase).log; }
  /// Values sent to loggers are logged_metrics too.
  void add_logged(const MetricMap& metrics);
  /// Values a callback publishes for others to monitor (Lightning's callback_metrics.update).
  void add_callback_metrics(const MetricMap& metrics);
  /// Forgets the results of `phase` (after its epoch was logged, or after an evaluation).
  void reset_results(Phase phase);
  /// Empties the three maps (run start, around the sanity check).
  void reset_metrics();
  void clear();

  /// A validation inside a training epoch starts / ended: Lightning's `_first_loop_iter` (-1: no
  /// batch yet or batches done, 1: first batch, 0: later) of the training loop is kept aside and
  /// restored after it. A checkpoint saved in between describes the store after the validation.
  void begin_nested_evaluation();
  void end_nested_evaluation();

  /// Everything the store holds (maps and results), for checkpoints, so a resumed run logs
  /// exactly what an uninterrupted one would.
  c10::IValue state() const;
  /// Restores state(); throws std::invalid_argument when `state` is not one.
  void load_state(const c10::IValue& state);

  /// The three maps, with what the results of `active` (the running loop, if any) hold now.
  const MetricMap& callback_metrics(std::optional<Phase> active) const;
  const MetricMap& logged_metrics(std::optional<Phase> active) const;
  const MetricMap& progress_bar_metrics(std::optional<Phase> active) const;

 private:
  struct Result {            // Lightning's _ResultMetric
    std::string fx;          // hook name (with ".N" when suffixed with a dataloader)
    std::string name;        // as logged
    std::string bare;        // name + dataloader suffix
    std::string step_name;   // forked step name + suffix ("<name>_step" when on_step and on_epoch)
    std::string epoch_name;  // forked epoch name + suffix
    bool prog_bar = false, logger = true, on_step = false, on_epoch = true;
    bool add_dataloader_idx = true, sync_dist = false;
    Reduce reduce = Reduce::mean;
    std::int64_t dataloader_idx = -1;  // -1: none
    double value = 0, cumulated_batch_size = 0;
    bool has_cache = false;
    double cache = 0;  // the last step value (on_step)
    bool has_reset = false;
    // Not saved: the hook of the log() calls that reach this result, so a name logged again
    // from the same hook is found without building its lookup key.
    const EventInfo* hook = nullptr;
    // The dataloader in its key (see log()), or -1.
    std::int64_t key_dataloader() const {
      return add_dataloader_idx && dataloader_idx >= 0 ? dataloader_idx : -1;
    }
    // Where the step value went in the store's own maps at the last batch end (callback bare,
    // callback forked, logged, progress bar), valid while maps_gen_ equals step_slots_gen.
    mutable double* step_slots[4] = {};
    mutable std::uint64_t step_slots_gen = 0;
  };
  struct Results {              // Lightning's _ResultCollection
    std::vector<Result> items;  // in registration order
    std::unordered_map<std::string, std::size_t> by_key;
    std::int64_t dataloader_idx = -1;
  };
  struct Values {
    MetricMap callback, log, pbar;
  };
  static std::size_t index(Phase phase) { return static_cast<std::size_t>(phase); }
  Values values(Phase phase) const;
  void merge(const Values& v) const;
  // Writes the values `phase` holds now (step values while batches run, epoch values after) into
  // the maps given; a null map is skipped. values() builds fresh maps with it; the loops' calls
  // and the map getters write straight into the three maps (no map is built per batch).
  void write_values(Phase phase, MetricMap* callback, MetricMap* log, MetricMap* pbar) const;

  static void reset(Result& r);
  // log()'s lookup when the name is new to this hook (or the result came from a checkpoint):
  // checks the name, finds or adds the result by its key; `fresh` says it was added.
  Result& find_or_add(const std::string& name, const LogOptions& options, const EventInfo& hook,
                      Results& results, bool on_step, bool on_epoch, std::int64_t key_dataloader,
                      bool& fresh);

  Results results_[3];
  int first_loop_iter_ = -1;
  std::optional<int> outer_first_loop_iter_;  // set during a nested evaluation
  std::string current_fx_;
  // Lightning's trainer properties update these when read, hence mutable.
  mutable MetricMap callback_, logged_, progress_bar_;
  // Changes whenever the three maps lose entries (cleared or replaced): a Result's step_slots
  // point into them only while it is the same.
  std::uint64_t maps_gen_ = 1;
};

}  // namespace hookline
