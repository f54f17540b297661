// hookline: verdicts, the answer a synchronous subscriber gives to an event.
//
// A subscriber returns a Verdict; the bus folds the verdicts of all synchronous subscribers of one
// emission into an Outcome: the strongest action wins (StopFit > SkipRestOfEpoch > SkipBatch >
// Continue), and on ties the first subscriber in dispatch order keeps the credit. A stop and a
// skip are two axes, though: when one subscriber says StopFit and another skips, both take
// effect, and the Outcome keeps the strongest skip beside the stop. The Outcome remembers who
// gave each verdict and why, so a run can explain why it stopped.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace hookline {

/// What the loop should do after an event. Numeric order is severity order.
enum class Action : std::uint8_t {
  Continue = 0,         ///< carry on
  SkipBatch = 1,        ///< skip the rest of this batch (no step), go on with the next one
  SkipRestOfEpoch = 2,  ///< Lightning's -1 from on_train_batch_start: end this epoch now
  StopFit = 3,          ///< Lightning's trainer.should_stop = True
};

/// Human-readable name of an action ("Continue", "SkipBatch", ...).
std::string_view to_string(Action action);

/// A set of actions, used by event types to declare which verdicts they accept.
class ActionSet {
 public:
  constexpr ActionSet() = default;
  constexpr ActionSet(std::initializer_list<Action> actions) {
    for (Action a : actions) bits_ |= bit(a);
  }
  static constexpr ActionSet from_bits(std::uint8_t bits) {
    ActionSet s;
    s.bits_ = bits;
    return s;
  }
  constexpr std::uint8_t bits() const { return bits_; }
  constexpr bool contains(Action a) const { return a == Action::Continue || (bits_ & bit(a)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  /// "SkipBatch, StopFit" (or "none").
  std::string describe() const;

 private:
  static constexpr std::uint8_t bit(Action a) { return std::uint8_t(1u << std::uint8_t(a)); }
  std::uint8_t bits_ = 0;
};

/// One subscriber's answer. Default-constructed means Continue.
struct Verdict {
  Action action = Action::Continue;
  std::string reason;

  static Verdict proceed() { return {}; }
  static Verdict skip_batch(std::string why) { return {Action::SkipBatch, std::move(why)}; }
  static Verdict skip_rest_of_epoch(std::string why) {
    return {Action::SkipRestOfEpoch, std::move(why)};
  }
  static Verdict stop_fit(std::string why) { return {Action::StopFit, std::move(why)}; }
};

/// Who gave the winning verdict of an emission, and why.
struct Veto {
  Action action = Action::Continue;
  std::string subscriber;  ///< the subscriber's name (SubscribeOptions::name)
  std::string reason;      ///< the reason given with the verdict
  int priority = 0;        ///< the subscriber's priority
};

/// The folded result of one emission. Small on purpose: most emissions return Continue.
struct Outcome {
  Action action = Action::Continue;  ///< the strongest verdict given
  std::shared_ptr<const Veto> veto;  ///< who and why, set when action != Continue
  /// Set when `action` is StopFit and a subscriber also skipped (SkipBatch or SkipRestOfEpoch):
  /// the strongest skip, first in dispatch order on ties. Both the stop and the skip apply.
  std::shared_ptr<const Veto> skip;

  bool proceed() const { return action == Action::Continue; }
  bool stops_fit() const { return action == Action::StopFit; }
  /// The skip asked for, whether or not a stop was asked too: SkipRestOfEpoch, SkipBatch or
  /// Continue.
  Action skip_action() const {
    if (action == Action::SkipBatch || action == Action::SkipRestOfEpoch) return action;
    return skip ? skip->action : Action::Continue;
  }
};

}  // namespace hookline
