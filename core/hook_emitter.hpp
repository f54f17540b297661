// hookline: HookEmitter, how the trainer and its loops emit a hook: the event carries the trainer
// and module, log() knows which hook is running, and a StopFit verdict sets should_stop.
#pragma once

#include "hookline/core/module.hpp"
#include "hookline/core/trainer_state.hpp"
#include "hookline/events/bus.hpp"
#include "hookline/hooks/hooks.hpp"

#include <type_traits>

namespace hookline {

class Trainer;

class HookEmitter {
 public:
  HookEmitter(Bus& bus, Trainer& trainer, TrainerState& state)
      : bus_(bus), trainer_(&trainer), state_(state) {}
  HookEmitter(const HookEmitter&) = delete;
  HookEmitter& operator=(const HookEmitter&) = delete;

  /// Emits `event` with the trainer's context, tracking the hook for log() and should_stop.
  template <Event E>
  Outcome emit(E& event) {
    if constexpr (std::is_base_of_v<HookEvent, E>) {
      event.trainer = trainer_;
      event.module = module_;
    }
    return emit_hook(event_info<E>(), Bus::any(event));
  }

  /// emit(event) for a hook whose default has work (Module::handle): emitted when a tracer or a
  /// subscriber other than the module's default would see it; when only that default would, the
  /// module runs it directly, the same work without the dispatch; when nobody would, nothing.
  template <Event E>
  Outcome emit_or_default(E& event) {
    switch (bus_.audience<E>()) {
      case Bus::Audience::others:
        return emit(event);
      case Bus::Audience::defaults:
        module_->handle(event);
        return {};
      case Bus::Audience::nobody:
        break;
    }
    return {};
  }

  /// Whether anybody (or a tracer) would see an `E`: hooks whose default does nothing are not
  /// emitted otherwise.
  template <Event E>
  bool wants() const {
    return bus_.wants<E>();
  }

  Bus& bus() const { return bus_; }
  /// The module of the current run (null between runs).
  Module* module() const { return module_; }
  void set_module(Module* module) { module_ = module; }
  /// The innermost hook being dispatched that log() may be called from, or null.
  const EventInfo* current_hook() const { return current_hook_; }
  void clear_current_hook() { current_hook_ = nullptr; }

 private:
  /// emit(event) without the event's type (one copy of this code for every hook).
  Outcome emit_hook(const EventInfo& info, const Bus::AnyEvent& event);

  Bus& bus_;
  Trainer* trainer_;
  TrainerState& state_;
  Module* module_ = nullptr;
  const EventInfo* current_hook_ = nullptr;
};

}  // namespace hookline
