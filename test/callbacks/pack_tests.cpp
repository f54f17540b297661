// CallbackPack and runtime registration: packs as one unit with namespaced state keys, adding
// and removing callbacks and packs during a fit (from a hook and from another thread) and exactly
// which events each then sees, the shipped packs (classification_defaults, debugging with
// AnomalyDetection).
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/anomaly_detection.hpp>
#include <hookline/callbacks/early_stopping.hpp>
#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/callbacks/model_checkpoint.hpp>
#include <hookline/callbacks/packs.hpp>
#include <hookline/core/checkpoint_io.hpp>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <limits>
#include <thread>

namespace hookline_test_pack_tests {

using namespace hookline;
using namespace test_support;

namespace {

// Records the epoch- and batch-level hooks it sees, with the epoch and batch: "es1" is
// on_train_epoch_start of epoch 1, "bs1:0" / "be1:0" on_train_batch_start / end of batch 0.
class Watcher : public Callback {
 public:
  explicit Watcher(std::string name, int priority = band::callback)
      : Callback(std::move(name), priority) {}
  void setup(Trainer&, Module&, Stage) override { note("setup"); }
  void teardown(Trainer&, Module&, Stage) override { note("teardown"); }
  void on_train_epoch_start(Trainer& t, Module&) override {
    note("es" + std::to_string(t.current_epoch()));
  }
  void on_train_epoch_end(Trainer& t, Module&) override {
    note("ee" + std::to_string(t.current_epoch()));
  }
  void on_train_batch_start(Trainer& t, Module&, const Batch&, std::int64_t i) override {
    note("bs" + std::to_string(t.current_epoch()) + ":" + std::to_string(i));
  }
  void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                          std::int64_t i) override {
    note("be" + std::to_string(t.current_epoch()) + ":" + std::to_string(i));
  }
  std::vector<std::string> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  // setup/teardown of a callback added or removed from another thread run in that thread.
  void note(std::string what) {
    std::lock_guard lock(mutex_);
    seen_.push_back(std::move(what));
  }
  mutable std::mutex mutex_;
  std::vector<std::string> seen_;
};

class TwoBatches : public BoringModel {
 public:
  DataLoaders train_dataloader() override { return {loader(8, 4)}; }
};

TrainerOptions quiet(std::int64_t epochs = 3) {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false)
      .logger(false)
      .max_epochs(epochs)
      .limit_val_batches(0);
}

using Lines = std::vector<std::string>;

// A pack named `name` holding `member`.
std::shared_ptr<CallbackPack> pack_of(const std::string& name, std::shared_ptr<Callback> member) {
  auto pack = std::make_shared<CallbackPack>(name);
  pack->add(std::move(member));
  return pack;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(packs)

BOOST_AUTO_TEST_CASE(a_pack_is_checked_when_built) {
  BOOST_CHECK_THROW(CallbackPack(""), std::invalid_argument);
  BOOST_CHECK_THROW(CallbackPack("a/b"), std::invalid_argument);
  auto pack = std::make_shared<CallbackPack>("p");
  auto cb = std::make_shared<NamedCallback>("cb");
  pack->add(cb);
  BOOST_CHECK_THROW(pack->add(cb), std::invalid_argument);
  BOOST_CHECK_THROW(pack->add(std::shared_ptr<Callback>()), std::invalid_argument);
  BOOST_CHECK_THROW(pack->add(std::make_shared<NamedCallback>("cb")), std::invalid_argument);
  BOOST_CHECK_THROW(pack->add(pack), std::invalid_argument);
  auto inner = std::make_shared<CallbackPack>("inner");
  inner->add(std::make_shared<NamedCallback>("cb"));  // same key, but in a nested pack: fine
  pack->add(inner);
  BOOST_CHECK_THROW(inner->add(pack), std::invalid_argument);  // a cycle
  BOOST_TEST(pack->callbacks().size() == 2u);
  const auto keyed = pack->keyed_callbacks();
  BOOST_TEST(keyed.at(0).first == "cb");
  BOOST_TEST(keyed.at(1).first == "inner/cb");
  BOOST_TEST(pack->find("inner/cb") == keyed.at(1).second);
}

BOOST_AUTO_TEST_CASE(packs_keep_their_callbacks_state_apart_in_checkpoints) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "hookline_pack_state";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto make_pack = [](const std::string& name) {
    auto pack = std::make_shared<CallbackPack>(name);
    pack->add(std::make_shared<EarlyStopping>(EarlyStoppingOptions().monitor("train_loss")));
    return pack;
  };
  auto a = make_pack("a"), b = make_pack("b");
  {
    Trainer trainer(quiet(1), {}, {a, b});
    BOOST_TEST(trainer.callbacks().size() == 2u);
    const auto key_a = trainer.callbacks()[0]->checkpoint_key();
    BOOST_TEST(key_a.rfind("a/EarlyStopping{", 0) == 0u);
    BOOST_TEST(trainer.callbacks()[1]->checkpoint_key().rfind("b/EarlyStopping{", 0) == 0u);
    // Two EarlyStoppings on the same monitor outside packs would collide.
    trainer.add_callback(std::make_shared<EarlyStopping>(EarlyStoppingOptions().monitor("m")));
    BOOST_CHECK_THROW(
        trainer.add_callback(std::make_shared<EarlyStopping>(EarlyStoppingOptions().monitor("m"))),
        std::invalid_argument);
  }
  BOOST_TEST(!a->in_use());
  BOOST_TEST(a->callbacks()[0]->pack_path().empty());

  // A trainer with the packs saves each one's state under its own key and restores it.
  class Logs : public TwoBatches {
   public:
    StepOutput training_step(const Batch& batch, std::int64_t i) override {
      auto out = TwoBatches::training_step(batch, i);
      log("train_loss", 1.0);  // never improves after the first epoch
      return out;
    }
  };
  Logs model;
  auto c = make_pack("a"), d = make_pack("b");
  auto ckpt_dir = (dir / "ckpt").string();
  {
    LambdaHooks save;
    save.on_fit_end = [&](Trainer& t, Module&) { t.save_checkpoint((dir / "run.ckpt").string()); };
    Trainer trainer(quiet(3), {std::make_shared<LambdaCallback>(save, "save")}, {c, d});
    trainer.fit(model);
  }
  // The file holds one state per pack, under the pack's path.
  const auto saved = read_checkpoint_file(dir / "run.ckpt").toGenericDict();
  std::vector<std::string> keys;
  for (const auto& entry : saved.at("callbacks").toGenericDict())
    keys.push_back(entry.key().toStringRef());
  std::sort(keys.begin(), keys.end());
  BOOST_TEST_REQUIRE(keys.size() == 2u);
  BOOST_TEST(keys[0] == "a/" + c->callbacks()[0]->state_key());
  BOOST_TEST(keys[1] == "b/" + d->callbacks()[0]->state_key());
  const auto* stopper_c = dynamic_cast<EarlyStopping*>(c->callbacks()[0].get());
  BOOST_TEST(stopper_c->wait_count() == 2);
  auto e = make_pack("a"), f = make_pack("b");
  Trainer again(quiet(3), {}, {e, f});
  Logs model2;
  again.fit(model2, nullptr, (dir / "run.ckpt").string());
  const auto* stopper_e = dynamic_cast<EarlyStopping*>(e->callbacks()[0].get());
  const auto* stopper_f = dynamic_cast<EarlyStopping*>(f->callbacks()[0].get());
  BOOST_TEST(stopper_e->wait_count() == 2);  // restored (the fit was already done: 3 epochs)
  BOOST_TEST(stopper_f->wait_count() == 2);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(add_pack_refuses_and_adds_nothing) {
  Trainer trainer(quiet());
  const auto before = trainer.callbacks().size();
  BOOST_CHECK_THROW(trainer.add_pack(nullptr), std::invalid_argument);
  auto cb = std::make_shared<NamedCallback>("solo");
  trainer.add_callback(cb);
  auto pack = std::make_shared<CallbackPack>("p");
  pack->add(std::make_shared<NamedCallback>("x")).add(cb);
  BOOST_CHECK_THROW(trainer.add_pack(pack), std::invalid_argument);  // cb is already here
  BOOST_TEST(trainer.callbacks().size() == before + 1);
  BOOST_TEST(trainer.packs().empty());
  auto ok = std::make_shared<CallbackPack>("p");
  ok->add(std::make_shared<NamedCallback>("x"));
  const auto subscribers = trainer.bus().subscriber_count<TrainEpochStart>();
  trainer.add_pack(ok);
  BOOST_TEST(trainer.bus().subscriber_count<TrainEpochStart>() > subscribers);
  auto same_name = std::make_shared<CallbackPack>("p");
  BOOST_CHECK_THROW(trainer.add_pack(same_name), std::invalid_argument);
  Trainer other(quiet());
  BOOST_CHECK_THROW(other.add_pack(ok), std::invalid_argument);  // in use
  BOOST_CHECK_THROW(ok->add(std::make_shared<NamedCallback>("y")), std::invalid_argument);
  BOOST_CHECK_THROW(trainer.remove_callback(*ok->callbacks()[0]), std::invalid_argument);
  BOOST_TEST(trainer.pack("p") == ok);
  BOOST_TEST(trainer.remove_pack(*ok));
  BOOST_TEST(!trainer.remove_pack(*ok));
  BOOST_TEST(trainer.callbacks().size() == before + 1);
  BOOST_TEST(trainer.bus().subscriber_count<TrainEpochStart>() == subscribers);
}

BOOST_AUTO_TEST_CASE(changes_from_hooks_take_effect_from_the_next_event) {
  // The controller (added first, so it runs first in the band) adds X and pack P{Y} at
  // on_train_epoch_start of epoch 1 and removes P at on_train_epoch_end of epoch 1; X removes
  // itself at on_train_batch_end of epoch 2, batch 0.
  TwoBatches model;
  auto x = std::make_shared<Watcher>("x");
  auto y = std::make_shared<Watcher>("y");
  auto p = pack_of("P", y);
  LambdaHooks h;
  h.on_train_epoch_start = [&](Trainer& t, Module&) {
    if (t.current_epoch() == 1) {
      t.add_callback(x);
      t.add_pack(p);
    }
  };
  h.on_train_epoch_end = [&](Trainer& t, Module&) {
    if (t.current_epoch() == 1) BOOST_TEST(t.remove_pack(*p));
  };
  auto controller = std::make_shared<LambdaCallback>(h, "controller");
  class SelfRemoving : public Watcher {
   public:
    using Watcher::Watcher;
    void on_train_batch_end(Trainer& t, Module& m, const StepOutput& o, const Batch& b,
                            std::int64_t i) override {
      Watcher::on_train_batch_end(t, m, o, b, i);
      if (t.current_epoch() == 2 && i == 0) BOOST_TEST(t.remove_callback(*this));
    }
  };
  auto self_removing = std::make_shared<SelfRemoving>("x");
  x = self_removing;
  Trainer trainer(quiet(3), {controller});
  trainer.fit(model);
  BOOST_TEST(self_removing->seen() == (Lines{"setup", "bs1:0", "be1:0", "bs1:1", "be1:1", "ee1",
                                             "es2", "bs2:0", "be2:0", "teardown"}),
             boost::test_tools::per_element());
  // Y is behind the controller: removed during on_train_epoch_end, it misses that one too.
  BOOST_TEST(y->seen() == (Lines{"setup", "bs1:0", "be1:0", "bs1:1", "be1:1", "teardown"}),
             boost::test_tools::per_element());
  BOOST_TEST(trainer.packs().empty());
  BOOST_TEST(trainer.callbacks().size() == 1u);
  BOOST_TEST(y->pack_path().empty());
}

BOOST_AUTO_TEST_CASE(changes_from_another_thread_take_effect_from_the_next_event) {
  // The training thread pauses in the controller's on_train_batch_end (epoch 0 batch 0, then
  // epoch 1 batch 0) while another thread adds Z, then removes it.
  TwoBatches model;
  auto z = std::make_shared<Watcher>("z");
  auto w = std::make_shared<Watcher>("w");
  auto q = pack_of("Q", w);
  std::mutex mutex;
  std::condition_variable cv;
  int request = 0, done = 0;
  Trainer* running = nullptr;
  std::thread other([&] {
    for (int round = 1; round <= 2; ++round) {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return request == round; });
      if (round == 1) {
        running->add_callback(z);
        running->add_pack(q);
      } else {
        BOOST_TEST(running->remove_callback(*z));
        BOOST_TEST(running->remove_pack(*q));
      }
      done = round;
      cv.notify_all();
    }
  });
  LambdaHooks h;
  h.on_train_batch_end = [&](Trainer& t, Module&, const StepOutput&, const Batch&, std::int64_t i) {
    if (i != 0 || t.current_epoch() > 1) return;
    const int round = static_cast<int>(t.current_epoch()) + 1;
    std::unique_lock lock(mutex);
    request = round;
    cv.notify_all();
    cv.wait(lock, [&] { return done == round; });
  };
  Trainer trainer(quiet(3), {std::make_shared<LambdaCallback>(h, "controller")});
  running = &trainer;
  trainer.fit(model);
  other.join();
  const Lines expected{"setup", "bs0:1", "be0:1", "ee0", "es1", "bs1:0", "teardown"};
  BOOST_TEST(z->seen() == expected, boost::test_tools::per_element());
  BOOST_TEST(w->seen() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(churn_from_another_thread_during_a_fit_is_safe) {
  // Another thread adds and removes a pack and a callback as fast as it can while a fit runs.
  class Longer : public BoringModel {
   public:
    DataLoaders train_dataloader() override { return {loader(256, 4)}; }
  };
  Longer model;
  Trainer trainer(quiet(2));
  std::atomic<bool> stop{false};
  std::atomic<int> cycles{0};
  std::thread churn([&] {
    while (!stop.load()) {
      auto pack = std::make_shared<CallbackPack>("churn");
      pack->add(std::make_shared<Watcher>("a")).add(std::make_shared<Watcher>("b"));
      auto solo = std::make_shared<Watcher>("solo");
      trainer.add_pack(pack);
      trainer.add_callback(solo);
      trainer.remove_callback(*solo);
      trainer.remove_pack(*pack);
      ++cycles;
    }
  });
  trainer.fit(model);
  stop = true;
  churn.join();
  BOOST_TEST(cycles.load() > 0);
  BOOST_TEST(trainer.global_step() == 128);
  BOOST_TEST(trainer.packs().empty());
}

BOOST_AUTO_TEST_CASE(anomaly_detection_stops_at_a_nan_loss_and_keeps_the_weights) {
  class NanAt : public TwoBatches {
   public:
    DataLoaders train_dataloader() override { return {loader(16, 4)}; }
    StepOutput training_step(const Batch& batch, std::int64_t i) override {
      auto out = TwoBatches::training_step(batch, i);
      if (trainer().current_epoch() == 1 && i == 2)
        out["loss"] = out["loss"] * std::numeric_limits<float>::quiet_NaN();
      return out;
    }
  };
  NanAt model;
  at::Tensor before;
  LambdaHooks h;
  h.on_train_batch_end = [&](Trainer& t, Module&, const StepOutput&, const Batch&, std::int64_t i) {
    if (t.current_epoch() == 1 && i == 1) before = model.layer->weight.detach().clone();
  };
  auto anomaly = std::make_shared<AnomalyDetection>();
  Trainer trainer(quiet(5), {anomaly, std::make_shared<LambdaCallback>(h, "snapshot")});
  trainer.fit(model);
  BOOST_TEST(anomaly->finding() == "loss is nan at epoch 1, batch 2");
  BOOST_TEST(trainer.stop_reason().find("AnomalyDetection: loss is nan at epoch 1, batch 2") !=
             std::string::npos);
  BOOST_TEST(trainer.current_epoch() == 2);  // epoch 1 ended at once, no epoch 2
  // The NaN batch still calls the optimizer (counted), but without gradients nothing moves.
  BOOST_TEST(trainer.global_step() == 4 + 3);
  BOOST_TEST(model.layer->weight.isfinite().all().item<bool>());
  BOOST_TEST(torch::equal(model.layer->weight.detach(), before));
}

BOOST_AUTO_TEST_CASE(anomaly_detection_names_the_parameter_with_a_bad_gradient) {
  class InfGrad : public TwoBatches {
   public:
    StepOutput training_step(const Batch& batch, std::int64_t i) override {
      auto out = TwoBatches::training_step(batch, i);
      if (i == 1) {  // sqrt at 0: a finite loss whose gradient is inf for every bias element
        const auto zero = layer->bias - layer->bias.detach();
        out["loss"] = out["loss"] + torch::sqrt(zero).sum();
      }
      return out;
    }
  };
  InfGrad model;
  auto anomaly = std::make_shared<AnomalyDetection>();
  Trainer trainer(quiet(3), {anomaly});
  trainer.fit(model);
  BOOST_TEST(anomaly->finding() ==
             "gradient of 'layer.bias' has 2 non-finite values (inf) at "
             "epoch 0, batch 1");
  BOOST_TEST(trainer.global_step() == 2);
  BOOST_TEST(trainer.current_epoch() == 1);
  BOOST_TEST(model.layer->bias.isfinite().all().item<bool>());

  // Turned off, the same run trains on (and the weights go bad).
  InfGrad again;
  Trainer unchecked(
      quiet(1),
      {std::make_shared<AnomalyDetection>(AnomalyDetectionOptions().check_gradients(false))});
  unchecked.fit(again);
  BOOST_TEST(unchecked.global_step() == 2);
  BOOST_TEST(!again.layer->bias.isfinite().all().item<bool>());
}

BOOST_AUTO_TEST_CASE(shipped_packs_hold_what_they_promise) {
  auto defaults = classification_defaults(
      ClassificationDefaultsOptions().monitor("val_acc").mode("max").patience(5));
  BOOST_TEST(defaults->name() == "defaults");
  const auto members = defaults->callbacks();
  BOOST_TEST_REQUIRE(members.size() == 3u);
  const auto* checkpoint = dynamic_cast<ModelCheckpoint*>(members[0].get());
  BOOST_TEST_REQUIRE(checkpoint != nullptr);
  BOOST_TEST(checkpoint->options().monitor() == "val_acc");
  BOOST_TEST(checkpoint->options().mode() == "max");
  BOOST_TEST((checkpoint->options().save_last() == SaveLast::yes));
  const auto* stopper = dynamic_cast<EarlyStopping*>(members[1].get());
  BOOST_TEST_REQUIRE(stopper != nullptr);
  BOOST_TEST(stopper->options().patience() == 5);
  BOOST_TEST(members[2]->name() == "LearningRateMonitor");
  BOOST_CHECK_THROW(classification_defaults(ClassificationDefaultsOptions().mode("best")),
                    std::invalid_argument);

  // A trainer given the pack adds no default ModelCheckpoint of its own.
  Trainer trainer(TrainerOptions().enable_progress_bar(false).enable_model_summary(false), {},
                  {defaults});
  BOOST_TEST(trainer.checkpoint_callbacks().size() == 1u);

  // debugging: AnomalyDetection, and tracing into a ring buffer once added.
  auto debug = debugging(DebuggingOptions().trace("ring:64"));
  BOOST_TEST(debug->callbacks().size() == 1u);
  BOOST_TEST(debug->callbacks()[0]->name() == "AnomalyDetection");
  Trainer traced(quiet());
  BOOST_TEST(!traced.bus().tracer());
  traced.add_pack(debug);
  BOOST_TEST(traced.bus().tracer() != nullptr);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_pack_tests
