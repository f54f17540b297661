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

// Adds a `Default` to `out` when `enabled` and `given` has no T; a T given while the option is
// off is an error.
template <class T, class Default>
void add_default(std::vector<std::shared_ptr<Callback>>& out,
                 const std::vector<std::shared_ptr<Callback>>& given, bool enabled,
                 const std::string& option, const std::string& what) {
  if (const Callback* found = find_one<T>(given)) {
    if (!enabled)
      throw std::invalid_argument("TrainerOptions::" + option +
                                  "(false), but the callbacks include " + what + " '" +
                                  found->name() + "'; remove it or leave " + option + " on");
  } else if (enabled) {
    out.push_back(std::make_shared<Default>());
  }
}

}  // namespace

TrainerDefaults trainer_defaults(const TrainerOptions& options,
                                 const std::vector<std::shared_ptr<Callback>>& given) {
  TrainerDefaults defaults;
  // A progress bar by default ...
  add_default<TQDMProgressBar, TQDMProgressBar>(defaults.callbacks, given,
                                                options.enable_progress_bar(),
                                                "enable_progress_bar", "the progress bar");
  // ... and a model summary (Lightning adds none when off, and keeps one the user gave).
  if (options.enable_model_summary() && !find_one<ModelSummary>(given))
    defaults.callbacks.push_back(std::make_shared<ModelSummary>());
  // The loggers given, else the default one.
  if (!options.loggers().empty())
    defaults.loggers = options.loggers();
  else if (options.logger())
    defaults.loggers.push_back(std::make_shared<TensorBoardLogger>(options.default_root_dir()));
  // A ModelCheckpoint by default, none when turned off.
  add_default<CheckpointCallback, ModelCheckpoint>(defaults.callbacks, given,
                                                   options.enable_checkpointing(),
                                                   "enable_checkpointing", "checkpoint callback");
  return defaults;
}

}  // namespace hookline
