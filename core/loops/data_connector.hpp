// hookline: DataConnector, the data side of the loops (Lightning's _DataConnector): requesting
// the dataloaders through their hooks, sharding them under DDP, batch limits, and moving batches
// to the device through the transfer hooks.
#pragma once

#include "hookline/core/hook_emitter.hpp"
#include "hookline/core/strategy.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/core/trainer_state.hpp"
#include "hookline/hooks/hooks.hpp"

#include <cstdint>
#include <vector>

namespace hookline {

/// Which evaluation a loop runs.
enum class EvalKind { validation, test, predict };

class DataConnector {
 public:
  DataConnector(const TrainerOptions& options, const TrainerState& state, HookEmitter& hooks,
                Strategy& strategy)
      : options_(options), state_(state), hooks_(hooks), strategy_(strategy) {}

  /// The training dataloaders of the current fit, requested now (train_dataloader hook) if they
  /// have not been yet; the fit loop then uses these. Callbacks that run training steps before
  /// the loop does (LearningRateFinder, StochasticWeightAveraging) call it too.
  const DataLoaders& train_dataloaders() {
    ensure_train_loader();
    return train_loaders_;
  }
  void ensure_train_loader();
  void ensure_val_loaders();
  /// Lightning's reload_dataloaders_every_n_epochs: forgets the loaders, then requests the
  /// training one again.
  void reload_train_and_val();
  /// The loaders of an evaluation (validation: the fit's, requested once).
  DataLoaders request_loaders(EvalKind kind);
  /// The batch limit of each loader under `limit` (and fast_dev_run).
  std::vector<std::int64_t> limit_batches(const DataLoaders& loaders,
                                          const BatchAmount& limit) const;
  /// The transfer hooks: on_before_batch_transfer, transfer_batch_to_device,
  /// on_after_batch_transfer.
  Batch transfer(Batch batch, std::int64_t dataloader_idx);
  /// Forgets the run's loaders (at its end).
  void clear();

  bool has_train_loader() const { return !train_loaders_.empty(); }
  data::DataLoader& train_loader() const { return *train_loaders_[0]; }
  bool val_loaders_requested() const { return val_loaders_requested_; }
  std::int64_t num_training_batches() const { return num_training_batches_; }
  const std::vector<std::int64_t>& num_val_batches() const { return num_val_batches_; }
  /// Validation runs every this many training batches.
  std::int64_t val_check_batch() const { return val_check_batch_; }
  /// Evaluation batches seen per dataloader since the loaders were requested: the step of
  /// evaluation step metrics sent to loggers.
  std::vector<std::int64_t>& seen_eval_batches() { return seen_eval_batches_; }

 private:
  /// DDP with use_distributed_sampler: each rank gets its shard of every loader.
  void shard(const DataLoaders& loaders) const;

  const TrainerOptions& options_;
  const TrainerState& state_;
  HookEmitter& hooks_;
  Strategy& strategy_;
  DataLoaders train_loaders_;
  DataLoaders val_loaders_;
  bool val_loaders_requested_ = false;
  std::int64_t num_training_batches_ = 0;
  std::int64_t val_check_batch_ = 1;
  std::vector<std::int64_t> num_val_batches_;
  std::vector<std::int64_t> seen_eval_batches_;
};

}  // namespace hookline
