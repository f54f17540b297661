// Golden traces of checkpointing: the hooks a save fires inside a fit, and the whole sequence of a
// fit resumed from a checkpoint, compared with Lightning 2.2's test_hooks.py
// (test_trainer_model_hook_system_fit and ..._fit_no_val_and_resume_max_epochs). The checkpoint is
// written by a callback in the checkpoint band at on_train_epoch_end, where Lightning's default
// ModelCheckpoint saves when there is no validation; only "cb" and "lm" lines are compared.
#include <boost/test/unit_test.hpp>

#include "golden.hpp"

#include <filesystem>
#include <random>

namespace hookline_test_golden_checkpoint_tests {

using namespace hookline;
using namespace test_support;
using golden::Lines;

namespace {

// Lightning's HookedCallback has the state {"foo": True}.
class StatefulCallback final : public Callback {
 public:
  StatefulCallback() : Callback("cb") {}
  void state_dict(Checkpoint& state) const override {
    ++state_dicts;
    state.set("foo", true);
  }
  void load_state_dict(const Checkpoint& state) override { foo = state.at("foo").toBool(); }
  void on_train_start(Trainer& t, Module&) override { epoch_at_train_start = t.current_epoch(); }
  bool foo = false;
  mutable int state_dicts = 0;  // calls, traced or not
  std::int64_t epoch_at_train_start = -1;
};

class EpochEndSaver final : public Callback {
 public:
  explicit EpochEndSaver(std::string path) : Callback("saver", band::checkpoint), path_(path) {}
  void on_train_epoch_end(Trainer& t, Module&) override { t.save_checkpoint(path_); }

 private:
  std::string path_;
};

Lines only_cb_and_lm(const Lines& lines) {
  Lines out;
  for (const auto& line : lines)
    if (line.rfind("cb.", 0) == 0 || line.rfind("lm.", 0) == 0) out.push_back(line);
  return out;
}

std::string temp_file() {
  static std::mt19937_64 rng(std::random_device{}());
  return (std::filesystem::temp_directory_path() /
          ("hookline-golden-" + std::to_string(rng()) + ".ckpt"))
      .string();
}

TrainerOptions no_val(std::int64_t epochs) {
  return golden::plain_options().max_epochs(epochs).limit_train_batches(2).limit_val_batches(0);
}

const Lines kSave = {"cb.state_dict", "cb.on_save_checkpoint", "lm.on_save_checkpoint"};

}  // namespace

BOOST_AUTO_TEST_SUITE(golden_checkpoint)

BOOST_AUTO_TEST_CASE(a_save_at_train_epoch_end) {
  const std::string path = temp_file();
  BoringModel model;
  Trainer trainer(no_val(1),
                  {std::make_shared<StatefulCallback>(), std::make_shared<EpochEndSaver>(path)});
  auto recorder = golden::record(trainer);
  trainer.fit(model);
  Lines expected = golden::fit_prologue();
  golden::append(expected,
                 {"lm.train_dataloader", "cb+lm.on_train_start", "cb+lm.on_train_epoch_start"});
  for (int i = 0; i < 2; ++i) golden::append(expected, golden::train_batch(0, i));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, kSave);
  golden::append(expected, golden::fit_epilogue());
  golden::check(only_cb_and_lm(recorder->calls()), expected);
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(a_fit_resumed_at_an_epoch_end) {
  const std::string path = temp_file();
  {
    BoringModel model;
    Trainer first(no_val(1),
                  {std::make_shared<StatefulCallback>(), std::make_shared<EpochEndSaver>(path)});
    first.fit(model);
  }
  auto cb = std::make_shared<StatefulCallback>();
  BoringModel model;
  Trainer trainer(no_val(2), {cb, std::make_shared<EpochEndSaver>(path)});
  auto recorder = golden::record(trainer);
  trainer.fit(model, nullptr, path);
  Lines expected = {"lm.configure_callbacks",    "lm.prepare_data",     "cb.setup(stage=fit)",
                    "lm.setup(stage=fit)",       "lm.configure_model",  "lm.on_load_checkpoint",
                    "cb.on_load_checkpoint",     "cb.load_state_dict",  "lm.configure_optimizers",
                    "cb+lm.on_fit_start",        "lm.train_dataloader", "cb+lm.on_train_start",
                    "cb+lm.on_train_epoch_start"};
  for (int i = 0; i < 2; ++i) golden::append(expected, golden::train_batch(1, i));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, kSave);
  golden::append(expected, golden::fit_epilogue());
  golden::check(only_cb_and_lm(recorder->calls()), expected);
  BOOST_TEST(cb->foo);
  BOOST_TEST(trainer.global_step() == 4);
  // Issue 28: Lightning calls state_dict only for the save at the epoch end, not to restore, and
  // current_epoch counts the saved epoch as completed from on_train_start on.
  BOOST_TEST(cb->state_dicts == 1);
  BOOST_TEST(cb->epoch_at_train_start == 1);
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(golden_checkpoint_default)

// Lightning's test_trainer_model_hook_system_fit: default ModelCheckpoint, validation every epoch;
// the save follows the module's on_train_epoch_end (a monitoring callback's turn).
BOOST_AUTO_TEST_CASE(fit_with_the_default_model_checkpoint) {
  const std::string root = temp_file() + ".dir";
  BoringModel model;
  Trainer trainer(TrainerOptions()
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .max_epochs(1)
                      .limit_train_batches(2)
                      .limit_val_batches(2)
                      .default_root_dir(root),
                  {std::make_shared<StatefulCallback>()});
  auto recorder = golden::record(trainer);
  trainer.fit(model);
  Lines expected = golden::fit_prologue();
  golden::append(expected, golden::sanity_check(2));
  golden::append(expected,
                 {"lm.train_dataloader", "cb+lm.on_train_start", "cb+lm.on_train_epoch_start"});
  for (int i = 0; i < 2; ++i) golden::append(expected, golden::train_batch(0, i));
  golden::append(expected, golden::fit_validation(2, false));
  golden::append(expected, {"cb+lm.on_train_epoch_end"});
  golden::append(expected, kSave);
  golden::append(expected, golden::fit_epilogue());
  golden::check(only_cb_and_lm(recorder->calls()), expected);
  // The default logger's version directory holds the default ModelCheckpoint's files.
  BOOST_TEST(std::filesystem::exists(std::filesystem::path(root) / "lightning_logs" / "version_0" /
                                     "checkpoints" / "epoch=0-step=2.ckpt"));
  std::filesystem::remove_all(root);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_golden_checkpoint_tests
