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
#include <hookline/core/data/iterable.hpp>
#include <hookline/core/data/sample.hpp>
#include <hookline/hooks/batch.hpp>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace hookline::data::detail {

/// Where batch k of an iterable dataset's epoch comes from: `worker`'s batch number `local`, of
/// `rows` samples.
struct StreamBatch {
  int worker = 0;
  std::int64_t local = 0;
  std::int64_t rows = 0;
};

/// The batches of an epoch of `samples` samples read by `workers` streams (round-robin over the
/// workers' own batches; see iterable.hpp).
std::vector<StreamBatch> stream_schedule(std::int64_t samples, int workers, std::int64_t batch_size,
                                         bool drop_last);

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
  // Iterable datasets: the epoch's schedule and one stream per worker, each touched only by the
  // thread that owns its worker's batches (opened at its first batch of the pass).
  std::shared_ptr<const IterableDataset> iterable;
  std::shared_ptr<const std::vector<StreamBatch>> schedule;
  StreamInfo stream_info;  // worker set per stream
  mutable std::vector<std::unique_ptr<SampleStream>> streams;

  /// The dataset indices of batch k (1-D, int64, contiguous).
  at::Tensor indices(std::int64_t k) const;
  /// Batch k, made on `worker` (-1: the loader's thread); returns an empty batch early once
  /// `*cancelled` turns true.
  Batch make(std::int64_t k, int worker, const std::function<bool()>* cancelled) const;

 private:
  std::vector<Batch> stream_samples(std::int64_t k, int worker,
                                    const std::function<bool()>* cancelled) const;
};

}  // namespace hookline::data::detail
