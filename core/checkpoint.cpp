#include "hookline/core/checkpoint.hpp"

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

}  // namespace hookline
