// Verdicts at their edges: a skip and a stop on the same batch, a skipped last batch and the
// epoch-interval LR scheduler, a skipped batch under gradient accumulation, and a callback that
// vetoes and then throws. Each case says what Lightning 2.2 does where it has a behaviour.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/tracing/trace.hpp>

#include <unistd.h>

#include <filesystem>
#include <mutex>

namespace hookline_test_verdict_edge_tests {

using namespace hookline;
using namespace test_support;

namespace {

/// Vetoes `action` at on_train_batch_start of batch `at` in epoch 0.
class Judge final : public Callback {
 public:
  Judge(std::string name, Action action, std::int64_t at)
      : Callback(std::move(name)), action_(action), at_(at) {}
  void on_train_batch_start(Trainer& t, Module&, const Batch&, std::int64_t i) override {
    if (i == at_ && t.current_epoch() == 0) veto(action_, name() + " said so");
  }

 private:
  Action action_;
  std::int64_t at_;
};

/// Records the batches it trained; returns `verdict` at on_train_batch_start of batch `at`.
struct Counting : BoringModel {
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    stepped.push_back(i);
    return BoringModel::training_step(b, i);
  }
  Verdict on_train_batch_start(const Batch&, std::int64_t i) override {
    return i == at && trainer().current_epoch() == 0 ? verdict : Verdict{};
  }
  std::int64_t at = -1;
  Verdict verdict;
  std::vector<std::int64_t> stepped;
};

/// Every emit record of a trace, kept in memory.
class EmitRecords final : public TraceSink {
 public:
  void write(const TraceRecord& r) override {
    if (r.kind != TraceRecord::Kind::emit) return;
    std::lock_guard lock(mutex_);
    records.push_back(
        {std::string(r.event), r.verdict, std::string(r.by), r.skip, std::string(r.skip_by)});
  }
  struct Row {
    std::string event;
    Action verdict;
    std::string by;
    Action skip;
    std::string skip_by;
  };
  std::mutex mutex_;
  std::vector<Row> records;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(verdict_edges)

// Item 1 of issue 27. Lightning calls the callbacks' on_train_batch_start (one sets
// should_stop) and then the module's, whose -1 ends the epoch before batch 1 trains; the fit then
// stops: one step. A skip and a stop are two axes: both take effect.
BOOST_AUTO_TEST_CASE(a_module_minus_one_and_a_callback_stop_both_take_effect) {
  Counting model;
  model.at = 1;
  model.verdict = Verdict::skip_rest_of_epoch("-1");
  Trainer trainer(quiet_options().max_epochs(3).limit_train_batches(4),
                  {std::make_shared<Judge>("stopper", Action::StopFit, 1)});
  auto sink = std::make_shared<EmitRecords>();
  trainer.bus().set_tracer(
      std::make_shared<TraceRecorder>(std::vector<std::shared_ptr<TraceSink>>{sink}));
  trainer.fit(model);
  BOOST_TEST(model.stepped == std::vector<std::int64_t>{0}, boost::test_tools::per_element());
  BOOST_TEST(trainer.global_step() == 1);
  BOOST_TEST(trainer.current_epoch() == 1);  // stopped after the first epoch
  BOOST_TEST(trainer.stop_reason().find("stopper") != std::string::npos);
  // The trace credits both: the stop to the callback, the skip to the module.
  bool credited = false;
  for (const auto& row : sink->records)
    if (row.event == "on_train_batch_start" && row.verdict == Action::StopFit) {
      BOOST_TEST(row.by == "stopper");
      BOOST_TEST((row.skip == Action::SkipRestOfEpoch));
      BOOST_TEST(row.skip_by == model.module_name());
      credited = true;
    }
  BOOST_TEST(credited);
}

BOOST_AUTO_TEST_CASE(a_skip_batch_and_a_stop_from_two_callbacks_skip_and_stop) {
  for (bool stop_first : {true, false}) {
    Counting model;
    auto stop = std::make_shared<Judge>("stopper", Action::StopFit, 1);
    auto skip = std::make_shared<Judge>("skipper", Action::SkipBatch, 1);
    std::vector<std::shared_ptr<Callback>> callbacks{stop, skip};
    if (!stop_first) std::swap(callbacks[0], callbacks[1]);
    Trainer trainer(quiet_options().max_epochs(3).limit_train_batches(4), callbacks);
    trainer.fit(model);
    BOOST_TEST(model.stepped == std::vector<std::int64_t>{0}, boost::test_tools::per_element());
    BOOST_TEST(trainer.global_step() == 1);
    BOOST_TEST(trainer.current_epoch() == 1);
  }
}

// Item 2. Lightning steps its epoch-interval schedulers once the epoch's batches are done,
// whether or not the last batch stepped: a SkipBatch on the last batch leaves it alone.
BOOST_AUTO_TEST_CASE(skip_batch_on_the_last_batch_keeps_the_epoch_scheduler_step) {
  struct Scheduled final : Counting {
    OptimizerConfig configure_optimizers() override {
      auto config = BoringModel::configure_optimizers();
      config.add_scheduler(
          SchedulerConfig::custom([this](std::optional<double>) { ++epoch_steps; }));
      return config;
    }
    Verdict on_train_batch_start(const Batch&, std::int64_t i) override {
      return i == 2 ? Verdict::skip_batch("last") : Verdict{};
    }
    int epoch_steps = 0;
  } model;
  Trainer trainer(quiet_options().max_epochs(2).limit_train_batches(3));
  trainer.fit(model);
  BOOST_TEST(trainer.global_step() == 4);
  BOOST_TEST(model.epoch_steps == 2);  // one per complete epoch
}

// Item 3. The rule (docs: the verdict table): a skipped batch adds nothing to its accumulation
// window, and a window closed by a skipped batch is dropped: its gradients are zeroed, no step.
// A skipped batch that opens a window zeroes the previous window's gradients, so the window's
// first trained batch does not add onto them.
BOOST_AUTO_TEST_CASE(skip_batch_closing_an_accumulation_window_drops_it) {
  Counting model;
  model.at = 2;  // the epoch's last batch, closing the window {0, 1, 2}
  model.verdict = Verdict::skip_batch("last");
  const at::Tensor before = model.layer->weight.clone();
  Trainer trainer(quiet_options().max_epochs(1).limit_train_batches(3).accumulate_grad_batches(4));
  trainer.fit(model);
  BOOST_TEST(trainer.global_step() == 0);
  BOOST_TEST(model.stepped == (std::vector<std::int64_t>{0, 1}), boost::test_tools::per_element());
  BOOST_TEST(at::equal(model.layer->weight, before));
  for (const auto& p : model.parameters())
    BOOST_TEST((!p.grad().defined() || p.grad().abs().sum().item<double>() == 0.0));
}

BOOST_AUTO_TEST_CASE(skip_batch_opening_a_window_does_not_carry_the_last_window_over) {
  // Window {0, 1} trains and steps; batch 2 (opening {2, 3}) is skipped; batch 3 trains alone and
  // closes the window. Its step must use batch 3's gradient only: the same update as a run whose
  // window {2, 3} had batch 2 return no loss (Lightning's None, which still zeroes).
  struct Skips final : Counting {
    Verdict on_train_batch_start(const Batch&, std::int64_t i) override {
      return i == 2 && skip ? Verdict::skip_batch("opening") : Verdict{};
    }
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      if (i == 2 && !skip) return {};  // None: no loss, no backward
      return Counting::training_step(b, i);
    }
    bool skip = true;
  };
  auto weights = [](bool skip) {
    torch::manual_seed(3);
    Skips model;
    model.skip = skip;
    Trainer trainer(
        quiet_options().max_epochs(1).limit_train_batches(4).accumulate_grad_batches(2));
    trainer.fit(model);
    BOOST_TEST(trainer.global_step() == 2);
    return model.layer->weight.clone();
  };
  BOOST_TEST(at::equal(weights(true), weights(false)));
}

// Item 4. A pending verdict belongs to one emission: a callback that vetoes and then throws
// leaves nothing behind, so its on_exception (and every later callback's) runs normally.
BOOST_AUTO_TEST_CASE(a_veto_then_a_throw_leaves_no_verdict_behind) {
  struct VetoThenThrow final : Callback {
    VetoThenThrow() : Callback("veto_then_throw") {}
    void on_train_batch_start(Trainer&, Module&, const Batch&, std::int64_t i) override {
      if (i == 1) {
        veto(Action::StopFit, "about to fail");
        throw std::runtime_error("boom");
      }
    }
    void on_exception(Trainer&, Module&, const std::exception_ptr&) override { ++exceptions; }
    int exceptions = 0;
  };
  struct Later final : Callback {
    Later() : Callback("later") {}
    void on_exception(Trainer&, Module&, const std::exception_ptr&) override { ++exceptions; }
    int exceptions = 0;
  };
  auto first = std::make_shared<VetoThenThrow>();
  auto later = std::make_shared<Later>();
  BoringModel model;
  Trainer trainer(quiet_options().max_epochs(1).limit_train_batches(3), {first, later});
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  BOOST_TEST(first->exceptions == 1);
  BOOST_TEST(later->exceptions == 1);
}

// A hook that emits another hook of the same callback (here: saving a checkpoint, which calls
// state_dict) keeps its own verdict: the nested emission neither takes nor drops it.
BOOST_AUTO_TEST_CASE(a_nested_emission_does_not_take_the_outer_hooks_verdict) {
  struct SaveThenStop final : Callback {
    SaveThenStop() : Callback("save_then_stop") {}
    void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                            std::int64_t i) override {
      if (i != 1) return;
      veto(Action::StopFit, "enough");
      t.save_checkpoint(path);
    }
    void on_save_checkpoint(Trainer&, Module&, Checkpoint&) override { ++saves; }
    std::string path;
    int saves = 0;
  };
  auto callback = std::make_shared<SaveThenStop>();
  const auto dir = std::filesystem::temp_directory_path() /
                   ("hookline_nested_verdict_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  callback->path = (dir / "mid.ckpt").string();
  BoringModel model;
  Trainer trainer(
      quiet_options().max_epochs(1).limit_train_batches(4).default_root_dir(dir.string()),
      {callback});
  trainer.fit(model);
  std::filesystem::remove_all(dir);
  BOOST_TEST(callback->saves == 1);
  BOOST_TEST(trainer.global_step() == 2);  // stopped after batch 1
  BOOST_TEST(trainer.stop_reason().find("enough") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_verdict_edge_tests
