#include "hookline/core/callback_pack.hpp"

#include "hookline/tracing/trace_spec.hpp"

#include <stdexcept>

namespace hookline {

CallbackPack::CallbackPack(std::string name) : name_(std::move(name)) {
  if (name_.empty()) throw std::invalid_argument("CallbackPack: the name is empty; give it one");
  if (name_.find('/') != std::string::npos)
    throw std::invalid_argument("CallbackPack '" + name_ +
                                "': a pack name may not contain '/' (it separates the pack path "
                                "in checkpoint keys)");
}

CallbackPack& CallbackPack::add(std::shared_ptr<Callback> callback, std::optional<int> priority) {
  if (!callback) throw std::invalid_argument("CallbackPack '" + name_ + "': callback is null");
  if (in_use_)
    throw std::invalid_argument("CallbackPack '" + name_ +
                                "' is in use by a trainer; its contents are fixed (remove it, or "
                                "build a new pack and swap them)");
  if (contains(callback.get()))
    throw std::invalid_argument("CallbackPack '" + name_ + "': callback '" + callback->name() +
                                "' was added twice");
  for (const auto& member : members_)
    if (const auto& existing = member.callback;
        existing && existing->state_key() == callback->state_key())
      throw std::invalid_argument("CallbackPack '" + name_ + "': callbacks '" + existing->name() +
                                  "' and '" + callback->name() + "' share the state_key '" +
                                  callback->state_key() +
                                  "'; give one of them other options or put it in a nested pack");
  if (priority) callback->set_priority(*priority);
  members_.push_back({std::move(callback), nullptr});
  return *this;
}

CallbackPack& CallbackPack::add(std::shared_ptr<CallbackPack> pack) {
  if (!pack) throw std::invalid_argument("CallbackPack '" + name_ + "': pack is null");
  if (in_use_ || pack->in_use_)
    throw std::invalid_argument(
        "CallbackPack '" + name_ + "': pack '" + pack->name() + "' cannot be nested: " +
        (in_use_ ? std::string("'") + name_ + "'" : "it") + " is in use by a trainer");
  if (pack.get() == this || pack->contains(this) || contains(pack.get()))
    throw std::invalid_argument("CallbackPack '" + name_ + "': pack '" + pack->name() +
                                "' would be in it twice (or contain itself)");
  for (const auto& member : members_)
    if (member.pack && member.pack->name() == pack->name())
      throw std::invalid_argument("CallbackPack '" + name_ + "' already holds a pack named '" +
                                  pack->name() + "'; nested packs need distinct names");
  for (const auto& callback : pack->callbacks())
    if (contains(callback.get()))
      throw std::invalid_argument("CallbackPack '" + name_ + "': callback '" + callback->name() +
                                  "' would be in it twice");
  members_.push_back({nullptr, std::move(pack)});
  return *this;
}

std::vector<std::shared_ptr<Callback>> CallbackPack::callbacks() const {
  std::vector<std::shared_ptr<Callback>> out;
  for (const auto& member : members_) {
    if (member.callback) {
      out.push_back(member.callback);
    } else {
      auto nested = member.pack->callbacks();
      out.insert(out.end(), nested.begin(), nested.end());
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Callback>>> CallbackPack::keyed_callbacks()
    const {
  std::vector<std::pair<std::string, std::shared_ptr<Callback>>> out;
  for (const auto& member : members_) {
    if (member.callback) out.emplace_back(member.callback->state_key(), member.callback);
    if (member.pack)
      for (auto& [key, callback] : member.pack->keyed_callbacks())
        out.emplace_back(member.pack->name() + "/" + key, std::move(callback));
  }
  return out;
}

std::shared_ptr<Callback> CallbackPack::find(const std::string& relative_key) const {
  for (const auto& member : members_) {
    if (member.callback && member.callback->state_key() == relative_key) return member.callback;
    if (member.pack) {
      const std::string prefix = member.pack->name() + "/";
      if (relative_key.compare(0, prefix.size(), prefix) == 0)
        if (auto found = member.pack->find(relative_key.substr(prefix.size()))) return found;
    }
  }
  return nullptr;
}

CallbackPack& CallbackPack::trace(std::string spec) {
  if (!spec.empty()) try {
      (void)TraceSpec::parse(spec);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("pack '" + name_ + "': " + e.what());
    }
  trace_spec_ = std::move(spec);
  return *this;
}

std::string CallbackPack::find_trace_spec() const {
  if (!trace_spec_.empty()) return trace_spec_;
  for (const auto& member : members_)
    if (member.pack)
      if (std::string spec = member.pack->find_trace_spec(); !spec.empty()) return spec;
  return {};
}

bool CallbackPack::contains(const Callback* callback) const {
  for (const auto& member : members_)
    if (member.callback.get() == callback || (member.pack && member.pack->contains(callback)))
      return true;
  return false;
}

bool CallbackPack::contains(const CallbackPack* pack) const {
  for (const auto& member : members_)
    if (member.pack && (member.pack.get() == pack || member.pack->contains(pack))) return true;
  return false;
}

void CallbackPack::mark(bool held, const std::string& prefix) {
  in_use_ = held;
  const std::string path = !held ? std::string() : prefix.empty() ? name_ : prefix + "/" + name_;
  for (const auto& member : members_) {
    if (member.callback) member.callback->pack_path_ = path;
    if (member.pack) member.pack->mark(held, path);
  }
}

}  // namespace hookline
