// hookline: TensorBoardLogger, TensorBoard event files written natively (no Python).
//
//   <save_dir>/<name>/version_N[/<sub_dir>]/events.out.tfevents.<time>.<host>.<pid>.<n>
//   <save_dir>/<name>/version_N[/<sub_dir>]/hparams.yaml
//
// Open them with `tensorboard --logdir <save_dir>/<name>`. Each record is TFRecord-framed
// (length, masked CRC32C of the length, an Event protobuf, masked CRC32C of the data); the first
// holds the file version "brain.Event:2". log_metrics writes one scalar per key at the step,
// log_hyperparams the hparams plugin's experiment, session start and session end summaries (as
// torch's SummaryWriter.add_hparams does, with Lightning's "hp_metric" = -1 unless
// default_hp_metric is off), log_text a text summary "<tag>/text_summary". The default logger of
// a Trainer (Lightning's choice when tensorboard is available).
#pragma once

#include "hookline/core/chained_options.hpp"
#include "hookline/core/logger.hpp"
#include "hookline/loggers/tfrecord.hpp"

#include <cstdio>
#include <memory>

namespace hookline {

class TensorBoardLoggerOptions {
  /// Experiment name: the directory under save_dir ("" for none).
  HOOKLINE_CHAINED_OPTION(TensorBoardLoggerOptions, std::string, name, "lightning_logs")
  /// Fixed version (number or name); default: the next free version_N.
  HOOKLINE_CHAINED_OPTION(TensorBoardLoggerOptions, std::optional<LoggerVersion>, version,
                          std::nullopt)
  /// Log "hp_metric" = -1 with the hyperparameters so TensorBoard's HPARAMS tab shows them.
  HOOKLINE_CHAINED_OPTION(TensorBoardLoggerOptions, bool, default_hp_metric, true)
  /// Put before every metric key, joined with "-".
  HOOKLINE_CHAINED_OPTION(TensorBoardLoggerOptions, std::string, prefix, "")
  /// A directory below the version directory for the event files.
  HOOKLINE_CHAINED_OPTION(TensorBoardLoggerOptions, std::string, sub_dir, "")
};

class TensorBoardLogger : public DirectoryLogger {
 public:
  explicit TensorBoardLogger(std::string save_dir, TensorBoardLoggerOptions options = {});
  ~TensorBoardLogger() override;

  void log_metrics(const std::map<std::string, double>& metrics,
                   std::optional<std::int64_t> step) override;
  /// Records `params` (nested dicts flattened with "/"); with `metrics` (default: hp_metric = -1
  /// when default_hp_metric) they are what TensorBoard's HPARAMS tab shows.
  void log_hyperparams(const Checkpoint& params) override;
  void log_hyperparams(const Checkpoint& params, const std::map<std::string, double>& metrics);
  /// A text summary (TensorBoard's TEXT tab), as SummaryWriter.add_text.
  void log_text(const std::string& tag, const std::string& text, std::int64_t step = 0);
  void save() override;
  void finalize(const std::string& status) override;
  /// The event file being written ("" before the experiment exists).
  std::string event_file() const;
  const TensorBoardLoggerOptions& options() const { return options_; }

 private:
  void ensure_experiment() override;  // mutex held
  void write_record(const std::string& event_bytes);
  void write_scalars(const std::map<std::string, double>& metrics, std::int64_t step);
  void close();

  TensorBoardLoggerOptions options_;
  std::string event_file_;
  std::FILE* file_ = nullptr;
  Checkpoint hparams_;
};

}  // namespace hookline
