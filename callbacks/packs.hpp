// hookline: the callback packs hookline ships (see core/callback_pack.hpp for what a pack is).
//
//   trainer.add_pack(classification_defaults(ClassificationDefaultsOptions().monitor("val_acc")
//                                                .mode("max")));
//   trainer.add_pack(debugging());
//
// - classification_defaults: a ModelCheckpoint on the best `monitor` (top 1, plus last.ckpt),
//   EarlyStopping on the same metric (`patience`, `min_delta`), and a LearningRateMonitor. The
//   progress bar and the logger are the Trainer's own defaults (on unless turned off), so the
//   pack does not add a second one.
// - debugging: AnomalyDetection (a NaN/Inf loss or gradient stops the fit with a verdict naming
//   the parameter, and the bad step changes no weight) and tracing of every event into a ring
//   buffer (`trace`, default "ring:10000"), which is dumped when the run fails or is stopped by
//   a signal (see docs/tracing.md).
// Both are registered by name for recipes ("classification_defaults", "debugging").
#pragma once

#include "hookline/core/callback_pack.hpp"
#include "hookline/core/chained_options.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace hookline {

class ClassificationDefaultsOptions {
  HOOKLINE_CHAINED_OPTION(ClassificationDefaultsOptions, std::string, name, "defaults")
  HOOKLINE_CHAINED_OPTION(ClassificationDefaultsOptions, std::string, monitor, "val_loss")
  HOOKLINE_CHAINED_OPTION(ClassificationDefaultsOptions, std::string, mode, "min")
  HOOKLINE_CHAINED_OPTION(ClassificationDefaultsOptions, std::int64_t, patience, 3)
  HOOKLINE_CHAINED_OPTION(ClassificationDefaultsOptions, double, min_delta, 0.0)
  HOOKLINE_CHAINED_OPTION(ClassificationDefaultsOptions, std::string, dirpath, "")
  HOOKLINE_CHAINED_OPTION(ClassificationDefaultsOptions, bool, log_momentum, false)
};

/// Throws std::invalid_argument for an empty monitor or a mode other than "min"/"max".
std::shared_ptr<CallbackPack> classification_defaults(ClassificationDefaultsOptions options = {});

class DebuggingOptions {
  HOOKLINE_CHAINED_OPTION(DebuggingOptions, std::string, name, "debugging")
  HOOKLINE_CHAINED_OPTION(DebuggingOptions, std::string, trace, "ring:10000")
  HOOKLINE_CHAINED_OPTION(DebuggingOptions, bool, check_loss, true)
  HOOKLINE_CHAINED_OPTION(DebuggingOptions, bool, check_gradients, true)
};

std::shared_ptr<CallbackPack> debugging(DebuggingOptions options = {});

}  // namespace hookline
