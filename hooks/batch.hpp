// hookline: the type-erased batch that flows through loops, events and callbacks.
//
// A Batch is an ordered list of named tensors ("x", "y", ...). It is cheap to copy (tensor handles
// are reference counted) and moves to a device as a whole. Keeping one concrete type here is what
// lets the bus and every callback stay non-templated.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookline {

class Batch {
 public:
  using Field = std::pair<std::string, at::Tensor>;

  Batch() = default;
  Batch(std::initializer_list<Field> fields);

  /// Adds or replaces the field `name`.
  Batch& set(std::string name, at::Tensor tensor);
  /// The tensor called `name`; throws std::out_of_range naming the field and the fields present.
  const at::Tensor& operator[](std::string_view name) const;
  at::Tensor& operator[](std::string_view name);
  /// The i-th field's tensor, in insertion order.
  const at::Tensor& at(std::size_t i) const;
  bool contains(std::string_view name) const;

  std::size_t num_fields() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  /// Size of the first dimension of the first field (0 for an empty batch).
  std::int64_t batch_size() const;
  std::vector<std::string> names() const;

  /// A copy with every tensor moved to `device` (no copy when already there).
  Batch to(const c10::Device& device, bool non_blocking = false) const&;
  /// The same, reusing this batch (no copy of names or handles) when it is already there.
  Batch to(const c10::Device& device, bool non_blocking = false) &&;

  auto begin() const { return fields_.begin(); }
  auto end() const { return fields_.end(); }
  auto begin() { return fields_.begin(); }
  auto end() { return fields_.end(); }

 private:
  std::vector<Field> fields_;
};

}  // namespace hookline
