#include "hookline/core/checkpoint.hpp"

#include <ATen/core/Dict.h>

#include <stdexcept>

namespace hookline {

const c10::IValue& Checkpoint::at(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    std::string keys;
    for (const auto& [k, v] : entries_) keys += (keys.empty() ? "" : ", ") + k;
    throw std::out_of_range("checkpoint has no entry '" + key +
                            "' (entries: " + (keys.empty() ? "none" : keys) + ")");
  }
  return it->second;
}

c10::IValue Checkpoint::to_ivalue() const {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [key, value] : entries_) dict.insert(key, value);
  return dict;
}

Checkpoint Checkpoint::from_ivalue(const c10::IValue& value, const std::string& what) {
  if (!value.isGenericDict())
    throw std::invalid_argument(what + " is not a dictionary (found " + value.tagKind() + ")");
  Checkpoint out;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString())
      throw std::invalid_argument(what + " has a key that is not a string");
    out.set(entry.key().toStringRef(), entry.value());
  }
  return out;
}

}  // namespace hookline
