// The built-in callbacks and packs, registered by their names for recipe files.
#include "hookline/callbacks/anomaly_detection.hpp"
#include "hookline/callbacks/early_stopping.hpp"
#include "hookline/callbacks/gradient_accumulation_scheduler.hpp"
#include "hookline/callbacks/lr_finder.hpp"
#include "hookline/callbacks/lr_monitor.hpp"
#include "hookline/callbacks/model_checkpoint.hpp"
#include "hookline/callbacks/model_summary.hpp"
#include "hookline/callbacks/on_exception_checkpoint.hpp"
#include "hookline/callbacks/packs.hpp"
#include "hookline/callbacks/progress_bar.hpp"
#include "hookline/callbacks/swa.hpp"
#include "hookline/callbacks/throughput_monitor.hpp"
#include "hookline/callbacks/timer.hpp"
#include "hookline/recipe/registry.hpp"
#include "hookline/tracing/trace_spec.hpp"

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
  r.add_callback("ThroughputMonitor", [](RecipeOptions& o) {
    ThroughputMonitorOptions t;
    HOOKLINE_RECIPE_OPTION(o, t, window_size);
    HOOKLINE_RECIPE_OPTION(o, t, separator);
    HOOKLINE_RECIPE_OPTION(o, t, available_flops);
    // From a recipe the samples of a batch are its rows (code can pass any batch_size_fn).
    return std::make_shared<ThroughputMonitor>([](const Batch& b) { return b.batch_size(); }, t);
  });
  r.add_callback("LearningRateFinder", [](RecipeOptions& o) {
    LearningRateFinderOptions l;
    HOOKLINE_RECIPE_OPTION(o, l, min_lr);
    HOOKLINE_RECIPE_OPTION(o, l, max_lr);
    HOOKLINE_RECIPE_OPTION(o, l, num_training_steps);
    HOOKLINE_RECIPE_OPTION(o, l, mode);
    HOOKLINE_RECIPE_OPTION(o, l, early_stop_threshold);
    HOOKLINE_RECIPE_OPTION(o, l, update_attr);
    HOOKLINE_RECIPE_OPTION(o, l, attr_name);
    return std::make_shared<LearningRateFinder>(l);
  });
  r.add_callback("StochasticWeightAveraging", [](RecipeOptions& o) {
    StochasticWeightAveragingOptions s;
    HOOKLINE_RECIPE_OPTION(o, s, annealing_epochs);
    HOOKLINE_RECIPE_OPTION(o, s, annealing_strategy);
    HOOKLINE_RECIPE_OPTION(o, s, device);
    // swa_epoch_start: an epoch (integer) or a fraction of max_epochs (a number with a point).
    if (o.has("swa_epoch_start")) {
      try {
        s.swa_epoch_start(o.require<std::int64_t>("swa_epoch_start"));
      } catch (const RecipeError&) {
        s.swa_epoch_start(o.require<double>("swa_epoch_start"));
      }
    }
    // swa_lrs: one rate, or one per parameter group.
    try {
      return std::make_shared<StochasticWeightAveraging>(o.require<double>("swa_lrs"), s);
    } catch (const RecipeError&) {
      return std::make_shared<StochasticWeightAveraging>(o.require<std::vector<double>>("swa_lrs"),
                                                         s);
    }
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
    // The monitor's default, val_loss, is a loss: watching it in max mode would keep the worst
    // model and stop on improvements. Lightning has no default monitor to fall into this.
    if (o.has("mode") && !o.has("monitor") && c.mode() == "max")
      o.fail("mode",
             "mode: max without a monitor would watch the default monitor, val_loss, for "
             "its largest value; name the metric to maximise, e.g. {monitor: val_acc, "
             "mode: max}");
    return classification_defaults(c);
  });
  r.add_pack("debugging", [](RecipeOptions& o) {
    DebuggingOptions d;
    HOOKLINE_RECIPE_OPTION(o, d, name);
    HOOKLINE_RECIPE_OPTION(o, d, trace);
    HOOKLINE_RECIPE_OPTION(o, d, check_loss);
    HOOKLINE_RECIPE_OPTION(o, d, check_gradients);
    if (!d.trace().empty()) {
      try {
        (void)TraceSpec::parse(d.trace());
      } catch (const std::invalid_argument& e) {
        o.fail("trace", e.what());
      }
    }
    return debugging(d);
  });
}

}  // namespace hookline
