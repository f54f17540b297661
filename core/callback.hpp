// hookline: Callback, the base of every plug-in that reacts to a run.
//
// A callback overrides the hooks it cares about; the trainer subscribes all of them on its bus in
// the callback's priority band (callbacks in the order they were added break ties); the per-batch
// hooks a class does not override do nothing and are called only when the bus is traced. Like
// Lightning, hooks get the trainer and the module first. A hook may ask the loop to stop or skip
// by calling veto(...) (or trainer.set_should_stop(true)); the bus records who vetoed and why.
//
// Callbacks with state override state_dict/load_state_dict; their state is stored under
// state_key(), which must be unique among the callbacks of a trainer.
//
// To listen to user-defined events too, override subscribe_extra and use the sink.
#pragma once

#include "hookline/core/checkpoint.hpp"
#include "hookline/events/bands.hpp"
#include "hookline/events/bus.hpp"
#include "hookline/hooks/hooks.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace hookline {

class Callback {
 public:
  explicit Callback(std::string name = "callback", int priority = band::callback)
      : name_(std::move(name)), priority_(priority) {}
  virtual ~Callback() = default;

  const std::string& name() const { return name_; }
  int priority() const { return priority_; }
  /// Key of this callback's state in checkpoints (default: its name).
  virtual std::string state_key() const { return name_; }
  /// The key its state is stored under in a trainer's checkpoints: state_key(), prefixed with
  /// the path of the pack it was added in ("defaults/EarlyStopping{...}"), if any.
  std::string checkpoint_key() const {
    return pack_path_.empty() ? state_key() : pack_path_ + "/" + state_key();
  }
  /// The pack path it was added to a trainer in ("" when added on its own).
  const std::string& pack_path() const { return pack_path_; }
  /// Changes the priority band; takes effect when the callback is next added to a trainer.
  void set_priority(int priority) { priority_ = priority; }

  virtual void setup(Trainer&, Module&, Stage) {}
  virtual void teardown(Trainer&, Module&, Stage) {}
  virtual void on_fit_start(Trainer&, Module&) {}
  virtual void on_fit_end(Trainer&, Module&) {}
  virtual void on_sanity_check_start(Trainer&, Module&) {}
  virtual void on_sanity_check_end(Trainer&, Module&) {}
  virtual void on_train_start(Trainer&, Module&) {}
  virtual void on_train_end(Trainer&, Module&) {}
  virtual void on_validation_start(Trainer&, Module&) {}
  virtual void on_validation_end(Trainer&, Module&) {}
  virtual void on_test_start(Trainer&, Module&) {}
  virtual void on_test_end(Trainer&, Module&) {}
  virtual void on_predict_start(Trainer&, Module&) {}
  virtual void on_predict_end(Trainer&, Module&) {}
  virtual void on_train_epoch_start(Trainer&, Module&) {}
  virtual void on_train_epoch_end(Trainer&, Module&) {}
  virtual void on_validation_epoch_start(Trainer&, Module&) {}
  virtual void on_validation_epoch_end(Trainer&, Module&) {}
  virtual void on_test_epoch_start(Trainer&, Module&) {}
  virtual void on_test_epoch_end(Trainer&, Module&) {}
  virtual void on_predict_epoch_start(Trainer&, Module&) {}
  virtual void on_predict_epoch_end(Trainer&, Module&) {}
  virtual void on_train_batch_start(Trainer&, Module&, const Batch&, std::int64_t) {}
  virtual void on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                                  std::int64_t) {}
  virtual void on_validation_batch_start(Trainer&, Module&, const Batch&, std::int64_t,
                                         std::int64_t) {}
  virtual void on_validation_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                                       std::int64_t, std::int64_t) {}
  virtual void on_test_batch_start(Trainer&, Module&, const Batch&, std::int64_t, std::int64_t) {}
  virtual void on_test_batch_end(Trainer&, Module&, const StepOutput&, const Batch&, std::int64_t,
                                 std::int64_t) {}
  virtual void on_predict_batch_start(Trainer&, Module&, const Batch&, std::int64_t, std::int64_t) {
  }
  virtual void on_predict_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                                    std::int64_t, std::int64_t) {}
  virtual void on_before_zero_grad(Trainer&, Module&, torch::optim::Optimizer&) {}
  virtual void on_before_backward(Trainer&, Module&, const at::Tensor&) {}
  virtual void on_after_backward(Trainer&, Module&) {}
  virtual void on_before_optimizer_step(Trainer&, Module&, torch::optim::Optimizer&) {}
  virtual void on_exception(Trainer&, Module&, const std::exception_ptr&) {}
  virtual void state_dict(Checkpoint&) const {}
  virtual void load_state_dict(const Checkpoint&) {}
  virtual void on_save_checkpoint(Trainer&, Module&, Checkpoint&) {}
  virtual void on_load_checkpoint(Trainer&, Module&, const Checkpoint&) {}

  /// Whether this is one of Lightning's "monitoring callbacks" (EarlyStopping; checkpoint
  /// callbacks sit in their own band anyway): at on_train_epoch_end it runs after the module and
  /// the ordinary callbacks, as in Lightning, while keeping its place for every other hook.
  virtual bool monitoring() const { return false; }

  /// Subscribe to more events (user-defined ones too). Subscriptions made through `sink` are
  /// removed with the callback.
  virtual void subscribe_extra(Sink&) {}

  /// The "callbacks" section of a trainer checkpoint (created when missing): state_key -> state.
  static c10::impl::GenericDict checkpoint_section(Checkpoint& checkpoint);
  /// This callback's state in a trainer checkpoint, if it has one there.
  std::optional<Checkpoint> stored_state(const Checkpoint& checkpoint) const;

 protected:
  /// From inside a hook: the verdict this hook returns (the loop acts on it if the event accepts
  /// it; see the verdict table).
  void veto(Action action, std::string reason) { pending_ = Verdict{action, std::move(reason)}; }

 private:
  friend class CallbackConnector;
  friend class CallbackPack;
  /// Subscribes every hook above to `sink` (owner: this callback); the per-batch hooks this class
  /// does not override are called only by traced emissions (they do nothing).
  void subscribe(Sink& sink);
  /// One hook call's verdict: veto() writes into `pending`, which the scope empties on entry and
  /// gives back as it found it on exit (by return or exception), so verdicts stay per emission.
  class VerdictScope {
   public:
    explicit VerdictScope(Verdict& pending)
        : pending_(pending), outer_(std::exchange(pending, Verdict{})) {}
    ~VerdictScope() { pending_ = std::move(outer_); }
    VerdictScope(const VerdictScope&) = delete;
    VerdictScope& operator=(const VerdictScope&) = delete;
    Verdict take() const { return std::exchange(pending_, Verdict{}); }

   private:
    Verdict& pending_;
    Verdict outer_;
  };

  std::string name_;
  int priority_;
  std::string pack_path_;
  Verdict pending_;
};

}  // namespace hookline
