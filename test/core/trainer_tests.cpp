// Trainer behaviour: configuration errors, verdicts, logging, schedulers, exceptions, callbacks
// added and removed at runtime, data modules, and numerical parity with a hand-written loop.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/model_summary.hpp>
#include <hookline/core/data/torch_dataset_adapter.hpp>
#include <hookline/core/overrides.hpp>

#include <torch/optim/schedulers/step_lr.h>

namespace hookline_test_trainer_tests {

using namespace hookline;
using namespace test_support;

namespace {

// No progress bar or model summary: the options under test are all that is set.
TrainerOptions bare() {
  return TrainerOptions().enable_progress_bar(false).enable_model_summary(false);
}

TrainerOptions quiet() {
  return bare().num_sanity_val_steps(0).limit_val_batches(0).enable_checkpointing(false);
}

// `epochs` epochs of `batches` training batches, each followed by one validation batch; no
// sanity check.
TrainerOptions validated(std::int64_t epochs, std::int64_t batches) {
  return bare()
      .num_sanity_val_steps(0)
      .max_epochs(epochs)
      .limit_train_batches(batches)
      .limit_val_batches(1);
}

bool mentions(const std::exception& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

template <class Ex>
auto says(std::string text) {
  return [text](const Ex& e) { return mentions(e, text); };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(trainer_config)

BOOST_AUTO_TEST_CASE(bad_options_are_rejected_naming_the_option) {
  using E = std::invalid_argument;
  BOOST_CHECK_EXCEPTION(Trainer(bare().max_epochs(-5)), E, says<E>("max_epochs"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().limit_train_batches(1.5)), E,
                        says<E>("limit_train_batches"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().limit_val_batches(-1)), E, says<E>("limit_val_batches"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().val_check_interval(0.0)), E, says<E>("val_check_interval"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().accumulate_grad_batches(0)), E,
                        says<E>("accumulate_grad_batches"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().check_val_every_n_epoch(0)), E,
                        says<E>("check_val_every_n_epoch"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().num_sanity_val_steps(-2)), E,
                        says<E>("num_sanity_val_steps"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().min_epochs(5).max_epochs(2)), E, says<E>("min_epochs"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().max_steps(3).min_steps(4)), E, says<E>("min_steps"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().gradient_clip_val(-1)), E, says<E>("gradient_clip_val"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().gradient_clip_algorithm(ClipAlgorithm::value)), E,
                        says<E>("gradient_clip_algorithm"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().log_every_n_steps(-1)), E, says<E>("log_every_n_steps"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().overfit_batches(2.0)), E, says<E>("overfit_batches"));
  BOOST_CHECK_EXCEPTION(Trainer(bare().max_time(std::chrono::milliseconds(0))), E,
                        says<E>("max_time"));
}

BOOST_AUTO_TEST_CASE(val_check_interval_larger_than_the_epoch_is_rejected_before_training) {
  BoringModel model;
  auto recorder = std::make_shared<HookRecorder>(false);
  Trainer trainer(bare().max_epochs(1).limit_train_batches(3).val_check_interval(5));
  trainer.bus().set_tracer(recorder);
  BOOST_CHECK_EXCEPTION(trainer.fit(model), std::invalid_argument,
                        says<std::invalid_argument>("val_check_interval(5)"));
  for (const auto& line : recorder->calls())
    BOOST_TEST(line.find("training_step") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_dataloaders_and_optimizers) {
  class Empty final : public Module {
   public:
    Empty() { w = register_parameter("w", torch::zeros({1})); }
    StepOutput training_step(const Batch&, std::int64_t) override { return {}; }
    OptimizerConfig configure_optimizers() override { return {}; }
    torch::Tensor w;
  } empty;
  BOOST_CHECK_EXCEPTION(
      Trainer().fit(empty), std::invalid_argument,
      says<std::invalid_argument>("configure_optimizers() returned no optimizer"));
  class NoData final : public BoringModel {
    DataLoaders train_dataloader() override { return {}; }
  } no_data;
  BOOST_CHECK_EXCEPTION(Trainer(quiet()).fit(no_data), std::invalid_argument,
                        says<std::invalid_argument>("train dataloader"));
  class NoTest final : public BoringModel {
    DataLoaders test_dataloader() override { return {}; }
  } no_test;
  BOOST_CHECK_EXCEPTION(Trainer().test(no_test), std::invalid_argument,
                        says<std::invalid_argument>("test_dataloader"));
  class NoStep final : public Module {
   public:
    NoStep() { w = register_parameter("w", torch::zeros({1})); }
    StepOutput training_step(const Batch&, std::int64_t) override { return {}; }
    DataLoaders test_dataloader() override { return {loader(8)}; }
    torch::Tensor w;
  } no_step;
  BOOST_CHECK_EXCEPTION(Trainer().test(no_step), std::logic_error,
                        says<std::logic_error>("does not override test_step"));
}

BOOST_AUTO_TEST_CASE(manual_optimization_rejects_automatic_only_options) {
  class Manual final : public BoringModel {
   public:
    Manual() { set_automatic_optimization(false); }
  } model;
  BOOST_CHECK_EXCEPTION(Trainer(quiet().accumulate_grad_batches(2)).fit(model),
                        std::invalid_argument,
                        says<std::invalid_argument>("accumulate_grad_batches"));
  BOOST_CHECK_EXCEPTION(Trainer(quiet().gradient_clip_val(1.0)).fit(model), std::invalid_argument,
                        says<std::invalid_argument>("gradient_clip_val"));
}

BOOST_AUTO_TEST_CASE(callbacks_need_distinct_state_keys) {
  Trainer trainer;
  trainer.add_callback(std::make_shared<NamedCallback>("same"));
  BOOST_CHECK_EXCEPTION(trainer.add_callback(std::make_shared<NamedCallback>("same")),
                        std::invalid_argument, says<std::invalid_argument>("state_key"));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- verdicts -----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(trainer_verdicts)

namespace {
class Judge final : public Callback {
 public:
  Judge(Action action, std::int64_t at_batch) : Callback("judge"), action_(action), at_(at_batch) {}
  void on_train_batch_start(Trainer& t, Module&, const Batch&, std::int64_t i) override {
    if (i == at_ && t.current_epoch() == 0) veto(action_, "judged");
  }

 private:
  Action action_;
  std::int64_t at_;
};

struct Steps final : BoringModel {
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    stepped.push_back(i);
    return BoringModel::training_step(b, i);
  }
  void on_train_batch_end(const StepOutput&, const Batch&, std::int64_t i) override {
    ended.push_back(i);
  }
  void on_validation_start() override {
    if (!trainer().sanity_checking()) val_epochs.push_back(trainer().current_epoch());
  }
  std::vector<std::int64_t> stepped, ended, val_epochs;
};
}  // namespace

// on_train_batch_end sees the step's outputs detached (values kept, no grad, the loss's version
// counter shared as with Tensor::detach) and the very batch training_step saw, under automatic
// and manual optimization.
BOOST_AUTO_TEST_CASE(batch_end_sees_detached_outputs_and_the_step_batch) {
  struct Seen final : BoringModel {
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      StepOutput out = BoringModel::training_step(b, i);
      if (!automatic_optimization()) {
        auto opts = optimizers();
        opts[0].zero_grad();
        manual_backward(out["loss"]);
        opts[0].step();
      }
      step_x.push_back(b["x"]);
      losses.push_back(out["loss"]);
      out.set("twice", out["loss"] * 2);
      return out;
    }
    void on_train_batch_end(const StepOutput& out, const Batch& b, std::int64_t) override {
      end_x.push_back(b["x"]);
      BOOST_TEST(!out["loss"].requires_grad());
      BOOST_TEST(!out["twice"].requires_grad());
      BOOST_TEST(out["twice"].item<float>() == 2 * out["loss"].item<float>());
      BOOST_TEST(out["loss"].item<float>() == losses.back().item<float>());
      BOOST_TEST(out["loss"]._version() == losses.back()._version());
    }
    std::vector<at::Tensor> step_x, end_x, losses;
  };
  for (bool automatic : {true, false}) {
    Seen model;
    model.set_automatic_optimization(automatic);
    Trainer trainer(bare()
                        .enable_checkpointing(false)
                        .logger(false)
                        .num_sanity_val_steps(0)
                        .max_epochs(1)
                        .limit_train_batches(3)
                        .limit_val_batches(0));
    trainer.fit(model);
    BOOST_REQUIRE(model.end_x.size() == 3u);
    BOOST_REQUIRE(model.step_x.size() == 3u);
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(model.end_x[i].is_same(model.step_x[i]));
  }
}

BOOST_AUTO_TEST_CASE(skip_batch_skips_only_that_batch) {
  Steps model;
  Trainer trainer(validated(1, 4), {std::make_shared<Judge>(Action::SkipBatch, 1)});
  trainer.fit(model);
  BOOST_TEST(model.stepped == (std::vector<std::int64_t>{0, 2, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(model.ended == (std::vector<std::int64_t>{0, 2, 3}), boost::test_tools::per_element());
  BOOST_TEST(trainer.global_step() == 3);
  BOOST_TEST(model.val_epochs.size() == 1u);  // validation still runs at the epoch end
}

BOOST_AUTO_TEST_CASE(skipping_the_last_batch_keeps_the_epoch_end_validation) {
  Steps model;
  Trainer trainer(validated(1, 3), {std::make_shared<Judge>(Action::SkipBatch, 2)});
  trainer.fit(model);
  BOOST_TEST(model.stepped == (std::vector<std::int64_t>{0, 1}), boost::test_tools::per_element());
  BOOST_TEST(model.val_epochs.size() == 1u);
}

BOOST_AUTO_TEST_CASE(skip_rest_of_epoch_is_lightnings_minus_one) {
  Steps model;
  Trainer trainer(validated(2, 4), {std::make_shared<Judge>(Action::SkipRestOfEpoch, 2)});
  trainer.fit(model);
  BOOST_TEST(model.stepped == (std::vector<std::int64_t>{0, 1, 0, 1, 2, 3}),
             boost::test_tools::per_element());
  BOOST_TEST(trainer.global_step() == 6);
  BOOST_TEST(model.val_epochs == std::vector<std::int64_t>{1}, boost::test_tools::per_element());
  BOOST_TEST(trainer.current_epoch() == 2);
}

BOOST_AUTO_TEST_CASE(module_minus_one_and_epoch_scheduler) {
  class MinusOne final : public BoringModel {
   public:
    Verdict on_train_batch_start(const Batch&, std::int64_t i) override {
      return i == 1 && trainer().current_epoch() == 0 ? Verdict::skip_rest_of_epoch("-1")
                                                      : Verdict{};
    }
    OptimizerConfig configure_optimizers() override {
      auto config = BoringModel::configure_optimizers();
      config.add_scheduler(
          SchedulerConfig::custom([this](std::optional<double>) { ++scheduler_steps; }));
      return config;
    }
    int scheduler_steps = 0;
  } model;
  Trainer trainer(quiet().max_epochs(2).limit_train_batches(3));
  trainer.fit(model);
  BOOST_TEST(trainer.global_step() == 4);  // 1 in epoch 0, 3 in epoch 1
  BOOST_TEST(model.scheduler_steps == 1);  // the aborted epoch does not step the epoch scheduler
}

BOOST_AUTO_TEST_CASE(configure_sharded_model_only_when_the_module_uses_it) {
  class Legacy final : public BoringModel {
   public:
    void configure_sharded_model() override { ++calls; }
    bool uses_configure_sharded_model() const override { return use; }
    bool use = false;
    int calls = 0;
  } model;
  auto recorder = std::make_shared<HookRecorder>(false);
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(1));
  trainer.bus().set_tracer(recorder);
  trainer.fit(model);
  BOOST_TEST(model.calls == 0);
  model.use = true;
  recorder->clear();
  trainer.fit(model);
  BOOST_TEST(model.calls == 1);
  const auto calls = recorder->calls_of("lm");
  const auto at = std::find(calls.begin(), calls.end(), "configure_sharded_model");
  BOOST_REQUIRE(at != calls.end());
  BOOST_TEST(*(at + 1) == "configure_model");
}

BOOST_AUTO_TEST_CASE(configure_sharded_model_runs_when_the_module_overrides_it) {
  class Legacy final : public BoringModel {
   public:
    void configure_sharded_model() override { ++calls; }
    int calls = 0;
  } legacy;
  BoringModel plain;
  BOOST_TEST(!plain.uses_configure_sharded_model());
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(1));
  trainer.fit(legacy);
  // Lightning calls the deprecated hook when the class overrides it; where the ABI cannot tell,
  // a module says so through uses_configure_sharded_model().
  BOOST_TEST(legacy.calls == (hookline::detail::can_see_overrides ? 1 : 0));
}

BOOST_AUTO_TEST_CASE(step_output_without_loss_is_an_error_and_empty_output_skips) {
  class Typo final : public BoringModel {
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      StepOutput out = BoringModel::training_step(b, i);
      return {{"los", out["loss"]}, {"acc", torch::zeros({})}};
    }
  } typo;
  BOOST_CHECK_EXCEPTION(Trainer(quiet().max_epochs(1).limit_train_batches(2)).fit(typo),
                        std::invalid_argument, [](const std::invalid_argument& e) {
                          return mentions(e, "without a 'loss' (keys: 'los', 'acc')") &&
                                 mentions(e, "Return {}");
                        });
  // {} is Lightning's None: the batch is skipped (no backward), the fit goes on.
  class SkipsOdd final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      if (i % 2 == 1) return {};
      ++losses;
      return BoringModel::training_step(b, i);
    }
    void on_after_backward() override { ++backwards; }
    int losses = 0, backwards = 0;
  } skips;
  Trainer(quiet().max_epochs(1).limit_train_batches(4)).fit(skips);
  BOOST_TEST(skips.losses == 2);
  BOOST_TEST(skips.backwards == 2);
}

BOOST_AUTO_TEST_CASE(stop_fit_in_on_train_epoch_start_runs_no_batch) {
  class StopAtEpochStart final : public Callback {
   public:
    StopAtEpochStart() : Callback("epoch_start") {}
    void on_train_epoch_start(Trainer& t, Module&) override {
      if (t.current_epoch() == 1) veto(Action::StopFit, "enough");
    }
  };
  Steps model;
  Trainer trainer(quiet().max_epochs(5).limit_train_batches(2),
                  {std::make_shared<StopAtEpochStart>()});
  trainer.fit(model);
  BOOST_TEST(model.stepped.size() == 2u);  // epoch 0 only
  BOOST_TEST(trainer.current_epoch() == 2);
}

BOOST_AUTO_TEST_CASE(stop_fit_in_on_fit_start_skips_training) {
  class StopEarly final : public Callback {
   public:
    StopEarly() : Callback("early") {}
    void on_fit_start(Trainer&, Module&) override { veto(Action::StopFit, "nothing to do"); }
  };
  auto recorder = std::make_shared<HookRecorder>(false);
  BoringModel model;
  Trainer trainer(quiet(), {std::make_shared<StopEarly>()});
  trainer.bus().set_tracer(recorder);
  trainer.fit(model);
  const auto calls = recorder->calls_of("lm");
  BOOST_TEST(std::count(calls.begin(), calls.end(), "train_dataloader") == 1);
  BOOST_TEST(std::count(calls.begin(), calls.end(), "on_train_start") == 0);
  BOOST_TEST(std::count(calls.begin(), calls.end(), "on_train_end") == 0);
  BOOST_TEST(std::count(calls.begin(), calls.end(), "on_fit_end") == 1);
  BOOST_TEST(trainer.stop_reason() == "early: nothing to do");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- logging --------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(trainer_logging)

BOOST_AUTO_TEST_CASE(step_and_epoch_values) {
  class Logs final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      log("constant", 2.0 * static_cast<double>(i), LogOptions().on_epoch(true).prog_bar(true));
      return BoringModel::training_step(b, i);
    }
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("val_metric", static_cast<double>(i));
      log("val_sum", 1.0, LogOptions().reduce_fx(Reduce::sum));
      log("val_max", static_cast<double>(i), LogOptions().reduce_fx(Reduce::max));
      return BoringModel::validation_step(b, i, d);
    }
  } model;
  Trainer trainer(bare()
                      .num_sanity_val_steps(0)
                      .max_epochs(1)
                      .limit_train_batches(4)
                      .limit_val_batches(3)
                      .log_every_n_steps(1));
  trainer.fit(model);
  const auto& cm = trainer.callback_metrics();
  BOOST_TEST(cm.at("constant_step") == 6.0);
  BOOST_TEST(cm.at("constant_epoch") == 3.0);  // mean of 0, 2, 4, 6
  BOOST_TEST(cm.at("constant") == 3.0);
  BOOST_TEST(cm.at("val_metric") == 1.0);  // mean of 0, 1, 2
  BOOST_TEST(cm.at("val_sum") == 3.0);
  BOOST_TEST(cm.at("val_max") == 2.0);
  BOOST_TEST(trainer.logged_metrics().at("constant_step") == 6.0);
  BOOST_TEST(trainer.progress_bar_metrics().count("constant_epoch") == 1u);
  BOOST_TEST(trainer.progress_bar_metrics().count("val_metric") == 0u);
}

BOOST_AUTO_TEST_CASE(mean_is_weighted_by_batch_size) {
  class Weighted final : public BoringModel {
   public:
    DataLoaders val_dataloader() override {  // 10 samples in batches of 4: 4, 4, 2
      return {std::make_shared<data::DataLoader>(random_dataset(10),
                                                 data::DataLoaderOptions().batch_size(4))};
    }
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("v", i == 2 ? 10.0 : 0.0);
      return BoringModel::validation_step(b, i, d);
    }
  } model;
  Trainer trainer;
  auto metrics = trainer.validate(model);
  BOOST_TEST(metrics.at(0).at("v") == 2.0);  // (0*4 + 0*4 + 10*2) / 10
}

// Lightning names the values of each of several eval dataloaders "<name>/dataloader_idx_N" (after
// the _step/_epoch fork), logs from the epoch-end hooks without a suffix, and validate()/test()
// return one map per dataloader holding its logger values plus the epoch-end ones.
BOOST_AUTO_TEST_CASE(several_eval_dataloaders_get_indexed_names) {
  class TwoLoaders final : public BoringModel {
   public:
    TwoLoaders() { num_val_loaders = 2; }
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("val_mse", static_cast<double>(10 * d + i));
      log("both", 1.0, LogOptions().on_step(true).on_epoch(true));
      log("hidden", 1.0, LogOptions().logger(false));
      log(d == 0 ? "first_only" : "second_only", 5.0, LogOptions().add_dataloader_idx(false));
      return BoringModel::validation_step(b, i, d);
    }
    void on_validation_epoch_end() override { log("epoch_stat", 7.0); }
    DataLoaders test_dataloader() override { return {loader(64)}; }
    StepOutput test_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("test_v", static_cast<double>(i));
      return BoringModel::test_step(b, i, d);
    }
  } model;
  Trainer trainer(quiet().limit_val_batches(2).limit_test_batches(2));
  const std::vector<MetricMap> results = trainer.validate(model);
  BOOST_REQUIRE_EQUAL(results.size(), 2u);
  const MetricMap expected0{{"val_mse/dataloader_idx_0", 0.5},
                            {"both_epoch/dataloader_idx_0", 1.0},
                            {"first_only", 5.0},
                            {"epoch_stat", 7.0}};
  const MetricMap expected1{{"val_mse/dataloader_idx_1", 10.5},
                            {"both_epoch/dataloader_idx_1", 1.0},
                            {"second_only", 5.0},
                            {"epoch_stat", 7.0}};
  BOOST_TEST(results[0] == expected0);
  BOOST_TEST(results[1] == expected1);
  const MetricMap& cm = trainer.callback_metrics();
  BOOST_TEST(cm.count("val_mse") == 0u);
  BOOST_TEST(cm.at("val_mse/dataloader_idx_1") == 10.5);
  BOOST_TEST(cm.at("both/dataloader_idx_0") == 1.0);
  BOOST_TEST(cm.at("hidden/dataloader_idx_1") == 1.0);
  BOOST_TEST(cm.at("epoch_stat") == 7.0);
  // One dataloader: no suffix, one map.
  const std::vector<MetricMap> tested = trainer.test(model);
  BOOST_REQUIRE_EQUAL(tested.size(), 1u);
  BOOST_TEST(tested[0] == (MetricMap{{"test_v", 0.5}}));

  // add_dataloader_idx(false) with the same name from two dataloaders mixes them: an error, as
  // in Lightning.
  class SameName final : public BoringModel {
   public:
    SameName() { num_val_loaders = 2; }
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("val_mse", 1.0, LogOptions().add_dataloader_idx(false));
      return BoringModel::validation_step(b, i, d);
    }
  } same;
  BOOST_CHECK_EXCEPTION(Trainer(quiet().limit_val_batches(1)).validate(same), std::invalid_argument,
                        says<std::invalid_argument>("dataloader 0 and dataloader 1"));
}

BOOST_AUTO_TEST_CASE(log_where_lightning_forbids_it_is_a_clear_error) {
  class LogsInSetup final : public BoringModel {
    void setup(Stage) override { log("x", 1.0); }
  } in_setup;
  BOOST_CHECK_EXCEPTION(Trainer(quiet()).fit(in_setup), std::logic_error,
                        says<std::logic_error>("'setup'"));
  class LogsOnStepInEpochEnd final : public BoringModel {
    void on_train_epoch_end() override { log("x", 1.0, LogOptions().on_step(true)); }
  } on_step;
  BOOST_CHECK_EXCEPTION(Trainer(quiet().max_epochs(1).limit_train_batches(1)).fit(on_step),
                        std::logic_error, says<std::logic_error>("on_step=True"));
  class LogsVector final : public BoringModel {
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      log("vec", torch::ones({3}));
      return BoringModel::training_step(b, i);
    }
  } vector;
  BOOST_CHECK_EXCEPTION(Trainer(quiet().max_epochs(1).limit_train_batches(1)).fit(vector),
                        std::invalid_argument, says<std::invalid_argument>("one element"));
  BoringModel detached;
  BOOST_CHECK_EXCEPTION(detached.log("x", 1.0), std::logic_error,
                        says<std::logic_error>("not attached"));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- schedulers -----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(trainer_schedulers)

namespace {
class Scheduled final : public BoringModel {
 public:
  explicit Scheduled(SchedulerConfig config) : config_(std::move(config)) {}
  OptimizerConfig configure_optimizers() override {
    auto optimizer =
        std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(1.0));
    auto step_lr = std::make_shared<torch::optim::StepLR>(*optimizer, 1, 0.5);
    optimizer_ = optimizer;
    SchedulerConfig config = SchedulerConfig::from(step_lr);
    config.interval(config_.interval()).frequency(config_.frequency());
    keep_ = step_lr;
    return OptimizerConfig().add(optimizer).add_scheduler(config);
  }
  double lr() const {
    return static_cast<const torch::optim::SGDOptions&>(optimizer_->param_groups()[0].options())
        .lr();
  }
  SchedulerConfig config_;
  std::shared_ptr<torch::optim::SGD> optimizer_;
  std::shared_ptr<torch::optim::StepLR> keep_;
};
}  // namespace

BOOST_AUTO_TEST_CASE(epoch_interval) {
  Scheduled model(SchedulerConfig().interval(Interval::epoch));
  Trainer(quiet().max_epochs(3).limit_train_batches(2)).fit(model);
  // Three steps; LibTorch's StepLR treats its first step() as the start (Python steps once in its
  // constructor), so the rate halves twice.
  BOOST_TEST(model.lr() == 0.25);
}

BOOST_AUTO_TEST_CASE(step_interval_with_frequency) {
  Scheduled model(SchedulerConfig().interval(Interval::step).frequency(2));
  Trainer(quiet().max_epochs(1).limit_train_batches(6)).fit(model);
  BOOST_TEST(model.lr() == 0.25);  // stepped after batches 1, 3, 5 (the first step is the start)
}

BOOST_AUTO_TEST_CASE(monitored_scheduler_gets_the_metric) {
  class Plateau final : public BoringModel {
   public:
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("val_loss", 0.5);
      return BoringModel::validation_step(b, i, d);
    }
    OptimizerConfig configure_optimizers() override {
      auto config = BoringModel::configure_optimizers();
      config.add_scheduler(SchedulerConfig::custom([this](std::optional<double> m) {
                             metrics.push_back(m.value_or(-1));
                           }).monitor("val_loss"));
      return config;
    }
    std::vector<double> metrics;
  } model;
  Trainer(validated(2, 2)).fit(model);
  BOOST_TEST(model.metrics == (std::vector<double>{0.5, 0.5}), boost::test_tools::per_element());
  class Unlogged final : public BoringModel {
    OptimizerConfig configure_optimizers() override {
      auto config = BoringModel::configure_optimizers();
      config.add_scheduler(SchedulerConfig::custom([](std::optional<double>) {}).monitor("nope"));
      return config;
    }
  } unlogged;
  BOOST_CHECK_EXCEPTION(Trainer(quiet().max_epochs(1).limit_train_batches(1)).fit(unlogged),
                        std::invalid_argument, says<std::invalid_argument>("'nope'"));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- exceptions, runtime callbacks, data modules ------------------------------------------

BOOST_AUTO_TEST_SUITE(trainer_runs)

namespace {
struct DiskFull : std::runtime_error {
  using std::runtime_error::runtime_error;
  int code = 28;
};
class Failing final : public Callback {
 public:
  Failing() : Callback("failing") {}
  void on_train_epoch_start(Trainer&, Module&) override { throw DiskFull("no space left"); }
  void on_exception(Trainer&, Module&, const std::exception_ptr& e) override {
    try {
      std::rethrow_exception(e);
    } catch (const DiskFull& d) {
      seen = d.what();
    }
  }
  std::string seen;
};
}  // namespace

BOOST_AUTO_TEST_CASE(exceptions_keep_their_type_and_message) {
  auto failing = std::make_shared<Failing>();
  BoringModel model;
  Trainer trainer(quiet().max_epochs(1), {failing});
  BOOST_CHECK_EXCEPTION(trainer.fit(model), DiskFull,
                        [](const DiskFull& e) { return e.code == 28 && mentions(e, "no space"); });
  BOOST_TEST(failing->seen == "no space left");
  BOOST_TEST((trainer.status() == Status::interrupted));
  BOOST_TEST(!model.attached());
  trainer.remove_callback(*failing);
  trainer.fit(model);  // the trainer is usable again
  BOOST_TEST((trainer.status() == Status::finished));
}

BOOST_AUTO_TEST_CASE(callbacks_added_and_removed_during_a_run) {
  class Counts final : public Callback {
   public:
    explicit Counts(std::string name) : Callback(std::move(name)) {}
    void on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                            std::int64_t) override {
      ++batches;
    }
    int batches = 0;
  };
  auto late = std::make_shared<Counts>("late");
  auto leaving = std::make_shared<Counts>("leaving");
  class Manager final : public Callback {
   public:
    Manager(std::shared_ptr<Callback> add, std::shared_ptr<Callback> remove)
        : Callback("manager"), add_(std::move(add)), remove_(std::move(remove)) {}
    void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                            std::int64_t i) override {
      if (i == 1) {
        t.add_callback(add_);
        t.remove_callback(*remove_);
      }
    }
    std::shared_ptr<Callback> add_, remove_;
  };
  BoringModel model;
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(5),
                  {std::make_shared<Manager>(late, leaving), leaving});
  trainer.fit(model);
  BOOST_TEST(leaving->batches == 1);  // batch 0 only: removed before its batch-1 hook ran
  BOOST_TEST(late->batches == 3);     // batches 2, 3, 4
  BOOST_TEST(trainer.callbacks().size() == 2u);
}

namespace {
/// A user-defined event: emitted by the module, heard by a callback, vetoable.
struct GradientSpike {
  static constexpr std::string_view name = "on_gradient_spike";
  static constexpr ActionSet vetoes{Action::StopFit};
  double norm = 0;
};
}  // namespace

BOOST_AUTO_TEST_CASE(callbacks_listen_to_user_events_and_stop_the_fit) {
  class Spiky final : public BoringModel {
   public:
    void on_after_backward() override {
      GradientSpike spike;
      spike.norm = trainer().global_step() == 2 ? 100.0 : 1.0;
      trainer().emit(spike);  // a StopFit verdict from any subscriber sets should_stop
    }
  } model;
  class Guard final : public Callback {
   public:
    Guard() : Callback("guard") {}
    void subscribe_extra(Sink& sink) override {
      sink.on<GradientSpike>([this](const GradientSpike& e) {
        ++seen;
        return e.norm > 10 ? Verdict::stop_fit("gradient norm " + std::to_string(e.norm))
                           : Verdict{};
      });
    }
    int seen = 0;
  };
  auto guard = std::make_shared<Guard>();
  Trainer trainer(quiet().max_epochs(5).limit_train_batches(4), {guard});
  trainer.fit(model);
  BOOST_TEST(guard->seen == 3);
  BOOST_TEST(trainer.global_step() == 3);
  BOOST_TEST(trainer.stop_reason() == "guard: gradient norm 100.000000");
  trainer.remove_callback(*guard);
  BOOST_TEST(trainer.bus().subscriber_count<GradientSpike>() == 0u);
}

BOOST_AUTO_TEST_CASE(evaluation_restores_the_module_mode) {
  class Modes final : public BoringModel {
   public:
    Verdict on_train_batch_start(const Batch&, std::int64_t) override {
      training_modes.push_back(is_training());
      return {};
    }
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      eval_modes.push_back(is_training());
      return BoringModel::validation_step(b, i, d);
    }
    std::vector<bool> training_modes, eval_modes;
  } model;
  Trainer(bare().num_sanity_val_steps(1).max_epochs(2).limit_train_batches(2).limit_val_batches(1))
      .fit(model);
  for (bool m : model.training_modes) BOOST_TEST(m);  // back in train mode after each validation
  for (bool m : model.eval_modes) BOOST_TEST(!m);
  model.eval();
  Trainer().validate(model);
  BOOST_TEST(!model.is_training());  // validate() leaves an eval-mode module in eval mode
  model.train();
  Trainer().test(model);
  BOOST_TEST(model.is_training());
}

BOOST_AUTO_TEST_CASE(async_observers_get_copies_without_the_closure) {
  BoringModel model;
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(3));
  std::atomic<int> seen{0}, with_closure{0};
  trainer.bus().on<OptimizerStep>(
      [&](const OptimizerStep& e) {
        ++seen;
        if (e.closure) ++with_closure;
      },
      SubscribeOptions().lane(Lane::async));
  trainer.fit(model);
  BOOST_TEST(seen.load() == 3);
  BOOST_TEST(with_closure.load() == 0);
}

BOOST_AUTO_TEST_CASE(data_module_answers_data_hooks_and_is_set_up_first) {
  class Data final : public DataModule {
   public:
    Data() : DataModule("dm") {}
    void setup(Stage) override { order->push_back("dm.setup"); }
    DataLoaders train_dataloader() override { return {loader(16)}; }
    DataLoaders val_dataloader() override { return {loader(8)}; }
    BatchHooks batch_hooks() const override { return {.on_after_batch_transfer = true}; }
    Batch on_after_batch_transfer(Batch batch, std::int64_t) override {
      batch.set("marked", torch::ones({1}));
      return batch;
    }
    std::vector<std::string>* order = nullptr;
  } data;
  class Model final : public BoringModel {
   public:
    void setup(Stage) override { order.push_back("lm.setup"); }
    DataLoaders train_dataloader() override {
      throw std::logic_error("the data module should answer");
    }
    Verdict on_train_batch_start(const Batch& b, std::int64_t) override {
      marked += b.contains("marked") ? 1 : 0;
      return {};
    }
    std::vector<std::string> order;
    int marked = 0;
  } model;
  class Order final : public Callback {
   public:
    explicit Order(std::vector<std::string>* o) : Callback("cb"), order(o) {}
    void setup(Trainer&, Module&, Stage) override { order->push_back("cb.setup"); }
    std::vector<std::string>* order;
  };
  data.order = &model.order;
  Trainer trainer(bare().num_sanity_val_steps(1).max_epochs(1),
                  {std::make_shared<Order>(&model.order)});
  trainer.fit(model, data);
  BOOST_TEST(model.order == (std::vector<std::string>{"dm.setup", "cb.setup", "lm.setup"}),
             boost::test_tools::per_element());
  BOOST_TEST(model.marked == 4);
  BOOST_TEST(trainer.num_val_batches() == std::vector<std::int64_t>{2},
             boost::test_tools::per_element());
}

namespace {
struct Pairs : torch::data::datasets::Dataset<Pairs> {
  torch::data::Example<> get(std::size_t i) override {
    return {torch::full({32}, static_cast<float>(i)), torch::zeros({2})};
  }
  torch::optional<std::size_t> size() const override { return 12; }
};
}  // namespace

BOOST_AUTO_TEST_CASE(torch_data_datasets_work_through_the_adapter) {
  class FromTorch final : public BoringModel {
   public:
    DataLoaders train_dataloader() override {
      return {std::make_shared<data::DataLoader>(data::adapt(Pairs{}),
                                                 data::DataLoaderOptions().batch_size(4))};
    }
  } model;
  Trainer trainer(quiet().max_epochs(1));
  trainer.fit(model);
  BOOST_TEST(trainer.global_step() == 3);
}

BOOST_AUTO_TEST_CASE(bitwise_parity_with_a_hand_written_loop) {
  class Mlp final : public Module {
   public:
    Mlp() {
      fc1 = register_module("fc1", torch::nn::Linear(32, 64));
      fc2 = register_module("fc2", torch::nn::Linear(64, 2));
    }
    torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::relu(fc1(x))); }
    StepOutput training_step(const Batch& b, std::int64_t) override {
      return {{"loss", torch::mse_loss(forward(b["x"]), b["y"])}};
    }
    OptimizerConfig configure_optimizers() override {
      return OptimizerConfig().add(
          std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(1e-2)));
    }
    DataLoaders train_dataloader() override {
      return {std::make_shared<data::DataLoader>(
          random_dataset(96), data::DataLoaderOptions().batch_size(8).shuffle(true).seed(5))};
    }
    torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  };
  torch::manual_seed(0);
  Mlp ours;
  torch::manual_seed(0);
  Mlp hand;
  Trainer(quiet().max_epochs(3)).fit(ours);

  torch::optim::Adam optimizer(hand.parameters(), torch::optim::AdamOptions(1e-2));
  data::DataLoader loader(random_dataset(96),
                          data::DataLoaderOptions().batch_size(8).shuffle(true).seed(5));
  for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
    loader.set_epoch(epoch);
    for (const Batch& b : loader) {
      optimizer.zero_grad();
      auto loss = torch::mse_loss(hand.forward(b["x"]), b["y"]);
      loss.backward();
      optimizer.step();
    }
  }
  auto a = ours.parameters(), b = hand.parameters();
  BOOST_REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(torch::equal(a[i], b[i]));
  BOOST_TEST(!torch::equal(a[0], Mlp().parameters()[0]));  // it did train
}

BOOST_AUTO_TEST_SUITE_END()

// ---- which hooks are subscribed ----------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(hook_subscriptions)

namespace {

class BackwardOnly : public Callback {
 public:
  BackwardOnly() : Callback("backward_only") {}
  void on_before_backward(Trainer&, Module&, const at::Tensor&) override { ++calls; }
  int calls = 0;
};
class Grandchild final : public BackwardOnly {};
class CallsBase final : public Callback {
 public:
  void on_after_backward(Trainer& t, Module& m) override { Callback::on_after_backward(t, m); }
};
struct Mixin {
  virtual ~Mixin() = default;
  virtual int mixin() const { return 1; }
  int payload = 7;
};
// Callback as a second base: its hooks sit in a secondary virtual table.
class SecondBase final : public Mixin, public Callback {
 public:
  void on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                          std::int64_t) override {}
};

template <class Hook>
bool overrides(const Callback& callback, Hook Callback::*hook) {
  return hookline::detail::overrides<Callback>(callback, hook);
}

// Subscribers of E that an untraced emission calls, and all of them.
template <class E>
std::pair<std::size_t, std::size_t> subscribers(Bus& bus) {
  const auto all = bus.subscribers<E>();
  const auto called = std::count_if(all.begin(), all.end(),
                                    [](const SubscriptionInfo& s) { return !s.only_when_traced; });
  return {static_cast<std::size_t>(called), all.size()};
}

// A module that overrides one per-batch hook and reports the subscribers it sees.
class AfterBackwardModel final : public BoringModel {
 public:
  void on_after_backward() override {
    ++calls;
    Bus& bus = trainer().bus();
    after_backward = subscribers<AfterBackward>(bus);
    before_backward = subscribers<BeforeBackward>(bus);
    batch_start = subscribers<TrainBatchStart>(bus);
  }
  int calls = 0;
  std::pair<std::size_t, std::size_t> after_backward, before_backward, batch_start;
};

}  // namespace

BOOST_AUTO_TEST_CASE(overrides_reads_the_final_overrider) {
  const Callback plain;
  const BackwardOnly child;
  const Grandchild grandchild;
  const CallsBase calls_base;
  const SecondBase second;
  if (!hookline::detail::can_see_overrides) {
    // Elsewhere every hook counts as overridden: always correct, only slower.
    BOOST_TEST(overrides(plain, &Callback::on_before_backward));
    return;
  }
  BOOST_TEST(!overrides(plain, &Callback::on_before_backward));
  BOOST_TEST(overrides(child, &Callback::on_before_backward));
  BOOST_TEST(!overrides(child, &Callback::on_after_backward));
  BOOST_TEST(overrides(grandchild, &Callback::on_before_backward));  // inherited override
  BOOST_TEST(!overrides(grandchild, &Callback::on_train_batch_end));
  // An override that only calls the default is still an override: it is called.
  BOOST_TEST(overrides(calls_base, &Callback::on_after_backward));
  BOOST_TEST(overrides(second, &Callback::on_train_batch_end));
  BOOST_TEST(!overrides(second, &Callback::on_train_batch_start));
  BOOST_TEST(second.payload == 7);
}

BOOST_AUTO_TEST_CASE(untraced_runs_subscribe_only_the_batch_hooks_a_class_overrides) {
  torch::manual_seed(3);
  AfterBackwardModel model;
  auto child = std::make_shared<BackwardOnly>();
  auto summary = std::make_shared<ModelSummary>();
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(3), {child, summary});
  trainer.fit(model);
  BOOST_TEST(model.calls == 3);
  BOOST_TEST(child->calls == 3);
  using Counts = std::pair<std::size_t, std::size_t>;
  // Every hook is subscribed (lm, backward_only, ModelSummary); an untraced emission calls only
  // the classes that override it.
  const bool sees = hookline::detail::can_see_overrides;
  const std::size_t called = sees ? 1 : 3, nobody = sees ? 0 : 3;
  BOOST_TEST((model.after_backward == Counts{called, 3}));   // the module
  BOOST_TEST((model.before_backward == Counts{called, 3}));  // the callback
  BOOST_TEST((model.batch_start == Counts{nobody, 3}));      // nobody
  // A traced run calls them all, so the trace shows every call Lightning makes; the results are
  // the same.
  torch::manual_seed(3);
  AfterBackwardModel traced_model;
  auto recorder = std::make_shared<HookRecorder>(false);
  Trainer traced(quiet().max_epochs(1).limit_train_batches(3),
                 {std::make_shared<BackwardOnly>(), std::make_shared<ModelSummary>()});
  traced.bus().set_tracer(recorder);
  traced.fit(traced_model);
  for (const char* who : {"lm", "backward_only", "ModelSummary"}) {
    const auto calls = recorder->calls_of(who);
    BOOST_TEST_INFO(who);
    BOOST_TEST(std::count(calls.begin(), calls.end(), "on_train_batch_start") == 3);
    BOOST_TEST(std::count(calls.begin(), calls.end(), "on_before_backward") == 3);
    BOOST_TEST(std::count(calls.begin(), calls.end(), "on_after_backward") == 3);
  }
  const auto untraced_weights = model.parameters();
  const auto traced_weights = traced_model.parameters();
  BOOST_REQUIRE(untraced_weights.size() == traced_weights.size());
  for (std::size_t i = 0; i < untraced_weights.size(); ++i)
    BOOST_TEST(torch::equal(untraced_weights[i], traced_weights[i]));
}

namespace {

// Records, at each batch end, who an emission of the hooks with a working default would reach.
class AudienceModel final : public BoringModel {
 public:
  void on_train_batch_end(const StepOutput&, const Batch&, std::int64_t) override {
    Bus& bus = trainer().bus();
    audiences.push_back({bus.audience<TransferBatchToDevice>(), bus.audience<OptimizerZeroGrad>(),
                         bus.audience<Backward>(), bus.audience<ConfigureGradientClipping>(),
                         bus.audience<OptimizerStep>()});
    backward = bus.subscribers<Backward>();
  }
  std::vector<std::vector<Bus::Audience>> audiences;
  std::vector<SubscriptionInfo> backward;
};

// Overrides backward, calling the default: an override is subscribed as any other.
class OwnBackwardModel final : public BoringModel {
 public:
  void backward(const at::Tensor& loss) override {
    ++calls;
    Module::backward(loss);
    subscribers = trainer().bus().subscribers<Backward>();
  }
  int calls = 0;
  std::vector<SubscriptionInfo> subscribers;
};

}  // namespace

BOOST_AUTO_TEST_CASE(hooks_whose_default_has_work_run_it_directly_when_nothing_else_listens) {
  const auto options = quiet().max_epochs(1).limit_train_batches(4).gradient_clip_val(0.5);
  torch::manual_seed(5);
  AudienceModel direct;
  const auto initial = direct.parameters()[0].clone();
  Trainer alone(options);
  alone.fit(direct);
  BOOST_TEST(alone.global_step() == 4);
  BOOST_TEST(!torch::equal(direct.parameters()[0], initial));  // it trained
  const bool sees = hookline::detail::can_see_overrides;
  const auto expected = sees ? Bus::Audience::defaults : Bus::Audience::others;
  BOOST_REQUIRE(direct.audiences.size() == 4u);
  for (const auto& audience : direct.audiences)
    BOOST_TEST((audience == std::vector<Bus::Audience>(5, expected)));
  BOOST_REQUIRE(direct.backward.size() == 1u);
  BOOST_TEST(direct.backward[0].runs_default == sees);

  // With another subscriber the hooks are emitted, and the module's defaults still run through
  // the bus: the same training, to the bit.
  torch::manual_seed(5);
  AudienceModel emitted;
  Trainer watched(options);
  int calls = 0;
  const auto count = [&calls] { ++calls; };
  watched.bus().on<TransferBatchToDevice>(count, SubscribeOptions().named("watch"));
  watched.bus().on<OptimizerZeroGrad>(count, SubscribeOptions().named("watch"));
  watched.bus().on<Backward>(count, SubscribeOptions().named("watch"));
  watched.bus().on<ConfigureGradientClipping>(count, SubscribeOptions().named("watch"));
  watched.bus().on<OptimizerStep>(count, SubscribeOptions().named("watch"));
  watched.fit(emitted);
  BOOST_TEST(calls == 5 * 4);
  BOOST_REQUIRE(emitted.audiences.size() == 4u);
  BOOST_TEST((emitted.audiences.back() == std::vector<Bus::Audience>(5, Bus::Audience::others)));
  const auto a = direct.parameters(), b = emitted.parameters();
  BOOST_REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(torch::equal(a[i], b[i]));

  // A module that overrides backward is called through the bus.
  torch::manual_seed(5);
  OwnBackwardModel own;
  Trainer trainer(options);
  trainer.fit(own);
  BOOST_TEST(own.calls == 4);
  BOOST_REQUIRE(own.subscribers.size() == 1u);
  BOOST_TEST(!own.subscribers[0].runs_default);
  const auto c = own.parameters();
  for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(torch::equal(a[i], c[i]));
}

BOOST_AUTO_TEST_CASE(a_subclass_of_a_builtin_gets_the_batch_hooks_it_adds) {
  class CountingSummary final : public ModelSummary {
   public:
    void on_train_batch_start(Trainer&, Module&, const Batch&, std::int64_t) override { ++calls; }
    int calls = 0;
  };
  auto summary = std::make_shared<CountingSummary>();
  BoringModel model;
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(4), {summary});
  trainer.fit(model);
  BOOST_TEST(summary->calls == 4);
}

// Lightning sets trainer.validating = True before on_validation_model_zero_grad and before the
// fit loop requests the val dataloaders (fit_loop.on_run_start, training_epoch_loop
// on_advance_end), and training again after the validation.
BOOST_AUTO_TEST_CASE(validating_from_the_zero_grad_hook_and_the_lazy_val_dataloader) {
  class Probe final : public BoringModel {
   public:
    void on_validation_model_zero_grad() override {
      zero_grad_seen.emplace_back(trainer().validating(), trainer().training());
      BoringModel::on_validation_model_zero_grad();
    }
    DataLoaders val_dataloader() override {
      dataloader_seen.emplace_back(trainer().validating(), trainer().training());
      return BoringModel::val_dataloader();
    }
    std::vector<std::pair<bool, bool>> zero_grad_seen;  // (validating, training)
    std::vector<std::pair<bool, bool>> dataloader_seen;
  };
  Probe model;
  Trainer trainer(
      quiet().max_epochs(1).limit_train_batches(4).limit_val_batches(2).num_sanity_val_steps(0));
  trainer.fit(model);
  BOOST_REQUIRE(model.zero_grad_seen.size() == 1u);
  BOOST_TEST(model.zero_grad_seen[0].first);
  BOOST_TEST(!model.zero_grad_seen[0].second);
  BOOST_REQUIRE(model.dataloader_seen.size() == 1u);
  BOOST_TEST(model.dataloader_seen[0].first);
  BOOST_TEST(!trainer.validating());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_trainer_tests
