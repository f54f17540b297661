// hookline: EarlyStopping, Lightning 2.2's callback that stops a fit when a monitored metric stops
// improving (or reaches a threshold, or stops being finite).
//
//   trainer.add_callback(std::make_shared<EarlyStopping>(
//       EarlyStoppingOptions().monitor("val_loss").patience(3)));
//
// Behaviour, as in Lightning:
// - One check per validation run (at on_validation_end), or at on_train_epoch_end when
//   check_on_train_epoch_end is true. Its default (unset): true when validation runs once per
//   epoch at its end (val_check_interval 1.0 and check_val_every_n_epoch 1), false otherwise.
//   No check outside fit(), during the sanity check, or with fast_dev_run.
// - In order: a non-finite value stops (check_finite); reaching stopping_threshold stops;
//   passing divergence_threshold stops; an improvement by more than min_delta resets the wait
//   count and becomes the best score; otherwise the wait count grows and reaching `patience`
//   stops. Values are compared in float32, as Lightning compares its logged tensors.
// - min_delta takes its sign from the mode, as in Lightning (`min_delta *= 1 if mode is max else
//   -1`): a check improves when `current - min_delta` beats the best score, min_delta negated
//   first in min mode. So a negative min_delta is accepted and means a tolerance: a change the
//   wrong way of less than |min_delta| still counts as an improvement (min_delta -0.1 in min
//   mode: 1.0 then 1.05 is an improvement, 1.0 then 1.2 is not).
// - A missing monitored metric is an error (strict), or skips the check (strict false).
// - The stop is a StopFit verdict with its reason, e.g. "Monitored metric val_loss did not improve
//   in the last 3 records. Best score: 0.412. Signaling Trainer to stop.", recorded on the bus
//   (Trainer::stop_reason(), traces) and logged when verbose. The trainer honours it once
//   min_epochs / min_steps are met.
// - State (wait_count, stopped_epoch, best_score, patience) is saved in checkpoints under
//   "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}".
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/chained_options.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace hookline {

class EarlyStoppingOptions {
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, std::string, monitor, "")
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, double, min_delta, 0.0)
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, std::int64_t, patience, 3)
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, bool, verbose, false)
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, std::string, mode, "min")
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, bool, strict, true)
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, bool, check_finite, true)
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, std::optional<double>, stopping_threshold,
                          std::nullopt)
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, std::optional<double>, divergence_threshold,
                          std::nullopt)
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, std::optional<bool>, check_on_train_epoch_end,
                          std::nullopt)
  HOOKLINE_CHAINED_OPTION(EarlyStoppingOptions, bool, log_rank_zero_only, false)
};

class EarlyStopping : public Callback {
 public:
  /// Throws std::invalid_argument for an empty monitor or a mode other than "min"/"max".
  explicit EarlyStopping(EarlyStoppingOptions options);

  std::string state_key() const override;
  bool monitoring() const override { return true; }
  const EarlyStoppingOptions& options() const { return options_; }
  std::int64_t wait_count() const { return wait_count_; }
  std::int64_t stopped_epoch() const { return stopped_epoch_; }
  float best_score() const { return best_score_; }
  std::int64_t patience() const { return patience_; }
  /// Whether the check runs at on_train_epoch_end (resolved at setup when the option is unset).
  bool check_on_train_epoch_end() const { return check_on_train_epoch_end_; }

  void setup(Trainer& trainer, Module& module, Stage stage) override;
  void on_train_epoch_end(Trainer& trainer, Module& module) override;
  void on_validation_end(Trainer& trainer, Module& module) override;
  void state_dict(Checkpoint& state) const override;
  void load_state_dict(const Checkpoint& state) override;

 private:
  bool skip_check(const Trainer& trainer) const;
  void run_check(Trainer& trainer);
  // Whether `a` is better than `b` in this mode (float32, like torch.lt / torch.gt).
  bool better(float a, float b) const;

  EarlyStoppingOptions options_;
  float min_delta_;  // signed: negative in min mode, as Lightning stores it
  std::int64_t patience_;
  std::int64_t wait_count_ = 0;
  std::int64_t stopped_epoch_ = 0;
  float best_score_;
  bool check_on_train_epoch_end_ = false;
};

}  // namespace hookline
