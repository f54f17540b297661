// hookline: CSVLogger, metrics as CSV and hyperparameters as YAML in Lightning's layout.
//
//   <save_dir>/<name>/version_N/metrics.csv    one row per log_metrics call: a "step" column and
//                                               one per key (the sorted union of every key logged
//                                               so far; the file is rewritten when a new key
//                                               appears), empty where a row has no value
//   <save_dir>/<name>/version_N/hparams.yaml   the hyperparameters
//
// The version is the next free version_N unless given; an empty name drops that directory level.
// Rows are buffered and written every flush_logs_every_n_steps steps and on save() (the trainer
// saves after each of its log_metrics calls, as Lightning does). Numbers are written as Python
// writes them, lines end in CRLF (Python's csv module), so Lightning's readers see the same file.
//
//   trainer options: TrainerOptions().logger(std::make_shared<CSVLogger>("logs"))
#pragma once

#include "hookline/core/chained_options.hpp"
#include "hookline/core/logger.hpp"

#include <string>
#include <vector>

namespace hookline {

/// The records of CSV text (RFC 4180: quoted fields, doubled quotes, CRLF or LF line ends; blank
/// lines skipped). CSVLogger reads its own file back with it when the columns change.
std::vector<std::vector<std::string>> read_csv(const std::string& text);

class CSVLoggerOptions {
  /// Experiment name: the directory under save_dir ("" for none).
  HOOKLINE_CHAINED_OPTION(CSVLoggerOptions, std::string, name, "lightning_logs")
  /// Fixed version (number or name); default: the next free version_N.
  HOOKLINE_CHAINED_OPTION(CSVLoggerOptions, std::optional<LoggerVersion>, version, std::nullopt)
  /// Put before every metric key, joined with "-".
  HOOKLINE_CHAINED_OPTION(CSVLoggerOptions, std::string, prefix, "")
  /// Write buffered rows when (step + 1) is a multiple of this.
  HOOKLINE_CHAINED_OPTION(CSVLoggerOptions, std::int64_t, flush_logs_every_n_steps, 100)
};

class CSVLogger : public DirectoryLogger {
 public:
  explicit CSVLogger(std::string save_dir, CSVLoggerOptions options = {});

  void log_metrics(const std::map<std::string, double>& metrics,
                   std::optional<std::int64_t> step) override;
  void log_hyperparams(const Checkpoint& params) override;
  void save() override;
  void finalize(const std::string& status) override;
  const CSVLoggerOptions& options() const { return options_; }

 private:
  void ensure_experiment() override;  // mutex held
  void save_locked();

  CSVLoggerOptions options_;
  bool experiment_ = false;
  std::vector<std::map<std::string, std::string>> rows_;  // not yet written
  std::vector<std::string> keys_;                         // the file's columns, sorted
  Checkpoint hparams_;
};

}  // namespace hookline
