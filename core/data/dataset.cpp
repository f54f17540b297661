#include <hookline/core/data/dataset.hpp>

#include <ATen/ops/from_blob.h>
#include <ATen/ops/index_select.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace hookline::data {

Batch Dataset::get_batch(const at::Tensor& indices) const {
  return gather(checked_indices(indices));
}

void Dataset::get_batch_into(const at::Tensor& indices, Batch& out) const {
  gather_into(checked_indices(indices), out);
}

at::Tensor Dataset::checked_indices(const at::Tensor& indices) const {
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
  return checked;
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

namespace {

// The first index when `indices` (1-D, int64, CPU, contiguous) is the run first, first + 1, ...;
// -1 otherwise. Sequential loaders (validation, test, predict, unshuffled training) ask for such
// runs, whose rows one contiguous copy gathers faster than index_select's row-by-row loop.
std::int64_t first_of_run(const at::Tensor& indices) {
  const std::int64_t n = indices.numel();
  if (n == 0) return -1;
  const std::int64_t* data = indices.data_ptr<std::int64_t>();
  for (std::int64_t i = 1; i < n; ++i)
    if (data[i] != data[0] + i) return -1;
  return data[0];
}

// Whether the rows of `source` can be written into `target`: the same dtype, device and row shape,
// `rows` rows, contiguous, and nothing but `target` refers to its tensor or storage.
bool reusable(const at::Tensor& target, const at::Tensor& source, std::int64_t rows) {
  if (!target.defined() || target.use_count() != 1 || !target.has_storage() ||
      target.storage().use_count() != 1 || !target.is_contiguous() ||
      target.dtype() != source.dtype() || target.device() != source.device() ||
      target.dim() != source.dim() || target.size(0) != rows)
    return false;
  for (std::int64_t d = 1; d < source.dim(); ++d)
    if (target.size(d) != source.size(d)) return false;
  return true;
}

}  // namespace

Batch TensorDataset::gather(const at::Tensor& indices) const {
  Batch out;
  gather_into(indices, out);
  return out;
}

void TensorDataset::gather_into(const at::Tensor& indices, Batch& out) const {
  const std::int64_t rows = indices.numel();
  const std::int64_t first = first_of_run(indices);
  const bool same_fields = out.num_fields() == tensors_.num_fields();
  Batch fresh;
  std::size_t i = 0;
  for (const auto& [name, tensor] : tensors_) {
    at::Tensor target;
    if (same_fields && out.names()[i] == name && reusable(out.at(i), tensor, rows)) {
      target = out.at(i);
      if (first >= 0)
        target.copy_(tensor.narrow(0, first, rows));
      else
        at::index_select_out(
            target, tensor, 0,
            indices.device() == tensor.device() ? indices : indices.to(tensor.device()));
    } else if (first >= 0) {
      target = tensor.narrow(0, first, rows).clone(at::MemoryFormat::Contiguous);
    } else {
      const at::Tensor& idx =
          tensor.device() == indices.device() ? indices : indices.to(tensor.device());
      target = at::index_select(tensor, 0, idx);
    }
    fresh.set(name, std::move(target));
    ++i;
  }
  out = std::move(fresh);
}

}  // namespace hookline::data
