// Recipe files and the registry: a pack built from a recipe at runtime trains and each of its
// callbacks acts; a user type registered in one line works from a recipe; every kind of bad
// recipe gives its error with file, line and key and builds nothing; RecipeReload swaps the
// callbacks of a running fit when the file changes.
#include <boost/test/unit_test.hpp>

#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/early_stopping.hpp>
#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/callbacks/packs.hpp>
#include <hookline/callbacks/timer.hpp>
#include <hookline/recipe/recipe.hpp>
#include <hookline/recipe/recipe_reload.hpp>
#include <hookline/recipe/registry.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>

namespace hookline_test_recipe_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

// A user callback type: counts the training batches it sees, by a tag from the recipe.
class BatchCounter : public Callback {
 public:
  explicit BatchCounter(RecipeOptions& o)
      : Callback("BatchCounter/" + o.require<std::string>("tag")),
        every_(o.get_or<std::int64_t>("every", 1)) {
    if (every_ < 1) throw std::invalid_argument("BatchCounter: every must be >= 1");
    instances().push_back(this);
  }
  ~BatchCounter() override { std::erase(instances(), this); }
  void on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                          std::int64_t i) override {
    if (i % every_ == 0) ++batches;
  }
  static std::vector<BatchCounter*>& instances() {
    static std::vector<BatchCounter*> all;
    return all;
  }
  std::int64_t batches = 0;

 private:
  std::int64_t every_;
};
HOOKLINE_REGISTER_CALLBACK(BatchCounter);

// Logs val_loss (never improving after the first value) and 4 training batches per epoch.
class Logged : public BoringModel {
 public:
  StepOutput validation_step(const Batch& batch, std::int64_t i, std::int64_t dl) override {
    auto out = BoringModel::validation_step(batch, i, dl);
    log("val_loss", 1.0);
    return out;
  }
  DataLoaders train_dataloader() override { return {loader(16, 4)}; }
};

// Logs a scripted val_loss per validation run (the last value repeats).
class Rising : public BoringModel {
 public:
  explicit Rising(std::vector<double> scores) : scores_(std::move(scores)) {}
  StepOutput validation_step(const Batch& batch, std::int64_t i, std::int64_t dl) override {
    auto out = BoringModel::validation_step(batch, i, dl);
    log("val_loss", scores_.at(std::min(runs_, scores_.size() - 1)));
    return out;
  }
  void on_validation_end() override { ++runs_; }
  DataLoaders train_dataloader() override { return {loader(8, 4)}; }

 private:
  std::vector<double> scores_;
  std::size_t runs_ = 0;
};

using test_support::TempDir;

// The error a recipe text gives (and the test fails if it gives none).
RecipeError error_of(const std::string& text) {
  try {
    Recipe::parse(text, "bad.yaml");
  } catch (const RecipeError& e) {
    return e;
  }
  BOOST_FAIL("no RecipeError for:\n" << text);
  throw std::logic_error("unreachable");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(recipes)

BOOST_AUTO_TEST_CASE(a_pack_from_a_recipe_trains_and_each_callback_acts) {
  TempDir dir;
  const std::string root = dir.path.string();
  const std::string path = dir.write("recipe.yaml", R"(
trainer:
  max_epochs: 6
  limit_val_batches: 1
  num_sanity_val_steps: 0
  enable_progress_bar: false
  enable_model_summary: false
  log_every_n_steps: 1
  default_root_dir: )" + root + R"(
  logger: csv
packs:
  watch:
    - EarlyStopping: {monitor: val_loss, patience: 1}
    - LearningRateMonitor: {logging_interval: epoch}
    - ModelCheckpoint: {monitor: val_loss, dirpath: )" + root +
                                                        R"(/ckpt, save_last: true}
callbacks:
  - watch
  - BatchCounter: {tag: all}
  - BatchCounter: {tag: even, every: 2, priority: 500}
)");
  auto trainer = Trainer::from_recipe(path);
  BOOST_TEST_REQUIRE(trainer->packs().size() == 1u);
  const auto pack = trainer->pack("watch");
  BOOST_TEST_REQUIRE(pack != nullptr);
  BOOST_TEST(pack->callbacks().size() == 3u);
  BOOST_TEST(pack->callbacks()[0]->checkpoint_key().rfind("watch/EarlyStopping{", 0) == 0u);
  BOOST_TEST(trainer->checkpoint_callbacks().size() == 1u);  // no default ModelCheckpoint
  BOOST_TEST(trainer->options().max_epochs().value() == 6);

  Logged model;
  trainer->fit(model);
  // EarlyStopping: val_loss never improves after epoch 0, patience 1: stops after epoch 1.
  BOOST_TEST(trainer->current_epoch() == 2);
  BOOST_TEST(contains(trainer->stop_reason(), "val_loss did not improve"));
  // LearningRateMonitor: lr-SGD sent to the CSV logger of `logger: csv` at each epoch start.
  const fs::path csv = dir.path / "lightning_logs" / "version_0" / "metrics.csv";
  BOOST_TEST_REQUIRE(fs::exists(csv));
  std::string header;
  std::getline(std::ifstream(csv) >> std::ws, header);
  BOOST_TEST(contains(header, "lr-SGD"), header);
  // ModelCheckpoint: the best and last.ckpt in its dirpath.
  BOOST_TEST(fs::exists(dir.path / "ckpt" / "last.ckpt"));
  BOOST_TEST(fs::exists(dir.path / "ckpt" / "epoch=0-step=4.ckpt"));
  // The registered user type, twice with different options (and a priority band).
  auto& counters = BatchCounter::instances();
  BOOST_TEST_REQUIRE(counters.size() == 2u);
  BOOST_TEST(counters[0]->batches == 8);
  BOOST_TEST(counters[1]->batches == 4);
  BOOST_TEST(counters[1]->priority() == 500);
}

BOOST_AUTO_TEST_CASE(a_recipe_applies_to_an_existing_trainer_all_or_nothing) {
  const Recipe recipe = Recipe::parse(R"(
callbacks:
  - Timer: {duration: "00:01:00:00"}
  - debugging: {trace: "off"}
)");
  Trainer trainer(TrainerOptions().enable_progress_bar(false).logger(false));
  const auto before = trainer.callbacks().size();
  const AppliedRecipe applied = recipe.apply(trainer);
  BOOST_TEST(applied.callbacks.size() == 1u);
  BOOST_TEST(applied.packs.size() == 1u);
  BOOST_TEST(trainer.callbacks().size() == before + 2);
  // Applying it again fails on the pack name; the Timer added first is taken out again.
  BOOST_CHECK_THROW(Recipe::parse("callbacks: [AnomalyDetection, debugging]").apply(trainer),
                    std::invalid_argument);
  BOOST_TEST(trainer.callbacks().size() == before + 2);
  applied.remove(trainer);
  BOOST_TEST(trainer.callbacks().size() == before);
  BOOST_TEST(trainer.packs().empty());
  // A pack never holds a bad spec: trace() refuses it, naming the pack, and keeps what it had.
  CallbackPack pack("dbg");
  pack.trace("ring:8");
  try {
    pack.trace("ring:20x");
    BOOST_FAIL("a bad trace spec was accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(contains(e.what(), "pack 'dbg': "), e.what());
  }
  BOOST_TEST(pack.trace_spec() == "ring:8");
}

BOOST_AUTO_TEST_CASE(bad_yaml_names_the_line) {
  const auto e = error_of("trainer:\n  max_epochs: [1, 2\n");
  BOOST_TEST(e.file() == "bad.yaml");
  BOOST_TEST(e.line() == 3);
  BOOST_TEST(contains(e.what(), "bad YAML"));
}

BOOST_AUTO_TEST_CASE(an_unknown_name_gets_a_suggestion) {
  const auto e = error_of("callbacks:\n  - EarlyStoping: {monitor: val_loss}\n");
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(e.column() == 5);
  BOOST_TEST(e.key() == "callbacks[0].EarlyStoping");
  BOOST_TEST(contains(e.what(), "unknown callback or pack 'EarlyStoping'"));
  BOOST_TEST(contains(e.what(), "did you mean 'EarlyStopping'?"));
  BOOST_TEST(contains(e.what(), "bad.yaml:2:5: callbacks[0].EarlyStoping: "));
}

BOOST_AUTO_TEST_CASE(an_unknown_option_lists_the_known_ones) {
  const auto e = error_of(
      "callbacks:\n  - EarlyStopping:\n      monitor: val_loss\n"
      "      patiense: 3\n");
  BOOST_TEST(e.line() == 4);
  BOOST_TEST(e.key() == "callbacks[0].EarlyStopping.patiense");
  BOOST_TEST(contains(e.what(), "unknown option 'patiense' for 'EarlyStopping'"));
  BOOST_TEST(contains(e.what(), "patience"));
  const auto t = error_of("trainer:\n  max_epoch: 3\n");
  BOOST_TEST(t.key() == "trainer.max_epoch");
  BOOST_TEST(contains(t.what(), "max_epochs"));
  const auto top = error_of("trainr:\n  max_epochs: 3\n");
  BOOST_TEST(top.line() == 1);
  BOOST_TEST(contains(top.what(), "unknown section 'trainr'"));
}

BOOST_AUTO_TEST_CASE(a_wrong_option_type_names_the_key_and_the_value) {
  const auto e = error_of("callbacks:\n  - EarlyStopping: {monitor: val_loss, patience: three}\n");
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(e.key() == "callbacks[0].EarlyStopping.patience");
  BOOST_TEST(contains(e.what(), "expected an integer, got 'three'"));
  const auto f = error_of("trainer:\n  limit_val_batches: lots\n");
  BOOST_TEST(f.key() == "trainer.limit_val_batches");
  BOOST_TEST(contains(f.what(), "a number of batches"));
  const auto b = error_of("trainer:\n  deterministic: 2\n");
  BOOST_TEST(contains(b.what(), "expected true or false, got '2'"));
  const auto q = error_of("trainer:\n  max_epochs: \"3\"\n");  // quoted: a string
  BOOST_TEST(contains(q.what(), "expected an integer"));
}

// Found by fuzz_recipe: durations past 64-bit milliseconds overflowed (undefined behaviour).
BOOST_AUTO_TEST_CASE(a_duration_too_long_for_64_bit_milliseconds_is_an_error) {
  const auto d = error_of("callbacks:\n  - Timer: {duration: \"106751991168:00:00:00\"}\n");
  BOOST_TEST(d.key() == "callbacks[0].Timer.duration");
  BOOST_TEST(contains(d.what(), "under 292 million years"));
  const auto s = error_of("trainer:\n  max_time: 1e30\n");
  BOOST_TEST(s.key() == "trainer.max_time");
  BOOST_TEST(contains(s.what(), "under 292 million years"));
  // The longest that fits is accepted.
  BOOST_CHECK_NO_THROW(
      Recipe::parse("callbacks:\n  - Timer: {duration: \"106751991167:00:00:00\"}\n"));
}

// Issue 29: yaml-cpp kept both values of a repeated key and lookups took the first, so
// "max_epochs: 1" then "max_epochs: 2" trained one epoch.
BOOST_AUTO_TEST_CASE(a_key_given_twice_is_an_error_naming_both_lines) {
  const auto e = error_of("trainer:\n  max_epochs: 1\n  max_epochs: 2\n");
  BOOST_TEST(e.line() == 3);
  BOOST_TEST(e.key() == "trainer.max_epochs");
  BOOST_TEST(
      contains(e.what(), "'max_epochs' is given twice in one mapping, on line 2 and on line 3"),
      e.what());
  const auto n = error_of(
      "callbacks:\n  - EarlyStopping:\n      monitor: val_loss\n      patience: 2\n"
      "      monitor: val_acc\n");
  BOOST_TEST(n.key() == "callbacks[0].EarlyStopping.monitor");
  BOOST_TEST(contains(n.what(), "on line 3 and on line 5"), n.what());
  const auto top = error_of("trainer: {max_epochs: 1}\ntrainer: {max_epochs: 2}\n");
  BOOST_TEST(top.key() == "trainer");
  BOOST_TEST(contains(top.what(), "on line 1 and on line 2"), top.what());
  // The same key in two mappings is fine.
  BOOST_CHECK_NO_THROW(
      Recipe::parse("callbacks:\n  - EarlyStopping: {monitor: val_loss}\n  - ModelCheckpoint: "
                    "{monitor: val_loss}\n"));
}

// Issue 29: a directory read as an empty file ("the recipe is empty").
BOOST_AUTO_TEST_CASE(a_directory_is_not_a_recipe) {
  TempDir dir;
  try {
    Recipe::load(dir.path.string());
    BOOST_FAIL("no error");
  } catch (const RecipeError& e) {
    BOOST_TEST(contains(e.what(), dir.path.string() + ": is a directory, not a recipe file"),
               e.what());
    BOOST_TEST(!contains(e.what(), "empty"));
  }
}

// Issue 29: an integer too long for 64 bits said "expected an integer".
BOOST_AUTO_TEST_CASE(an_integer_past_64_bits_is_out_of_range) {
  const auto e = error_of("trainer:\n  max_epochs: 12345678901234567890123\n");
  BOOST_TEST(e.key() == "trainer.max_epochs");
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(contains(e.what(), "out of range"), e.what());
  BOOST_TEST(contains(e.what(), "12345678901234567890123"));
  BOOST_TEST(!contains(e.what(), "expected an integer"));
  BOOST_TEST(contains(error_of("trainer:\n  max_steps: -12345678901234567890123\n").what(),
                      "out of range"));
  BOOST_TEST(contains(error_of("trainer:\n  limit_train_batches: 12345678901234567890123\n").what(),
                      "out of range"));
  BOOST_TEST(
      contains(error_of("trainer:\n  seed: 12345678901234567890123\n").what(), "out of range"));
  BOOST_TEST(contains(
      error_of("callbacks:\n  - EarlyStopping: {monitor: x, patience: 99999999999999999999}\n")
          .what(),
      "out of range"));
  // What fits still works; what is not an integer still says so.
  BOOST_CHECK_NO_THROW(Recipe::parse("trainer:\n  max_steps: 9223372036854775807\n"));
  BOOST_TEST(contains(error_of("trainer:\n  max_epochs: 12a\n").what(), "expected an integer"));
}

// Issue 29: {mode: max} without a monitor silently watched val_loss for its largest value.
BOOST_AUTO_TEST_CASE(classification_defaults_mode_max_needs_a_monitor) {
  const auto e = error_of("callbacks:\n  - classification_defaults: {mode: max}\n");
  BOOST_TEST(e.key() == "callbacks[0].classification_defaults.mode");
  BOOST_TEST(contains(e.what(), "{monitor: val_acc, mode: max}"), e.what());
  BOOST_CHECK_NO_THROW(
      Recipe::parse("callbacks:\n  - classification_defaults: {monitor: val_acc, mode: max}\n"));
  BOOST_CHECK_NO_THROW(Recipe::parse("callbacks:\n  - classification_defaults: {mode: min}\n"));
  BOOST_CHECK_NO_THROW(Recipe::parse("callbacks:\n  - classification_defaults\n"));
}

// A negative min_delta, as in Lightning: its sign is set by the mode (min: negated), so
// min_delta -0.1 in min mode counts a rise of less than 0.1 as an improvement.
BOOST_AUTO_TEST_CASE(a_negative_min_delta_is_flipped_by_mode_as_in_lightning) {
  const auto run = [](const std::string& min_delta) {
    const Recipe recipe = Recipe::parse(
        "callbacks:\n  - EarlyStopping: {monitor: val_loss, patience: 1, min_delta: " + min_delta +
        "}\n");
    Recipe::Parts parts = recipe.build();
    auto es = std::dynamic_pointer_cast<EarlyStopping>(parts.callbacks.at(0));
    BOOST_REQUIRE(es);
    Rising model({1.0, 1.05, 1.1, 1.3, 1.4});
    Trainer trainer(TrainerOptions()
                        .max_epochs(10)
                        .limit_val_batches(1)
                        .num_sanity_val_steps(0)
                        .enable_checkpointing(false)
                        .enable_progress_bar(false)
                        .enable_model_summary(false)
                        .logger(false),
                    parts.callbacks);
    trainer.fit(model);
    return std::pair{es->stopped_epoch(), es->best_score()};
  };
  // -0.1: 1.05 and 1.1 are within 0.1 of the best, so they improve; 1.3 waits and stops.
  BOOST_TEST(run("-0.1").first == 3);
  BOOST_TEST(run("-0.1").second == 1.1f);
  // 0: the first rise stops the fit.
  BOOST_TEST(run("0.0").first == 1);
  BOOST_TEST(run("0.0").second == 1.0f);
}

BOOST_AUTO_TEST_CASE(a_missing_required_option_is_named) {
  const auto e = error_of("callbacks:\n  - BatchCounter: {every: 2}\n");
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(contains(e.what(), "missing required option 'tag'"));
  const auto m = error_of("callbacks:\n  - EarlyStopping\n");
  BOOST_TEST(contains(m.what(), "missing required option 'monitor'"));
}

BOOST_AUTO_TEST_CASE(a_value_the_type_rejects_is_reported_at_its_entry) {
  const auto e = error_of("callbacks:\n  - EarlyStopping: {monitor: val_loss, mode: best}\n");
  BOOST_TEST(e.line() == 2);
  BOOST_TEST(e.key() == "callbacks[0].EarlyStopping");
  BOOST_TEST(contains(e.what(), "mode"));
  const auto t = error_of("trainer:\n  max_epochs: -5\n");
  BOOST_TEST(contains(t.what(), "max_epochs"));
}

BOOST_AUTO_TEST_CASE(structure_errors) {
  BOOST_TEST(contains(error_of("").what(), "the recipe is empty"));
  BOOST_TEST(contains(error_of("- a\n- b\n").what(), "a recipe is a mapping"));
  BOOST_TEST(contains(error_of("callbacks: {EarlyStopping: {}}\n").what(), "must be a list"));
  BOOST_TEST(contains(error_of("callbacks:\n  - {Timer: {}, EarlyStopping: {}}\n").what(),
                      "one-key mapping"));
  BOOST_TEST(contains(error_of("callbacks:\n  - Timer: 3\n").what(), "must be a mapping"));
  BOOST_TEST(contains(error_of("packs:\n  a: [a]\ncallbacks: [a]\n").what(), "contains itself"));
  BOOST_TEST(contains(error_of("packs:\n  a: [Timer]\ncallbacks:\n  - a: {x: 1}\n").what(),
                      "unknown option 'x'"));
  BOOST_TEST(contains(error_of("callbacks: [debugging, debugging]\n").what(), "used twice"));
  BOOST_TEST(contains(error_of("callbacks: [Timer, Timer]\n").what(), "same state key"));
  BOOST_TEST(contains(error_of("trace: \"nonsense:1\"\n").what(), "trace"));
  // A file that is not there.
  try {
    Recipe::load("/nonexistent/recipe.yaml");
    BOOST_FAIL("no error");
  } catch (const RecipeError& e) {
    BOOST_TEST(contains(e.what(), "/nonexistent/recipe.yaml: cannot open the recipe file"));
  }
}

// Found by fuzz_recipe: a pack's bad trace spec passed the recipe check, and adding the pack
// failed after its callbacks were in the trainer.
BOOST_AUTO_TEST_CASE(a_packs_bad_trace_spec_is_refused_before_anything_is_added) {
  const auto e = error_of("callbacks:\n  - debugging: {trace: \"ring:20x\"}\n");
  BOOST_TEST(e.key() == "callbacks[0].debugging.trace");
  BOOST_TEST(contains(e.what(), "ring size '20x' is not a number"));
  Trainer trainer(TrainerOptions().enable_progress_bar(false).logger(false));
  const auto before = trainer.callbacks().size();
  BOOST_CHECK_THROW(trainer.add_pack(debugging(DebuggingOptions().trace("ring:20x"))),
                    std::invalid_argument);
  BOOST_TEST(trainer.callbacks().size() == before);
  BOOST_TEST(trainer.packs().empty());
}

BOOST_AUTO_TEST_CASE(a_bad_recipe_builds_no_trainer_and_no_callback) {
  const auto before = BatchCounter::instances().size();
  BOOST_CHECK_THROW(Recipe::parse("callbacks:\n  - BatchCounter: {tag: a}\n  - Nope\n"),
                    RecipeError);
  BOOST_TEST(BatchCounter::instances().size() == before);  // those built were released
}

BOOST_AUTO_TEST_CASE(the_registry_takes_one_line_per_type_and_refuses_taken_names) {
  BOOST_TEST(registry().has_callback("BatchCounter"));
  BOOST_TEST(registry().has_callback("EarlyStopping"));
  BOOST_TEST(registry().has_pack("classification_defaults"));
  BOOST_CHECK_THROW(registry().add_callback<BatchCounter>("BatchCounter"), std::invalid_argument);
  BOOST_CHECK_THROW(registry().add_pack("EarlyStopping", [](RecipeOptions&) { return nullptr; }),
                    std::invalid_argument);
  registry().add_callback("recipe_tests_lambda", [](RecipeOptions& o) {
    return std::make_shared<NamedCallback>(o.get_or<std::string>("name", "lambda"));
  });
  const auto parts = Recipe::parse("callbacks:\n  - recipe_tests_lambda: {name: hi}\n").build();
  BOOST_TEST_REQUIRE(parts.callbacks.size() == 1u);
  BOOST_TEST(parts.callbacks[0]->name() == "hi");
}

BOOST_AUTO_TEST_CASE(reload_swaps_the_callbacks_of_a_running_fit) {
  TempDir dir;
  const std::string head = R"(
reload: true
trainer:
  max_epochs: 4
  limit_val_batches: 0
  enable_progress_bar: false
  enable_model_summary: false
  enable_checkpointing: false
  logger: false
)";
  const std::string path =
      dir.write("live.yaml", head + "callbacks:\n  - BatchCounter: {tag: a}\n");
  auto trainer = Trainer::from_recipe(path);
  RecipeReload* reloader = nullptr;
  for (const auto& c : trainer->callbacks())
    if (auto* r = dynamic_cast<RecipeReload*>(c.get())) reloader = r;
  BOOST_TEST_REQUIRE(reloader != nullptr);
  // Epoch 0 ends: the file gains a counter; epoch 1 ends: a broken file is reported and
  // ignored; epoch 2 ends: the first counter goes.
  std::int64_t epoch_seen = -1;
  LambdaHooks h;
  h.on_train_epoch_end = [&](Trainer& t, Module&) {
    epoch_seen = t.current_epoch();
    std::string text;
    if (epoch_seen == 0)
      text = head + "callbacks:\n  - BatchCounter: {tag: a}\n  - BatchCounter: {tag: b}\n";
    if (epoch_seen == 1) text = head + "callbacks:\n  - BatchCounter: {tag: }\n";
    if (epoch_seen == 2) text = head + "callbacks:\n  - BatchCounter: {tag: b}\n";
    if (text.empty()) return;
    std::ofstream(path) << text;
    // Make sure the modification time moves even on a coarse clock.
    fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(epoch_seen + 1));
  };
  trainer->add_callback(std::make_shared<LambdaCallback>(h, "editor"));
  class Four : public BoringModel {
   public:
    DataLoaders train_dataloader() override { return {loader(16, 4)}; }
  };
  Four model;
  trainer->fit(model);
  BOOST_TEST(reloader->reloads() == 2);
  BOOST_TEST(reloader->last_error().empty());
  auto& counters = BatchCounter::instances();
  // Only the last recipe's counter is alive; it joined at the end of epoch 2, so it counted the
  // 4 batches of epoch 3.
  BOOST_TEST_REQUIRE(counters.size() == 1u);
  BOOST_TEST(counters[0]->name() == "BatchCounter/b");
  BOOST_TEST(counters[0]->batches == 4);
  BOOST_TEST(trainer->pack("recipe")->callbacks().size() == 1u);
}

BOOST_AUTO_TEST_CASE(reload_keeps_the_state_of_callbacks_that_stay) {
  TempDir dir;
  const std::string head =
      "reload: true\ntrainer: {max_epochs: 5, limit_val_batches: 0, "
      "enable_progress_bar: false, enable_model_summary: false, "
      "enable_checkpointing: false, logger: false}\n";
  const std::string path =
      dir.write("es.yaml", head +
                               "callbacks:\n  - EarlyStopping: {monitor: train_loss, "
                               "patience: 3, check_on_train_epoch_end: true}\n");
  auto trainer = Trainer::from_recipe(path);
  LambdaHooks h;
  h.on_train_epoch_end = [&](Trainer& t, Module&) {
    if (t.current_epoch() != 1) return;
    std::ofstream(path) << head
                        << "callbacks:\n  - EarlyStopping: {monitor: train_loss, patience: 3, "
                           "check_on_train_epoch_end: true}\n  - Timer: {}\n";
    fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(5));
  };
  trainer->add_callback(std::make_shared<LambdaCallback>(h, "editor"));
  class Flat : public BoringModel {
   public:
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      auto out = BoringModel::training_step(b, i);
      log("train_loss", 1.0, LogOptions().on_step(false).on_epoch(true));
      return out;
    }
    DataLoaders train_dataloader() override { return {loader(8, 4)}; }
  };
  Flat model;
  trainer->fit(model);
  // Without the state handover the new EarlyStopping would start counting again at epoch 2
  // and the fit would run all 5 epochs; with it, the count goes on: stop after epoch 3.
  BOOST_TEST(trainer->current_epoch() == 4);
  BOOST_TEST(contains(trainer->stop_reason(), "train_loss did not improve"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_recipe_tests
