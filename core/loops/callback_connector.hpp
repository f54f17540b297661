// hookline: CallbackConnector, the trainer's callbacks and packs (Lightning's
// _CallbackConnector): adding and removing them at any time and from any thread, their
// subscriptions on the bus, the callbacks a module adds for one run (configure_callbacks), and
// the setup/teardown of callbacks that join or leave while a run is set up.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/callback_pack.hpp"
#include "hookline/core/checkpoint_callback.hpp"
#include "hookline/core/hook_emitter.hpp"
#include "hookline/core/trainer_state.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hookline {

class Trainer;

class CallbackConnector {
 public:
  CallbackConnector(Trainer& trainer, const TrainerState& state, HookEmitter& hooks)
      : trainer_(trainer), state_(state), hooks_(hooks) {}
  /// Frees the packs for another trainer.
  ~CallbackConnector();

  // The user's API (Trainer::add_callback & co. document it).
  void add(std::shared_ptr<Callback> callback);
  bool remove(const Callback& callback);
  void add_pack(std::shared_ptr<CallbackPack> pack);
  bool remove_pack(const CallbackPack& pack);
  std::shared_ptr<CallbackPack> pack(const std::string& name) const;
  std::vector<std::shared_ptr<CallbackPack>> packs() const;

  /// The callbacks of the current run, a copy (between runs, the trainer's own), as Lightning's
  /// trainer.callbacks: the trainer's callbacks minus those configure_callbacks replaced, then the
  /// module's, with checkpoint callbacks moved to the end.
  std::vector<std::shared_ptr<Callback>> all() const;
  /// The checkpoint callbacks among all(), in order.
  std::vector<CheckpointCallback*> checkpoint_callbacks() const;

  /// Attaches the tracer a pack asked for (CallbackPack::trace), if any is pending.
  void apply_pack_tracing();
  /// The callbacks configure_callbacks returned join for this run only, as Lightning's
  /// _attach_model_callbacks: each replaces the trainer's callbacks of its exact type (blocked
  /// until the run ends; a pack's callbacks are never replaced), one the trainer already has is
  /// not subscribed twice. Throws std::invalid_argument, changing nothing, for a state_key the
  /// run's other callbacks use.
  void add_run_callbacks(const std::vector<std::shared_ptr<Callback>>& callbacks);
  /// Between the run's setup and teardown hooks: a callback added then gets setup() first, one
  /// removed then gets teardown().
  void set_set_up(bool set_up) { set_up_.store(set_up, std::memory_order_release); }
  /// The run ended: the run's callbacks leave, the replaced ones come back, the removed ones are
  /// freed.
  void end_run();

 private:
  /// Whether `callback` is one of this trainer's (mutex_ held).
  bool has(const Callback* callback) const;
  /// Whether configure_callbacks replaced the trainer's `callback` for this run (mutex_ held).
  bool suspended(const Callback* callback) const;
  /// Keeps a callback removed while a run goes on alive until the run ends: it may be the one
  /// whose hook is running (mutex_ held).
  void retire(std::shared_ptr<const void> removed);
  void connect(Callback& callback, const void* owner);
  void late_setup(const std::vector<std::shared_ptr<Callback>>& added);
  void early_teardown(const std::vector<std::shared_ptr<Callback>>& removed);

  Trainer& trainer_;
  const TrainerState& state_;
  HookEmitter& hooks_;
  // Guards callbacks_, run_callbacks_, packs_, retired_ and pending_trace_spec_ (add/remove may
  // come from any thread). Recursive: a late setup() may add or look up callbacks.
  mutable std::recursive_mutex mutex_;
  std::vector<std::shared_ptr<Callback>> callbacks_;      // packs' callbacks included
  std::vector<std::shared_ptr<Callback>> run_callbacks_;  // from configure_callbacks()
  // The trainer's callbacks configure_callbacks replaced for this run, with their blocked
  // subscriptions.
  struct Suspended {
    std::shared_ptr<Callback> callback;
    std::vector<Connection> blocked;
  };
  std::vector<Suspended> suspended_;
  std::vector<std::shared_ptr<CallbackPack>> packs_;
  std::vector<std::shared_ptr<const void>> retired_;  // removed during a run, freed at its end
  std::string pending_trace_spec_;   // a pack's trace spec, applied when no run is going on
  std::atomic<bool> set_up_{false};  // between the run's setup and teardown (for late_setup)
};

}  // namespace hookline
