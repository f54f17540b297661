#include "hookline/callbacks/packs.hpp"

#include "hookline/callbacks/anomaly_detection.hpp"
#include "hookline/callbacks/early_stopping.hpp"
#include "hookline/callbacks/lr_monitor.hpp"
#include "hookline/callbacks/model_checkpoint.hpp"

namespace hookline {

std::shared_ptr<CallbackPack> classification_defaults(ClassificationDefaultsOptions options) {
  auto pack = std::make_shared<CallbackPack>(options.name());
  pack->add(std::make_shared<ModelCheckpoint>(ModelCheckpointOptions()
                                                  .monitor(options.monitor())
                                                  .mode(options.mode())
                                                  .dirpath(options.dirpath())
                                                  .save_top_k(1)
                                                  .save_last(SaveLast::yes)));
  pack->add(std::make_shared<EarlyStopping>(EarlyStoppingOptions()
                                                .monitor(options.monitor())
                                                .mode(options.mode())
                                                .patience(options.patience())
                                                .min_delta(options.min_delta())));
  pack->add(std::make_shared<LearningRateMonitor>(
      LearningRateMonitorOptions().log_momentum(options.log_momentum())));
  return pack;
}

std::shared_ptr<CallbackPack> debugging(DebuggingOptions options) {
  auto pack = std::make_shared<CallbackPack>(options.name());
  pack->add(std::make_shared<AnomalyDetection>(AnomalyDetectionOptions()
                                                   .check_loss(options.check_loss())
                                                   .check_gradients(options.check_gradients())));
  pack->trace(options.trace());
  return pack;
}

}  // namespace hookline
