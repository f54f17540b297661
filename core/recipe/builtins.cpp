// The built-in callbacks and packs, registered by their names for recipe files.
#include "hookline/callbacks/anomaly_detection.hpp"
#include "hookline/callbacks/early_stopping.hpp"
#include "hookline/callbacks/gradient_accumulation_scheduler.hpp"
#include "hookline/callbacks/lr_monitor.hpp"
#include "hookline/callbacks/model_checkpoint.hpp"
#include "hookline/callbacks/model_summary.hpp"
#include "hookline/callbacks/on_exception_checkpoint.hpp"
#include "hookline/callbacks/packs.hpp"
#include "hookline/callbacks/progress_bar.hpp"
#include "hookline/callbacks/timer.hpp"
#include "hookline/core/recipe/registry.hpp"

namespace hookline {

void register_builtins(Registry& r) {
  r.add_callback("EarlyStopping", [](RecipeOptions& o) {
    EarlyStoppingOptions e;
    HOOKLINE_RECIPE_OPTION(o, e, monitor);
    HOOKLINE_RECIPE_OPTION(o, e, min_delta);
    HOOKLINE_RECIPE_OPTION(o, e, patience);
    HOOKLINE_RECIPE_OPTION(o, e, verbose);
    HOOKLINE_RECIPE_OPTION(o, e, mode);
    HOOKLINE_RECIPE_OPTION(o, e, strict);
    HOOKLINE_RECIPE_OPTION(o, e, check_finite);
    HOOKLINE_RECIPE_OPTION(o, e, stopping_threshold);
    HOOKLINE_RECIPE_OPTION(o, e, divergence_threshold);
    HOOKLINE_RECIPE_OPTION(o, e, check_on_train_epoch_end);
    HOOKLINE_RECIPE_OPTION(o, e, log_rank_zero_only);
    if (e.monitor().empty()) o.fail("monitor", "missing required option 'monitor'");
    return std::make_shared<EarlyStopping>(e);
  });
  r.add_callback("ModelCheckpoint", [](RecipeOptions& o) {
    ModelCheckpointOptions m;
    HOOKLINE_RECIPE_OPTION(o, m, dirpath);
    HOOKLINE_RECIPE_OPTION(o, m, filename);
    HOOKLINE_RECIPE_OPTION(o, m, monitor);
    HOOKLINE_RECIPE_OPTION(o, m, verbose);
    HOOKLINE_RECIPE_OPTION(o, m, save_last);
    HOOKLINE_RECIPE_OPTION(o, m, save_top_k);
    HOOKLINE_RECIPE_OPTION(o, m, save_weights_only);
    HOOKLINE_RECIPE_OPTION(o, m, mode);
    HOOKLINE_RECIPE_OPTION(o, m, auto_insert_metric_name);
    HOOKLINE_RECIPE_OPTION(o, m, every_n_train_steps);
    HOOKLINE_RECIPE_OPTION(o, m, train_time_interval);
    HOOKLINE_RECIPE_OPTION(o, m, every_n_epochs);
    HOOKLINE_RECIPE_OPTION(o, m, save_on_train_epoch_end);
    HOOKLINE_RECIPE_OPTION(o, m, enable_version_counter);
    return std::make_shared<ModelCheckpoint>(m);
  });
  r.add_callback("LearningRateMonitor", [](RecipeOptions& o) {
    LearningRateMonitorOptions l;
    HOOKLINE_RECIPE_OPTION(o, l, logging_interval);
    HOOKLINE_RECIPE_OPTION(o, l, log_momentum);
    HOOKLINE_RECIPE_OPTION(o, l, log_weight_decay);
    return std::make_shared<LearningRateMonitor>(l);
  });
  r.add_callback("Timer", [](RecipeOptions& o) {
    TimerOptions t;
    if (auto duration = o.get<std::chrono::milliseconds>("duration"))
      t.seconds(static_cast<double>(duration->count()) / 1000.0);
    HOOKLINE_RECIPE_OPTION(o, t, interval);
    HOOKLINE_RECIPE_OPTION(o, t, verbose);
    return std::make_shared<Timer>(t);
  });
  r.add_callback("TQDMProgressBar", [](RecipeOptions& o) {
    return std::make_shared<TQDMProgressBar>(o.get_or<std::int64_t>("refresh_rate", 1));
  });
  r.add_callback("ModelSummary", [](RecipeOptions& o) {
    return std::make_shared<ModelSummary>(o.get_or<int>("max_depth", 1));
  });
  r.add_callback("OnExceptionCheckpoint", [](RecipeOptions& o) {
    return std::make_shared<OnExceptionCheckpoint>(
        o.require<std::string>("dirpath"), o.get_or<std::string>("filename", "on_exception"));
  });
  r.add_callback("GradientAccumulationScheduler", [](RecipeOptions& o) {
    return std::make_shared<GradientAccumulationScheduler>(
        o.require<std::map<std::int64_t, std::int64_t>>("scheduling"));
  });
  r.add_callback("AnomalyDetection", [](RecipeOptions& o) {
    AnomalyDetectionOptions a;
    HOOKLINE_RECIPE_OPTION(o, a, check_loss);
    HOOKLINE_RECIPE_OPTION(o, a, check_gradients);
    return std::make_shared<AnomalyDetection>(a);
  });

  r.add_pack("classification_defaults", [](RecipeOptions& o) {
    ClassificationDefaultsOptions c;
    HOOKLINE_RECIPE_OPTION(o, c, name);
    HOOKLINE_RECIPE_OPTION(o, c, monitor);
    HOOKLINE_RECIPE_OPTION(o, c, mode);
    HOOKLINE_RECIPE_OPTION(o, c, patience);
    HOOKLINE_RECIPE_OPTION(o, c, min_delta);
    HOOKLINE_RECIPE_OPTION(o, c, dirpath);
    HOOKLINE_RECIPE_OPTION(o, c, log_momentum);
    return classification_defaults(c);
  });
  r.add_pack("debugging", [](RecipeOptions& o) {
    DebuggingOptions d;
    HOOKLINE_RECIPE_OPTION(o, d, name);
    HOOKLINE_RECIPE_OPTION(o, d, trace);
    HOOKLINE_RECIPE_OPTION(o, d, check_loss);
    HOOKLINE_RECIPE_OPTION(o, d, check_gradients);
    return debugging(d);
  });
}

}  // namespace hookline
