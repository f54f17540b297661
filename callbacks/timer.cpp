#include "hookline/callbacks/timer.hpp"
#include "hookline/core/console.hpp"

#include "hookline/core/trainer.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace hookline {

namespace {
constexpr const char* kStageNames[] = {"train", "sanity_check", "validate", "test", "predict"};
std::size_t index(Timer::RunStage stage) {
  return static_cast<std::size_t>(stage);
}
}  // namespace

TimerOptions& TimerOptions::duration(const std::string& dhms) {
  std::istringstream in(dhms);
  long parts[4];
  char colon = ':';
  bool ok = true;
  for (int i = 0; i < 4 && ok; ++i) {
    if (i > 0) ok = static_cast<bool>(in >> colon) && colon == ':';
    ok = ok && static_cast<bool>(in >> parts[i]) && parts[i] >= 0;
  }
  in >> std::ws;
  if (!ok || !in.eof())
    throw std::invalid_argument(
        "Timer: duration '" + dhms +
        "' is not \"DD:HH:MM:SS\"; write e.g. \"00:12:00:00\" for 12 hours");
  seconds_ = ((parts[0] * 24.0 + parts[1]) * 60.0 + parts[2]) * 60.0 + parts[3];
  return *this;
}

Timer::Timer(TimerOptions options) : Callback("timer"), options_(std::move(options)) {
  if (options_.interval() != "step" && options_.interval() != "epoch")
    throw std::invalid_argument("Unsupported parameter value `Timer(interval=" +
                                options_.interval() + ")`. Possible choices are: step, epoch");
  if (options_.seconds() && *options_.seconds() < 0)
    throw std::invalid_argument("Timer: the duration must not be negative");
}

double Timer::now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::optional<double> Timer::start_time(RunStage stage) const {
  return start_[index(stage)];
}
std::optional<double> Timer::end_time(RunStage stage) const {
  return end_[index(stage)];
}

double Timer::time_elapsed(RunStage stage) const {
  const double offset = stage == RunStage::train ? offset_ : 0;
  const auto& start = start_[index(stage)];
  const auto& end = end_[index(stage)];
  if (!start) return offset;
  if (!end) return now() - *start + offset;
  return *end - *start + offset;
}

std::optional<double> Timer::time_remaining(RunStage stage) const {
  if (!options_.seconds()) return std::nullopt;
  return *options_.seconds() - time_elapsed(stage);
}

std::string Timer::format_elapsed(double seconds) {
  auto total = static_cast<long long>(seconds);
  const long long days = total / 86400;
  total %= 86400;
  char clock[32];
  std::snprintf(clock, sizeof clock, "%lld:%02lld:%02lld", total / 3600, (total % 3600) / 60,
                total % 60);
  if (days == 0) return clock;
  return std::to_string(days) + (days == 1 ? " day, " : " days, ") + clock;
}

void Timer::check(Trainer& trainer) {
  const bool stop = time_elapsed() >= *options_.seconds();
  if (!stop) return;
  const std::string reason = "Time limit reached. Elapsed time is " +
                             format_elapsed(time_elapsed()) + ". Signaling Trainer to stop.";
  veto(Action::StopFit, reason);
  if (options_.verbose() && trainer.bus().rank() == 0) console().info("{}", reason);
}

void Timer::on_fit_start(Trainer& trainer, Module&) {
  if (options_.seconds()) check(trainer);
}
void Timer::on_train_start(Trainer&, Module&) {
  start_[index(RunStage::train)] = now();
}
void Timer::on_train_end(Trainer&, Module&) {
  end_[index(RunStage::train)] = now();
}
// As in Lightning, the sanity check's validation counts as "validate" and "sanity_check" stays 0.
void Timer::on_validation_start(Trainer&, Module&) {
  start_[index(RunStage::validate)] = now();
}
void Timer::on_validation_end(Trainer&, Module&) {
  end_[index(RunStage::validate)] = now();
}
void Timer::on_test_start(Trainer&, Module&) {
  start_[index(RunStage::test)] = now();
}
void Timer::on_test_end(Trainer&, Module&) {
  end_[index(RunStage::test)] = now();
}
void Timer::on_predict_start(Trainer&, Module&) {
  start_[index(RunStage::predict)] = now();
}
void Timer::on_predict_end(Trainer&, Module&) {
  end_[index(RunStage::predict)] = now();
}

void Timer::on_train_batch_end(Trainer& trainer, Module&, const StepOutput&, const Batch&,
                               std::int64_t) {
  if (options_.interval() == "step" && options_.seconds()) check(trainer);
}

void Timer::on_train_epoch_end(Trainer& trainer, Module&) {
  if (options_.interval() == "epoch" && options_.seconds()) check(trainer);
}

void Timer::state_dict(Checkpoint& state) const {
  c10::impl::GenericDict elapsed(c10::StringType::get(), c10::FloatType::get());
  for (std::size_t i = 0; i < kStages; ++i)
    elapsed.insert(kStageNames[i], time_elapsed(static_cast<RunStage>(i)));
  state.set("time_elapsed", elapsed);
}

void Timer::load_state_dict(const Checkpoint& state) {
  offset_ = 0;
  if (!state.contains("time_elapsed")) return;
  const auto elapsed = state.at("time_elapsed").toGenericDict();
  if (elapsed.contains("train")) offset_ = elapsed.at("train").toDouble();
}

}  // namespace hookline
