// hookline: a resumable loader that turns a Dataset into batches, on its own thread or on workers.
//
// Contract:
// - An epoch visits every sample once, in batches of `batch_size` rows; `size()` is the number of
//   batches per epoch. With drop_last(false) the last batch may be smaller; with drop_last(true) it
//   is dropped. A `sampler` replaces the order, a `batch_sampler` the batches (sample.hpp).
// - Order: with shuffle(false), 0..N-1. With shuffle(true), the permutation of epoch e is drawn
//   from a private CPU generator seeded with seed + e: reproducible, different between epochs, and
//   independent of (and without effect on) torch's global RNG. A MapDataset's sample i of epoch e
//   is augmented with SampleGenerator(seed, e, i).
// - Workers: with num_workers(0) the batches are made on the caller's thread when asked for. With
//   num_workers(n > 0), n threads make the batches of the pass in parallel, up to
//   prefetch_factor * n batches ahead of the one the caller takes, while it uses the current one.
//   When the caller would wait for a batch, its thread makes the next batches nobody has started
//   itself (not with a timeout or a worker_init_fn, nor for an IterableDataset's streams).
//   Batches come out in the same order and with the same contents whatever n is (a batch depends on
//   (seed, epoch, batch number) only). Without persistent_workers the threads are started by
//   begin() and joined when the pass ends (its last batch, or the last iterator of an abandoned
//   pass destroyed); with it they live until shutdown_workers() or the loader's destruction. An
//   exception thrown while making a batch is rethrown to the caller as a DataLoaderError (sample
//   index, worker, original type and message; the original is nested); waiting longer than
//   `timeout` for a batch throws DataLoaderTimeout. Either way the pass's workers are stopped and
//   joined before the iterator's destruction returns (a worker stuck in the dataset is waited for).
// - Passes: `begin()` starts a pass over one epoch. Every pass starts at batch 0 of an epoch except
//   the first pass after `load_state`, which resumes at the saved position. A pass that runs to the
//   end advances `epoch()` by one; a pass abandoned part-way (break) makes the next pass start the
//   following epoch. `set_epoch(e)` chooses the epoch of the next pass. One pass at a time: begin()
//   invalidates earlier iterators (using one afterwards throws std::logic_error).
// - Position: `state()` is {epoch, batches_yielded, seed}; a batch counts as yielded as soon as the
//   iterator hands it out, so a checkpoint written while batch k (0-based) is being processed says
//   k + 1, and resuming from it yields exactly batches k + 1 .. size() - 1 of that epoch, in the
//   same order. Batches the workers made ahead are not part of the position: they are made again
//   after a resume, identically.
// - Batches are the loader's own tensors: writing into one never changes the dataset. For a
//   dataset that gathers rows (TensorDataset) without workers, the loader gathers up to ~4 MB of
//   batches in one call and hands out slices of that chunk, which makes a batch cost about as much
//   as indexing a vector (bench_trainer measures it); the chunk lives as long as any of its
//   batches, and its buffers are refilled with the next chunk once none of its batches is alive.
// - Bad options throw std::invalid_argument naming the option and the fix.
#pragma once

#include <ATen/core/Tensor.h>

#include <hookline/core/data/dataset.hpp>
#include <hookline/core/data/iterable.hpp>
#include <hookline/core/data/sample.hpp>
#include <hookline/hooks/batch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>

namespace hookline::data::detail {
class WorkerPool;
struct PassPlan;
struct StreamBatch;
}  // namespace hookline::data::detail

namespace hookline::data {

/// Options of a DataLoader, with chainable setters:
/// `DataLoaderOptions().batch_size(32).shuffle(true).drop_last(false).seed(42)`.
class DataLoaderOptions {
 public:
  DataLoaderOptions() = default;

  /// Rows per batch (default 1; must be > 0).
  DataLoaderOptions& batch_size(std::int64_t value) {
    batch_size_ = value;
    return *this;
  }
  std::int64_t batch_size() const { return batch_size_; }

  /// Visit the samples in a fresh seeded permutation every epoch (default false).
  DataLoaderOptions& shuffle(bool value) {
    shuffle_ = value;
    return *this;
  }
  bool shuffle() const { return shuffle_; }

  /// Drop the last batch of an epoch when it has fewer than batch_size rows (default false).
  DataLoaderOptions& drop_last(bool value) {
    drop_last_ = value;
    return *this;
  }
  bool drop_last() const { return drop_last_; }

  /// Base seed of the shuffling; epoch e uses seed + e (default 0).
  DataLoaderOptions& seed(std::uint64_t value) {
    seed_ = value;
    return *this;
  }
  std::uint64_t seed() const { return seed_; }

  /// Threads making batches in parallel (default 0: batches are made by the caller's thread).
  DataLoaderOptions& num_workers(int value) {
    num_workers_ = value;
    return *this;
  }
  int num_workers() const { return num_workers_; }

  /// Batches each worker makes ahead (default 2; must be >= 1; used with num_workers > 0).
  DataLoaderOptions& prefetch_factor(int value) {
    prefetch_factor_ = value;
    return *this;
  }
  int prefetch_factor() const { return prefetch_factor_; }

  /// Keep the workers between passes instead of starting them for each (default false).
  DataLoaderOptions& persistent_workers(bool value) {
    persistent_workers_ = value;
    return *this;
  }
  bool persistent_workers() const { return persistent_workers_; }

  /// Put batches in page-locked memory for faster copies to a CUDA device (default false; a no-op
  /// when LibTorch has no CUDA).
  DataLoaderOptions& pin_memory(bool value) {
    pin_memory_ = value;
    return *this;
  }
  bool pin_memory() const { return pin_memory_; }

  /// Called first on each worker thread with its id in [0, num_workers) (e.g. to open a file).
  DataLoaderOptions& worker_init_fn(std::function<void(int)> value) {
    worker_init_fn_ = std::move(value);
    return *this;
  }
  const std::function<void(int)>& worker_init_fn() const { return worker_init_fn_; }

  /// How long to wait for a worker's batch before throwing DataLoaderTimeout (default zero: wait
  /// as long as it takes; must be >= 0; used with num_workers > 0).
  DataLoaderOptions& timeout(std::chrono::duration<double> value) {
    timeout_ = value;
    return *this;
  }
  std::chrono::duration<double> timeout() const { return timeout_; }

  /// The order of each epoch's samples (instead of shuffle; default none).
  DataLoaderOptions& sampler(std::shared_ptr<const Sampler> value) {
    sampler_ = std::move(value);
    return *this;
  }
  const std::shared_ptr<const Sampler>& sampler() const { return sampler_; }

  /// The batches of each epoch (instead of batch_size, shuffle, sampler, drop_last; default none).
  DataLoaderOptions& batch_sampler(std::shared_ptr<const BatchSampler> value) {
    batch_sampler_ = std::move(value);
    return *this;
  }
  const std::shared_ptr<const BatchSampler>& batch_sampler() const { return batch_sampler_; }

  /// How a MapDataset's samples become a batch (default stack_collate).
  DataLoaderOptions& collate(Collate value) {
    collate_ = std::move(value);
    return *this;
  }
  const Collate& collate() const { return collate_; }

 private:
  std::int64_t batch_size_ = 1;
  bool shuffle_ = false;
  bool drop_last_ = false;
  std::uint64_t seed_ = 0;
  int num_workers_ = 0;
  int prefetch_factor_ = 2;
  bool persistent_workers_ = false;
  bool pin_memory_ = false;
  std::function<void(int)> worker_init_fn_;
  std::chrono::duration<double> timeout_{0};
  std::shared_ptr<const Sampler> sampler_;
  std::shared_ptr<const BatchSampler> batch_sampler_;
  Collate collate_;
};

/// A batch could not be made: the dataset (or collate, or a worker's init) threw. what() names
/// the worker, the batch, the sample index when known, and the original exception's type and
/// message; the original exception is nested (std::rethrow_if_nested gets it back).
class DataLoaderError : public std::runtime_error, public std::nested_exception {
 public:
  /// Built inside the handler of the original exception (which it nests).
  DataLoaderError(const std::string& what, int worker, std::int64_t batch, std::int64_t sample,
                  std::string original_type)
      : std::runtime_error(what),
        worker_(worker),
        batch_(batch),
        sample_(sample),
        original_type_(std::move(original_type)) {}
  /// The worker's id, or -1 for the loader's own thread (num_workers(0), or a batch it made
  /// itself while the workers were busy).
  int worker() const { return worker_; }
  /// The batch's number in its epoch.
  std::int64_t batch_index() const { return batch_; }
  /// The dataset index of the sample that failed, or -1 when the dataset makes whole batches.
  std::int64_t sample_index() const { return sample_; }
  /// The (demangled) type of the original exception.
  const std::string& original_type() const { return original_type_; }

 private:
  int worker_;
  std::int64_t batch_;
  std::int64_t sample_;
  std::string original_type_;
};

/// No worker delivered the next batch within DataLoaderOptions::timeout.
class DataLoaderTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The resumable position of a DataLoader: the epoch in progress (or next), how many of its
/// batches were already handed out, and the shuffling seed they were drawn with.
struct DataLoaderState {
  std::int64_t epoch = 0;            ///< Epoch of the current (or next) pass.
  std::int64_t batches_yielded = 0;  ///< Batches of that epoch already yielded, 0..size().
  std::uint64_t seed = 0;            ///< Base seed of the shuffling.

  friend bool operator==(const DataLoaderState&, const DataLoaderState&) = default;
};

/// Batches over a shared Dataset; see the contract at the top of this file.
class DataLoader {
 public:
  /// End-of-pass marker returned by end().
  struct Sentinel {};

  /// Input iterator over the batches of one pass; dereferences to the current Batch.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    Iterator() = default;
    /// The batch at the current position.
    const Batch& operator*() const { return batch_; }
    const Batch* operator->() const { return &batch_; }
    /// Moves the current batch out, leaving an empty one until the next increment: the trainer
    /// takes each batch this way instead of copying it.
    Batch take() { return std::move(batch_); }
    /// Fetches the next batch (or reaches the end of the pass).
    Iterator& operator++();
    /// Advances; returns nothing useful (input iterator), so prefer pre-increment.
    void operator++(int) { ++*this; }
    /// True once the pass is over.
    bool operator==(Sentinel) const { return loader_ == nullptr; }

   private:
    friend class DataLoader;
    Iterator(DataLoader* loader, std::uint64_t pass);
    void fetch();

    DataLoader* loader_ = nullptr;  // null at the end of the pass
    std::uint64_t pass_ = 0;
    Batch batch_;
    // With workers: shared by the copies of this pass's iterators; the last one destroyed ends
    // the pass (stops non-persistent workers). Null without workers.
    std::shared_ptr<void> pass_guard_;
  };

  /// Throws std::invalid_argument if `dataset` is null or empty, batch_size <= 0, or drop_last
  /// would drop every sample (batch_size > dataset size).
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  /// Batches of an iterable dataset (iterable.hpp): each worker reads its shard. Throws
  /// std::invalid_argument for a null or empty dataset, batch_size <= 0, or shuffle, sampler or
  /// batch_sampler set.
  DataLoader(std::shared_ptr<const IterableDataset> dataset, DataLoaderOptions options = {});
  /// A null dataset: throws std::invalid_argument (as the overloads above do for null).
  explicit DataLoader(std::nullptr_t, DataLoaderOptions options = {})
      : DataLoader(std::shared_ptr<const Dataset>(), std::move(options)) {}
  /// Stops and joins the workers.
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Starts a pass (see the contract); yields the remaining batches of one epoch.
  Iterator begin();
  Sentinel end() const { return {}; }

  /// Number of batches per epoch.
  std::int64_t size() const { return num_batches_; }
  /// Makes the next pass run epoch `epoch` from its start, unless a resume of that same epoch is
  /// pending from load_state (then the resume is kept). Throws std::invalid_argument if negative.
  void set_epoch(std::int64_t epoch);
  /// Epoch of the current (or next) pass.
  std::int64_t epoch() const { return epoch_; }

  /// The position to save in a checkpoint.
  DataLoaderState state() const;
  /// Restores a position saved by state(): the next pass resumes epoch `state.epoch` after its
  /// first `state.batches_yielded` batches, shuffled with `state.seed` (which replaces the option).
  /// Throws std::invalid_argument if epoch < 0 or batches_yielded is outside [0, size()].
  void load_state(const DataLoaderState& state);

  const DataLoaderOptions& options() const { return options_; }
  /// The map-style dataset; throws std::logic_error for a loader over an IterableDataset.
  const Dataset& dataset() const;
  /// Turns shuffling on or off from the next pass on (overfit_batches turns it off).
  void set_shuffle(bool shuffle) { options_.shuffle(shuffle); }
  /// DDP: from the next pass on, yield only replica `rank`'s share of each epoch, as torch's
  /// DistributedSampler does: the epoch's order (the same on every rank: same seed and epoch)
  /// padded by repeating its start to a multiple of `replicas` (cut down to one instead with
  /// drop_last), then every `replicas`-th sample from `rank`. size() becomes the shard's batch
  /// count. Throws std::invalid_argument for replicas < 1 or a rank outside [0, replicas).
  void set_distributed(int rank, int replicas);
  /// Samples per epoch this loader yields (the dataset's size, or the shard's).
  std::int64_t samples() const { return samples_; }
  /// Stops and joins the worker threads now (persistent ones included); the next pass starts new
  /// ones. The Trainer calls it when a run ends. A live pass is abandoned.
  void shutdown_workers();
  /// Worker threads running now (0 without workers, or between passes without persistence).
  int running_workers() const;

 private:
  at::Tensor epoch_order(std::int64_t epoch) const;
  // What a pass's batches are made from, shared with the workers.
  std::shared_ptr<const detail::PassPlan> plan_of(std::int64_t epoch) const;
  // Ends the pass `pass` if it is the live one: cancels or stops its workers.
  void end_pass(std::uint64_t pass);
  // Invalidates the live pass (set_epoch, load_state).
  void drop_pass();
  // Samples per epoch before DDP sharding: the sampler's or the dataset's.
  std::int64_t epoch_samples() const;
  // Batches an epoch of `samples` samples makes (the last one partial unless drop_last).
  std::int64_t batches_of(std::int64_t samples) const;
  // Gathers the batches from cursor_ on, up to about kChunkBytes, for datasets that gather rows.
  void load_chunk();

  std::shared_ptr<const Dataset> dataset_;
  const MapDataset* map_ = nullptr;                  // dataset_ as a MapDataset, if it is one
  std::shared_ptr<const IterableDataset> iterable_;  // instead of dataset_
  std::shared_ptr<const std::vector<detail::StreamBatch>> schedule_;  // iterable: the epoch's
  std::vector<int> owners_;  // iterable with workers: the worker of each batch
  DataLoaderOptions options_;
  std::int64_t num_batches_ = 0;
  std::int64_t samples_ = 0;  // per epoch: the dataset's size, or this rank's shard
  int rank_ = 0;
  int replicas_ = 1;
  std::int64_t epoch_ = 0;
  std::int64_t cursor_ = 0;  // batches of epoch_ yielded so far
  bool resume_pending_ = false;
  std::uint64_t pass_ = 0;  // id of the live pass; bumped by begin()
  at::Tensor order_;        // sample order of the live pass's epoch
  // The live pass's plan for batch samplers, MapDatasets or workers (null otherwise: the plain
  // path of a batch Dataset without workers stays as cheap as indexing a vector).
  std::shared_ptr<const detail::PassPlan> plan_;
  std::unique_ptr<detail::WorkerPool> pool_;
  // Several batches gathered at once (see Dataset::gathers_rows): each batch is a slice of it,
  // which saves a gather per field per batch. Valid for chunk_pass_, batches
  // [chunk_first_, chunk_first_ + chunk_batches_).
  Batch chunk_;
  std::uint64_t chunk_pass_ = 0;
  std::int64_t chunk_first_ = 0;
  std::int64_t chunk_batches_ = 0;
  std::int64_t chunk_target_ = 8;  // batches per chunk; adapted to kChunkBytes after the first
};

}  // namespace hookline::data
