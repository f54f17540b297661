#include "hookline/core/loops/callback_connector.hpp"

#include "hookline/core/defaults.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace hookline {

CallbackConnector::~CallbackConnector() {
  for (const auto& pack : packs_) pack->release();  // free for another trainer
}

void CallbackConnector::add(std::shared_ptr<Callback> callback) {
  if (!callback) throw std::invalid_argument("Trainer::add_callback: callback is null");
  std::lock_guard lock(mutex_);
  if (has(callback.get()))
    throw std::invalid_argument("callback '" + callback->name() + "' was added twice");
  for (const auto& existing : callbacks_)
    if (existing->checkpoint_key() == callback->state_key())
      throw std::invalid_argument("callbacks '" + existing->name() + "' and '" + callback->name() +
                                  "' share the state_key '" + callback->state_key() +
                                  "'; override state_key() so checkpoints can tell them apart");
  callback->pack_path_.clear();
  late_setup({callback});  // before it can see an event
  callbacks_.push_back(callback);
  connect(*callback, callback.get());
}

bool CallbackConnector::remove(const Callback& callback) {
  std::lock_guard lock(mutex_);
  const auto is_it = [&](const auto& c) { return c.get() == &callback; };
  auto it = std::find_if(callbacks_.begin(), callbacks_.end(), is_it);
  auto run_it = std::find_if(run_callbacks_.begin(), run_callbacks_.end(), is_it);
  if (it == callbacks_.end() && run_it == run_callbacks_.end()) return false;
  if (!callback.pack_path().empty())
    throw std::invalid_argument("callback '" + callback.name() + "' belongs to pack '" +
                                callback.pack_path() +
                                "'; remove the pack (Trainer::remove_pack) instead");
  hooks_.bus().disconnect_owner(&callback);
  const std::shared_ptr<Callback> removed = it != callbacks_.end() ? *it : *run_it;
  if (it != callbacks_.end()) callbacks_.erase(it);
  if (run_it != run_callbacks_.end()) run_callbacks_.erase(run_it);
  std::erase_if(suspended_, [&](const Suspended& s) { return s.callback == removed; });
  retire(removed);
  early_teardown({removed});
  return true;
}

void CallbackConnector::retire(std::shared_ptr<const void> removed) {
  if (state_.running) retired_.push_back(std::move(removed));
}

void CallbackConnector::add_pack(std::shared_ptr<CallbackPack> pack) {
  if (!pack) throw std::invalid_argument("Trainer::add_pack: pack is null");
  {
    std::lock_guard lock(mutex_);
    if (pack->in_use())
      throw std::invalid_argument("pack '" + pack->name() +
                                  "' is already in use by a trainer; build another one");
    for (const auto& existing : packs_)
      if (existing->name() == pack->name())
        throw std::invalid_argument("this trainer already has a pack named '" + pack->name() +
                                    "'; pack names must be distinct (they prefix state keys)");
    const auto added = pack->callbacks();
    for (const auto& callback : added)
      if (has(callback.get()))
        throw std::invalid_argument("pack '" + pack->name() + "': callback '" + callback->name() +
                                    "' is already in this trainer");
    pack->claim();
    try {
      late_setup(added);  // before they can see an event
    } catch (...) {
      pack->release();
      throw;
    }
    if (std::string spec = pack->find_trace_spec(); !spec.empty())
      pending_trace_spec_ = std::move(spec);
    packs_.push_back(pack);
    for (const auto& callback : added) {
      callbacks_.push_back(callback);
      connect(*callback, pack.get());
    }
  }
  if (state_.running) return;
  try {
    apply_pack_tracing();  // opens the sinks: a file or port may be unusable
  } catch (...) {
    remove_pack(*pack);  // all or nothing
    throw;
  }
}

void CallbackConnector::apply_pack_tracing() {
  std::string spec;
  {
    std::lock_guard lock(mutex_);
    spec = std::exchange(pending_trace_spec_, std::string());
  }
  if (!spec.empty()) enable_tracing(trainer_, spec);
}

bool CallbackConnector::remove_pack(const CallbackPack& pack) {
  std::lock_guard lock(mutex_);
  auto it =
      std::find_if(packs_.begin(), packs_.end(), [&](const auto& p) { return p.get() == &pack; });
  if (it == packs_.end()) return false;
  hooks_.bus().disconnect_owner(&pack);
  const std::vector<std::shared_ptr<Callback>> removed = pack.callbacks();
  std::erase_if(callbacks_, [&](const auto& c) {
    return std::find(removed.begin(), removed.end(), c) != removed.end();
  });
  const std::shared_ptr<CallbackPack> held = *it;
  packs_.erase(it);
  retire(held);
  early_teardown(removed);
  held->release();
  return true;
}

std::shared_ptr<CallbackPack> CallbackConnector::pack(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (const auto& p : packs_)
    if (p->name() == name) return p;
  return nullptr;
}

std::vector<std::shared_ptr<CallbackPack>> CallbackConnector::packs() const {
  std::lock_guard lock(mutex_);
  return packs_;
}

std::vector<std::shared_ptr<Callback>> CallbackConnector::all() const {
  std::vector<std::shared_ptr<Callback>> out;
  {
    std::lock_guard lock(mutex_);
    for (const auto& callback : callbacks_)
      if (!suspended(callback.get())) out.push_back(callback);
    out.insert(out.end(), run_callbacks_.begin(), run_callbacks_.end());
  }
  // Lightning's _reorder_callbacks: checkpoint callbacks last, the others in their order.
  std::stable_partition(out.begin(), out.end(), [](const auto& callback) {
    return dynamic_cast<const CheckpointCallback*>(callback.get()) == nullptr;
  });
  return out;
}

bool CallbackConnector::suspended(const Callback* callback) const {
  return std::any_of(suspended_.begin(), suspended_.end(),
                     [&](const Suspended& s) { return s.callback.get() == callback; });
}

bool CallbackConnector::has(const Callback* callback) const {
  for (const auto* list : {&callbacks_, &run_callbacks_})
    for (const auto& c : *list)
      if (c.get() == callback) return true;
  return false;
}

void CallbackConnector::late_setup(const std::vector<std::shared_ptr<Callback>>& added) {
  // set_up_ first: its acquire makes the run's module (set before setup) visible here.
  if (!set_up_.load(std::memory_order_acquire)) return;
  Module* module = hooks_.module();
  if (module == nullptr) return;
  for (const auto& callback : added) callback->setup(trainer_, *module, state_.stage);
}

void CallbackConnector::early_teardown(const std::vector<std::shared_ptr<Callback>>& removed) {
  // set_up_ first: its acquire makes the run's module (set before setup) visible here.
  if (!set_up_.load(std::memory_order_acquire)) return;
  Module* module = hooks_.module();
  if (module == nullptr) return;
  for (const auto& callback : removed) callback->teardown(trainer_, *module, state_.stage);
}

void CallbackConnector::connect(Callback& callback, const void* owner) {
  Sink sink = hooks_.bus().sink(owner, callback.name(), callback.priority());
  callback.subscribe(sink);
}

std::vector<CheckpointCallback*> CallbackConnector::checkpoint_callbacks() const {
  std::vector<CheckpointCallback*> out;
  for (const auto& callback : all())
    if (auto* c = dynamic_cast<CheckpointCallback*>(callback.get())) out.push_back(c);
  return out;
}

void CallbackConnector::add_run_callbacks(const std::vector<std::shared_ptr<Callback>>& callbacks) {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Callback>> added;  // new to this trainer, once each
  for (const auto& callback : callbacks)
    if (callback && !has(callback.get()) &&
        std::find(added.begin(), added.end(), callback) == added.end())
      added.push_back(callback);
  // Replaced: the trainer's own callbacks (not a pack's, not a plain Callback) of a type the
  // module returned.
  const auto replaced = [&](const Callback& c) {
    if (!c.pack_path().empty() || typeid(c) == typeid(Callback)) return false;
    return std::any_of(added.begin(), added.end(),
                       [&](const auto& a) { return typeid(*a) == typeid(c); });
  };
  std::vector<const Callback*> staying;
  for (const auto& callback : callbacks_)
    if (!replaced(*callback)) staying.push_back(callback.get());
  for (const auto& callback : added) {
    for (const Callback* other : staying)
      if (other->checkpoint_key() == callback->state_key())
        throw std::invalid_argument(
            hooks_.module()->module_name() + ".configure_callbacks() returned callback '" +
            callback->name() + "' whose state_key '" + callback->state_key() + "' callback '" +
            other->name() +
            "' of this run already has; override state_key() so checkpoints can tell them apart");
    staying.push_back(callback.get());
  }
  for (const auto& callback : callbacks_)
    if (replaced(*callback)) {
      Suspended s{callback, hooks_.bus().connections(callback.get())};
      for (Connection& c : s.blocked) c.block();
      suspended_.push_back(std::move(s));
    }
  for (const auto& callback : added) {
    callback->pack_path_.clear();
    run_callbacks_.push_back(callback);
    connect(*callback, callback.get());
  }
}

void CallbackConnector::end_run() {
  set_set_up(false);
  std::lock_guard lock(mutex_);
  for (const auto& callback : run_callbacks_) hooks_.bus().disconnect_owner(callback.get());
  run_callbacks_.clear();
  for (Suspended& s : suspended_)
    for (Connection& c : s.blocked) c.unblock();
  suspended_.clear();
  retired_.clear();
}

}  // namespace hookline
