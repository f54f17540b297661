// hookline: CallbackPack, a named bundle of callbacks (and of other packs) added to and removed
// from a trainer as one unit.
//
//   auto pack = std::make_shared<CallbackPack>("monitoring");
//   pack->add(std::make_shared<LearningRateMonitor>())
//       .add(std::make_shared<Timer>(TimerOptions().duration("00:01:00:00")), band::early);
//   trainer.add_pack(pack);      // also allowed while a run is going on
//   trainer.remove_pack(*pack);  // every subscription of every callback in it, at once
//
// - One owner on the bus: all subscriptions of a pack's callbacks (nested packs included) are
//   owned by the outermost pack, so removing it is one Bus::disconnect_owner.
// - Checkpoint state: each callback keeps its own state_key(), prefixed with the pack path
//   ("monitoring/Timer", "defaults/inner/EarlyStopping{...}"), so the same callback type may live
//   in two packs of one trainer. A checkpoint written with a pack restores into a trainer that
//   has the same pack (same names), whatever else it holds.
// - A pack's contents are fixed once it is added to a trainer: add() then throws. Build a new
//   pack and swap them (remove_pack + add_pack) to change a running recipe.
#pragma once

#include "hookline/core/callback.hpp"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hookline {

class CallbackPack {
 public:
  /// `name` must be non-empty and must not contain '/' (it is a path element of state keys).
  explicit CallbackPack(std::string name);

  const std::string& name() const { return name_; }

  /// Adds a callback, in its own priority band or in `priority`. Throws std::invalid_argument
  /// for a null callback, one already in this pack (or a nested one), or once the pack is in use.
  CallbackPack& add(std::shared_ptr<Callback> callback, std::optional<int> priority = {});
  /// Adds a nested pack; its callbacks are namespaced "<this>/<nested>/...".
  CallbackPack& add(std::shared_ptr<CallbackPack> pack);

  /// The direct members, in the order they were added.
  struct Member {
    std::shared_ptr<Callback> callback;  ///< set for a callback
    std::shared_ptr<CallbackPack> pack;  ///< set for a nested pack
  };
  const std::vector<Member>& members() const { return members_; }

  /// Every callback in this pack and its nested packs, depth first in the order added.
  std::vector<std::shared_ptr<Callback>> callbacks() const;
  /// Every callback with its key relative to this pack ("<nested>/.../<state_key>").
  std::vector<std::pair<std::string, std::shared_ptr<Callback>>> keyed_callbacks() const;
  /// The callback whose checkpoint key (relative to this pack) is `key`, or null.
  std::shared_ptr<Callback> find(const std::string& relative_key) const;

  /// Traces the trainer's event stream as `spec` says (recipe/tracing.hpp, e.g. "ring:10000")
  /// while the pack is in it: from add_pack on when no run is going on, else from the next run.
  /// Throws std::invalid_argument (naming the pack) for a spec TraceSpec::parse refuses; "" is
  /// no tracing.
  CallbackPack& trace(std::string spec);
  const std::string& trace_spec() const { return trace_spec_; }
  /// This pack's trace spec, else the first one of its nested packs ("" if none).
  std::string find_trace_spec() const;

  /// Whether a trainer holds this pack (directly or inside another one).
  bool in_use() const { return in_use_; }

 private:
  friend class CallbackConnector;
  /// Marks this pack and everything below it as held by a trainer: in use, and every callback's
  /// pack path set ("<name>/<nested>/..."); release() undoes both.
  void claim() { mark(true, {}); }
  void release() { mark(false, {}); }
  void mark(bool held, const std::string& prefix);
  bool contains(const Callback* callback) const;
  bool contains(const CallbackPack* pack) const;

  std::string name_;
  std::vector<Member> members_;
  std::string trace_spec_;
  bool in_use_ = false;
};

}  // namespace hookline
