// hookline: the in-memory checkpoint that checkpoint hooks read and write.
//
// A Checkpoint maps string keys to IValues (tensors, numbers, strings, lists, dicts), so every part
// of a run can put its state under its own key. Writing it to disk (atomically) is the job of
// checkpoint I/O; hooks only see this object.
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
  const std::map<std::string, c10::IValue>& entries() const { return entries_; }

 private:
  std::map<std::string, c10::IValue> entries_;
};

}  // namespace hookline
