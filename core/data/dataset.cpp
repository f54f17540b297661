#include <hookline/core/data/dataset.hpp>

#include <ATen/ops/from_blob.h>
#include <ATen/ops/index_select.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace hookline::data {

Batch Dataset::get_batch(const at::Tensor& indices) const {
  if (!indices.defined() || indices.dim() != 1 ||
      !c10::isIntegralType(indices.scalar_type(), /*includeBool=*/false))
    throw std::invalid_argument("Dataset::get_batch: indices must be a 1-D integer tensor (got " +
                                (indices.defined()
                                     ? std::to_string(indices.dim()) + "-D " +
                                           std::string(c10::toString(indices.scalar_type()))
                                     : std::string("an undefined tensor")) +
                                "); pass e.g. at::arange(n) or a std::vector<std::int64_t>");
  at::Tensor checked = indices;
  if (checked.scalar_type() != at::kLong || !checked.device().is_cpu())
    checked = checked.to(at::kCPU, at::kLong);
  checked = checked.contiguous();
  const std::int64_t n = size();
  const std::int64_t* data = checked.data_ptr<std::int64_t>();
  for (std::int64_t i = 0, count = checked.numel(); i < count; ++i)
    if (data[i] < 0 || data[i] >= n)
      throw std::out_of_range("Dataset::get_batch: index " + std::to_string(data[i]) +
                              " (position " + std::to_string(i) +
                              ") is outside the dataset's range [0, " + std::to_string(n) + ")");
  return gather(checked);
}

Batch Dataset::get_batch(const std::vector<std::int64_t>& indices) const {
  // from_blob does not copy; clone so the tensor outlives the caller's vector.
  auto view = at::from_blob(const_cast<std::int64_t*>(indices.data()),
                            {static_cast<std::int64_t>(indices.size())}, at::kLong);
  return get_batch(view.clone());
}

TensorDataset::TensorDataset(std::initializer_list<Batch::Field> fields)
    : TensorDataset(Batch(fields)) {}

TensorDataset::TensorDataset(Batch tensors) : tensors_(std::move(tensors)) {
  if (tensors_.empty())
    throw std::invalid_argument(
        "TensorDataset: no fields given; pass at least one named tensor, e.g. {{\"x\", x}}");
  bool first = true;
  for (const auto& [name, tensor] : tensors_) {
    if (!tensor.defined() || tensor.dim() == 0)
      throw std::invalid_argument("TensorDataset: field '" + name +
                                  "' must be a defined tensor with at least one dimension (one "
                                  "row per sample)");
    if (first) {
      size_ = tensor.size(0);
      first = false;
    } else if (tensor.size(0) != size_) {
      throw std::invalid_argument("TensorDataset: field '" + name + "' has " +
                                  std::to_string(tensor.size(0)) + " rows but field '" +
                                  tensors_.names().front() + "' has " + std::to_string(size_) +
                                  "; every field needs one row per sample");
    }
  }
}

Batch TensorDataset::gather(const at::Tensor& indices) const {
  Batch out;
  for (const auto& [name, tensor] : tensors_) {
    const at::Tensor& idx =
        tensor.device() == indices.device() ? indices : indices.to(tensor.device());
    out.set(name, at::index_select(tensor, 0, idx));
  }
  return out;
}

}  // namespace hookline::data
