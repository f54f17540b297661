// hookline: priority bands, the default order of subscribers.
//
// A subscriber's priority is an int; lower runs first and ties keep registration order. The bands
// below are ranges of width 1000 that reproduce Lightning 2.2's default order for most hooks:
// tuner callbacks, ordinary callbacks, monitoring callbacks (EarlyStopping), checkpoint callbacks,
// then the data module and the module. A few hooks order the bands differently (setup/teardown
// call the data module first; on_train_epoch_end calls the module before monitoring callbacks);
// events declare that with an OrderRule and the dispatch policy applies it.
// Use `band::callback + n` to place a subscriber inside a band.
#pragma once

namespace hookline::band {

inline constexpr int width = 1000;
inline constexpr int tuner = 0;           ///< BatchSizeFinder, LearningRateFinder
inline constexpr int callback = 1000;     ///< ordinary callbacks (the default)
inline constexpr int monitoring = 2000;   ///< EarlyStopping and other monitors
inline constexpr int checkpoint = 3000;   ///< ModelCheckpoint: always last among callbacks
inline constexpr int data_module = 4000;  ///< the DataModule
inline constexpr int module = 5000;       ///< the Module (LightningModule)

}  // namespace hookline::band

namespace hookline {

/// How an event orders the bands (see bands.hpp). Declared by each event type.
enum class OrderRule {
  standard,                  ///< tuner, callback, monitoring, checkpoint, data_module, module
  data_module_first,         ///< data_module, tuner, callback, monitoring, checkpoint, module
  module_before_monitoring,  ///< tuner, callback, data_module, module, monitoring, checkpoint
  module_first,              ///< module, data_module, tuner, callback, monitoring, checkpoint
};

}  // namespace hookline
