// hookline: CheckpointCallback, the base of callbacks that write checkpoints (Lightning's
// `Checkpoint`).
//
// The trainer recognises these callbacks: they run in the `checkpoint` band (after every other
// callback, as Lightning moves them last), `enable_checkpointing` adds a ModelCheckpoint only when
// none is given, and `fit(..., ckpt_path)` resolves "best" and "last" through them.
#pragma once

#include "hookline/core/callback.hpp"

#include <string>
#include <vector>

namespace hookline {

class CheckpointCallback : public Callback {
 public:
  explicit CheckpointCallback(std::string name, int priority = band::checkpoint)
      : Callback(std::move(name), priority) {}

  /// The best checkpoint written so far ("" when none): what ckpt_path="best" loads.
  virtual std::string best_model_path() const { return {}; }
  /// Files that may hold the latest state of the run: ckpt_path="last" loads the newest that
  /// exists.
  virtual std::vector<std::string> last_checkpoint_candidates(const Trainer& trainer) const {
    (void)trainer;
    return {};
  }
};

}  // namespace hookline
