// hookline: a single-threaded, resumable loader that turns a Dataset into batches.
//
// Contract:
// - An epoch visits every sample once, in batches of `batch_size` rows; `size()` is the number of
//   batches per epoch. With drop_last(false) the last batch may be smaller; with drop_last(true) it
//   is dropped.
// - Order: with shuffle(false), 0..N-1. With shuffle(true), the permutation of epoch e is drawn
// from
//   a private CPU generator seeded with seed + e: reproducible, different between epochs, and
//   independent of (and without effect on) torch's global RNG.
// - Passes: `begin()` starts a pass over one epoch. Every pass starts at batch 0 of an epoch except
//   the first pass after `load_state`, which resumes at the saved position. A pass that runs to the
//   end advances `epoch()` by one; a pass abandoned part-way (break) makes the next pass start the
//   following epoch. `set_epoch(e)` chooses the epoch of the next pass. One pass at a time: begin()
//   invalidates earlier iterators (using one afterwards throws std::logic_error).
// - Position: `state()` is {epoch, batches_yielded, seed}; a batch counts as yielded as soon as the
//   iterator hands it out, so a checkpoint written while batch k (0-based) is being processed says
//   k + 1, and resuming from it yields exactly batches k + 1 .. size() - 1 of that epoch, in the
//   same order.
// - Batches are the loader's own tensors: writing into one never changes the dataset. For a
//   dataset that gathers rows (TensorDataset), the loader gathers up to ~4 MB of batches in one
//   call and hands out slices of that chunk, which makes a batch cost about as much as indexing a
//   vector (bench_trainer measures it); the chunk lives as long as any of its batches, and its
//   buffers are refilled with the next chunk once none of its batches is alive.
// - Bad options throw std::invalid_argument naming the option and the fix.
#pragma once

#include <ATen/core/Tensor.h>

#include <hookline/core/data/dataset.hpp>
#include <hookline/hooks/batch.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>

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

 private:
  std::int64_t batch_size_ = 1;
  bool shuffle_ = false;
  bool drop_last_ = false;
  std::uint64_t seed_ = 0;
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
  };

  /// Throws std::invalid_argument if `dataset` is null or empty, batch_size <= 0, or drop_last
  /// would drop every sample (batch_size > dataset size).
  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});

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
  const Dataset& dataset() const { return *dataset_; }
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

 private:
  at::Tensor epoch_order(std::int64_t epoch) const;
  // Batches an epoch of `samples` samples makes (the last one partial unless drop_last).
  std::int64_t batches_of(std::int64_t samples) const;
  // Gathers the batches from cursor_ on, up to about kChunkBytes, for datasets that gather rows.
  void load_chunk();

  std::shared_ptr<const Dataset> dataset_;
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
