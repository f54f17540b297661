// hookline: ModelCheckpoint, Lightning's ModelCheckpoint callback.
//
// Saves checkpoints during fit: the top-k by a monitored metric (or the latest when nothing is
// monitored), a "last" checkpoint, on a schedule of epochs, training steps or wall time.
//
//   auto best = std::make_shared<ModelCheckpoint>(
//       ModelCheckpointOptions().monitor("val_loss").save_top_k(2).save_last(SaveLast::yes)
//           .filename("{epoch}-{val_loss:.2f}"));
//   Trainer trainer(TrainerOptions().max_epochs(10), {best});
//   trainer.fit(model, data);
//   best->best_model_path();   // e.g. ".../checkpoints/epoch=7-val_loss=0.31.ckpt"
//
// Behaviour follows Lightning 2.2:
// - dirpath: the option, else `<default_root_dir>/checkpoints`.
// - filename: a template with metric placeholders in Python's format syntax, `{epoch}`, `{step}`
//   and any logged metric: `{val_loss:.2f}`, `{epoch:03d}`. With auto_insert_metric_name (default)
//   a placeholder becomes "name=value". Default "{epoch}-{step}" -> "epoch=3-step=120.ckpt". A
//   name clash gets "-v1", "-v2", ... (enable_version_counter).
// - when: with every_n_epochs (default 1 when no trigger is given) at the end of the training
//   epoch if there is no validation or it runs once per epoch at its end, otherwise at the end of
//   validation (save_on_train_epoch_end overrides); every_n_train_steps at training batch ends;
//   train_time_interval at the first training batch end after the interval. Never during the
//   sanity check, outside fit, with fast_dev_run, or twice for the same global step.
// - top-k: with a monitor, the k best by `mode`; save_top_k -1 keeps all, 0 none. Without a
//   monitor, save_top_k 1 keeps the latest (-1 all). A NaN score ranks last.
// - save_last: also writes "last.ckpt" (SaveLast::link: a symbolic link to the newest top-k file).
// - files it no longer keeps are deleted, but only files it wrote inside its own directory, and
//   never the file the run resumed from.
// - its state (best_model_path, best_k_models, ...) is saved in checkpoints under a state_key that
//   names its configuration, so differently configured ModelCheckpoints coexist.
#pragma once

#include "hookline/core/chained_options.hpp"
#include "hookline/core/checkpoint_callback.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

enum class SaveLast { no, yes, link };

class ModelCheckpointOptions {
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::string, dirpath, "")
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::string, filename, "")
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::string, monitor, "")
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, bool, verbose, false)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, SaveLast, save_last, SaveLast::no)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::int64_t, save_top_k, 1)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, bool, save_weights_only, false)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::string, mode, "min")
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, bool, auto_insert_metric_name, true)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::optional<std::int64_t>, every_n_train_steps,
                          std::nullopt)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::optional<std::chrono::milliseconds>,
                          train_time_interval, std::nullopt)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::optional<std::int64_t>, every_n_epochs,
                          std::nullopt)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, std::optional<bool>, save_on_train_epoch_end,
                          std::nullopt)
  HOOKLINE_CHAINED_OPTION(ModelCheckpointOptions, bool, enable_version_counter, true)
};

class ModelCheckpoint : public CheckpointCallback {
 public:
  static constexpr const char* kNameLast = "last";
  static constexpr const char* kExtension = ".ckpt";

  /// Throws std::invalid_argument for a configuration Lightning rejects (naming the option).
  explicit ModelCheckpoint(ModelCheckpointOptions options = {});

  std::string state_key() const override;
  std::string best_model_path() const override { return best_model_path_; }
  std::vector<std::string> last_checkpoint_candidates(const Trainer& trainer) const override;

  const ModelCheckpointOptions& options() const { return options_; }
  /// The directory in use (resolved at setup when the option is empty).
  const std::string& dirpath() const { return dirpath_; }
  std::optional<double> best_model_score() const { return best_model_score_; }
  std::optional<double> current_score() const { return current_score_; }
  /// path -> score of the files kept for top-k.
  const std::map<std::string, double>& best_k_models() const { return best_k_models_; }
  const std::string& kth_best_model_path() const { return kth_best_model_path_; }
  double kth_value() const { return kth_value_; }
  const std::string& last_model_path() const { return last_model_path_; }
  /// The file name `metrics` (plus epoch and step) give, in dirpath; `ver` adds "-v<ver>".
  std::string format_checkpoint_name(const std::map<std::string, double>& metrics,
                                     const std::string& filename = {},
                                     std::optional<int> ver = std::nullopt) const;

  void setup(Trainer& trainer, Module& module, Stage stage) override;
  void on_train_start(Trainer& trainer, Module& module) override;
  void on_train_batch_end(Trainer& trainer, Module& module, const StepOutput& outputs,
                          const Batch& batch, std::int64_t batch_idx) override;
  void on_train_epoch_end(Trainer& trainer, Module& module) override;
  void on_validation_end(Trainer& trainer, Module& module) override;
  void state_dict(Checkpoint& state) const override;
  void load_state_dict(const Checkpoint& state) override;

 private:
  std::string resolve_dirpath(const Trainer& trainer) const;
  std::map<std::string, double> monitor_candidates(const Trainer& trainer) const;
  bool should_skip_saving(const Trainer& trainer) const;
  bool should_save_on_train_epoch_end(const Trainer& trainer) const;
  void save_topk(Trainer& trainer, const std::map<std::string, double>& candidates);
  void save_last(Trainer& trainer, const std::map<std::string, double>& candidates);
  void update_best_and_save(double current, Trainer& trainer,
                            const std::map<std::string, double>& candidates);
  std::string free_name(const std::map<std::string, double>& candidates,
                        const std::string& filename, const std::string& keep) const;
  void save(Trainer& trainer, const std::string& path);
  void remove_if_ours(const Trainer& trainer, const std::string& previous,
                      const std::string& current);

  ModelCheckpointOptions options_;
  std::int64_t every_n_train_steps_ = 0;
  std::int64_t every_n_epochs_ = 0;
  std::string dirpath_;
  std::optional<double> best_model_score_, current_score_;
  std::map<std::string, double> best_k_models_;
  std::string best_model_path_, kth_best_model_path_, last_model_path_;
  double kth_value_ = 0;
  std::int64_t last_global_step_saved_ = 0;
  std::string last_checkpoint_saved_;
  std::chrono::steady_clock::time_point last_time_checked_{};
  bool time_checked_ = false;
  bool validation_ran_ = false;
};

}  // namespace hookline
