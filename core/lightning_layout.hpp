// hookline: Lightning's layout of a checkpoint's loop state and scheduler states (internal to the
// checkpoint connector; docs/checkpoints.md describes the layout).
//
// hookline keeps its own fit-loop state (where in an epoch a checkpoint was taken, the loader's
// position, the random generators, the logged metrics). Lightning 2.2 keeps progress counters per
// loop ("epoch_progress", "epoch_loop.batch_progress", ...; its loops/progress.py) under
// "loops.fit_loop" and reads only the keys it knows. So a hookline checkpoint has both: Lightning's
// counters, computed from hookline's state, and hookline's state itself under
// "loops.fit_loop.hookline". Reading, hookline takes its own state when it is there ("hookline",
// or the whole "fit_loop" in format 2), else rebuilds it from Lightning's counters.
#pragma once

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>

#include <string>

namespace hookline::detail {

/// The Lightning version whose checkpoint layout hookline writes ("pytorch-lightning_version":
/// Lightning migrates files of older versions on load, and refuses none of newer ones).
inline constexpr const char* kLightningLayoutVersion = "2.2.0";

/// The "loops" entry of a checkpoint for hookline's fit-loop state `fit_loop` (the dictionary
/// CheckpointConnector::dump builds: current_epoch, global_step, epoch_progress, ...).
c10::impl::GenericDict lightning_loops(const c10::impl::GenericDict& fit_loop);

/// hookline's fit-loop state from a checkpoint's top-level dictionary. `from_lightning` is set
/// when it was rebuilt from Lightning's counters (a checkpoint Lightning wrote); what Lightning's
/// loops hold that hookline does not take is reported by name (a warning). Throws CheckpointError
/// naming `path` when neither layout is there.
c10::impl::GenericDict hookline_fit_loop(const c10::impl::GenericDict& top, const std::string& path,
                                         bool& from_lightning);

/// A scheduler's state as a checkpoint holds it: an integer (the step count of LibTorch's
/// schedulers) in PyTorch's LRScheduler.state_dict() layout, {"_step_count": n, "last_epoch":
/// n - 1} (LibTorch's count is PyTorch's _step_count once the scheduler took PyTorch's
/// constructor step); anything else as it is.
c10::IValue scheduler_state_to_file(const c10::IValue& state);
/// The reverse, for a scheduler whose live state is like `live`: PyTorch's layout gives back the
/// integer (its "_step_count") when `live` is one.
c10::IValue scheduler_state_from_file(const c10::IValue& saved, const c10::IValue& live);

/// A callback's score (EarlyStopping's best_score, ModelCheckpoint's scores) as Lightning keeps
/// it: a one-element tensor (float64, so hookline reads back exactly what it wrote).
c10::IValue score_to_file(double score);
/// A score from a checkpoint: a one-element tensor (Lightning's, hookline's) or a number (format
/// 2). Throws std::invalid_argument for anything else.
double score_from_file(const c10::IValue& value);

}  // namespace hookline::detail
