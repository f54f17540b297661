// hookline: use a torch::data dataset where a hookline::data::Dataset is expected.
//
// Contract: wraps any map-style `torch::data::datasets::Dataset<Self, torch::data::Example<>>`
// (e.g. torch::data::datasets::MNIST or a user's own). A batch is gathered through the wrapped
// dataset's get_batch (per sample by default) and stacked: Example::data becomes field "x",
// Example::target becomes field "y". Slower than TensorDataset (one call and one copy per sample),
// but any torch dataset works. The wrapped dataset must report a size(); its get() is never called
// by two threads at once (a loader's workers take turns: use a MapDataset for parallel loading).
#pragma once

#include <hookline/core/data/dataset.hpp>
#include <hookline/hooks/batch.hpp>

#include <ATen/ops/stack.h>
#include <torch/data/datasets/base.h>
#include <torch/data/example.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

namespace hookline::data {

/// A map-style torch::data dataset whose examples are {data, target} tensor pairs.
template <typename D>
concept TorchExampleDataset =
    std::derived_from<D, torch::data::datasets::Dataset<D, torch::data::Example<>>>;

/// Adapts a torch::data dataset (held by value) to hookline::data::Dataset.
template <TorchExampleDataset D>
class TorchDatasetAdapter final : public Dataset {
 public:
  /// Takes the dataset; throws std::invalid_argument if its size() is unknown (an empty dataset
  /// is rejected later, by the DataLoader).
  explicit TorchDatasetAdapter(D dataset) : dataset_(std::move(dataset)) {
    const auto n = dataset_.size();
    if (!n.has_value())
      throw std::invalid_argument(
          "TorchDatasetAdapter: the torch dataset has no size(); only map-style datasets with a "
          "known size can be adapted");
    size_ = static_cast<std::int64_t>(*n);
  }

  std::int64_t size() const override { return size_; }
  /// The wrapped dataset.
  const D& torch_dataset() const { return dataset_; }

 protected:
  Batch gather(const at::Tensor& indices) const override {
    const std::int64_t* data = indices.data_ptr<std::int64_t>();
    std::vector<std::size_t> request(data, data + indices.numel());
    std::vector<torch::data::Example<>> examples;
    {
      std::lock_guard lock(mutex_);
      examples = dataset_.get_batch(request);
    }
    std::vector<at::Tensor> xs, ys;
    xs.reserve(examples.size());
    ys.reserve(examples.size());
    for (auto& example : examples) {
      xs.push_back(std::move(example.data));
      ys.push_back(std::move(example.target));
    }
    return Batch{{"x", at::stack(xs)}, {"y", at::stack(ys)}};
  }

 private:
  mutable D dataset_;  // torch's get()/get_batch() are non-const
  mutable std::mutex mutex_;
  std::int64_t size_ = 0;
};

/// Wraps `dataset` for a DataLoader: `DataLoader(adapt(MyTorchDataset(...)), options)`.
template <TorchExampleDataset D>
std::shared_ptr<TorchDatasetAdapter<D>> adapt(D dataset) {
  return std::make_shared<TorchDatasetAdapter<D>>(std::move(dataset));
}

}  // namespace hookline::data
