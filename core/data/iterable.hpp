// hookline: iterable (streaming) datasets: a generator of samples instead of random access.
//
// Contract (PyTorch's IterableDataset rules, made exact):
// - The loader opens one stream per worker (one in all with num_workers(0)) with a StreamInfo;
//   stream `worker` of `num_workers` yields, in order, the samples at the positions p of the
//   epoch's sequence with p % num_workers == worker (its shard: reading only those is the
//   dataset's job, e.g. by skipping the others' records). Each worker batches its own samples
//   (batch_size, the last batch of a shard partial unless drop_last) and the loader hands the
//   batches out round-robin over the workers (worker 0's first, worker 1's first, ..., worker 0's
//   second, ...), skipping workers whose shard is exhausted.
// - `size()` is the number of samples per epoch (all shards together): the loader's size() and
//   the Trainer's epoch length come from it. A stream that ends early throws.
// - For a given worker count the batches are reproducible and resume exactly: a loader resumed
//   after batch k opens each stream again and skips the samples its shard already yielded
//   (`SampleStream::skip`, which by default reads and drops them). Different worker counts give
//   different batches (as in PyTorch: the shards change).
// - Under DDP the loader passes rank and replicas in StreamInfo but does not shard: reading the
//   rank's part (with the same number of samples on every rank) is the dataset's job.
// - Shuffle, sampler and batch_sampler do not apply (the DataLoader refuses them).
#pragma once

#include <hookline/core/data/sample.hpp>
#include <hookline/hooks/batch.hpp>

#include <cstdint>
#include <memory>
#include <optional>

namespace hookline::data {

/// Which shard a stream reads, and for which epoch.
struct StreamInfo {
  int worker = 0;       ///< This stream's worker, in [0, num_workers).
  int num_workers = 1;  ///< Workers reading the epoch (1 with num_workers(0)).
  std::int64_t epoch = 0;
  std::uint64_t seed = 0;  ///< The loader's seed (for the dataset's own randomness).
  int rank = 0;            ///< DDP rank and world size (0 and 1 without DDP).
  int replicas = 1;
};

/// One shard's samples for one epoch, read by one thread at a time.
class SampleStream {
 public:
  virtual ~SampleStream() = default;
  /// The next sample, or nullopt at the end of the shard.
  virtual std::optional<Batch> next() = 0;
  /// Drops the next `count` samples (resume); the default reads them with next().
  virtual void skip(std::int64_t count) {
    for (std::int64_t i = 0; i < count && next(); ++i) {
    }
  }
};

/// Abstract iterable dataset (see the contract at the top of this file).
class IterableDataset {
 public:
  virtual ~IterableDataset() = default;
  /// Samples per epoch, all shards together.
  virtual std::int64_t size() const = 0;
  /// A stream over the shard `info` describes. Called by the loader's thread or a worker; must
  /// be safe to call concurrently for different shards.
  virtual std::unique_ptr<SampleStream> open(const StreamInfo& info) const = 0;
};

}  // namespace hookline::data
