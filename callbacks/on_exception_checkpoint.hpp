// hookline: OnExceptionCheckpoint, Lightning's callback that saves when a run fails.
//
// On any exception that reaches on_exception — an error in a hook, or RunInterrupted after
// SIGTERM/SIGINT — it writes `<dirpath>/<filename>.ckpt`, so the run can resume with
// `fit(model, data, "last")` (its file is among the "last" candidates) or with the path. The file
// is removed when a later run of the same trainer tears down normally, as in Lightning.
//
//   Trainer trainer(TrainerOptions(), {std::make_shared<OnExceptionCheckpoint>("ckpts")});
#pragma once

#include "hookline/core/checkpoint_callback.hpp"

#include <string>
#include <vector>

namespace hookline {

class OnExceptionCheckpoint : public CheckpointCallback {
 public:
  static constexpr const char* kExtension = ".ckpt";

  /// Throws std::invalid_argument when `filename` is empty.
  explicit OnExceptionCheckpoint(std::string dirpath, std::string filename = "on_exception");

  /// The file it writes.
  std::string ckpt_path() const;
  std::vector<std::string> last_checkpoint_candidates(const Trainer&) const override {
    return {ckpt_path()};
  }

  void on_exception(Trainer& trainer, Module& module, const std::exception_ptr& error) override;
  void teardown(Trainer& trainer, Module& module, Stage stage) override;

 private:
  std::string dirpath_;
  std::string filename_;
};

}  // namespace hookline
