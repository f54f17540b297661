// hookline: datasets of samples, the per-sample random generator, collate functions, samplers.
//
// Contract:
// - A `MapDataset` returns one sample per index (a Batch of named tensors without the batch
//   dimension); the DataLoader collates the samples of a batch with its `collate` function
//   (default `stack_collate`: stacks each field along a new dimension 0). It is a `Dataset` too:
//   get_batch() gathers and stacks its samples with the generators of epoch 0 and seed 0.
// - `get()` receives the sample's own `SampleGenerator`, derived from (seed, epoch, index) only:
//   a random augmentation draws the same numbers whichever worker runs it, in whatever order, so
//   batches are the same with any number of workers. get() is called concurrently from the
//   loader's workers: it must not change shared state (it is const; guard any cache it keeps).
// - A `Sampler` replaces the loader's order of an epoch (shuffle or 0..N-1); a `BatchSampler`
//   replaces the batches themselves (its own batch sizes). Both must return the same thing for
//   the same epoch (resume recomputes the epoch's order) and may be called from the loader's
//   thread only.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <hookline/core/data/dataset.hpp>
#include <hookline/hooks/batch.hpp>

#include <cstdint>
#include <functional>
#include <vector>

namespace hookline::data {

/// A small, fast random generator (SplitMix64) for one sample's augmentation.
class SampleGenerator {
 public:
  /// The generator of sample `index` in epoch `epoch` of a loader seeded with `seed`.
  SampleGenerator(std::uint64_t seed, std::int64_t epoch, std::int64_t index);
  explicit SampleGenerator(std::uint64_t state) : state_(state) {}

  /// 64 random bits.
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform integer in [low, high] (both included); low when high < low.
  std::int64_t integer(std::int64_t low, std::int64_t high);
  /// Uniform double in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// True with probability p.
  bool bernoulli(double p) { return uniform() < p; }
  /// A CPU at::Generator seeded from this generator, for at:: functions that take one.
  at::Generator torch_generator();

 private:
  std::uint64_t state_;
};

/// Collates the samples of a batch into one Batch.
using Collate = std::function<Batch(std::vector<Batch>& samples)>;

/// The default collate: every field of the first sample, stacked over the samples along a new
/// dimension 0. Throws std::invalid_argument naming the field when the samples disagree on their
/// fields or a field's shape (pass a custom collate for samples of different shapes).
Batch stack_collate(std::vector<Batch>& samples);

/// Abstract map-style dataset of samples (see the contract at the top of this file).
class MapDataset : public Dataset {
 public:
  /// Sample `index` (in [0, size())), augmented with `rng`. Called concurrently by workers.
  virtual Batch get(std::int64_t index, SampleGenerator& rng) const = 0;

 protected:
  Batch gather(const at::Tensor& indices) const override;
};

/// The order of an epoch's samples (replaces shuffle; DDP still shards it).
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// Indices per epoch.
  virtual std::int64_t size() const = 0;
  /// The epoch's indices: a 1-D integer tensor of size() indices of the dataset.
  virtual at::Tensor indices(std::int64_t epoch) const = 0;
};

/// The batches of an epoch (replaces batch_size, shuffle, sampler and drop_last).
class BatchSampler {
 public:
  virtual ~BatchSampler() = default;
  /// Batches per epoch.
  virtual std::int64_t size() const = 0;
  /// The epoch's batches: size() 1-D integer tensors of dataset indices.
  virtual std::vector<at::Tensor> batches(std::int64_t epoch) const = 0;
};

}  // namespace hookline::data
