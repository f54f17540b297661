// Every TrainerOption has a test that fails if the option is ignored.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>

#include <filesystem>
#include <thread>

namespace hookline_test_trainer_options_tests {

using namespace hookline;
using namespace test_support;

namespace {

/// Counts what a run did.
class Counter final : public Callback {
 public:
  Counter() : Callback("counter") {}
  void on_train_epoch_start(Trainer&, Module&) override { ++epochs; }
  void on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                          std::int64_t) override {
    ++train_batches;
  }
  void on_validation_start(Trainer& t, Module&) override {
    if (!t.sanity_checking()) ++val_runs;
  }
  void on_validation_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&, std::int64_t,
                               std::int64_t) override {
    (t.sanity_checking() ? sanity_batches : val_batches)++;
  }
  void on_test_batch_end(Trainer&, Module&, const StepOutput&, const Batch&, std::int64_t,
                         std::int64_t) override {
    ++test_batches;
  }
  void on_predict_batch_end(Trainer&, Module&, const StepOutput&, const Batch&, std::int64_t,
                            std::int64_t) override {
    ++predict_batches;
  }
  int epochs = 0, train_batches = 0, val_runs = 0, val_batches = 0, sanity_batches = 0,
      test_batches = 0, predict_batches = 0;
};

/// Asks to stop from a chosen hook (like EarlyStopping would).
class StopAt final : public Callback {
 public:
  enum class Where { batch_end, epoch_end };
  StopAt(Where where, int at, int priority = band::monitoring)
      : Callback("stop_at", priority), where_(where), at_(at) {}
  void on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                          std::int64_t) override {
    if (where_ == Where::batch_end && seen_++ == at_) veto(Action::StopFit, "batch limit");
  }
  void on_train_epoch_end(Trainer& t, Module&) override {
    if (where_ == Where::epoch_end && seen_++ == at_) t.set_should_stop(true, "epoch limit");
  }

 private:
  Where where_;
  int at_;
  int seen_ = 0;
};

struct Run {
  std::shared_ptr<Counter> counter = std::make_shared<Counter>();
  std::unique_ptr<Trainer> trainer;
  Run(TrainerOptions options, std::vector<std::shared_ptr<Callback>> more = {}) {
    more.push_back(counter);
    trainer = std::make_unique<Trainer>(std::move(options), std::move(more));
  }
};

TrainerOptions quiet() {
  return TrainerOptions().num_sanity_val_steps(0).limit_val_batches(0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(trainer_options)

BOOST_AUTO_TEST_CASE(max_epochs) {
  BoringModel model;
  Run run(quiet().max_epochs(3).limit_train_batches(2));
  run.trainer->fit(model);
  BOOST_TEST(run.counter->epochs == 3);
  BOOST_TEST(run.trainer->current_epoch() == 3);
  BOOST_TEST(run.trainer->global_step() == 6);
}

// A device LibTorch cannot use is refused when the Trainer is built, naming the option, before
// any hook runs (issue: LibTorch's own error came after setup, prepare_data and configure_model).
BOOST_AUTO_TEST_CASE(a_device_that_does_not_exist_is_refused_when_the_trainer_is_built) {
  if (at::hasCUDA() && at::getNumGPUs() > 0) return;  // a machine with a GPU has cuda:0
  try {
    Trainer trainer(TrainerOptions().device(c10::Device("cuda:0")).enable_progress_bar(false));
    BOOST_FAIL("a CUDA device without CUDA was accepted");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("TrainerOptions::device(\"cuda:0\")") != std::string::npos, what);
    BOOST_TEST(what.find("no CUDA") != std::string::npos, what);
  }
  try {
    Trainer trainer(TrainerOptions().accelerator("cuda").enable_progress_bar(false));
    BOOST_FAIL("accelerator cuda without CUDA was accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("no CUDA") != std::string::npos, e.what());
  }
}

BOOST_AUTO_TEST_CASE(default_max_epochs_is_1000_without_max_steps) {
  BOOST_TEST(TrainerOptions().effective_max_epochs() == 1000);
  BOOST_TEST(TrainerOptions().max_steps(10).effective_max_epochs() == -1);
}

BOOST_AUTO_TEST_CASE(min_epochs_delays_a_stop) {
  BoringModel model;
  Run run(quiet().max_epochs(10).min_epochs(3).limit_train_batches(2),
          {std::make_shared<StopAt>(StopAt::Where::epoch_end, 0)});
  run.trainer->fit(model);
  BOOST_TEST(run.counter->epochs == 3);
  BOOST_TEST(run.trainer->stop_reason() == "epoch limit");
}

BOOST_AUTO_TEST_CASE(stop_without_minimum_ends_after_the_epoch) {
  BoringModel model;
  Run run(quiet().max_epochs(10).limit_train_batches(2),
          {std::make_shared<StopAt>(StopAt::Where::epoch_end, 0)});
  run.trainer->fit(model);
  BOOST_TEST(run.counter->epochs == 1);
}

BOOST_AUTO_TEST_CASE(max_steps_stops_mid_epoch) {
  BoringModel model;
  Run run(quiet().max_epochs(10).max_steps(5).limit_train_batches(4));
  run.trainer->fit(model);
  BOOST_TEST(run.trainer->global_step() == 5);
  BOOST_TEST(run.counter->epochs == 2);
  BOOST_TEST(run.counter->train_batches == 5);
}

BOOST_AUTO_TEST_CASE(min_steps_delays_a_stop) {
  BoringModel model;
  Run run(quiet().max_epochs(10).min_steps(6).limit_train_batches(4),
          {std::make_shared<StopAt>(StopAt::Where::batch_end, 0)});
  run.trainer->fit(model);
  BOOST_TEST(run.trainer->global_step() == 6);
  BOOST_TEST(run.trainer->stop_reason() == "stop_at: batch limit");
}

BOOST_AUTO_TEST_CASE(max_time_stops_at_a_batch_boundary) {
  class Slow final : public BoringModel {
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return BoringModel::training_step(b, i);
    }
  } model;
  Run run(quiet().max_epochs(100).max_time(std::chrono::milliseconds(1)));
  run.trainer->fit(model);
  BOOST_TEST(run.trainer->global_step() == 1);
  BOOST_TEST(run.trainer->stop_reason() == "max_time reached");
}

BOOST_AUTO_TEST_CASE(limit_train_batches_count_and_fraction) {
  {
    BoringModel model;
    Run run(quiet().max_epochs(1).limit_train_batches(3));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->train_batches == 3);
  }
  {
    BoringModel model;  // 64 samples / 4 = 16 batches
    Run run(quiet().max_epochs(1).limit_train_batches(0.25));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->train_batches == 4);
    BOOST_TEST(run.trainer->num_training_batches() == 4);
  }
  {
    BoringModel model;
    Run run(quiet().max_epochs(1));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->train_batches == 16);
  }
}

BOOST_AUTO_TEST_CASE(limit_val_batches_count_and_fraction) {
  {
    BoringModel model;
    Run run(TrainerOptions()
                .num_sanity_val_steps(0)
                .max_epochs(1)
                .limit_train_batches(1)
                .limit_val_batches(3));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->val_batches == 3);
  }
  {
    BoringModel model;
    Run run(TrainerOptions()
                .num_sanity_val_steps(0)
                .max_epochs(1)
                .limit_train_batches(1)
                .limit_val_batches(0.5));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->val_batches == 8);
  }
  {
    BoringModel model;
    Run run(TrainerOptions().max_epochs(1).limit_train_batches(1).limit_val_batches(0));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->val_batches == 0);
    BOOST_TEST(run.counter->sanity_batches == 0);
  }
}

BOOST_AUTO_TEST_CASE(limit_test_and_predict_batches) {
  BoringModel model;
  Run run(TrainerOptions().limit_test_batches(5).limit_predict_batches(0.5));
  run.trainer->test(model);
  auto predictions = run.trainer->predict(model);
  BOOST_TEST(run.counter->test_batches == 5);
  BOOST_TEST(run.counter->predict_batches == 8);
  BOOST_TEST(predictions.size() == 8u);
  BOOST_TEST(predictions[0]["prediction"].size(0) == 4);
}

BOOST_AUTO_TEST_CASE(val_check_interval_count_and_fraction) {
  {
    BoringModel model;
    Run run(TrainerOptions()
                .num_sanity_val_steps(0)
                .max_epochs(1)
                .limit_train_batches(6)
                .limit_val_batches(1)
                .val_check_interval(2));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->val_runs == 3);
  }
  {
    BoringModel model;
    Run run(TrainerOptions()
                .num_sanity_val_steps(0)
                .max_epochs(1)
                .limit_train_batches(8)
                .limit_val_batches(1)
                .val_check_interval(0.25));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->val_runs == 4);
  }
}

BOOST_AUTO_TEST_CASE(check_val_every_n_epoch) {
  BoringModel model;
  Run run(TrainerOptions()
              .num_sanity_val_steps(0)
              .max_epochs(6)
              .limit_train_batches(1)
              .limit_val_batches(1)
              .check_val_every_n_epoch(3));
  run.trainer->fit(model);
  BOOST_TEST(run.counter->val_runs == 2);
}

BOOST_AUTO_TEST_CASE(num_sanity_val_steps) {
  for (auto [steps, expected] : {std::pair{0, 0}, {3, 3}, {-1, 5}}) {
    BoringModel model;
    Run run(TrainerOptions()
                .num_sanity_val_steps(steps)
                .max_epochs(1)
                .limit_train_batches(1)
                .limit_val_batches(5));
    run.trainer->fit(model);
    BOOST_TEST(run.counter->sanity_batches == expected);
    BOOST_TEST(run.counter->val_batches == 5);
  }
}

BOOST_AUTO_TEST_CASE(sanity_check_leaves_the_random_stream_alone) {
  class Noisy final : public BoringModel {
   public:
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      (void)torch::rand({8});  // consumes the global generator
      return BoringModel::validation_step(b, i, d);
    }
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      if (draws.empty()) draws.push_back(torch::rand({1}).item<float>());
      return BoringModel::training_step(b, i);
    }
    std::vector<float> draws;
  };
  Noisy with, without;
  Trainer(TrainerOptions().seed(3).max_epochs(1).limit_train_batches(1).limit_val_batches(0))
      .fit(without);
  Trainer(TrainerOptions()
              .seed(3)
              .max_epochs(1)
              .limit_train_batches(1)
              .limit_val_batches(2)
              .check_val_every_n_epoch(2))
      .fit(with);
  BOOST_REQUIRE(with.draws.size() == 1u);
  BOOST_TEST(with.draws[0] == without.draws[0]);
}

BOOST_AUTO_TEST_CASE(accumulate_grad_batches) {
  class Recording final : public BoringModel {
   public:
    void on_train_batch_end(const StepOutput& out, const Batch& b, std::int64_t i) override {
      const auto raw = BoringModel::training_step(b, i)["loss"].detach();
      ratios.push_back((raw / out["loss"]).item<double>());
    }
    std::vector<double> ratios;
  } model;
  Run run(quiet().max_epochs(1).limit_train_batches(8).accumulate_grad_batches(4));
  run.trainer->fit(model);
  BOOST_TEST(run.trainer->global_step() == 2);
  BOOST_REQUIRE(model.ratios.size() == 8u);
  // outputs carry the loss divided by accumulate_grad_batches (the batch-end loss is computed
  // before the step, so compare only the first batch of each window, before any update).
  BOOST_TEST(model.ratios[0] == 4.0, boost::test_tools::tolerance(1e-4));
}

namespace {
/// Records the gradient size the optimizer sees (after clipping).
class GradProbe final : public BoringModel {
 public:
  void optimizer_step(std::int64_t, std::int64_t, torch::optim::Optimizer& optimizer,
                      const std::function<void()>& closure) override {
    closure();
    double norm2 = 0, max_abs = 0;
    for (const auto& p : parameters()) {
      norm2 += p.grad().pow(2).sum().item<double>();
      max_abs = std::max(max_abs, p.grad().abs().max().item<double>());
    }
    norms.push_back(std::sqrt(norm2));
    maxima.push_back(max_abs);
    optimizer.step();
  }
  std::vector<double> norms, maxima;
};
}  // namespace

BOOST_AUTO_TEST_CASE(gradient_clip_val_and_algorithm) {
  GradProbe unclipped, by_norm, by_value;
  Trainer(quiet().max_epochs(1).limit_train_batches(3)).fit(unclipped);
  Trainer(quiet().max_epochs(1).limit_train_batches(3).gradient_clip_val(0.01)).fit(by_norm);
  Trainer(
      quiet().max_epochs(1).limit_train_batches(3).gradient_clip_val(0.001).gradient_clip_algorithm(
          ClipAlgorithm::value))
      .fit(by_value);
  BOOST_TEST(unclipped.norms[0] > 0.02);
  for (double n : by_norm.norms) BOOST_TEST(n <= 0.01 + 1e-6);
  for (double m : by_value.maxima) BOOST_TEST(m <= 0.001 + 1e-9);
  BOOST_TEST(by_value.norms[0] > 0.001 + 1e-6);  // value clipping is element-wise, not a norm
}

// The metric maps get step values at every batch end (Lightning); log_every_n_steps throttles
// what the loggers get (see logging_tests.cpp for the steps and keys).
BOOST_AUTO_TEST_CASE(log_every_n_steps) {
  class Logs final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      seen.push_back(trainer().logged_metrics().count("step_loss") != 0);
      auto out = BoringModel::training_step(b, i);
      log("step_loss", out["loss"]);
      return out;
    }
    std::vector<bool> seen;
  } model;
  class Counting final : public Logger {
   public:
    void log_metrics(const std::map<std::string, double>&,
                     std::optional<std::int64_t> step) override {
      steps.push_back(step.value_or(-1));
    }
    void log_hyperparams(const Checkpoint&) override {}
    std::string name() const override { return "counting"; }
    LoggerVersion version() override { return std::int64_t{0}; }
    std::vector<std::int64_t> steps;
  };
  auto counting = std::make_shared<Counting>();
  Trainer(quiet().max_epochs(1).limit_train_batches(4).log_every_n_steps(3).logger(counting))
      .fit(model);
  BOOST_TEST(model.seen == (std::vector<bool>{false, true, true, true}),
             boost::test_tools::per_element());
  BOOST_TEST(counting->steps == (std::vector<std::int64_t>{2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(fast_dev_run) {
  BoringModel model;
  Run run(TrainerOptions().fast_dev_run(2).max_epochs(5));
  run.trainer->fit(model);
  BOOST_TEST(run.counter->epochs == 1);
  BOOST_TEST(run.counter->train_batches == 2);
  BOOST_TEST(run.counter->sanity_batches == 0);
  BOOST_TEST(run.counter->val_batches == 2);
  run.trainer->test(model);
  BOOST_TEST(run.counter->test_batches == 2);
}

BOOST_AUTO_TEST_CASE(overfit_batches_uses_the_same_first_batches) {
  class Shuffled final : public BoringModel {
   public:
    DataLoaders train_dataloader() override {
      return {std::make_shared<data::DataLoader>(
          random_dataset(64), data::DataLoaderOptions().batch_size(4).shuffle(true).seed(1))};
    }
    void on_train_batch_start_record(const Batch& b) {
      firsts.push_back(b["x"][0][0].item<float>());
    }
    Verdict on_train_batch_start(const Batch& b, std::int64_t) override {
      on_train_batch_start_record(b);
      return {};
    }
    std::vector<float> firsts;
  } model;
  Run run(TrainerOptions().num_sanity_val_steps(0).max_epochs(2).overfit_batches(3));
  run.trainer->fit(model);
  BOOST_TEST(run.counter->train_batches == 6);
  BOOST_TEST(run.counter->val_batches == 6);
  BOOST_REQUIRE(model.firsts.size() == 6u);
  const auto data = random_dataset(64)->tensors()["x"];
  for (int i = 0; i < 3; ++i) {
    BOOST_TEST(model.firsts[static_cast<std::size_t>(i)] == data[i * 4][0].item<float>());
    BOOST_TEST(model.firsts[static_cast<std::size_t>(i + 3)] == data[i * 4][0].item<float>());
  }
}

BOOST_AUTO_TEST_CASE(reload_dataloaders_every_n_epochs) {
  class CountsLoaders final : public BoringModel {
   public:
    DataLoaders train_dataloader() override {
      ++requests;
      return BoringModel::train_dataloader();
    }
    int requests = 0;
  };
  CountsLoaders once, every;
  Trainer(quiet().max_epochs(3).limit_train_batches(1)).fit(once);
  Trainer(quiet().max_epochs(3).limit_train_batches(1).reload_dataloaders_every_n_epochs(1))
      .fit(every);
  BOOST_TEST(once.requests == 1);
  BOOST_TEST(every.requests == 3);
}

BOOST_AUTO_TEST_CASE(seed_and_deterministic) {
  class Noisy final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      noise.push_back(torch::rand({1}).item<float>());
      return BoringModel::training_step(b, i);
    }
    std::vector<float> noise;
  };
  Noisy a, b, c;
  Trainer(quiet().max_epochs(1).limit_train_batches(2).seed(11).deterministic(true)).fit(a);
  BOOST_TEST(at::globalContext().deterministicAlgorithms());
  at::globalContext().setDeterministicAlgorithms(false, false);
  Trainer(quiet().max_epochs(1).limit_train_batches(2).seed(11)).fit(b);
  Trainer(quiet().max_epochs(1).limit_train_batches(2).seed(12)).fit(c);
  BOOST_TEST(a.noise == b.noise, boost::test_tools::per_element());
  BOOST_TEST(a.noise != c.noise);
}

BOOST_AUTO_TEST_CASE(default_root_dir_is_created) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hookline-root-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  BoringModel model;
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(1).default_root_dir(dir.string()));
  trainer.fit(model);
  BOOST_TEST(std::filesystem::is_directory(dir));
  BOOST_TEST(trainer.options().default_root_dir() == dir.string());
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(precision_bf16_autocasts_the_steps) {
  class DtypeProbe final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      dtypes.push_back(layer(b["x"]).scalar_type());
      return BoringModel::training_step(b, i);
    }
    std::vector<c10::ScalarType> dtypes;
  };
  DtypeProbe fp32, bf16;
  Trainer(quiet().max_epochs(1).limit_train_batches(1)).fit(fp32);
  Trainer(quiet().max_epochs(1).limit_train_batches(1).precision(Precision::bf16_mixed)).fit(bf16);
  BOOST_TEST((fp32.dtypes.at(0) == at::kFloat));
  BOOST_TEST((bf16.dtypes.at(0) == at::kBFloat16));
  BOOST_TEST(!at::autocast::is_cpu_enabled());  // restored after the run
  for (const auto& p : bf16.parameters()) BOOST_TEST((p.scalar_type() == at::kFloat));
}

BOOST_AUTO_TEST_CASE(inference_mode_for_evaluation) {
  class ModeProbe final : public BoringModel {
   public:
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      inference.push_back(c10::InferenceMode::is_enabled());
      grad.push_back(at::GradMode::is_enabled());
      return BoringModel::validation_step(b, i, d);
    }
    std::vector<bool> inference, grad;
  };
  ModeProbe on, off, in_fit;
  Trainer(TrainerOptions().limit_val_batches(1)).validate(on);
  Trainer(TrainerOptions().limit_val_batches(1).inference_mode(false)).validate(off);
  Trainer(TrainerOptions()
              .num_sanity_val_steps(0)
              .max_epochs(1)
              .limit_train_batches(1)
              .limit_val_batches(1))
      .fit(in_fit);
  BOOST_TEST(on.inference.at(0));
  BOOST_TEST(!off.inference.at(0));
  BOOST_TEST(!off.grad.at(0));
  BOOST_TEST(!in_fit.inference.at(0));  // validation inside fit uses no_grad, as Lightning
  BOOST_TEST(!in_fit.grad.at(0));
}

BOOST_AUTO_TEST_CASE(num_threads) {
  Trainer one(TrainerOptions().num_threads(1));
  BOOST_TEST(torch::get_num_threads() == 1);
  Trainer machine;
  BOOST_TEST(torch::get_num_threads() ==
             static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_trainer_options_tests
