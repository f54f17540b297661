// Logging: Lightning's metric maps at batch and epoch ends, the logger connector (what loggers
// get, when, at which step), CSVLogger files read back with read_csv, TensorBoardLogger files
// decoded independently, and the progress bar on a pseudo-terminal and on a pipe.
#include <boost/test/unit_test.hpp>

#include "recording_logger.hpp"
#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/progress_bar.hpp>
#include <hookline/loggers/csv_logger.hpp>
#include <hookline/loggers/tensorboard_logger.hpp>

#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

namespace hookline_test_logging_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

TrainerOptions quiet() {
  return TrainerOptions()
      .num_sanity_val_steps(0)
      .limit_val_batches(0)
      .enable_checkpointing(false)
      .enable_progress_bar(false)
      .enable_model_summary(false);
}

using Recording = test_support::RecordingLogger;
using test_support::read_text;

// A BoringModel whose training and validation steps first run `train` / `val` (when set) with the
// model and the batch index: the logging a test needs.
class Logging final : public BoringModel {
 public:
  using Step = std::function<void(Module&, std::int64_t)>;
  explicit Logging(Step train, Step val = nullptr)
      : train_(std::move(train)), val_(std::move(val)) {}
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    if (train_) train_(*this, i);
    return BoringModel::training_step(b, i);
  }
  StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
    if (val_) val_(*this, i);
    return BoringModel::validation_step(b, i, d);
  }

 private:
  Step train_, val_;
};

// CRC-32C bit by bit (independent of Boost.CRC), and TensorFlow's mask.
std::uint32_t reference_crc32c(const unsigned char* p, std::size_t n) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}
std::uint32_t reference_mask(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::uint64_t le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint32_t le32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

// Every TFRecord of `path`, with both CRCs checked; each payload decoded by protoc --decode_raw.
std::vector<std::string> decode_records(const fs::path& path) {
  const std::string bytes = read_text(path);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::vector<std::string> decoded;
  std::size_t at = 0;
  int index = 0;
  while (at < bytes.size()) {
    BOOST_REQUIRE(at + 12 <= bytes.size());
    const std::uint64_t length = le64(p + at);
    BOOST_REQUIRE_EQUAL(le32(p + at + 8), reference_mask(reference_crc32c(p + at, 8)));
    BOOST_REQUIRE(at + 12 + length + 4 <= bytes.size());
    const unsigned char* data = p + at + 12;
    BOOST_REQUIRE_EQUAL(le32(data + length), reference_mask(reference_crc32c(data, length)));
    const fs::path payload =
        fs::temp_directory_path() /
        ("hookline_tb_" + std::to_string(::getpid()) + "_" + std::to_string(index++));
    {
      std::ofstream out(payload, std::ios::binary);
      out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(length));
    }
    const std::string command = "protoc --decode_raw < '" + payload.string() + "'";
    std::FILE* pipe = ::popen(command.c_str(), "r");
    BOOST_REQUIRE(pipe != nullptr);
    std::string text;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) text.append(buf, n);
    BOOST_REQUIRE_EQUAL(::pclose(pipe), 0);
    fs::remove(payload);
    decoded.push_back(text);
    at += 12 + length + 4;
  }
  return decoded;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Logs "train_loss" on step and epoch; optionally throws in training_step of batch `fail_at`.
class StepAndEpoch : public BoringModel {
 public:
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    if (i == fail_at) throw std::runtime_error("boom in batch " + std::to_string(i));
    auto out = BoringModel::training_step(b, i);
    log("train_loss", out["loss"], LogOptions().on_step(true).on_epoch(true));
    return out;
  }
  void on_train_epoch_end() override {
    logged_at_epoch_end = trainer().logged_metrics();
    callback_at_epoch_end = trainer().callback_metrics();
  }
  std::int64_t fail_at = -1;
  MetricMap logged_at_epoch_end, callback_at_epoch_end;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(metric_maps)

// issue 6 defect 2: Lightning updates logged_metrics with the step values at every training batch
// end; log_every_n_steps only throttles the loggers.
BOOST_AUTO_TEST_CASE(logged_metrics_hold_step_values_at_every_batch_end) {
  StepAndEpoch model;
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(3));
  trainer.fit(model);
  BOOST_TEST(model.logged_at_epoch_end.count("train_loss_epoch") == 1u);
  BOOST_TEST(model.logged_at_epoch_end.count("train_loss_step") == 1u);
  BOOST_TEST(model.logged_at_epoch_end.size() == 2u);
  BOOST_TEST(model.callback_at_epoch_end.count("train_loss") == 1u);
  BOOST_TEST(model.callback_at_epoch_end.at("train_loss") ==
             model.callback_at_epoch_end.at("train_loss_epoch"));
  BOOST_TEST(trainer.logged_metrics().count("train_loss_step") == 1u);
}

BOOST_AUTO_TEST_CASE(an_exception_mid_epoch_keeps_the_step_values_of_finished_batches) {
  StepAndEpoch model;
  model.fail_at = 1;
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(3));
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  BOOST_TEST(trainer.logged_metrics().count("train_loss_step") == 1u);
  BOOST_TEST(trainer.logged_metrics().count("train_loss_epoch") == 0u);
  BOOST_TEST(trainer.callback_metrics().count("train_loss") == 1u);
}

// Evaluation step values reach logged_metrics at batch ends but never callback_metrics.
BOOST_AUTO_TEST_CASE(evaluation_step_values_are_not_callback_metrics) {
  class Eval final : public BoringModel {
   public:
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("v", static_cast<double>(i), LogOptions().on_step(true).on_epoch(true));
      return BoringModel::validation_step(b, i, d);
    }
    void on_validation_batch_end(const StepOutput&, const Batch&, std::int64_t,
                                 std::int64_t) override {
      seen_callback.push_back(trainer().callback_metrics().count("v_step") != 0);
      seen_logged.push_back(trainer().logged_metrics().count("v_step") != 0);
    }
    std::vector<bool> seen_callback, seen_logged;
  } model;
  Trainer trainer(quiet().limit_val_batches(2));
  trainer.validate(model);
  BOOST_TEST(model.seen_callback == (std::vector<bool>{false, false}),
             boost::test_tools::per_element());
  BOOST_TEST(model.seen_logged == (std::vector<bool>{true, true}),
             boost::test_tools::per_element());
  BOOST_TEST(trainer.callback_metrics().at("v") == 0.5);
  BOOST_TEST(trainer.callback_metrics().count("v_step") == 0u);
  BOOST_TEST(trainer.logged_metrics().at("v_step") == 1.0);
  BOOST_TEST(trainer.logged_metrics().at("v_epoch") == 0.5);
}

BOOST_AUTO_TEST_CASE(same_name_twice_in_a_hook_with_other_options_is_an_error) {
  Logging model([](Module& m, std::int64_t) {
    m.log("x", 1.0);
    m.log("x", 1.0, LogOptions().prog_bar(true));
  });
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(1));
  BOOST_CHECK_EXCEPTION(trainer.fit(model), std::invalid_argument,
                        [](const std::invalid_argument& e) {
                          return contains(e.what(), "twice in 'training_step'");
                        });
}

// A name logged again is found by its hook (not by name alone), and batch ends write the step
// values into the maps where they were found before, until a new run empties the maps.
BOOST_AUTO_TEST_CASE(repeated_names_follow_their_hook_and_the_maps_of_each_run) {
  class Repeats final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      log("a", static_cast<double>(i), LogOptions().prog_bar(true));
      log("b", 10.0 + static_cast<double>(i));
      return BoringModel::training_step(b, i);
    }
    void on_train_batch_end(const StepOutput&, const Batch&, std::int64_t i) override {
      log("a", 1000.0 + static_cast<double>(i));  // the same name from another hook
    }
    Verdict on_train_batch_start(const Batch&, std::int64_t) override {
      seen.push_back({trainer().logged_metrics(), trainer().progress_bar_metrics()});
      return {};
    }
    std::vector<std::pair<MetricMap, MetricMap>> seen;  // logged, progress bar
  } model;
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(3));
  trainer.fit(model);
  trainer.fit(model);  // a new run: the maps start empty again
  BOOST_TEST_REQUIRE(model.seen.size() == 6u);
  for (std::size_t k = 0; k < model.seen.size(); ++k) {
    const auto& [logged, pbar] = model.seen[k];
    const std::size_t i = k % 3;  // batch index in its run
    BOOST_TEST_CONTEXT("run " << k / 3 << ", batch " << i) {
      if (i == 0) {
        BOOST_TEST(logged.empty());
        BOOST_TEST(pbar.empty());
        continue;
      }
      const double last = static_cast<double>(i - 1);
      BOOST_TEST(logged.size() == 2u);
      BOOST_TEST(logged.at("a") == 1000.0 + last);  // on_train_batch_end wrote it last
      BOOST_TEST(logged.at("b") == 10.0 + last);
      BOOST_TEST(pbar.size() == 1u);
      BOOST_TEST(pbar.at("a") == last);
    }
  }
  BOOST_TEST(trainer.callback_metrics().at("b") == 12.0);
  BOOST_TEST(trainer.logged_metrics().at("a") == 1002.0);
}

// The sanity check empties the maps but keeps its results: the step values of the validation
// that follows must still reach the maps.
BOOST_AUTO_TEST_CASE(step_values_after_the_sanity_check_reach_the_emptied_maps) {
  class Val final : public BoringModel {
   public:
    StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
      log("v", 5.0 + static_cast<double>(i), LogOptions().on_step(true).on_epoch(true));
      return BoringModel::validation_step(b, i, d);
    }
    void on_validation_batch_end(const StepOutput&, const Batch&, std::int64_t,
                                 std::int64_t) override {
      const MetricMap& logged = trainer().logged_metrics();
      seen.push_back(logged.count("v_step") != 0 ? logged.at("v_step") : -1.0);
    }
    std::vector<double> seen;
  } model;
  Trainer trainer(
      quiet().num_sanity_val_steps(2).limit_val_batches(2).max_epochs(1).limit_train_batches(2));
  trainer.fit(model);
  BOOST_TEST(model.seen == (std::vector<double>{5.0, 6.0, 5.0, 6.0}),
             boost::test_tools::per_element());
  BOOST_TEST(trainer.logged_metrics().at("v_epoch") == 5.5);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(logger_connector)

// log_every_n_steps throttles the training step values sent to loggers; validation end values and
// epoch values follow with Lightning's "epoch" key and step (batches that stepped).
BOOST_AUTO_TEST_CASE(loggers_get_what_lightning_sends_when_it_sends_it) {
  Logging model(
      [](Module& m, std::int64_t i) {
        m.log("loss", static_cast<double>(i), LogOptions().on_step(true).on_epoch(true));
      },
      [](Module& m, std::int64_t i) { m.log("val_loss", 10.0 + static_cast<double>(i)); });
  model.hparams().set("lr", 0.1);
  auto rec = std::make_shared<Recording>();
  auto other = std::make_shared<Recording>();
  Trainer trainer(TrainerOptions()
                      .max_epochs(1)
                      .limit_train_batches(4)
                      .limit_val_batches(2)
                      .log_every_n_steps(2)
                      .enable_checkpointing(false)
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .logger(std::vector<std::shared_ptr<Logger>>{rec, other}));
  trainer.fit(model);
  using M = std::map<std::string, double>;
  BOOST_REQUIRE_EQUAL(rec->calls().size(), 4u);
  BOOST_TEST((rec->calls()[0].metrics == M{{"loss_step", 1.0}, {"epoch", 0.0}}));
  BOOST_TEST(*rec->calls()[0].step == 1);
  BOOST_TEST((rec->calls()[1].metrics == M{{"loss_step", 3.0}, {"epoch", 0.0}}));
  BOOST_TEST(*rec->calls()[1].step == 3);
  BOOST_TEST((rec->calls()[2].metrics == M{{"val_loss", 10.5}, {"epoch", 0.0}}));
  BOOST_TEST(*rec->calls()[2].step == 3);
  BOOST_TEST((rec->calls()[3].metrics == M{{"loss_epoch", 1.5}, {"epoch", 0.0}}));
  BOOST_TEST(*rec->calls()[3].step == 3);
  BOOST_TEST(other->calls().size() == rec->calls().size());
  BOOST_TEST(rec->hyperparams_calls() == 1);
  BOOST_TEST(rec->hyperparams().at("lr").toDouble() == 0.1);
  BOOST_TEST(rec->finalized() == (std::vector<std::string>{"success"}),
             boost::test_tools::per_element());
  BOOST_TEST(rec->saves() >= 4);
  BOOST_TEST((rec->thread() != std::this_thread::get_id()));  // the async lane
  BOOST_TEST(trainer.logger() == rec.get());
  BOOST_TEST(trainer.log_dir() == ".");  // a logger without files: default_root_dir
}

BOOST_AUTO_TEST_CASE(a_failed_run_finalizes_the_loggers_as_failed) {
  StepAndEpoch model;
  model.fail_at = 2;
  auto rec = std::make_shared<Recording>();
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(3).logger(rec));
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  BOOST_TEST(rec->finalized() == (std::vector<std::string>{"failed"}),
             boost::test_tools::per_element());
}

// Rows reach the loggers' thread in bunches (one wake-up for many fast steps), in order, and the
// rows held back when a run fails are still delivered before the loggers are finalized.
BOOST_AUTO_TEST_CASE(rows_are_posted_in_bunches_and_none_is_lost_when_a_run_fails) {
  class FailsAtStep30 final : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      if (trainer().global_step() == 30) throw std::runtime_error("boom at step 30");
      auto out = BoringModel::training_step(b, i);
      log("train_loss", out["loss"]);
      return out;
    }
  } model;
  auto rec = std::make_shared<Recording>();
  Trainer trainer(quiet().max_epochs(5).limit_train_batches(10).log_every_n_steps(1).logger(rec));
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  // 30 step rows and, after each of the 3 epochs, a row of epoch values (empty here: skipped).
  BOOST_REQUIRE_EQUAL(rec->calls().size(), 30u);
  for (std::size_t i = 0; i < rec->calls().size(); ++i) {
    BOOST_TEST(*rec->calls()[i].step == static_cast<std::int64_t>(i));
    BOOST_TEST(rec->calls()[i].metrics.count("train_loss") == 1u);
  }
  BOOST_TEST(rec->saves() < 10);  // one save() per bunch, not per row
  BOOST_TEST(rec->finalized() == (std::vector<std::string>{"failed"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(default_logger_is_tensorboard_under_default_root_dir_and_can_be_off) {
  const fs::path root = fs::absolute("default_logger_root");
  Trainer trainer(TrainerOptions().default_root_dir(root.string()));
  BOOST_REQUIRE_EQUAL(trainer.loggers().size(), 1u);
  auto* tb = dynamic_cast<TensorBoardLogger*>(trainer.logger());
  BOOST_REQUIRE(tb != nullptr);
  BOOST_TEST(tb->save_dir() == root.string());
  BOOST_TEST(trainer.log_dir() == (root / "lightning_logs" / "version_0").string());
  Trainer off(TrainerOptions().logger(false));
  BOOST_TEST(off.loggers().empty());
  BOOST_TEST(off.logger() == nullptr);
  BOOST_CHECK_THROW(Trainer(TrainerOptions().logger(std::shared_ptr<Logger>())),
                    std::invalid_argument);
}

// log_every_n_steps(3) over 7 batches: the loggers get batches 2 and 5 (0-based) only.
BOOST_AUTO_TEST_CASE(log_every_n_steps_throttles_only_the_loggers) {
  Logging model([](Module& m, std::int64_t i) { m.log("i", static_cast<double>(i)); });
  auto rec = std::make_shared<Recording>();
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(7).log_every_n_steps(3).logger(rec));
  trainer.fit(model);
  BOOST_REQUIRE_EQUAL(rec->calls().size(), 2u);
  BOOST_TEST(rec->calls()[0].metrics.at("i") == 2.0);
  BOOST_TEST(*rec->calls()[0].step == 2);
  BOOST_TEST(rec->calls()[1].metrics.at("i") == 5.0);
  auto none = std::make_shared<Recording>();
  Trainer never(quiet().max_epochs(1).limit_train_batches(4).log_every_n_steps(0).logger(none));
  never.fit(model);
  BOOST_TEST(none->calls().empty());
  BOOST_TEST(never.logged_metrics().at("i") == 3.0);  // the maps still get every batch
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(csv_logger)

BOOST_AUTO_TEST_CASE(layout_versions_columns_and_hparams) {
  const fs::path save = fs::absolute("csv_layout");
  Logging model([](Module& m, std::int64_t i) { m.log("loss", 0.5 * static_cast<double>(i + 1)); },
                [](Module& m, std::int64_t) { m.log("val, \"quoted\"", 2.0); });
  model.hparams().set("lr", 0.001);
  model.hparams().set("layers", c10::IValue(std::vector<std::int64_t>{64, 32}));
  model.hparams().set("name", std::string("mlp"));
  for (int run = 0; run < 2; ++run) {
    auto csv = std::make_shared<CSVLogger>(save.string());
    Trainer trainer(quiet()
                        .max_epochs(2)
                        .limit_train_batches(2)
                        .limit_val_batches(1)
                        .log_every_n_steps(1)
                        .logger(csv));
    trainer.fit(model);
    BOOST_TEST(std::get<std::int64_t>(csv->version()) == run);
    BOOST_TEST(trainer.log_dir() ==
               (save / "lightning_logs" / ("version_" + std::to_string(run))).string());
  }
  const fs::path dir = save / "lightning_logs" / "version_1";
  const std::string text = read_text(dir / "metrics.csv");
  BOOST_TEST(contains(text, "\r\n"));
  const auto rows = read_csv(text);
  // Columns: the sorted union; the validation key came after the first rows (file rewritten).
  BOOST_REQUIRE(!rows.empty());
  BOOST_TEST(rows[0] == (std::vector<std::string>{"epoch", "loss", "step", "val, \"quoted\""}),
             boost::test_tools::per_element());
  // 2 epochs x (2 training steps + 1 validation end); "loss" has no epoch value.
  BOOST_REQUIRE_EQUAL(rows.size(), 7u);
  const std::vector<std::vector<std::string>> expected{
      {"0", "0.5", "0", ""}, {"0", "1.0", "1", ""}, {"0", "", "1", "2.0"},
      {"1", "0.5", "2", ""}, {"1", "1.0", "3", ""}, {"1", "", "3", "2.0"}};
  for (std::size_t i = 0; i < expected.size(); ++i)
    BOOST_TEST(rows[i + 1] == expected[i], boost::test_tools::per_element());
  BOOST_TEST(read_text(dir / "hparams.yaml") == "layers:\n- 64\n- 32\nlr: 0.001\nname: mlp\n");
}

BOOST_AUTO_TEST_CASE(options_name_version_prefix_and_flushing) {
  const fs::path save = fs::absolute("csv_options");
  CSVLogger named(save.string(), CSVLoggerOptions().name("").version(std::string("run_a")));
  BOOST_TEST(named.log_dir() == (save / "run_a").string());
  CSVLogger logger(save.string(),
                   CSVLoggerOptions().name("exp").prefix("p").flush_logs_every_n_steps(3));
  logger.log_metrics({{"a", 1.0}}, 0);
  logger.log_metrics({{"a", 2.0}}, 1);
  const fs::path file = save / "exp" / "version_0" / "metrics.csv";
  BOOST_TEST(!fs::exists(file));  // buffered until (step + 1) % 3 == 0
  logger.log_metrics({{"b", 1e-5}}, 2);
  BOOST_REQUIRE(fs::exists(file));
  const auto rows = read_csv(read_text(file));
  BOOST_TEST(rows[0] == (std::vector<std::string>{"p-a", "p-b", "step"}),
             boost::test_tools::per_element());
  BOOST_TEST(rows[3] == (std::vector<std::string>{"", "1e-05", "2"}),
             boost::test_tools::per_element());
  BOOST_CHECK_THROW(CSVLogger(save.string(), CSVLoggerOptions().flush_logs_every_n_steps(0)),
                    std::invalid_argument);
  // A version directory that holds files: metrics.csv starts afresh.
  CSVLogger again(save.string(), CSVLoggerOptions().name("exp").version(std::int64_t{0}));
  again.init_experiment();
  BOOST_TEST(!fs::exists(file));
}

BOOST_AUTO_TEST_CASE(python_float_spelling) {
  BOOST_TEST(python_float(0.1) == "0.1");
  BOOST_TEST(python_float(1.0) == "1.0");
  BOOST_TEST(python_float(1e-4) == "0.0001");
  BOOST_TEST(python_float(1e-5) == "1e-05");
  BOOST_TEST(python_float(1e16) == "1e+16");
  BOOST_TEST(python_float(123456.0) == "123456.0");
  BOOST_TEST(python_float(-2.5) == "-2.5");
  BOOST_TEST(python_float(static_cast<double>(0.1f)) == "0.10000000149011612");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tensorboard_logger)

BOOST_AUTO_TEST_CASE(event_files_have_valid_records_tensorboard_can_read) {
  const fs::path save = fs::absolute("tb_records");
  Logging model([](Module& m, std::int64_t) { m.log("loss", 1.0); });
  model.hparams().set("lr", 0.25);
  model.hparams().set("optimizer", std::string("sgd"));
  auto tb = std::make_shared<TensorBoardLogger>(save.string());
  Trainer trainer(quiet().max_epochs(1).limit_train_batches(2).log_every_n_steps(1).logger(tb));
  trainer.fit(model);
  const std::string file = tb->event_file();
  // After finalize a new run writes a new file, as SummaryWriter does after close().
  tb->log_text("notes", "hello tensorboard", 5);
  tb->finalize("success");
  BOOST_TEST(tb->event_file() != file);
  const auto text = decode_records(tb->event_file());
  BOOST_REQUIRE_EQUAL(text.size(), 2u);
  BOOST_TEST(contains(text[1], "1: \"notes/text_summary\""));
  BOOST_TEST(contains(text[1], "\"hello tensorboard\""));
  BOOST_TEST(contains(text[1], "1: \"text\""));
  const fs::path dir = save / "lightning_logs" / "version_0";
  BOOST_TEST(fs::exists(dir / "hparams.yaml"));
  BOOST_TEST(fs::path(file).parent_path() == dir);
  BOOST_TEST(contains(fs::path(file).filename().string(), "events.out.tfevents."));
  const auto records = decode_records(file);
  // file version, hp_metric, 3 hparams summaries, 2 x (loss, epoch)
  BOOST_REQUIRE_EQUAL(records.size(), 9u);
  BOOST_TEST(contains(records[0], "3: \"brain.Event:2\""));
  BOOST_TEST(contains(records[1], "1: \"hp_metric\""));
  BOOST_TEST(contains(records[1], "2: 0xbf800000"));  // -1.0f
  BOOST_TEST(contains(records[2], "1: \"_hparams_/experiment\""));
  BOOST_TEST(contains(records[2], "1: \"hparams\""));
  BOOST_TEST(contains(records[3], "1: \"_hparams_/session_start_info\""));
  BOOST_TEST(contains(records[3], "1: \"lr\""));
  BOOST_TEST(contains(records[3], "1: \"optimizer\""));
  BOOST_TEST(contains(records[3], "3: \"sgd\""));  // string_value
  BOOST_TEST(contains(records[4], "1: \"_hparams_/session_end_info\""));
  // scalars: Event{step=2: 1, summary=5 {value=1 {tag=1, simple_value=2}}}
  bool found_loss_step1 = false;
  for (std::size_t i = 5; i < 9; ++i)
    if (contains(records[i], "1: \"loss\"") && contains(records[i], "2: 0x3f800000") &&
        contains(records[i], "\n2: 1\n"))
      found_loss_step1 = true;
  BOOST_TEST(found_loss_step1);
}

BOOST_AUTO_TEST_CASE(options_and_crc) {
  const unsigned char check[] = "123456789";
  BOOST_TEST(crc32c(check, 9) == 0xE3069283u);  // the CRC-32C check value
  const fs::path save = fs::absolute("tb_options");
  TensorBoardLogger tb(save.string(), TensorBoardLoggerOptions()
                                          .name("exp")
                                          .version(std::int64_t{3})
                                          .sub_dir("sub")
                                          .prefix("p")
                                          .default_hp_metric(false));
  BOOST_TEST(tb.log_dir() == (save / "exp" / "version_3" / "sub").string());
  tb.log_hyperparams(Checkpoint());
  tb.log_metrics({{"m", 2.0}}, 4);
  tb.finalize("success");
  const auto records = decode_records(tb.event_file());
  BOOST_REQUIRE_EQUAL(records.size(), 2u);  // no hp_metric, no hparams summaries
  BOOST_TEST(contains(records[1], "1: \"p-m\""));
  BOOST_TEST(read_text(save / "exp" / "version_3" / "sub" / "hparams.yaml") == "{}\n");
}

// loggers/tfrecord: our reader gets back what the logger wrote (as many records as the
// independent reader above) and what tfrecord_frame framed; damage is an error naming the offset.
BOOST_AUTO_TEST_CASE(tfrecord_reader_round_trip_and_errors) {
  const fs::path save = fs::absolute("tb_reader");
  TensorBoardLogger tb(save.string());
  tb.log_metrics({{"a", 1.0}, {"b", 2.0}}, 1);
  tb.finalize("success");
  const std::string bytes = read_text(tb.event_file());
  BOOST_TEST(tfrecord_read(bytes).size() == decode_records(tb.event_file()).size());

  // Built apart: GCC 12's -Warray-bounds misreads a temporary's + inside the list (at -O1).
  std::string long_payload(300, '\0');
  long_payload += "tail";
  const std::vector<std::string> payloads = {"", "x", long_payload};
  std::string framed;
  for (const auto& p : payloads) framed += tfrecord_frame(p);
  BOOST_TEST((tfrecord_read(framed) == payloads));

  const std::size_t second = 12 + 0 + 4;  // where the second record starts
  auto offset_of = [](const std::string& damaged) -> std::int64_t {
    try {
      tfrecord_read(damaged);
    } catch (const TFRecordError& e) {
      return static_cast<std::int64_t>(e.offset());
    }
    return -1;
  };
  std::string flipped = framed;
  flipped[second + 12] ^= 0x01;  // the payload "x"
  BOOST_TEST(offset_of(flipped) == static_cast<std::int64_t>(second));
  std::string bad_length = framed;
  bad_length[second] ^= 0x40;  // the second record's length
  BOOST_TEST(offset_of(bad_length) == static_cast<std::int64_t>(second));
  BOOST_TEST(offset_of(framed.substr(0, framed.size() - 1)) > 0);  // truncated checksum
  BOOST_TEST(offset_of(framed.substr(0, 5)) == 0);                 // truncated header
  // A length that passes its checksum but asks for more than allowed.
  BOOST_CHECK_EXCEPTION(tfrecord_read(tfrecord_frame(std::string(64, 'y')), 63), TFRecordError,
                        [](const TFRecordError& e) {
                          return std::string(e.what()).find("more than the 63 allowed") !=
                                 std::string::npos;
                        });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(progress_bar)

namespace {

class BarModel final : public BoringModel {
 public:
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    auto out = BoringModel::training_step(b, i);
    log("train_loss", 0.5, LogOptions().prog_bar(true));
    return out;
  }
};

// Runs `fit` with a bar writing to `write_fd`; returns what came out of `read_fd`.
std::string capture(int read_fd, int write_fd, std::shared_ptr<TQDMProgressBar> bar,
                    const TrainerOptions& options) {
  std::string out;
  std::thread reader([&] {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(read_fd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  });
  std::FILE* stream = ::fdopen(write_fd, "w");
  bar->stream(stream);
  {
    BarModel model;
    Trainer trainer(options, {bar});
    trainer.fit(model);
  }
  std::fclose(stream);  // EOF for the reader (a pty master reads EIO)
  reader.join();
  return out;
}

TrainerOptions bar_options(const std::string& dir) {
  return TrainerOptions()
      .max_epochs(2)
      .limit_train_batches(5)
      .limit_val_batches(2)
      .num_sanity_val_steps(1)
      .enable_checkpointing(false)
      .logger(std::make_shared<CSVLogger>(dir));
}

}  // namespace

BOOST_AUTO_TEST_CASE(on_a_terminal_bars_are_redrawn_in_place) {
  int master = -1, slave = -1;
  winsize ws{};
  ws.ws_col = 120;
  ws.ws_row = 40;
  BOOST_REQUIRE_EQUAL(::openpty(&master, &slave, nullptr, nullptr, &ws), 0);
  const std::string out =
      capture(master, slave, std::make_shared<TQDMProgressBar>(), bar_options("bar_tty"));
  ::close(master);
  // The training bar: one line redrawn with \r for every batch of every epoch.
  std::size_t redraws = 0;
  for (std::size_t at = out.find("\rEpoch 0: "); at != std::string::npos;
       at = out.find("\rEpoch 0: ", at + 1))
    ++redraws;
  BOOST_TEST(redraws >= 5u);
  BOOST_TEST(contains(out, "\rEpoch 1: 100%|"));
  BOOST_TEST(contains(out, "| 5/5 ["));
  BOOST_TEST(contains(out, "it/s, v_num=0, train_loss=0.500]"));
  BOOST_TEST(contains(out, "\u2588"));  // bar glyphs
  // The validation bar is drawn on the line below and the cursor moved back up.
  BOOST_TEST(contains(out, "Validation DataLoader 0: 100%|"));
  BOOST_TEST(contains(out, "\x1b[A"));
  BOOST_TEST(contains(out, "Sanity Checking DataLoader 0:"));
  // Redraws never start a new line between two batches of one epoch.
  const std::size_t first = out.find("\rEpoch 0: ");
  const std::size_t second = out.find("\rEpoch 0: ", first + 1);
  BOOST_TEST(out.substr(first, second - first).find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(on_a_pipe_plain_lines) {
  int fds[2];
  BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
  auto bar = std::make_shared<TQDMProgressBar>();
  bar->plain_refresh_rate(2);
  const std::string out = capture(fds[0], fds[1], bar, bar_options("bar_pipe"));
  ::close(fds[0]);
  BOOST_TEST(out.find('\r') == std::string::npos);
  BOOST_TEST(out.find("\x1b[") == std::string::npos);
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  // Per epoch: batches 2 and 4, then the epoch line; the validation line at its end.
  std::vector<std::string> epoch0;
  for (const auto& l : lines)
    if (l.rfind("Epoch 0: ", 0) == 0) epoch0.push_back(l.substr(0, 20));
  BOOST_TEST(epoch0 == (std::vector<std::string>{"Epoch 0:  40% 2/5 [0", "Epoch 0:  80% 4/5 [0",
                                                 "Epoch 0: 100% 5/5 [0"}),
             boost::test_tools::per_element());
  std::size_t validations = 0;
  for (const auto& l : lines) validations += l.rfind("Validation DataLoader 0: 100% 2/2", 0) == 0;
  BOOST_TEST(validations == 2u);
  BOOST_TEST(contains(out, "v_num=0, train_loss=0.500]\n"));
}

BOOST_AUTO_TEST_CASE(options_and_formatting) {
  BOOST_TEST(TQDMProgressBar::format_num(0.123456) == "0.123");
  BOOST_TEST(TQDMProgressBar::format_num(0.5) == "0.500");
  BOOST_TEST(TQDMProgressBar::format_num(2.0) == "2.000");
  BOOST_TEST(TQDMProgressBar::format_num(1234.5) == "1234.5");
  BOOST_TEST(TQDMProgressBar::format_num(1e-5) == "1e-5");
  BOOST_CHECK_THROW(TQDMProgressBar(-1), std::invalid_argument);
  BOOST_TEST(TQDMProgressBar(0).is_disabled());
  // On by default, off with enable_progress_bar(false), which a given bar contradicts.
  auto has_bar = [](const Trainer& t) {
    for (const auto& c : t.callbacks())
      if (dynamic_cast<const TQDMProgressBar*>(c.get())) return true;
    return false;
  };
  BOOST_TEST(has_bar(Trainer()));
  BOOST_TEST(
      !has_bar(Trainer(TrainerOptions().enable_progress_bar(false).enable_model_summary(false))));
  BOOST_CHECK_THROW(Trainer(TrainerOptions().enable_progress_bar(false).enable_model_summary(false),
                            {std::make_shared<TQDMProgressBar>()}),
                    std::invalid_argument);
  // refresh_rate(2): the pipe gets nothing mid-epoch from the bar unless plain_refresh_rate.
  const std::string line = TQDMProgressBar::render("Epoch 1", 40, 100, 4.0, "v_num=0", 0);
  BOOST_TEST(line == "Epoch 1:  40% 40/100 [00:04<00:06, 10.00it/s, v_num=0]");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_logging_tests
