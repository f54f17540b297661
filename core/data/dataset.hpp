// hookline: in-memory datasets that hand out whole batches.
//
// Contract: a Dataset holds `size()` samples numbered 0..size()-1. `get_batch(indices)` returns the
// samples at `indices` (a 1-D integer tensor or a vector, any order, repeats allowed) as one
// `hookline::Batch` whose every field has `indices.size()` rows, in the order of `indices`.
// Out-of-range indices throw std::out_of_range naming the index and the dataset size. The batch
// never aliases the dataset's storage: writing into it leaves the dataset unchanged.
//
// Implementations override the protected `gather`, which receives indices already checked (1-D,
// int64, CPU, contiguous, in range). `TensorDataset` gathers with one index_select per field (one
// contiguous copy when the indices are a run first, first + 1, ...); a torch::data dataset can be
// used through `TorchDatasetAdapter` (torch_dataset_adapter.hpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <hookline/hooks/batch.hpp>

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace hookline::data {

/// Abstract random-access dataset whose unit of work is a batch, not a sample.
class Dataset {
 public:
  virtual ~Dataset() = default;

  /// Number of samples.
  virtual std::int64_t size() const = 0;

  /// The samples at `indices` (1-D tensor of any integer type), stacked along dimension 0.
  /// Throws std::invalid_argument for a non-1-D or non-integer tensor, std::out_of_range for an
  /// index outside [0, size()).
  Batch get_batch(const at::Tensor& indices) const;
  /// Same, from a vector of indices.
  Batch get_batch(const std::vector<std::int64_t>& indices) const;
  /// Same as `out = get_batch(indices)`, but a dataset may write the rows into the tensors `out`
  /// already holds when nothing else shares them and they have the right shape: a DataLoader
  /// refills one buffer instead of allocating a new one for every chunk of batches.
  void get_batch_into(const at::Tensor& indices, Batch& out) const;

  /// True when gather() only selects rows of fixed tensors (no per-call randomness or side
  /// effects), so a DataLoader may gather several batches in one call and hand out slices of
  /// them. Default false.
  virtual bool gathers_rows() const { return false; }

 protected:
  /// Gathers the samples at `indices` (1-D, int64, CPU, contiguous, every value in [0, size())).
  virtual Batch gather(const at::Tensor& indices) const = 0;
  /// Gathers into `out` (see get_batch_into); the default replaces `out` with gather(indices).
  virtual void gather_into(const at::Tensor& indices, Batch& out) const { out = gather(indices); }

 private:
  at::Tensor checked_indices(const at::Tensor& indices) const;
};

/// A dataset of named tensors that share their first dimension (one row per sample), e.g.
/// {"x": [N, 784] float, "y": [N] int64}. Batches keep the field order given here.
class TensorDataset final : public Dataset {
 public:
  /// Takes the fields of `tensors`. Throws std::invalid_argument if there are no fields, a field is
  /// undefined or 0-dimensional, or the fields disagree on their first dimension.
  explicit TensorDataset(Batch tensors);
  /// Same, from {{"x", x}, {"y", y}}.
  TensorDataset(std::initializer_list<Batch::Field> fields);

  std::int64_t size() const override { return size_; }
  bool gathers_rows() const override { return true; }
  /// The full tensors, one row per sample (shared with the dataset: do not write into them).
  const Batch& tensors() const { return tensors_; }

 protected:
  Batch gather(const at::Tensor& indices) const override;
  void gather_into(const at::Tensor& indices, Batch& out) const override;

 private:
  Batch tensors_;
  std::int64_t size_ = 0;
};

}  // namespace hookline::data
