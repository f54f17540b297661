// hookline: what the batches of one DataLoader pass are made from (internal to the data layer).
//
// Contract: a PassPlan is built by the loader's thread at begin() and then only read, by the
// loader's thread or its workers concurrently. make(k) returns batch k of the pass: the dataset's
// get_batch of the batch's indices, or a MapDataset's samples (sample i augmented with
// SampleGenerator(seed, epoch, i)) collated; it depends on nothing but the plan and k. With
// wrap_errors, an exception from the dataset or collate becomes a DataLoaderError naming the
// worker, the batch and the sample index.
#pragma once

#include <hookline/core/data/dataset.hpp>
#include <hookline/core/data/sample.hpp>
#include <hookline/hooks/batch.hpp>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace hookline::data::detail {

struct PassPlan {
  std::shared_ptr<const Dataset> dataset;
  const MapDataset* map = nullptr;  // the dataset as a MapDataset, or null
  Collate collate;                  // null: stack_collate
  at::Tensor order;                 // the epoch's samples (without a batch sampler)
  std::vector<at::Tensor> batches;  // the epoch's batches (with a batch sampler)
  std::int64_t batch_size = 1;
  std::int64_t samples = 0;
  std::int64_t epoch = 0;
  std::uint64_t seed = 0;
  bool pin = false;
  bool wrap_errors = false;

  /// The dataset indices of batch k (1-D, int64, contiguous).
  at::Tensor indices(std::int64_t k) const;
  /// Batch k, made on `worker` (-1: the loader's thread); returns an empty batch early once
  /// `*cancelled` turns true.
  Batch make(std::int64_t k, int worker, const std::function<bool()>* cancelled) const;
};

}  // namespace hookline::data::detail
