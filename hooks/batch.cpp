#include "hookline/hooks/batch.hpp"

#include <stdexcept>

namespace hookline {

Batch::Batch(std::initializer_list<Field> fields) : fields_(fields) {}

Batch& Batch::set(std::string name, at::Tensor tensor) {
  for (auto& [key, value] : fields_) {
    if (key == name) {
      value = std::move(tensor);
      return *this;
    }
  }
  fields_.emplace_back(std::move(name), std::move(tensor));
  return *this;
}

namespace {
[[noreturn]] void missing_field(std::string_view name, const std::vector<Batch::Field>& fields) {
  std::string present;
  for (const auto& field : fields) present += (present.empty() ? "" : ", ") + field.first;
  throw std::out_of_range("Batch has no field '" + std::string(name) +
                          "' (fields: " + (present.empty() ? "none" : present) + ")");
}
}  // namespace

const at::Tensor& Batch::operator[](std::string_view name) const {
  for (const auto& [key, value] : fields_)
    if (key == name) return value;
  missing_field(name, fields_);
}

at::Tensor& Batch::operator[](std::string_view name) {
  for (auto& [key, value] : fields_)
    if (key == name) return value;
  missing_field(name, fields_);
}

const at::Tensor& Batch::at(std::size_t i) const {
  if (i >= fields_.size())
    throw std::out_of_range("Batch field index " + std::to_string(i) + " out of range (batch has " +
                            std::to_string(fields_.size()) + " fields)");
  return fields_[i].second;
}

bool Batch::contains(std::string_view name) const {
  for (const auto& field : fields_)
    if (field.first == name) return true;
  return false;
}

std::int64_t Batch::batch_size() const {
  if (fields_.empty() || !fields_.front().second.defined() || fields_.front().second.dim() == 0)
    return 0;
  return fields_.front().second.size(0);
}

std::vector<std::string> Batch::names() const {
  std::vector<std::string> out;
  out.reserve(fields_.size());
  for (const auto& field : fields_) out.push_back(field.first);
  return out;
}

namespace {
bool needs_move(const Batch& batch, const c10::Device& device) {
  for (const auto& [key, value] : batch)
    if (value.defined() && value.device() != device) return true;
  return false;
}
}  // namespace

Batch Batch::to(const c10::Device& device, bool non_blocking) && {
  if (!needs_move(*this, device)) return std::move(*this);
  return static_cast<const Batch&>(*this).to(device, non_blocking);
}

Batch Batch::to(const c10::Device& device, bool non_blocking) const& {
  if (!needs_move(*this, device)) return *this;  // already there: no dispatcher round trip
  Batch out;
  out.fields_.reserve(fields_.size());
  for (const auto& [key, value] : fields_)
    out.fields_.emplace_back(key, value.defined() ? value.to(device, non_blocking) : value);
  return out;
}

}  // namespace hookline
