// hookline: DataModule, our LightningDataModule.
//
// A DataModule owns the data of a run: it prepares it, builds the dataloaders of each stage and
// can carry state into checkpoints. Attached to a run, it answers the *_dataloader hooks instead
// of the module. Its batch-transfer hooks replace the module's only where it says so in
// `batch_hooks()` (C++ cannot see which virtual methods a subclass overrides; Lightning uses the
// data module's hook where it overrides one).
#pragma once

#include "hookline/hooks/hooks.hpp"

#include <cstdint>
#include <string>

namespace hookline {

class Sink;

class DataModule {
 public:
  /// Which batch-transfer hooks this data module answers instead of the module.
  struct BatchHooks {
    bool on_before_batch_transfer = false;
    bool transfer_batch_to_device = false;
    bool on_after_batch_transfer = false;
  };

  explicit DataModule(std::string name = "data_module") : name_(std::move(name)) {}
  virtual ~DataModule() = default;

  virtual void prepare_data() {}
  virtual void setup(Stage) {}
  virtual void teardown(Stage) {}
  virtual DataLoaders train_dataloader() { return {}; }
  virtual DataLoaders val_dataloader() { return {}; }
  virtual DataLoaders test_dataloader() { return {}; }
  virtual DataLoaders predict_dataloader() { return {}; }

  virtual BatchHooks batch_hooks() const { return {}; }
  virtual Batch on_before_batch_transfer(Batch batch, std::int64_t) { return batch; }
  virtual Batch transfer_batch_to_device(Batch batch, c10::Device device, std::int64_t) {
    return std::move(batch).to(device);
  }
  virtual Batch on_after_batch_transfer(Batch batch, std::int64_t) { return batch; }

  /// State saved in checkpoints under the key name() (Lightning: the class name); restored on
  /// resume right after the module's on_load_checkpoint.
  virtual void state_dict(Checkpoint&) const {}
  virtual void load_state_dict(const Checkpoint&) {}

  const std::string& name() const { return name_; }

 private:
  friend class Trainer;
  void subscribe(Sink& sink);
  std::string name_;
};

}  // namespace hookline
