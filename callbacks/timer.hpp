// hookline: Timer, Lightning 2.2's callback that tracks the time spent in each stage and stops a
// fit when a time budget is used up.
//
//   trainer.add_callback(std::make_shared<Timer>(TimerOptions().duration("00:12:00:00")));
//
// - duration: "DD:HH:MM:SS" (or seconds); unset, the Timer only measures. interval "step" checks
//   after every training batch, "epoch" after every training epoch; fit start checks too (a
//   resumed run whose budget is spent stops at once).
// - The stop is a StopFit verdict, "Time limit reached. Elapsed time is 0:00:05. Signaling
//   Trainer to stop.", logged when verbose.
// - time_elapsed / time_remaining / start_time / end_time per stage (train, sanity_check,
//   validate, test, predict); times are steady-clock seconds.
// - State: the elapsed seconds of every stage under "Timer"; a resumed fit counts the saved
//   training time on top of its own (as Lightning, only the training time carries over).
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/chained_options.hpp"

#include <array>
#include <optional>
#include <string>

namespace hookline {

class TimerOptions {
  HOOKLINE_CHAINED_OPTION(TimerOptions, std::optional<double>, seconds, std::nullopt)
  HOOKLINE_CHAINED_OPTION(TimerOptions, std::string, interval, "step")
  HOOKLINE_CHAINED_OPTION(TimerOptions, bool, verbose, true)

 public:
  /// The budget as "DD:HH:MM:SS"; throws std::invalid_argument for another form.
  TimerOptions& duration(const std::string& dhms);
};

class Timer : public Callback {
 public:
  enum class RunStage { train, sanity_check, validate, test, predict };

  /// Throws std::invalid_argument for an interval other than "step"/"epoch" or a negative budget.
  explicit Timer(TimerOptions options = {});

  std::string state_key() const override { return "Timer"; }
  const TimerOptions& options() const { return options_; }

  std::optional<double> start_time(RunStage stage = RunStage::train) const;
  std::optional<double> end_time(RunStage stage = RunStage::train) const;
  double time_elapsed(RunStage stage = RunStage::train) const;
  std::optional<double> time_remaining(RunStage stage = RunStage::train) const;

  void on_fit_start(Trainer& trainer, Module& module) override;
  void on_train_start(Trainer& trainer, Module& module) override;
  void on_train_end(Trainer& trainer, Module& module) override;
  void on_validation_start(Trainer& trainer, Module& module) override;
  void on_validation_end(Trainer& trainer, Module& module) override;
  void on_test_start(Trainer& trainer, Module& module) override;
  void on_test_end(Trainer& trainer, Module& module) override;
  void on_predict_start(Trainer& trainer, Module& module) override;
  void on_predict_end(Trainer& trainer, Module& module) override;
  void on_train_batch_end(Trainer& trainer, Module& module, const StepOutput& outputs,
                          const Batch& batch, std::int64_t batch_idx) override;
  void on_train_epoch_end(Trainer& trainer, Module& module) override;
  void state_dict(Checkpoint& state) const override;
  void load_state_dict(const Checkpoint& state) override;

  /// Python's str(timedelta) of whole seconds: "0:00:05", "1 day, 2:03:04".
  static std::string format_elapsed(double seconds);

 private:
  static constexpr std::size_t kStages = 5;
  static double now();
  void check(Trainer& trainer);

  TimerOptions options_;
  std::array<std::optional<double>, kStages> start_{}, end_{};
  double offset_ = 0;  // training seconds of the run this one resumes
};

}  // namespace hookline
