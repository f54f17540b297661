#include "hookline/core/hook_emitter.hpp"

namespace hookline {

namespace {

// The hook being dispatched (innermost), for log() checks; a stack because hooks nest.
class HookScope {
 public:
  HookScope(const EventInfo*& current, const EventInfo& info)
      : current_(current), previous_(current) {
    if (info.log != LogRule::inherit) current = &info;
  }
  ~HookScope() { current_ = previous_; }
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;

 private:
  const EventInfo*& current_;
  const EventInfo* previous_;
};

}  // namespace

Outcome HookEmitter::emit_hook(const EventInfo& info, const Bus::AnyEvent& event) {
  HookScope scope(current_hook_, info);
  Outcome out = bus_.emit_any(event);
  if (out.action == Action::StopFit) [[unlikely]]
    state_.set_should_stop(true, out.veto ? out.veto->subscriber + ": " + out.veto->reason : "");
  return out;
}

}  // namespace hookline
