// ThroughputMonitor and Throughput: Lightning 2.2's keys, windows, logging steps and timings
// (the expectations of Lightning's tests/tests_pytorch/callbacks/test_throughput_monitor.py).
#include <boost/test/unit_test.hpp>

#include "recording_logger.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/throughput_monitor.hpp>
#include <hookline/core/logger.hpp>

#include <mutex>

namespace hookline_test_throughput_monitor_tests {

using namespace hookline;
using namespace test_support;

namespace {

// A clock that returns `times` in turn, then keeps counting up by 1.
std::function<double()> scripted_clock(std::vector<double> times) {
  auto state = std::make_shared<std::pair<std::vector<double>, std::size_t>>(std::move(times), 0);
  return [state] {
    auto& [values, i] = *state;
    const double t = i < values.size() ? values[i] : values.back() + double(i - values.size() + 1);
    ++i;
    return t;
  };
}

TrainerOptions quiet(std::shared_ptr<Logger> logger) {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false)
      .logger(std::move(logger));
}

using Metrics = std::map<std::string, double>;

// Lightning's test monitor: 6 items a batch, a window of 4, "|" between key parts, the times of
// `clock`.
ThroughputMonitorOptions lightning_options(std::function<double()> clock) {
  return ThroughputMonitorOptions()
      .length_fn([](const Batch&) { return std::int64_t{6}; })
      .window_size(4)
      .separator("|")
      .clock(std::move(clock));
}
// A monitor counting 3 samples a batch.
std::shared_ptr<ThroughputMonitor> monitor_with(ThroughputMonitorOptions options) {
  return std::make_shared<ThroughputMonitor>([](const Batch&) { return std::int64_t{3}; },
                                             std::move(options));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(throughput_monitor)

BOOST_AUTO_TEST_CASE(throughput_windows_and_errors) {
  BOOST_CHECK_THROW(Throughput(std::nullopt, 1, 1), std::invalid_argument);
  BOOST_CHECK_THROW(Throughput(std::nullopt, 0, 10), std::invalid_argument);
  Throughput t(100.0, 2, 3);
  BOOST_TEST(t.compute().empty());
  BOOST_CHECK_THROW(t.update(1.0, 2, 1), std::invalid_argument);  // samples < batches
  t.update(1.0, 1, 4, 8, 5.0);
  t.update(2.0, 2, 8, 16, 5.0);
  BOOST_TEST(t.compute().count("device/batches_per_sec") == 0u);  // window not full yet
  t.update(3.0, 3, 12, 24, 5.0);
  const MetricMap m = t.compute();
  BOOST_TEST(m.at("time") == 3.0);
  BOOST_TEST(m.at("batches") == 3.0);
  BOOST_TEST(m.at("samples") == 12.0);
  BOOST_TEST(m.at("lengths") == 24.0);
  BOOST_TEST(m.at("device/batches_per_sec") == 1.0);
  BOOST_TEST(m.at("device/samples_per_sec") == 4.0);
  BOOST_TEST(m.at("device/items_per_sec") == 8.0);
  BOOST_TEST(m.at("batches_per_sec") == 2.0);  // world size 2: the global ones too
  BOOST_TEST(m.at("samples_per_sec") == 8.0);
  BOOST_TEST(m.at("items_per_sec") == 16.0);
  BOOST_TEST(m.at("flops_per_sec") == 10.0);  // (3 * 5 * 2 - 5 * 2) / 2 s
  BOOST_TEST(m.at("device/flops_per_sec") == 5.0);
  BOOST_TEST(m.at("device/mfu") == 0.05);
  BOOST_CHECK_THROW(t.update(2.5, 4, 16), std::invalid_argument);  // time went back
  t.reset();
  BOOST_TEST(t.compute().empty());
  BOOST_CHECK_THROW(ThroughputMonitor(nullptr), std::invalid_argument);
  BOOST_CHECK_THROW(ThroughputMonitor([](const Batch&) { return std::int64_t{1}; },
                                      ThroughputMonitorOptions().window_size(1)),
                    std::invalid_argument);
}

// Lightning's test_throughput_monitor_fit: every step is a logging step; the rates appear once
// the window of 4 is full; world size 1 logs the device/ rates only.
BOOST_AUTO_TEST_CASE(fit_logs_every_logging_step_with_lightnings_values) {
  auto logger = std::make_shared<RecordingLogger>();
  auto monitor =
      monitor_with(lightning_options(scripted_clock({0.0, 1.5, 2.5, 3.5, 4.5, 5.5}))
                       .flops_per_batch([](const Module&) { return std::optional<double>(10); })
                       .available_flops(100));
  BoringModel model;
  Trainer trainer(
      quiet(logger).max_steps(5).log_every_n_steps(1).limit_val_batches(0).num_sanity_val_steps(2),
      {monitor});
  trainer.fit(model);
  const Metrics rates{{"train|device|batches_per_sec", 1.0},
                      {"train|device|samples_per_sec", 3.0},
                      {"train|device|items_per_sec", 6.0},
                      {"train|device|flops_per_sec", 10.0},
                      {"train|device|mfu", 0.1}};
  auto plain = [](double time, double n) {
    return Metrics{{"train|time", time},
                   {"train|batches", n},
                   {"train|samples", 3 * n},
                   {"train|lengths", 6 * n},
                   {"epoch", 0}};
  };
  auto with_rates = [&](double time, double n) {
    Metrics m = plain(time, n);
    m.insert(rates.begin(), rates.end());
    return m;
  };
  const auto calls = logger->with("train|");
  BOOST_REQUIRE_EQUAL(calls.size(), 5u);
  const std::vector<Metrics> expected{plain(1.5, 1), plain(2.5, 2), plain(3.5, 3),
                                      with_rates(4.5, 4), with_rates(5.5, 5)};
  for (std::size_t i = 0; i < calls.size(); ++i) {
    BOOST_TEST_CONTEXT("call " << i) {
      BOOST_TEST((calls[i].metrics == expected[i]));
      BOOST_TEST(calls[i].step.value() == static_cast<std::int64_t>(i));
    }
  }
  // limit_val_batches 0: no validation throughput, as in Lightning.
  BOOST_TEST(monitor->throughput("validate") == nullptr);
  BOOST_TEST(monitor->throughput("train") != nullptr);
}

// Lightning's test_throughput_monitor_fit_gradient_accumulation: only batches that end an
// accumulation window (or an epoch) log, on logging steps of "batches that stepped".
BOOST_AUTO_TEST_CASE(gradient_accumulation_logs_at_window_ends) {
  for (const std::int64_t every : {1, 3}) {
    BOOST_TEST_CONTEXT("log_every_n_steps " << every) {
      auto logger = std::make_shared<RecordingLogger>();
      std::vector<double> times{0.0};
      for (int i = 1; i <= 10; ++i) times.push_back(0.5 + i);
      auto monitor = monitor_with(lightning_options(scripted_clock(times)));
      BoringModel model;
      Trainer trainer(quiet(logger)
                          .limit_train_batches(5)
                          .limit_val_batches(0)
                          .max_epochs(2)
                          .log_every_n_steps(every)
                          .accumulate_grad_batches(2),
                      {monitor});
      trainer.fit(model);
      // (time, batches, epoch) of every window end; the steps are 0..5.
      const std::vector<std::tuple<double, double, double>> all{
          {2.5, 2, 0}, {4.5, 4, 0}, {5.5, 5, 0}, {7.5, 7, 1}, {9.5, 9, 1}, {10.5, 10, 1}};
      std::vector<std::pair<std::int64_t, std::tuple<double, double, double>>> expected;
      for (std::size_t i = static_cast<std::size_t>(every - 1); i < all.size();
           i += static_cast<std::size_t>(every))
        expected.emplace_back(static_cast<std::int64_t>(i), all[i]);
      const auto calls = logger->with("train|");
      BOOST_REQUIRE_EQUAL(calls.size(), expected.size());
      for (std::size_t i = 0; i < calls.size(); ++i) {
        const auto& m = calls[i].metrics;
        const auto& [time, batches, epoch] = expected[i].second;
        BOOST_TEST(calls[i].step.value() == expected[i].first);
        BOOST_TEST(m.at("train|time") == time);
        BOOST_TEST(m.at("train|batches") == batches);
        BOOST_TEST(m.at("train|samples") == 3 * batches);
        BOOST_TEST(m.at("train|lengths") == 6 * batches);
        BOOST_TEST(m.at("epoch") == epoch);
        // The window of 4 is full from the 4th batch on (the first call has 2 batches).
        BOOST_TEST(m.count("train|device|batches_per_sec") == (batches >= 4 ? 1u : 0u));
        if (batches >= 4) {
          BOOST_TEST(m.at("train|device|batches_per_sec") == 1.0);
          BOOST_TEST(m.at("train|device|samples_per_sec") == 3.0);
          BOOST_TEST(m.at("train|device|items_per_sec") == 6.0);
        }
      }
    }
  }
}

// Lightning's test_throughput_monitor_fit_with_validation: validation logs at its own step, and
// its time is not counted as training time.
BOOST_AUTO_TEST_CASE(validation_inside_fit_is_not_training_time) {
  auto logger = std::make_shared<RecordingLogger>();
  auto monitor = std::make_shared<ThroughputMonitor>(
      [](const Batch&) { return std::int64_t{1}; },
      ThroughputMonitorOptions().window_size(2).clock(scripted_clock({0, 7, 11, 13, 19})));
  BoringModel model;
  Trainer trainer(quiet(logger)
                      .max_steps(2)
                      .val_check_interval(1)
                      .log_every_n_steps(1)
                      .limit_val_batches(1)
                      .num_sanity_val_steps(2),
                  {monitor});
  trainer.fit(model);
  auto calls = logger->with("train/");
  const auto val_calls = logger->with("validate/");
  BOOST_REQUIRE_GE(val_calls.size(), 1u);
  BOOST_TEST((val_calls[0].metrics ==
              Metrics{{"validate/time", 2}, {"validate/batches", 1}, {"validate/samples", 1}}));
  BOOST_TEST(val_calls[0].step.value() == 1);
  BOOST_REQUIRE_EQUAL(calls.size(), 2u);
  BOOST_TEST(
      (calls[0].metrics ==
       Metrics{{"train/time", 7}, {"train/batches", 1}, {"train/samples", 1}, {"epoch", 0}}));
  BOOST_TEST(calls[0].step.value() == 0);
  BOOST_TEST(calls[1].metrics.at("train/time") == 7 + (19 - 13));
  BOOST_TEST(calls[1].metrics.at("train/batches") == 2);
  BOOST_TEST(calls[1].metrics.count("train/device/batches_per_sec") == 1u);
  BOOST_TEST(calls[1].metrics.count("train/device/samples_per_sec") == 1u);
  BOOST_TEST(calls[1].step.value() == 1);
}

// Lightning's test_throughput_monitor_eval: twice each of validate / test / predict; the logging
// step is the running total of that stage's batches, so it does not repeat.
BOOST_AUTO_TEST_CASE(evaluation_stages_log_every_n_batches_with_a_running_step) {
  for (const std::string fn : {"validate", "test", "predict"}) {
    BOOST_TEST_CONTEXT(fn) {
      auto logger = std::make_shared<RecordingLogger>();
      auto monitor =
          monitor_with(ThroughputMonitorOptions().window_size(3).separator("|").flops_per_batch(
              [](const Module&) { return std::optional<double>(10); }));
      BoringModel model;
      Trainer trainer(quiet(logger)
                          .limit_val_batches(6)
                          .limit_test_batches(6)
                          .limit_predict_batches(6)
                          .log_every_n_steps(3),
                      {monitor});
      for (int run = 0; run < 2; ++run) {
        if (fn == "validate")
          trainer.validate(model);
        else if (fn == "test")
          trainer.test(model);
        else
          trainer.predict(model);
      }
      const auto calls = logger->with(fn + "|");
      BOOST_REQUIRE_EQUAL(calls.size(), 4u);
      for (std::size_t i = 0; i < calls.size(); ++i) {
        const double n = 3.0 * static_cast<double>(i + 1);
        const auto& m = calls[i].metrics;
        BOOST_TEST(calls[i].step.value() == static_cast<std::int64_t>(n));
        BOOST_TEST(m.at(fn + "|batches") == n);
        BOOST_TEST(m.at(fn + "|samples") == 3 * n);
        for (const char* key : {"|time", "|device|batches_per_sec", "|device|samples_per_sec",
                                "|device|flops_per_sec"})
          BOOST_TEST(m.count(fn + key) == 1u, fn + key);
        BOOST_TEST(m.count(fn + "|device|mfu") == 0u);  // no available_flops on a CPU
        BOOST_TEST(m.count("epoch") == 0u);
        BOOST_TEST(m.size() == 6u);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_throughput_monitor_tests
