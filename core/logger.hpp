// hookline: Logger, where the trainer sends logged metrics and hyperparameters (Lightning's
// lightning.pytorch.loggers.Logger).
//
// The trainer feeds its loggers exactly where Lightning does: the step values of a training batch
// every log_every_n_steps batches that stepped (and when a stop is requested), the epoch values
// after every training epoch, evaluation step values after every evaluation batch and the epoch
// values at the end of every validation/test run. Metrics sent without a step get Lightning's
// "epoch" key and the step "batches that stepped". Hyperparameters (Module::hparams()) are
// logged once per run, after on_fit_start; finalize("success") follows the teardown hooks,
// finalize("failed") an exception.
//
// The trainer calls its loggers on the bus's async lane, one call at a time and in order, so a
// logger's file I/O never stalls a training step; the trainer waits for them at every epoch end
// and at the end of a run, where a logger's failure is rethrown. Calls you make yourself run on
// your thread; CSVLogger and TensorBoardLogger lock, so both may be mixed.
#pragma once

#include "hookline/core/checkpoint.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace hookline {

/// A logger's version: a number (directory "version_N") or a name (the directory itself).
using LoggerVersion = std::variant<std::int64_t, std::string>;

class Logger {
 public:
  virtual ~Logger() = default;

  /// Records `metrics` at `step` (none: the logger's own count).
  virtual void log_metrics(const std::map<std::string, double>& metrics,
                           std::optional<std::int64_t> step) = 0;
  /// Records the run's hyperparameters.
  virtual void log_hyperparams(const Checkpoint& params) = 0;
  /// Writes what is buffered.
  virtual void save() {}
  /// The run ended: "success", "failed" or "finished" (Lightning's statuses). Default: save().
  virtual void finalize(const std::string& status);

  /// The experiment's name ("" if none).
  virtual std::string name() const = 0;
  /// The version, resolved on first use (the next free version_N by default).
  virtual LoggerVersion version() = 0;
  /// Root directory of this logger's experiments ("" when it writes no files).
  virtual std::string save_dir() const { return {}; }
  /// Directory of this run's files (default: save_dir()).
  virtual std::string log_dir() { return save_dir(); }
  /// Creates what the logger writes into (directories, files), as Lightning does when it touches
  /// `logger.experiment` before the setup hooks. Default: nothing.
  virtual void init_experiment() {}
};

/// The part CSVLogger and TensorBoardLogger share: files under
/// <save_dir>/<name>/<version dir>[/<sub_dir>], the version resolved once (the next free version_N
/// unless fixed), and the lock every call of theirs takes.
class DirectoryLogger : public Logger {
 public:
  std::string name() const override { return name_; }
  LoggerVersion version() override;
  std::string save_dir() const override { return save_dir_; }
  /// <save_dir>/<name>
  std::string root_dir() const;
  std::string log_dir() override;
  void init_experiment() override;

 protected:
  DirectoryLogger(std::string save_dir, std::string name, std::optional<LoggerVersion> version,
                  std::string sub_dir = "");
  /// Creates the run's directory and files if missing; mutex_ held.
  virtual void ensure_experiment() = 0;
  /// Sets log_dir_ (resolving the version) unless init_experiment did; mutex_ held.
  void resolve_log_dir();

  mutable std::mutex mutex_;
  std::optional<LoggerVersion> version_;
  std::string log_dir_;  // the run's directory once resolved

 private:
  std::string run_dir(const LoggerVersion& version) const;

  std::string save_dir_, name_, sub_dir_;
};

/// "version_3" for 3, the name itself for a named version (Lightning's directory naming).
std::string version_dirname(const LoggerVersion& version);
/// "3" or the name, as the progress bar shows it (v_num).
std::string version_string(const LoggerVersion& version);

/// The next free version number under `root`: one more than the highest "version_N" directory,
/// 0 when there is none (and a warning when `root` is missing, as Lightning's).
std::int64_t next_logger_version(const std::string& root);

/// Python's repr() of a float ("0.1", "1.0", "1e-05", "nan"), as Lightning's files spell numbers.
std::string python_float(double value);

/// The items of a list or a tuple, in order (empty for any other value): one walk for the
/// writers of hyperparameters, which treat both alike.
std::vector<c10::IValue> sequence_items(const c10::IValue& value);

}  // namespace hookline

namespace hookline {

/// `params` as PyYAML writes a dict (keys sorted, block style), as in Lightning's hparams.yaml.
/// Tensors cannot be written and are left out with a warning.
std::string hparams_to_yaml(const Checkpoint& params);

}  // namespace hookline
