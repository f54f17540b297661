// ModelCheckpoint and OnExceptionCheckpoint: one test per option, against Lightning 2.2's
// behaviour (file names, which files are kept and deleted, when it saves, its state).
#include <boost/test/unit_test.hpp>

#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/model_checkpoint.hpp>
#include <hookline/callbacks/on_exception_checkpoint.hpp>
#include <hookline/core/checkpoint_io.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

namespace hookline_test_model_checkpoint_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

using test_support::TempDir;

// File names (not paths) in `dir`, sorted.
std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> out;
  std::error_code error;
  if (fs::is_directory(dir, error))
    for (const auto& entry : fs::directory_iterator(dir)) out.insert(entry.path().filename());
  return out;
}

// Logs a scripted val_loss per epoch; 4 training batches per epoch.
class Scripted : public BoringModel {
 public:
  explicit Scripted(std::vector<double> scores) : scores_(std::move(scores)) {}
  StepOutput validation_step(const Batch& batch, std::int64_t i, std::int64_t dl) override {
    const auto epoch = static_cast<std::size_t>(trainer().current_epoch());
    log("val_loss", scores_.at(std::min(epoch, scores_.size() - 1)));
    return BoringModel::validation_step(batch, i, dl);
  }
  DataLoaders train_dataloader() override { return {loader(16, 4)}; }

 private:
  std::vector<double> scores_;
};

// Without a logger, so checkpoints land in `<root>/checkpoints` unless a test sets one.
TrainerOptions options(const TempDir& dir, std::int64_t epochs) {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .logger(false)
      .max_epochs(epochs)
      .limit_val_batches(2)
      .num_sanity_val_steps(0)
      .default_root_dir(dir.str());
}

std::shared_ptr<ModelCheckpoint> checkpoint(ModelCheckpointOptions o) {
  return std::make_shared<ModelCheckpoint>(std::move(o));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(model_checkpoint)

BOOST_AUTO_TEST_CASE(default_keeps_the_latest_in_root_checkpoints) {
  TempDir dir;
  Scripted model({1.0});
  Trainer trainer(options(dir, 3));
  BOOST_REQUIRE(trainer.checkpoint_callback() != nullptr);  // added by enable_checkpointing
  BOOST_TEST(trainer.callbacks().size() == 1u);
  trainer.fit(model);
  BOOST_TEST((files_in(dir.path / "checkpoints") == std::set<std::string>{"epoch=2-step=12.ckpt"}));
  BOOST_TEST(trainer.checkpoint_callback()->best_model_path() ==
             (dir.path / "checkpoints" / "epoch=2-step=12.ckpt").string());
  const auto top =
      read_checkpoint_file(trainer.checkpoint_callback()->best_model_path()).toGenericDict();
  BOOST_TEST(top.at("epoch").toInt() == 2);
  BOOST_TEST(top.at("global_step").toInt() == 12);
  BOOST_TEST(top.contains("optimizer_states"));
}

// With a logger, Lightning puts them under the logger's version directory.
BOOST_AUTO_TEST_CASE(default_dirpath_follows_the_logger) {
  TempDir dir;
  Scripted model({1.0});
  Trainer trainer(options(dir, 1).logger(true));
  trainer.fit(model);
  const fs::path expected = dir.path / "lightning_logs" / "version_0" / "checkpoints";
  BOOST_TEST((files_in(expected) == std::set<std::string>{"epoch=0-step=4.ckpt"}));
  BOOST_TEST(trainer.checkpoint_callback()->best_model_path() ==
             (expected / "epoch=0-step=4.ckpt").string());
}

BOOST_AUTO_TEST_CASE(enable_checkpointing_false) {
  TempDir dir;
  Trainer none(options(dir, 1).enable_checkpointing(false));
  BOOST_TEST(none.checkpoint_callback() == nullptr);
  BOOST_CHECK_THROW(
      Trainer(options(dir, 1).enable_checkpointing(false), {checkpoint(ModelCheckpointOptions())}),
      std::invalid_argument);
  // A user's checkpoint callback replaces the default one.
  Trainer mine(options(dir, 1), {std::make_shared<OnExceptionCheckpoint>(dir.str())});
  BOOST_TEST(mine.checkpoint_callbacks().size() == 1u);
}

BOOST_AUTO_TEST_CASE(save_top_k_two_keeps_the_two_best) {
  TempDir dir;
  Scripted model({0.5, 0.3, 0.4, 0.2, 0.6});
  auto mc = checkpoint(ModelCheckpointOptions()
                           .dirpath(dir.str())
                           .monitor("val_loss")
                           .save_top_k(2)
                           .filename("{epoch}-{val_loss:.2f}"));
  Trainer trainer(options(dir, 5), {mc});
  trainer.fit(model);
  BOOST_TEST((files_in(dir.path) ==
              std::set<std::string>{"epoch=1-val_loss=0.30.ckpt", "epoch=3-val_loss=0.20.ckpt"}));
  BOOST_TEST(mc->best_model_path() == (dir.path / "epoch=3-val_loss=0.20.ckpt").string());
  BOOST_TEST(*mc->best_model_score() == 0.2, boost::test_tools::tolerance(1e-6));
  BOOST_TEST(mc->kth_best_model_path() == (dir.path / "epoch=1-val_loss=0.30.ckpt").string());
  BOOST_TEST(mc->best_k_models().size() == 2u);
}

BOOST_AUTO_TEST_CASE(mode_max_and_all_and_none) {
  TempDir a, b, c;
  {
    Scripted model({0.5, 0.3, 0.7});
    auto mc = checkpoint(ModelCheckpointOptions()
                             .dirpath(a.str())
                             .monitor("val_loss")
                             .mode("max")
                             .filename("{epoch}"));
    Trainer trainer(options(a, 3), {mc});
    trainer.fit(model);
    BOOST_TEST((files_in(a.path) == std::set<std::string>{"epoch=2.ckpt"}));
  }
  {
    Scripted model({0.5, 0.3, 0.7});
    auto mc =
        checkpoint(ModelCheckpointOptions().dirpath(b.str()).monitor("val_loss").save_top_k(-1));
    Trainer trainer(options(b, 3), {mc});
    trainer.fit(model);
    BOOST_TEST(files_in(b.path).size() == 3u);
  }
  {
    Scripted model({0.5});
    auto mc = checkpoint(
        ModelCheckpointOptions().dirpath(c.str()).save_top_k(0).save_last(SaveLast::yes));
    Trainer trainer(options(c, 2), {mc});
    trainer.fit(model);
    BOOST_TEST((files_in(c.path) == std::set<std::string>{"last.ckpt"}));
    BOOST_TEST(mc->best_model_path().empty());
  }
}

BOOST_AUTO_TEST_CASE(every_n_train_steps_and_every_n_epochs) {
  TempDir a, b;
  {
    Scripted model({0.5});
    auto mc =
        checkpoint(ModelCheckpointOptions().dirpath(a.str()).every_n_train_steps(3).save_top_k(-1));
    Trainer trainer(options(a, 2), {mc});  // 8 steps
    trainer.fit(model);
    BOOST_TEST(
        (files_in(a.path) == std::set<std::string>{"epoch=0-step=3.ckpt", "epoch=1-step=6.ckpt"}));
  }
  {
    Scripted model({0.5});
    auto mc =
        checkpoint(ModelCheckpointOptions().dirpath(b.str()).every_n_epochs(2).save_top_k(-1));
    Trainer trainer(options(b, 5), {mc});
    trainer.fit(model);
    BOOST_TEST(
        (files_in(b.path) == std::set<std::string>{"epoch=1-step=8.ckpt", "epoch=3-step=16.ckpt"}));
  }
  BOOST_CHECK_THROW(
      ModelCheckpoint(ModelCheckpointOptions().every_n_epochs(1).every_n_train_steps(2)),
      std::invalid_argument);
  BOOST_CHECK_THROW(ModelCheckpoint(ModelCheckpointOptions().save_top_k(2)), std::invalid_argument);
  BOOST_CHECK_THROW(ModelCheckpoint(ModelCheckpointOptions().mode("best")), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(saves_at_validation_end_when_validating_mid_epoch) {
  TempDir dir;
  Scripted model({0.5});
  class Where final : public Callback {
   public:
    Where() : Callback("where") {}
    void on_save_checkpoint(Trainer& t, Module&, Checkpoint&) override {
      places.push_back(t.validating() ? "validation" : "train");
    }
    std::vector<std::string> places;
  };
  auto where = std::make_shared<Where>();
  auto mc = checkpoint(ModelCheckpointOptions().dirpath(dir.str()).save_top_k(-1));
  Trainer trainer(options(dir, 1).val_check_interval(0.5), {where, mc});
  trainer.fit(model);
  // Lightning: with val_check_interval != 1.0 the save happens at on_validation_end.
  BOOST_TEST((where->places == std::vector<std::string>{"validation", "validation"}));
  BOOST_TEST(
      (files_in(dir.path) == std::set<std::string>{"epoch=0-step=2.ckpt", "epoch=0-step=4.ckpt"}));
}

BOOST_AUTO_TEST_CASE(save_last_file_and_link) {
  TempDir a, b;
  {
    Scripted model({0.5});
    auto mc = checkpoint(ModelCheckpointOptions().dirpath(a.str()).save_last(SaveLast::yes));
    Trainer trainer(options(a, 2), {mc});
    trainer.fit(model);
    BOOST_TEST((files_in(a.path) == std::set<std::string>{"epoch=1-step=8.ckpt", "last.ckpt"}));
    BOOST_TEST(!fs::is_symlink(a.path / "last.ckpt"));
    BOOST_TEST(
        read_checkpoint_file(a.path / "last.ckpt").toGenericDict().at("global_step").toInt() == 8);
    BOOST_TEST(mc->last_model_path() == (a.path / "last.ckpt").string());
  }
  {
    Scripted model({0.5});
    auto mc = checkpoint(ModelCheckpointOptions().dirpath(b.str()).save_last(SaveLast::link));
    Trainer trainer(options(b, 2), {mc});
    trainer.fit(model);
    BOOST_TEST(fs::is_symlink(b.path / "last.ckpt"));
    BOOST_TEST(fs::read_symlink(b.path / "last.ckpt") == fs::path("epoch=1-step=8.ckpt"));
    BOOST_CHECK_NO_THROW(read_checkpoint_file(b.path / "last.ckpt"));
  }
}

BOOST_AUTO_TEST_CASE(save_weights_only_and_names) {
  TempDir dir;
  Scripted model({0.123456});
  auto mc = checkpoint(ModelCheckpointOptions()
                           .dirpath(dir.str())
                           .save_weights_only(true)
                           .monitor("val_loss")
                           .auto_insert_metric_name(false)
                           .filename("e{epoch:03d}-loss{val_loss:.3f}"));
  Trainer trainer(options(dir, 1), {mc});
  trainer.fit(model);
  BOOST_TEST((files_in(dir.path) == std::set<std::string>{"e000-loss0.123.ckpt"}));
  const auto top = read_checkpoint_file(mc->best_model_path()).toGenericDict();
  BOOST_TEST(top.contains("state_dict"));
  BOOST_TEST(!top.contains("optimizer_states"));
  BOOST_TEST(!top.contains("callbacks"));
  std::map<std::string, double> metrics{{"epoch", 2}, {"val_loss", 0.123456}};
  ModelCheckpoint plain(ModelCheckpointOptions().filename("{epoch}-{val_loss:.2f}"));
  BOOST_TEST(plain.format_checkpoint_name(metrics) == "epoch=2-val_loss=0.12.ckpt");
  BOOST_TEST(plain.format_checkpoint_name({}, "{missing:d}") == "missing=0.ckpt");
  BOOST_TEST(plain.format_checkpoint_name(metrics, "{epoch}", 2) == "epoch=2-v2.ckpt");
}

BOOST_AUTO_TEST_CASE(version_counter_and_foreign_files) {
  TempDir dir;
  std::ofstream(dir.path / "epoch=0-step=4.ckpt") << "not ours";
  std::ofstream(dir.path / "notes.txt") << "keep me";
  Scripted model({0.5});
  auto mc = checkpoint(ModelCheckpointOptions().dirpath(dir.str()));
  Trainer trainer(options(dir, 2), {mc});
  trainer.fit(model);
  // Its own first file got "-v1" and was replaced by the epoch-1 file; the others survive.
  BOOST_TEST((files_in(dir.path) ==
              std::set<std::string>{"epoch=0-step=4.ckpt", "epoch=1-step=8.ckpt", "notes.txt"}));
  std::ifstream in(dir.path / "epoch=0-step=4.ckpt");
  std::string text;
  std::getline(in, text);
  BOOST_TEST(text == "not ours");
}

BOOST_AUTO_TEST_CASE(state_key_names_the_configuration) {
  ModelCheckpoint a(ModelCheckpointOptions().monitor("val_loss"));
  ModelCheckpoint b(ModelCheckpointOptions().monitor("val_acc").mode("max"));
  ModelCheckpoint c;
  BOOST_TEST(a.state_key() ==
             "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
             "'every_n_epochs': 1, 'train_time_interval': None}");
  BOOST_TEST(c.state_key() ==
             "ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 0, "
             "'every_n_epochs': 1, 'train_time_interval': None}");
  BOOST_TEST(a.state_key() != b.state_key());
  TempDir dir;
  BOOST_CHECK_NO_THROW(
      Trainer(options(dir, 1), {checkpoint(ModelCheckpointOptions().monitor("x")),
                                checkpoint(ModelCheckpointOptions().monitor("y"))}));
}

BOOST_AUTO_TEST_CASE(a_missing_monitor_is_an_error_once_validation_ran) {
  TempDir dir;
  Scripted model({0.5});
  auto mc = checkpoint(ModelCheckpointOptions().dirpath(dir.str()).monitor("val_acc"));
  Trainer trainer(options(dir, 1), {mc});
  BOOST_CHECK_EXCEPTION(trainer.fit(model), std::invalid_argument, [](const std::exception& e) {
    const std::string what = e.what();
    return what.find("could not find the monitored key") != std::string::npos &&
           what.find("'val_loss'") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(resume_restores_its_state_and_best_and_last_resolve) {
  TempDir dir;
  const auto make = [&] {
    return checkpoint(ModelCheckpointOptions()
                          .dirpath(dir.str())
                          .monitor("val_loss")
                          .save_top_k(2)
                          .save_last(SaveLast::yes));
  };
  std::string best;
  {
    Scripted model({0.5, 0.3, 0.4});
    auto mc = make();
    Trainer trainer(options(dir, 3), {mc});
    trainer.fit(model);
    best = mc->best_model_path();
  }
  Scripted model({0.5, 0.3, 0.4, 0.1});
  auto mc = make();
  Trainer trainer(options(dir, 4), {mc});
  trainer.fit(model, nullptr, "last");
  BOOST_TEST(trainer.ckpt_path() == (dir.path / "last.ckpt").string());
  BOOST_TEST(trainer.current_epoch() == 4);
  // Restored best_k_models {epoch 1: 0.3, epoch 2: 0.4}; epoch 3 (0.1) evicts epoch 2.
  BOOST_TEST(mc->best_k_models().size() == 2u);
  BOOST_TEST(mc->best_model_path() == (dir.path / "epoch=3-step=16.ckpt").string());
  BOOST_TEST(fs::exists(best));
  BOOST_TEST(!fs::exists(dir.path / "epoch=2-step=12.ckpt"));
  // "best" resolves through the checkpoint callback.
  Scripted again({0.5});
  Trainer tester(options(dir, 4), {make()});
  BOOST_CHECK_THROW(tester.validate(again, nullptr, "best"), std::invalid_argument);  // none yet
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(on_exception_checkpoint)

BOOST_AUTO_TEST_CASE(saves_when_a_callback_throws_and_resumes_from_last) {
  TempDir dir;
  class Boom final : public Callback {
   public:
    Boom() : Callback("boom") {}
    void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                            std::int64_t) override {
      if (t.global_step() == 6) throw std::runtime_error("boom");
    }
  };
  auto on_exception = std::make_shared<OnExceptionCheckpoint>(dir.str());
  {
    Scripted model({0.5});
    Trainer trainer(options(dir, 2).enable_checkpointing(true),
                    {std::make_shared<Boom>(), on_exception});
    BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  }
  const std::string file = (dir.path / "on_exception.ckpt").string();
  BOOST_TEST(on_exception->ckpt_path() == file);
  BOOST_REQUIRE(fs::exists(file));
  BOOST_TEST(read_checkpoint_file(file).toGenericDict().at("global_step").toInt() == 6);
  Scripted model({0.5});
  Trainer trainer(options(dir, 2), {std::make_shared<OnExceptionCheckpoint>(dir.str())});
  trainer.fit(model, nullptr, "last");
  BOOST_TEST(trainer.ckpt_path() == file);
  BOOST_TEST(trainer.global_step() == 8);
  BOOST_TEST(!fs::exists(file));  // a run that ends normally removes it, as in Lightning
  BOOST_CHECK_THROW(OnExceptionCheckpoint(dir.str(), ""), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_model_checkpoint_tests
