// Registration at its edges: a callback removing itself from its own hook, the same callback
// twice, configure_callbacks (Lightning's rule: the module's callbacks replace the trainer's of
// the same type, checkpoint callbacks go last, and the trainer's list comes back after the run),
// one module fitted by two trainers at once, and the stage after a run.
#include <boost/test/unit_test.hpp>

#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/model_checkpoint.hpp>

#include <unistd.h>
#include <filesystem>

namespace hookline_test_registration_tests {

using namespace hookline;
using namespace test_support;

namespace {

bool mentions(const std::exception& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

/// Counts on_train_epoch_start calls into a counter it shares with the test.
class EpochCounter : public Callback {
 public:
  explicit EpochCounter(std::string name, std::shared_ptr<int> count = std::make_shared<int>(0))
      : Callback(std::move(name)), count_(std::move(count)) {}
  void on_train_epoch_start(Trainer&, Module&) override { ++*count_; }
  int count() const { return *count_; }

 private:
  std::shared_ptr<int> count_;
};

class OtherCounter final : public EpochCounter {
 public:
  using EpochCounter::EpochCounter;
};

std::vector<std::string> names(const std::vector<std::shared_ptr<Callback>>& callbacks) {
  std::vector<std::string> out;
  for (const auto& c : callbacks) out.push_back(c->name());
  return out;
}

using test_support::TempDir;

}  // namespace

BOOST_AUTO_TEST_SUITE(registration_edges)

// Item 5 of issue 27 (run it under ASan too): the trainer holds the only reference.
BOOST_AUTO_TEST_CASE(a_callback_removing_itself_from_its_own_hook_is_gone) {
  struct SelfRemover final : Callback {
    explicit SelfRemover(std::shared_ptr<int> calls) : Callback("self_remover"), calls_(calls) {}
    void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                            std::int64_t i) override {
      ++*calls_;
      if (i == 1) BOOST_TEST(t.remove_callback(*this));
    }
    std::shared_ptr<int> calls_;
  };
  auto calls = std::make_shared<int>(0);
  BoringModel model;
  Trainer trainer(quiet_options().max_epochs(2).limit_train_batches(4));
  trainer.add_callback(std::make_shared<SelfRemover>(calls));
  BOOST_TEST(trainer.callbacks().size() == 1u);
  trainer.fit(model);
  BOOST_TEST(*calls == 2);
  BOOST_TEST(trainer.callbacks().empty());
  trainer.fit(model);  // a second run does not see it either
  BOOST_TEST(*calls == 2);
}

// Removed in its own setup() (before the run is set up), it must outlive the hook: an earlier
// version freed it there, and the hook's verdict bookkeeping then wrote into freed memory.
BOOST_AUTO_TEST_CASE(a_callback_removing_itself_in_setup_sees_nothing_more) {
  struct RemovesInSetup final : Callback {
    explicit RemovesInSetup(std::shared_ptr<int> calls)
        : Callback("removes_in_setup"), calls_(calls) {}
    void setup(Trainer& t, Module&, Stage) override { BOOST_TEST(t.remove_callback(*this)); }
    void on_train_epoch_start(Trainer&, Module&) override { ++*calls_; }
    std::shared_ptr<int> calls_;
  };
  auto calls = std::make_shared<int>(0);
  BoringModel model;
  Trainer trainer(quiet_options().max_epochs(2).limit_train_batches(1));
  trainer.add_callback(std::make_shared<RemovesInSetup>(calls));
  trainer.fit(model);
  BOOST_TEST(*calls == 0);
  BOOST_TEST(trainer.callbacks().empty());
}

BOOST_AUTO_TEST_CASE(a_callback_of_the_constructor_removing_itself_is_gone) {
  auto calls = std::make_shared<int>(0);
  struct SelfRemover final : Callback {
    explicit SelfRemover(std::shared_ptr<int> calls) : Callback("self_remover"), calls_(calls) {}
    void on_train_epoch_start(Trainer& t, Module&) override {
      ++*calls_;
      t.remove_callback(*this);
    }
    std::shared_ptr<int> calls_;
  };
  BoringModel model;
  Trainer trainer(quiet_options().max_epochs(3).limit_train_batches(2),
                  {std::make_shared<SelfRemover>(calls)});
  trainer.fit(model);
  BOOST_TEST(*calls == 1);
  for (const auto& c : trainer.callbacks()) BOOST_TEST(c->name() != "self_remover");
}

// Item 6: the same object twice is refused with its name, and nothing changes.
BOOST_AUTO_TEST_CASE(the_same_callback_twice_is_refused) {
  auto counter = std::make_shared<EpochCounter>("twice");
  BOOST_CHECK_EXCEPTION(Trainer(quiet_options(), {counter, counter}), std::invalid_argument,
                        [](const auto& e) { return mentions(e, "'twice'"); });
  Trainer trainer(quiet_options().max_epochs(1).limit_train_batches(1), {counter});
  const auto before = trainer.callbacks();
  BOOST_CHECK_EXCEPTION(trainer.add_callback(counter), std::invalid_argument,
                        [](const auto& e) { return mentions(e, "'twice'"); });
  BOOST_TEST(trainer.callbacks() == before);
  auto pack = std::make_shared<CallbackPack>("p");
  pack->add(counter);
  BOOST_CHECK_EXCEPTION(trainer.add_pack(pack), std::invalid_argument,
                        [](const auto& e) { return mentions(e, "'twice'"); });
  BOOST_TEST(trainer.callbacks() == before);
  BoringModel model;
  trainer.fit(model);
  BOOST_TEST(counter->count() == 1);
}

// Item 7: configure_callbacks returning the trainer's own callback subscribes it once, and the
// trainer keeps it after the run.
BOOST_AUTO_TEST_CASE(configure_callbacks_returning_a_trainer_callback_subscribes_it_once) {
  auto counter = std::make_shared<EpochCounter>("mine");
  struct Configures final : BoringModel {
    std::vector<std::shared_ptr<Callback>> configure_callbacks() override { return {returned}; }
    std::shared_ptr<Callback> returned;
  } configuring;
  configuring.returned = counter;
  Trainer trainer(quiet_options().max_epochs(2).limit_train_batches(1), {counter});
  trainer.fit(configuring);
  BOOST_TEST(counter->count() == 2);
  BoringModel plain;
  trainer.fit(plain);
  BOOST_TEST(counter->count() == 4);
  BOOST_TEST(names(trainer.callbacks()) == std::vector<std::string>{"mine"},
             boost::test_tools::per_element());
}

// Lightning's _attach_model_callbacks: a callback from configure_callbacks replaces the trainer's
// callbacks of its type (a state_key in use goes with them), and checkpoint callbacks move to the
// end of the list. The trainer's own list is back when the run ends.
BOOST_AUTO_TEST_CASE(configure_callbacks_replace_by_type_and_checkpoints_go_last) {
  TempDir dir;
  auto trainers_a = std::make_shared<EpochCounter>("a");
  auto trainers_other = std::make_shared<OtherCounter>("other");
  auto modules_a = std::make_shared<EpochCounter>("a");  // same type, same state_key
  auto modules_b = std::make_shared<OtherCounter>("b");
  auto checkpoint = std::make_shared<ModelCheckpoint>(
      ModelCheckpointOptions().dirpath((dir.path / "ckpt").string()));
  struct Configures final : BoringModel {
    std::vector<std::shared_ptr<Callback>> configure_callbacks() override { return returned; }
    std::vector<std::shared_ptr<Callback>> returned;
  } model;
  model.returned = {checkpoint, modules_a};
  std::vector<std::string> during;
  struct Probe final : Callback {
    explicit Probe(std::vector<std::string>& out) : Callback("probe"), out_(out) {}
    void on_train_start(Trainer& t, Module&) override {
      for (const auto& c : t.callbacks()) out_.push_back(c->name());
    }
    std::vector<std::string>& out_;
  };
  auto probe = std::make_shared<Probe>(during);
  Trainer trainer(
      quiet_options().max_epochs(2).limit_train_batches(1).default_root_dir(dir.path.string()),
      {trainers_a, probe, trainers_other});
  const auto before = names(trainer.callbacks());
  trainer.fit(model);
  BOOST_TEST(trainers_a->count() == 0);      // replaced by the module's "a"
  BOOST_TEST(modules_a->count() == 2);       // ran instead
  BOOST_TEST(trainers_other->count() == 2);  // another type: kept
  // Trainer's callbacks minus the replaced one, then the module's, checkpoint callbacks last.
  BOOST_TEST(during == (std::vector<std::string>{"probe", "other", "a", checkpoint->name()}),
             boost::test_tools::per_element());
  BOOST_TEST(names(trainer.callbacks()) == before, boost::test_tools::per_element());
  // The next run (a module without configure_callbacks) has the trainer's own callbacks again.
  BoringModel plain;
  trainer.fit(plain);
  BOOST_TEST(trainers_a->count() == 2);
  BOOST_TEST(modules_a->count() == 2);
  (void)modules_b;
}

BOOST_AUTO_TEST_CASE(configure_callbacks_with_a_state_key_in_use_is_refused) {
  struct Keyed final : Callback {
    explicit Keyed(std::string name) : Callback(std::move(name)) {}
    std::string state_key() const override { return "shared-key"; }
  };
  struct KeyedOther final : Callback {
    explicit KeyedOther(std::string name) : Callback(std::move(name)) {}
    std::string state_key() const override { return "shared-key"; }
  };
  struct Configures final : BoringModel {
    std::vector<std::shared_ptr<Callback>> configure_callbacks() override {
      return {std::make_shared<KeyedOther>("from_module")};
    }
  } model;
  Trainer trainer(quiet_options().max_epochs(1).limit_train_batches(1),
                  {std::make_shared<Keyed>("from_trainer")});
  BOOST_CHECK_EXCEPTION(trainer.fit(model), std::invalid_argument, [](const auto& e) {
    return mentions(e, "from_module") && mentions(e, "from_trainer") && mentions(e, "shared-key");
  });
  BOOST_TEST(names(trainer.callbacks()) == std::vector<std::string>{"from_trainer"},
             boost::test_tools::per_element());
}

// Item 8: one module, two trainers at once: the second is refused and the first is unharmed.
BOOST_AUTO_TEST_CASE(a_module_running_in_one_trainer_is_refused_by_another) {
  struct Nested final : BoringModel {
    void on_train_start() override {
      try {
        Trainer(quiet_options().max_epochs(1).limit_train_batches(1)).fit(*this);
      } catch (const std::logic_error& e) {
        refused = mentions(e, "already attached") || mentions(e, "another Trainer");
        message = e.what();
      }
      attached_after = attached();
    }
    bool refused = false;
    bool attached_after = false;
    std::string message;
  } model;
  Trainer trainer(quiet_options().max_epochs(1).limit_train_batches(2));
  trainer.fit(model);
  BOOST_TEST(model.refused, model.message);
  BOOST_TEST(model.attached_after);
  BOOST_TEST(trainer.global_step() == 2);
  BOOST_TEST(!model.attached());
}

// Item 13: Lightning sets trainer.state.stage to None when a run ends, normally or by an error.
BOOST_AUTO_TEST_CASE(the_stage_is_none_outside_a_run) {
  struct Failing final : BoringModel {
    StepOutput training_step(const Batch& b, std::int64_t i) override {
      seen = trainer().stage();
      if (fail) throw std::runtime_error("fails");
      return BoringModel::training_step(b, i);
    }
    bool fail = false;
    Stage seen = Stage::none;
  } model;
  Trainer trainer(quiet_options().max_epochs(1).limit_train_batches(1));
  BOOST_TEST(to_string(trainer.stage()) == "none");
  trainer.fit(model);
  BOOST_TEST((model.seen == Stage::fit));
  BOOST_TEST((trainer.stage() == Stage::none));
  model.fail = true;
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  BOOST_TEST((model.seen == Stage::fit));
  BOOST_TEST((trainer.stage() == Stage::none));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_registration_tests
