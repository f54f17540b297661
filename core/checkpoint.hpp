// hookline: the in-memory checkpoint that checkpoint hooks read and write.
//
// A Checkpoint maps string keys to IValues (tensors, numbers, strings, lists, dicts), so every part
// of a run can put its state under its own key. The trainer's checkpoint has Lightning's top-level
// keys ("epoch", "global_step", "state_dict", "loops", "callbacks", "optimizer_states",
// "lr_schedulers", "hyper_parameters", ...); a callback's state_dict() and load_state_dict() see a
// Checkpoint of their own, stored under the callback's state_key in "callbacks". Writing it to
// disk (atomically, checksummed) is checkpoint_io.hpp's job; hooks only see this object.
#pragma once

#include <ATen/core/ivalue.h>

#include <map>
#include <string>

namespace hookline {

class Checkpoint {
 public:
  /// Sets `key` (replacing an existing value).
  void set(const std::string& key, c10::IValue value) { entries_[key] = std::move(value); }
  bool contains(const std::string& key) const { return entries_.count(key) != 0; }
  /// The value of `key`; throws std::out_of_range naming the key when absent.
  const c10::IValue& at(const std::string& key) const;
  /// Removes `key`; returns whether it was there.
  bool erase(const std::string& key) { return entries_.erase(key) != 0; }
  bool empty() const { return entries_.empty(); }
  const std::map<std::string, c10::IValue>& entries() const { return entries_; }

  /// The entries as one dict IValue (Dict[str, Any]), for nesting and for writing to a file.
  c10::IValue to_ivalue() const;
  /// The entries of a dict IValue with string keys; throws std::invalid_argument naming `what`
  /// when `value` is not one.
  static Checkpoint from_ivalue(const c10::IValue& value, const std::string& what);

 private:
  std::map<std::string, c10::IValue> entries_;
};

}  // namespace hookline
