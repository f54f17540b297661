// hookline: CheckpointConnector, saving a run's state into a checkpoint and restoring it
// (Lightning's _CheckpointConnector). See checkpoint_connector.cpp for what a checkpoint holds and
// the order of the restore's hooks.
#pragma once

#include "hookline/core/checkpoint.hpp"
#include "hookline/core/data_module.hpp"
#include "hookline/core/loops/callback_connector.hpp"
#include "hookline/core/loops/run_parts.hpp"

#include <future>
#include <memory>
#include <string>

namespace hookline {

class Trainer;

class CheckpointConnector {
 public:
  struct Parts : RunParts {
    CallbackConnector& callbacks;
  };
  explicit CheckpointConnector(const Parts& parts);
  ~CheckpointConnector();

  /// The data module of the current run (its state is saved and restored), or null.
  void set_data_module(DataModule* data) { data_ = data; }

  // ---- saving -------------------------------------------------------------------------------
  /// The run's state as a checkpoint, firing state_dict / on_save_checkpoint as Lightning does.
  Checkpoint dump(bool weights_only);
  /// Trainer::save_checkpoint.
  void save(const std::string& path, bool weights_only);
  /// Waits for the background write in progress, if any; rethrows its failure.
  void wait();
  /// The file of the background write in progress ("" if none).
  const std::string& pending_path() const { return pending_path_; }

  // ---- restoring ----------------------------------------------------------------------------
  /// "best" and "last" resolved through the checkpoint callbacks; a file name as it is.
  std::string resolve(const std::string& ckpt_path, const Trainer& trainer) const;
  /// The file the current (or last) fit resumed from ("" if none).
  const std::string& ckpt_path() const { return ckpt_path_; }
  void set_ckpt_path(std::string path) { ckpt_path_ = std::move(path); }
  /// After configure_model: checks the file, then the module's on_load_checkpoint, its weights,
  /// the data module's state and (fitting) the callbacks' states. Throws CheckpointError with
  /// nothing changed when the file does not fit.
  void restore_modules_and_callbacks(const std::string& path);
  /// After on_fit_start: the optimizers', schedulers' and fit loop's state.
  void restore_training_state();
  /// The train loader's saved position, applied once the loader exists.
  void resume_loader();
  /// Where the fit loop reaches the saved position: the rest of the loop state and the random
  /// generators. Returns whether the current epoch resumes part-way.
  bool resume_epoch();
  /// From here on a failure is the run's, not the file's: no rollback.
  void commit();
  /// Whether a restore is in progress.
  bool restoring() const { return restore_ != nullptr; }
  /// Whether the checkpoint was saved during on_train_epoch_end.
  bool resumes_after_epoch_end() const;
  void finish_restore();
  /// After a failure: a restore the file did not fit gives the module its parameters and buffers
  /// from before it back (the callbacks and data module keep what they loaded: their state_dict
  /// is not called to keep copies), and the run saves no checkpoint from then on. A failure that
  /// is not the file's keeps the restore pending.
  void rollback() noexcept;
  /// The run ended: a restore it did not reach is dropped.
  void end_run();

 private:
  struct Restore;

  void load_modules_and_callbacks(const std::string& path);
  void check_training_state(const c10::impl::GenericDict& top, Restore& restore) const;
  void load_training_state();
  template <class F>
  void or_undo(F&& f);
  c10::impl::GenericDict accumulated_grads() const;

  Parts p_;
  DataModule* data_ = nullptr;
  std::unique_ptr<Restore> restore_;  // a checkpoint being restored, until the loop reaches it
  std::string ckpt_path_;
  std::string refused_;  // the file of a restore that failed this run: no save until it ends
  std::future<void> pending_write_;
  std::string pending_path_;
};

}  // namespace hookline
