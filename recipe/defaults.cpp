// The Trainer's defaults (core/defaults.hpp), as Lightning's callback and logger connectors add
// them: a progress bar, a model summary and a ModelCheckpoint, and a TensorBoard logger.
#include "hookline/core/defaults.hpp"
#include "hookline/callbacks/model_checkpoint.hpp"
#include "hookline/callbacks/model_summary.hpp"
#include "hookline/callbacks/progress_bar.hpp"
#include "hookline/core/checkpoint_callback.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/loggers/tensorboard_logger.hpp"

#include <algorithm>
#include <stdexcept>

namespace hookline {

namespace {

template <typename T>
const Callback* find_one(const std::vector<std::shared_ptr<Callback>>& callbacks) {
  const auto it = std::find_if(callbacks.begin(), callbacks.end(), [](const auto& c) {
    return dynamic_cast<const T*>(c.get()) != nullptr;
  });
  return it == callbacks.end() ? nullptr : it->get();
}

}  // namespace

TrainerDefaults trainer_defaults(const TrainerOptions& options,
                                 const std::vector<std::shared_ptr<Callback>>& given) {
  TrainerDefaults defaults;
  // A progress bar by default ...
  if (const Callback* bar = find_one<TQDMProgressBar>(given)) {
    if (!options.enable_progress_bar())
      throw std::invalid_argument(
          "TrainerOptions::enable_progress_bar(false), but the callbacks include the progress "
          "bar '" +
          bar->name() + "'; remove it or leave enable_progress_bar on");
  } else if (options.enable_progress_bar()) {
    defaults.callbacks.push_back(std::make_shared<TQDMProgressBar>());
  }
  // ... and a model summary (Lightning adds none when off, and keeps one the user gave).
  if (options.enable_model_summary() && !find_one<ModelSummary>(given))
    defaults.callbacks.push_back(std::make_shared<ModelSummary>());
  // The loggers given, else the default one.
  if (!options.loggers().empty())
    defaults.loggers = options.loggers();
  else if (options.logger())
    defaults.loggers.push_back(std::make_shared<TensorBoardLogger>(options.default_root_dir()));
  // A ModelCheckpoint by default, none when turned off.
  if (const Callback* checkpoint = find_one<CheckpointCallback>(given)) {
    if (!options.enable_checkpointing())
      throw std::invalid_argument(
          "TrainerOptions::enable_checkpointing(false), but the callbacks include checkpoint "
          "callback '" +
          checkpoint->name() + "'; remove it or leave enable_checkpointing on");
  } else if (options.enable_checkpointing()) {
    defaults.callbacks.push_back(std::make_shared<ModelCheckpoint>());
  }
  return defaults;
}

}  // namespace hookline
