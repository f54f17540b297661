// Checkpoints: the file format and its errors, exact resume (bitwise parity with an
// uninterrupted run), rollback of a checkpoint that does not fit, and the save/restore hook order.
#include <boost/test/unit_test.hpp>

#include "checkpoint_helpers.hpp"
#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/core/checkpoint_io.hpp>

#include <sys/wait.h>
#include <torch/optim/schedulers/step_lr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>

namespace hookline_test_checkpoint_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

using test_support::TempDir;

// A model with dropout (so resuming must restore the RNG), Adam (optimizer state), an optional
// step-interval and epoch-interval StepLR, and metrics logged on step and epoch.
struct NetConfig {
  bool step_scheduler = false;
  bool epoch_scheduler = false;
  bool validation = false;
  bool shuffle = false;
};

class Net : public Module {
 public:
  using Config = NetConfig;
  explicit Net(Config config = Config()) : Module("lm"), config_(config) {
    l1 = register_module("l1", torch::nn::Linear(8, 16));
    drop = register_module("drop", torch::nn::Dropout(0.3));
    l2 = register_module("l2", torch::nn::Linear(16, 2));
    norm = register_module("norm", torch::nn::BatchNorm1d(16));
  }
  at::Tensor forward(const at::Tensor& x) { return l2(drop(torch::relu(norm(l1(x))))); }
  StepOutput training_step(const Batch& b, std::int64_t) override {
    auto loss = torch::mse_loss(forward(b["x"]), b["y"]);
    log("train_loss", loss, LogOptions().on_step(true).on_epoch(true));
    return {{"loss", loss}};
  }
  StepOutput validation_step(const Batch& b, std::int64_t, std::int64_t) override {
    auto loss = torch::mse_loss(forward(b["x"]), b["y"]);
    log("val_loss", loss);
    return {{"val_loss", loss}};
  }
  OptimizerConfig configure_optimizers() override {
    auto adam = std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(0.01));
    OptimizerConfig config;
    config.add(adam);
    if (config_.step_scheduler)
      config.add_scheduler(
          SchedulerConfig::from(std::make_shared<torch::optim::StepLR>(*adam, 3, 0.5))
              .interval(Interval::step)
              .name("per_step"));
    if (config_.epoch_scheduler)
      config.add_scheduler(
          SchedulerConfig::from(std::make_shared<torch::optim::StepLR>(*adam, 1, 0.7))
              .interval(Interval::epoch)
              .name("per_epoch"));
    return config;
  }
  DataLoaders train_dataloader() override {
    auto data = random_dataset(44, 8, 2, 11);  // 11 batches of 4
    return {std::make_shared<data::DataLoader>(
        data, data::DataLoaderOptions().batch_size(4).shuffle(config_.shuffle).seed(5))};
  }
  DataLoaders val_dataloader() override {
    if (!config_.validation) return {};
    return {std::make_shared<data::DataLoader>(random_dataset(12, 8, 2, 12),
                                               data::DataLoaderOptions().batch_size(4))};
  }
  torch::nn::Linear l1{nullptr}, l2{nullptr};
  torch::nn::Dropout drop{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};

 private:
  Config config_;
};

// Saves a checkpoint at a chosen point, then (optionally) crashes the run, like a killed job.
class SaveAndCrash final : public Callback {
 public:
  // batch_of_epoch_1: on_train_batch_end of batch `at` of epoch 1 (a point inside an
  // accumulation window, where global_step does not tell the batches apart).
  enum class When { train_batch_end, train_epoch_end, validation_end, batch_of_epoch_1 };
  SaveAndCrash(std::string path, When when, std::int64_t at, bool crash = true)
      : Callback("save_and_crash"), path_(std::move(path)), when_(when), at_(at), crash_(crash) {}
  void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                          std::int64_t batch_idx) override {
    if (when_ == When::train_batch_end && t.global_step() == at_) fire(t);
    if (when_ == When::batch_of_epoch_1 && t.current_epoch() == 1 && batch_idx == at_) fire(t);
  }
  void on_train_epoch_end(Trainer& t, Module&) override {
    if (when_ == When::train_epoch_end && t.current_epoch() == at_) fire(t);
  }
  void on_validation_end(Trainer& t, Module&) override {
    if (when_ == When::validation_end && !t.sanity_checking() && t.global_step() == at_) fire(t);
  }
  bool fired = false;

 private:
  void fire(Trainer& t) {
    if (fired) return;
    fired = true;
    t.save_checkpoint(path_);
    if (crash_) throw std::runtime_error("simulated crash");
  }
  std::string path_;
  When when_;
  std::int64_t at_;
  bool crash_;
};

// Adam's state for every parameter, in order.
std::vector<at::Tensor> adam_state(Trainer& t) {
  std::vector<at::Tensor> out;
  auto& opt = *t.optimizer_config().optimizers.at(0);
  for (const auto& group : opt.param_groups())
    for (const auto& p : group.params()) {
      auto it = opt.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it == opt.state().end()) continue;
      const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
      out.push_back(s.exp_avg().clone());
      out.push_back(s.exp_avg_sq().clone());
      out.push_back(torch::tensor(s.step()));
    }
  for (const auto& group : opt.param_groups())
    out.push_back(torch::tensor(group.options().get_lr()));
  return out;
}

struct RunResult {
  std::vector<at::Tensor> weights, optimizer;
  std::int64_t global_step = 0, epoch = 0;
  MetricMap logged, callback;
  std::map<std::int64_t, MetricMap> logged_at_epoch_end;
};

// logged_metrics as they stand at each on_train_epoch_end (epoch means included).
class EpochMetrics final : public Callback {
 public:
  EpochMetrics() : Callback("epoch_metrics", band::monitoring) {}
  void on_train_epoch_end(Trainer& t, Module&) override {
    seen[t.current_epoch()] = t.logged_metrics();
  }
  std::map<std::int64_t, MetricMap> seen;
};

// `epochs` epochs with no progress bar, model summary or checkpoint callback.
TrainerOptions plain_options(std::int64_t epochs) {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .max_epochs(epochs)
      .enable_checkpointing(false);
}

TrainerOptions parity_options(const TempDir& dir) {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .max_epochs(3)
      .num_sanity_val_steps(0)
      .enable_checkpointing(false)
      .default_root_dir(dir.path.string())
      .seed(123);
}

// What a finished run left: its weights, optimizer state, counters and metrics.
RunResult result_of(Net& model, Trainer& trainer, const EpochMetrics& epochs) {
  return {weights_of(model),
          adam_state(trainer),
          trainer.global_step(),
          trainer.current_epoch(),
          trainer.logged_metrics(),
          trainer.callback_metrics(),
          epochs.seen};
}

// An uninterrupted run, and a run crashed at `when`/`at` then resumed from its checkpoint.
std::pair<RunResult, RunResult> crash_and_resume(Net::Config config, TrainerOptions options,
                                                 SaveAndCrash::When when, std::int64_t at,
                                                 const TempDir& dir) {
  RunResult straight;
  {
    torch::manual_seed(1);
    Net model(config);
    auto epochs = std::make_shared<EpochMetrics>();
    Trainer trainer(options, {epochs});
    trainer.fit(model);
    straight = result_of(model, trainer, *epochs);
  }
  const std::string path = dir.file("crash.ckpt");
  {
    torch::manual_seed(1);
    Net model(config);
    auto crash = std::make_shared<SaveAndCrash>(path, when, at);
    Trainer trainer(options, {crash});
    BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
    BOOST_REQUIRE(crash->fired);
  }
  RunResult resumed;
  {
    torch::manual_seed(999);  // a different initialisation: everything must come from the file
    Net model(config);
    auto epochs = std::make_shared<EpochMetrics>();
    Trainer trainer(options, {epochs});
    trainer.fit(model, nullptr, path);
    resumed = result_of(model, trainer, *epochs);
  }
  return {straight, resumed};
}

std::string describe(const MetricMap& metrics) {
  std::ostringstream out;
  out.precision(17);
  for (const auto& [name, value] : metrics) out << name << "=" << value << " ";
  return out.str();
}

void check_parity(const std::pair<RunResult, RunResult>& runs) {
  const auto& [straight, resumed] = runs;
  BOOST_TEST(straight.global_step == resumed.global_step);
  BOOST_TEST(straight.epoch == resumed.epoch);
  BOOST_TEST(bitwise_equal(straight.weights, resumed.weights));
  BOOST_TEST(bitwise_equal(straight.optimizer, resumed.optimizer));
  // Logged values are equal to the bit (== on doubles), epoch means included.
  BOOST_TEST(!straight.logged.empty());
  BOOST_TEST((straight.logged == resumed.logged));
  BOOST_TEST((straight.callback == resumed.callback));
  // Including the epoch the run resumed in, whose means span both processes.
  BOOST_TEST(!resumed.logged_at_epoch_end.empty());
  for (const auto& [epoch, logged] : resumed.logged_at_epoch_end)
    BOOST_TEST((straight.logged_at_epoch_end.at(epoch) == logged),
               "epoch " << epoch << ": " << describe(straight.logged_at_epoch_end.at(epoch))
                        << " vs " << describe(logged));
}

// Checks a run crashed at `when`/`at` and resumed against an uninterrupted one, in a fresh
// directory, with parity_options changed by `adjust`.
void check_resume(const Net::Config& config, SaveAndCrash::When when, std::int64_t at,
                  const std::function<TrainerOptions(TrainerOptions)>& adjust = nullptr) {
  TempDir dir;
  const TrainerOptions options = adjust ? adjust(parity_options(dir)) : parity_options(dir);
  check_parity(crash_and_resume(config, options, when, at, dir));
}

// Fits `model` for one epoch, saving `path` at its end without a crash.
void fit_first_epoch_saving(Module& model, const TempDir& dir, const std::string& path) {
  Trainer trainer(
      parity_options(dir).max_epochs(1),
      {std::make_shared<SaveAndCrash>(path, SaveAndCrash::When::train_epoch_end, 0, false)});
  trainer.fit(model);
}

}  // namespace

// ---- the file -------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(checkpoint_files)

BOOST_AUTO_TEST_CASE(round_trip_keeps_every_value) {
  TempDir dir;
  c10::impl::GenericDict state(c10::StringType::get(), c10::AnyType::get());
  state.insert("w", torch::arange(6, torch::kFloat).reshape({2, 3}));
  state.insert("step", std::int64_t{42});
  state.insert("name", std::string("run"));
  write_checkpoint_file(dir.file("a.ckpt"), state);
  const auto back = read_checkpoint_file(dir.file("a.ckpt")).toGenericDict();
  BOOST_TEST(
      torch::equal(back.at("w").toTensor(), torch::arange(6, torch::kFloat).reshape({2, 3})));
  BOOST_TEST(back.at("step").toInt() == 42);
  BOOST_TEST(back.at("name").toStringRef() == "run");
  // No temporary file is left behind.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path)) ++files;
  BOOST_TEST(files == 1u);
}

BOOST_AUTO_TEST_CASE(each_kind_of_bad_file_has_its_own_error) {
  TempDir dir;
  c10::impl::GenericDict state(c10::StringType::get(), c10::AnyType::get());
  state.insert("w", torch::randn({64, 64}));
  const std::string good = dir.file("good.ckpt");
  write_checkpoint_file(good, state);
  const std::vector<char> bytes = read_bytes(good);
  const std::string bad = dir.file("bad.ckpt");

  BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(dir.file("missing.ckpt")); }),
                      "no such file"));
  write_bytes(bad, {});
  BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(bad); }), "empty"));
  std::mt19937 rng(3);
  std::vector<char> noise(4096);
  for (char& c : noise) c = static_cast<char>(rng());
  write_bytes(bad, noise);
  BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(bad); }),
                      "not a hookline checkpoint"));
  for (std::size_t cut :
       {std::size_t{12}, std::size_t{40}, std::size_t{41}, bytes.size() / 2, bytes.size() - 1}) {
    write_bytes(bad, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(cut)));
    const std::string message = checkpoint_error_of([&] { read_checkpoint_file(bad); });
    BOOST_TEST(contains(message, "truncated"), "cut at " << cut << ": " << message);
    BOOST_TEST(contains(message, bad));
  }
  for (std::size_t at : {std::size_t{100}, bytes.size() / 2, bytes.size() - 10}) {
    std::vector<char> flipped = bytes;
    flipped[at] ^= 0x10;
    write_bytes(bad, flipped);
    BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(bad); }), "corrupted"),
               "flip at " << at);
  }
  // Another format version, with a consistent checksum: a version error, not corruption. (The
  // format-2 header's own errors: checkpoint_interop/format_2_files_still_load.)
  write_bytes(bad, frame_checkpoint_payload(checkpoint_payload(bytes), 7));
  BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(bad); }), "format version 7"));
}

BOOST_AUTO_TEST_CASE(a_failed_write_leaves_the_previous_file) {
  TempDir dir;
  c10::impl::GenericDict state(c10::StringType::get(), c10::AnyType::get());
  state.insert("v", std::int64_t{1});
  const std::string path = dir.file("keep.ckpt");
  write_checkpoint_file(path, state);
  fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
  state.insert_or_assign("v", std::int64_t{2});
  const bool root = ::geteuid() == 0;  // root writes anyway: nothing to check then
  if (!root) BOOST_CHECK_THROW(write_checkpoint_file(path, state), CheckpointError);
  fs::permissions(dir.path, fs::perms::owner_all);
  if (!root) BOOST_TEST(read_checkpoint_file(path).toGenericDict().at("v").toInt() == 1);
}

// Issue 28: a SIGKILL during a save leaves ".NAME.tmp-PID-N"; the next save into that directory
// removes those of writers that are gone, and only those.
BOOST_AUTO_TEST_CASE(a_save_removes_the_temporary_files_of_dead_writers) {
  TempDir dir;
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  BOOST_REQUIRE(dead > 0);
  ::waitpid(dead, nullptr, 0);
  const std::string stale = dir.file(".last.ckpt.tmp-" + std::to_string(dead) + "-3");
  const std::string other_stale = dir.file(".epoch=1.ckpt.tmp-" + std::to_string(dead) + "-0");
  const std::string live = dir.file(".last.ckpt.tmp-" + std::to_string(::getppid()) + "-1");
  const std::string unrelated = dir.file("notes.tmp-" + std::to_string(dead) + "-1");
  for (const std::string& name : {stale, other_stale, live, unrelated})
    write_bytes(name, std::vector<char>(10, 'x'));
  c10::impl::GenericDict state(c10::StringType::get(), c10::AnyType::get());
  state.insert("v", std::int64_t{1});
  write_checkpoint_file(dir.file("last.ckpt"), state);
  BOOST_TEST(!fs::exists(stale));
  BOOST_TEST(!fs::exists(other_stale));
  BOOST_TEST(fs::exists(live));  // its writer may still be writing
  BOOST_TEST(fs::exists(unrelated));
  BOOST_TEST(read_checkpoint_file(dir.file("last.ckpt")).toGenericDict().at("v").toInt() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- exact resume -----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(checkpoint_resume)

BOOST_AUTO_TEST_CASE(mid_epoch_with_shuffling_and_schedulers) {
  check_resume({.step_scheduler = true, .epoch_scheduler = true, .shuffle = true},
               SaveAndCrash::When::train_batch_end, 15);
}

BOOST_AUTO_TEST_CASE(at_an_epoch_boundary) {
  check_resume({.epoch_scheduler = true, .shuffle = true}, SaveAndCrash::When::train_epoch_end, 0);
}

BOOST_AUTO_TEST_CASE(inside_an_accumulation_window) {
  // 11 batches, windows of 3: steps after batches 2, 5, 8 and 10 (the short last window).
  check_resume({.step_scheduler = true, .shuffle = true}, SaveAndCrash::When::train_batch_end, 5,
               [](TrainerOptions o) { return o.accumulate_grad_batches(3); });
}

// Issue 28: a save after a batch that only accumulated must keep the partial gradients. Every
// position of a window of 2 and of 3 (the second window of epoch 1: batches 2-3, or 3-5).
BOOST_AUTO_TEST_CASE(at_every_position_of_an_accumulation_window) {
  for (const std::int64_t n : {2, 3})
    for (std::int64_t position = 0; position < n; ++position) {
      BOOST_TEST_CONTEXT("accumulate_grad_batches " << n << ", batch " << position + 1
                                                    << " of the window") {
        check_resume({.step_scheduler = true, .shuffle = true},
                     SaveAndCrash::When::batch_of_epoch_1, n + position,
                     [n](TrainerOptions o) { return o.accumulate_grad_batches(n); });
      }
    }
}

// Issue 28: a checkpoint saved by a resumed run before its loop reaches the saved position (here in
// on_exception after on_fit_start failed, before the optimizer state is loaded) is the file's state
// again, partial gradients included, not the fresh optimizer and loop of the new run.
BOOST_AUTO_TEST_CASE(a_save_before_the_resume_reaches_its_position_is_the_files_state) {
  TempDir dir;
  Net::Config config;
  config.shuffle = true;
  config.step_scheduler = true;
  const TrainerOptions options = parity_options(dir).accumulate_grad_batches(3);
  const auto runs = crash_and_resume(config, options, SaveAndCrash::When::batch_of_epoch_1, 4, dir);
  check_parity(runs);
  const std::string again = dir.file("again.ckpt");
  {
    torch::manual_seed(5);
    Net model(config);
    LambdaHooks hooks;
    hooks.on_fit_start = [](Trainer&, Module&) { throw std::runtime_error("on_fit_start failed"); };
    hooks.on_exception = [&again](Trainer& t, Module&, const std::exception_ptr&) {
      t.save_checkpoint(again);
    };
    Trainer trainer(options, {std::make_shared<LambdaCallback>(hooks, "fails")});
    BOOST_CHECK_THROW(trainer.fit(model, nullptr, dir.file("crash.ckpt")), std::runtime_error);
  }
  BOOST_REQUIRE(fs::exists(again));
  torch::manual_seed(6);
  Net model(config);
  Trainer trainer(options);
  trainer.fit(model, nullptr, again);
  BOOST_TEST(trainer.global_step() == runs.first.global_step);
  BOOST_TEST(bitwise_equal(weights_of(model), runs.first.weights));
  BOOST_TEST(bitwise_equal(adam_state(trainer), runs.first.optimizer));
}

// Issue 28: Lightning counts a checkpoint's epoch as completed from on_train_start on (1 for one
// saved at the end of epoch 0), and the resumed run goes on exactly.
BOOST_AUTO_TEST_CASE(current_epoch_in_on_train_start_counts_the_saved_epoch) {
  TempDir dir;
  const std::string path = dir.file("e0.ckpt");
  {
    Net model;
    fit_first_epoch_saving(model, dir, path);
  }
  std::vector<std::int64_t> seen;
  LambdaHooks hooks;
  hooks.on_train_start = [&seen](Trainer& t, Module&) { seen.push_back(t.current_epoch()); };
  hooks.on_train_epoch_start = [&seen](Trainer& t, Module&) { seen.push_back(t.current_epoch()); };
  Net model;
  Trainer trainer(parity_options(dir).max_epochs(3),
                  {std::make_shared<LambdaCallback>(hooks, "epochs")});
  trainer.fit(model, nullptr, path);
  BOOST_TEST(seen == (std::vector<std::int64_t>{1, 1, 2}), boost::test_tools::per_element());
  BOOST_TEST(trainer.global_step() == 33);
}

BOOST_AUTO_TEST_CASE(after_a_mid_epoch_validation) {
  check_resume({.validation = true, .shuffle = true}, SaveAndCrash::When::validation_end, 16,
               [](TrainerOptions o) { return o.val_check_interval(0.5); });
}

BOOST_AUTO_TEST_CASE(resume_reports_its_path_and_continues_counting) {
  TempDir dir;
  const std::string path = dir.file("c.ckpt");
  {
    Net model;
    fit_first_epoch_saving(model, dir, path);
  }
  Net model;
  Trainer trainer(parity_options(dir).max_epochs(2));
  trainer.fit(model, nullptr, path);
  BOOST_TEST(trainer.ckpt_path() == path);
  BOOST_TEST(trainer.current_epoch() == 2);
  BOOST_TEST(trainer.global_step() == 22);
}

// Saved once the epoch counter moved on (on_train_end, on_fit_end): the resumed fit trains the
// next epoch in full (it once skipped it, taking the finished epoch's progress for the new one's).
BOOST_AUTO_TEST_CASE(a_checkpoint_saved_after_the_last_epoch_resumes_with_the_next) {
  TempDir dir;
  const std::string path = dir.file("end.ckpt");
  {
    Net model;
    LambdaHooks save;
    save.on_fit_end = [&path](Trainer& t, Module&) { t.save_checkpoint(path); };
    Trainer trainer(parity_options(dir).max_epochs(1),
                    {std::make_shared<LambdaCallback>(save, "save_at_fit_end")});
    trainer.fit(model);
    BOOST_TEST(trainer.global_step() == 11);
  }
  Net model;
  Trainer trainer(parity_options(dir).max_epochs(2));
  trainer.fit(model, nullptr, path);
  BOOST_TEST(trainer.current_epoch() == 2);
  BOOST_TEST(trainer.global_step() == 22);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- checkpoints that do not fit --------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(checkpoint_mismatch)

namespace {
class Wider final : public Module {
 public:
  explicit Wider(std::int64_t hidden, std::string second = "l2") : Module("lm") {
    l1 = register_module("l1", torch::nn::Linear(8, hidden));
    l2 = register_module(second, torch::nn::Linear(hidden, 2));
  }
  StepOutput training_step(const Batch& b, std::int64_t) override {
    return {{"loss", torch::mse_loss(l2(l1(b["x"])), b["y"])}};
  }
  OptimizerConfig configure_optimizers() override {
    return OptimizerConfig().add(std::make_shared<torch::optim::SGD>(
        parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)));
  }
  DataLoaders train_dataloader() override {
    return {std::make_shared<data::DataLoader>(random_dataset(16, 8, 2, 1),
                                               data::DataLoaderOptions().batch_size(4))};
  }
  torch::nn::Linear l1{nullptr}, l2{nullptr};
};

std::string saved_run(const TempDir& dir, std::int64_t hidden, std::string second = "l2") {
  std::string name = "w";
  name += std::to_string(hidden);
  name += second;
  name += ".ckpt";
  const std::string path = dir.file(name);
  Wider model(hidden, std::move(second));
  Trainer trainer(plain_options(1), {std::make_shared<SaveAndCrash>(
                                        path, SaveAndCrash::When::train_epoch_end, 0, false)});
  trainer.fit(model);
  return path;
}
}  // namespace

BOOST_AUTO_TEST_CASE(other_shapes_and_names_fail_before_anything_changes) {
  TempDir dir;
  const std::string wide = saved_run(dir, 6);
  const std::string renamed = saved_run(dir, 4, "head");
  for (const auto& [path, expected] : std::vector<std::pair<std::string, std::string>>{
           {wide, "has shape [6, 8]"}, {renamed, "missing from the checkpoint: l2"}}) {
    Wider model(4);
    const auto before = weights_of(model);
    Trainer trainer(plain_options(2));
    const std::string message = checkpoint_error_of([&] { trainer.fit(model, nullptr, path); });
    BOOST_TEST(contains(message, expected), message);
    BOOST_TEST(contains(message, path), message);
    BOOST_TEST(bitwise_equal(before, weights_of(model)));
  }
}

BOOST_AUTO_TEST_CASE(bad_files_leave_the_model_untouched) {
  TempDir dir;
  const std::string path = saved_run(dir, 4);
  std::vector<char> bytes = read_bytes(path);
  bytes[bytes.size() / 2] ^= 0x01;
  const std::string flipped = dir.file("flipped.ckpt");
  write_bytes(flipped, bytes);
  Wider model(4);
  const auto before = weights_of(model);
  Trainer trainer(plain_options(2));
  BOOST_TEST(
      contains(checkpoint_error_of([&] { trainer.fit(model, nullptr, flipped); }), "corrupted"));
  BOOST_TEST(bitwise_equal(before, weights_of(model)));
}

BOOST_AUTO_TEST_CASE(an_optimizer_that_does_not_fit_rolls_the_weights_back) {
  TempDir dir;
  const std::string path = saved_run(dir, 4);
  class FrozenFirst final : public Module {
   public:
    FrozenFirst() : Module("lm") {
      l1 = register_module("l1", torch::nn::Linear(8, 4));
      l2 = register_module("l2", torch::nn::Linear(4, 2));
    }
    StepOutput training_step(const Batch& b, std::int64_t) override {
      return {{"loss", torch::mse_loss(l2(l1(b["x"])), b["y"])}};
    }
    OptimizerConfig configure_optimizers() override {  // only l2: other parameter groups
      return OptimizerConfig().add(std::make_shared<torch::optim::SGD>(
          l2->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)));
    }
    DataLoaders train_dataloader() override {
      return {std::make_shared<data::DataLoader>(random_dataset(16, 8, 2, 1),
                                                 data::DataLoaderOptions().batch_size(4))};
    }
    torch::nn::Linear l1{nullptr}, l2{nullptr};
  };
  FrozenFirst model;
  const auto before = weights_of(model);
  // Issue 28: the run that failed to restore writes no checkpoint (it would mix the file's
  // optimizer state or callbacks with the module's own weights).
  const std::string on_exception = dir.file("on_exception.ckpt");
  LambdaHooks hooks;
  hooks.on_exception = [&on_exception](Trainer& t, Module&, const std::exception_ptr&) {
    t.save_checkpoint(on_exception);
  };
  Trainer trainer(plain_options(2), {std::make_shared<LambdaCallback>(hooks, "save_on_exception")});
  const std::string message = checkpoint_error_of([&] { trainer.fit(model, nullptr, path); });
  BOOST_TEST(contains(message, "parameters in the checkpoint but 2 now"), message);
  BOOST_TEST(bitwise_equal(before, weights_of(model)));
  BOOST_TEST(!fs::exists(on_exception));
}

BOOST_AUTO_TEST_CASE(a_weights_only_checkpoint_cannot_resume_a_fit) {
  TempDir dir;
  const std::string path = dir.file("weights.ckpt");
  {
    Wider model(4);
    class SaveWeights final : public Callback {
     public:
      explicit SaveWeights(std::string p) : Callback("save_weights"), path(std::move(p)) {}
      void on_train_end(Trainer& t, Module&) override { t.save_checkpoint(path, true); }
      std::string path;
    };
    Trainer trainer(plain_options(1), {std::make_shared<SaveWeights>(path)});
    trainer.fit(model);
  }
  const auto top = read_checkpoint_file(path).toGenericDict();
  BOOST_TEST(top.contains("state_dict"));
  BOOST_TEST(!top.contains("optimizer_states"));
  Wider model(4);
  Trainer trainer(plain_options(2));
  BOOST_TEST(contains(checkpoint_error_of([&] { trainer.fit(model, nullptr, path); }),
                      "save_weights_only"));
}

// Issue 28: every loop field is checked, and a CheckpointError says in one line, in hookline's
// words, what is wrong with the file (no c10 backtrace, no LibTorch assertion text).
BOOST_AUTO_TEST_CASE(crafted_loop_fields_are_refused_in_one_line) {
  TempDir dir;
  const std::string path = dir.file("mid.ckpt");
  {
    Net model;
    Trainer trainer(
        parity_options(dir).max_epochs(1),
        {std::make_shared<SaveAndCrash>(path, SaveAndCrash::When::train_batch_end, 5, false)});
    trainer.fit(model);
  }
  using Edit = std::function<void(c10::impl::GenericDict&)>;
  auto fit_loop = [](c10::impl::GenericDict& top) {  // hookline's own state (lightning_layout.hpp)
    return top.at("loops")
        .toGenericDict()
        .at("fit_loop")
        .toGenericDict()
        .at("hookline")
        .toGenericDict();
  };
  auto progress = [fit_loop](c10::impl::GenericDict& top) {
    return fit_loop(top).at("epoch_progress").toGenericDict();
  };
  auto loader = [fit_loop](c10::impl::GenericDict& top) {
    return fit_loop(top).at("train_loader").toGenericDict();
  };
  const std::vector<std::pair<std::string, Edit>> edits{
      {"batches_done",
       [&](auto& top) { progress(top).insert_or_assign("batches_done", std::int64_t{-5}); }},
      {"batches_done",
       [&](auto& top) {
         progress(top).insert_or_assign("batches_done", std::int64_t{1000});
         loader(top).insert_or_assign("batches_yielded", std::int64_t{1000});
       }},
      {"batches_yielded",
       [&](auto& top) { loader(top).insert_or_assign("batches_yielded", std::int64_t{7}); }},
      {"batches_yielded",
       [&](auto& top) { loader(top).insert_or_assign("batches_yielded", std::int64_t{-1}); }},
      {"tail_pending",
       [&](auto& top) {
         progress(top).insert_or_assign("batches_done", std::int64_t{0});
         loader(top).insert_or_assign("batches_yielded", std::int64_t{0});
         progress(top).insert_or_assign("tail_pending", true);
       }},
      {"'epoch'", [&](auto& top) { loader(top).insert_or_assign("epoch", std::int64_t{-2}); }},
      {"current_epoch",
       [&](auto& top) { fit_loop(top).insert_or_assign("current_epoch", std::int64_t{4}); }},
      {"rng.cpu",
       [&](auto& top) {
         fit_loop(top).at("rng").toGenericDict().insert_or_assign("cpu", torch::zeros({3}));
       }},
  };
  for (const auto& [expected, edit] : edits) {
    auto top = read_checkpoint_file(path).toGenericDict();
    edit(top);
    const std::string crafted = dir.file("crafted.ckpt");
    write_checkpoint_file(crafted, top);
    torch::manual_seed(3);
    Net model;
    const auto before = weights_of(model);
    Trainer trainer(parity_options(dir).max_epochs(2));
    const std::string message = checkpoint_error_of([&] { trainer.fit(model, nullptr, crafted); });
    BOOST_TEST(contains(message, expected), message);
    BOOST_TEST(!contains(message, "\n"), message);
    BOOST_TEST(!contains(message, "Exception raised from"), message);
    BOOST_TEST(bitwise_equal(before, weights_of(model)), expected);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- asynchronous saves -----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(checkpoint_async)

namespace {
// Saves at step `at` to `path`, then keeps training (changing every tensor it saved).
class SaveAt final : public Callback {
 public:
  SaveAt(std::string path, std::int64_t at)
      : Callback("save_at"), path_(std::move(path)), at_(at) {}
  void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                          std::int64_t) override {
    if (t.global_step() == at_) t.save_checkpoint(path_);
  }

 private:
  std::string path_;
  std::int64_t at_;
};

// Adam's per-parameter state as saved (plain values: optimizer_state.hpp), by parameter index.
std::vector<at::Tensor> adam_from(const c10::IValue& saved) {
  const auto optimizer = saved.toGenericDict();
  BOOST_TEST(optimizer.at("type").toStringRef() == "Adam");
  std::map<std::int64_t, c10::impl::GenericDict> by_index;
  for (const auto& entry : optimizer.at("state").toGenericDict())
    by_index.emplace(entry.key().toInt(), entry.value().toGenericDict());
  std::vector<at::Tensor> out;
  for (const auto& [index, state] : by_index) {
    out.push_back(state.at("exp_avg").toTensor());
    out.push_back(state.at("exp_avg_sq").toTensor());
    out.push_back(torch::tensor(state.at("step").toInt()));
  }
  return out;
}

c10::impl::GenericDict saved_run(const TempDir& dir, bool async, const std::string& name,
                                 NetConfig config) {
  const std::string path = dir.file(name);
  torch::manual_seed(1);
  Net model(config);
  Trainer trainer(parity_options(dir).max_epochs(2).async_checkpointing(async),
                  {std::make_shared<SaveAt>(path, 7)});
  trainer.fit(model);
  return read_checkpoint_file(path).toGenericDict();
}
}  // namespace

BOOST_AUTO_TEST_CASE(an_async_save_holds_the_state_of_its_moment) {
  TempDir dir;
  NetConfig config;
  config.step_scheduler = true;
  const auto sync = saved_run(dir, false, "sync.ckpt", config);
  const auto async = saved_run(dir, true, "async.ckpt", config);
  const auto sync_weights = sync.at("state_dict").toGenericDict();
  const auto async_weights = async.at("state_dict").toGenericDict();
  BOOST_TEST(sync_weights.size() == async_weights.size());
  for (const auto& entry : sync_weights)
    BOOST_TEST(torch::equal(entry.value().toTensor(), async_weights.at(entry.key()).toTensor()),
               entry.key().toStringRef());
  // The optimizer state was written later on another thread, from a copy: the same state.
  const auto a = adam_from(sync.at("optimizer_states").toListRef().at(0));
  const auto b = adam_from(async.at("optimizer_states").toListRef().at(0));
  BOOST_TEST(a.size() == 3 * 6u);  // exp_avg, exp_avg_sq, step for 6 parameters
  BOOST_TEST(bitwise_equal(a, b));
  BOOST_TEST(sync.at("global_step").toInt() == 7);
  BOOST_TEST(async.at("global_step").toInt() == 7);
}

BOOST_AUTO_TEST_CASE(an_async_resume_matches_a_sync_one) {
  check_resume({.step_scheduler = true, .shuffle = true}, SaveAndCrash::When::train_batch_end, 15,
               [](TrainerOptions o) { return o.async_checkpointing(true); });
}

BOOST_AUTO_TEST_CASE(a_failed_background_write_is_rethrown) {
  TempDir dir;
  const std::string blocked = dir.file("file_not_dir");
  std::ofstream(blocked) << "x";  // a file where the checkpoint's directory should be
  Net model;
  Trainer trainer(parity_options(dir).max_epochs(1).async_checkpointing(true),
                  {std::make_shared<SaveAt>(blocked + "/sub/c.ckpt", 2)});
  BOOST_CHECK_EXCEPTION(trainer.fit(model), CheckpointError, [&](const CheckpointError& e) {
    return contains(e.what(), "directory cannot be created");
  });
}

BOOST_AUTO_TEST_SUITE_END()

// ---- what else a checkpoint carries -----------------------------------------------------------

BOOST_AUTO_TEST_SUITE(checkpoint_contents)

namespace {
class CountingData final : public DataModule {
 public:
  CountingData() : DataModule("counting_data") {}
  DataLoaders train_dataloader() override {
    ++loads;
    return {std::make_shared<data::DataLoader>(random_dataset(16, 8, 2, 1),
                                               data::DataLoaderOptions().batch_size(4))};
  }
  void state_dict(Checkpoint& state) const override {
    ++state_dicts;
    state.set("loads", loads);
  }
  void load_state_dict(const Checkpoint& state) override { restored = state.at("loads").toInt(); }
  std::int64_t loads = 0;
  std::int64_t restored = -1;
  mutable std::int64_t state_dicts = 0;  // calls of state_dict
};

class Remembers final : public Callback {
 public:
  explicit Remembers(std::string name) : Callback(std::move(name)) {}
  void on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                          std::int64_t) override {
    ++batches;
  }
  void state_dict(Checkpoint& state) const override {
    ++state_dicts;
    state.set("batches", batches);
  }
  void load_state_dict(const Checkpoint& state) override { batches = state.at("batches").toInt(); }
  std::int64_t batches = 0;
  mutable std::int64_t state_dicts = 0;  // calls of state_dict
};
}  // namespace

BOOST_AUTO_TEST_CASE(hyperparameters_data_module_and_callback_state) {
  TempDir dir;
  const std::string path = dir.file("c.ckpt");
  {
    Net model;
    model.hparams().set("hidden", std::int64_t{16});
    model.hparams().set("optimizer", std::string("adam"));
    CountingData data;
    Trainer trainer(
        parity_options(dir).max_epochs(1),
        {std::make_shared<Remembers>("remembers"),
         std::make_shared<SaveAndCrash>(path, SaveAndCrash::When::train_epoch_end, 0, false)});
    trainer.fit(model, data);
  }
  const auto top = read_checkpoint_file(path).toGenericDict();
  const auto hparams = top.at("hyper_parameters").toGenericDict();
  BOOST_TEST(hparams.at("hidden").toInt() == 16);
  BOOST_TEST(hparams.at("optimizer").toStringRef() == "adam");
  BOOST_TEST(top.at("counting_data").toGenericDict().at("loads").toInt() == 1);
  BOOST_TEST(
      top.at("callbacks").toGenericDict().at("remembers").toGenericDict().at("batches").toInt() ==
      4);
  BOOST_TEST(top.at("hookline_version").toStringRef() == "0.1.0");
  BOOST_TEST(top.at("epoch").toInt() == 0);

  // Resuming restores the data module's and the callback's state; a callback whose state has no
  // owner in the new trainer ("remembers" is missing here) is warned about, not fatal.
  Net model;
  CountingData data;
  auto other = std::make_shared<Remembers>("other");
  Trainer trainer(parity_options(dir).max_epochs(2), {other});
  trainer.fit(model, data, path);
  BOOST_TEST(data.restored == 1);
  BOOST_TEST(other->batches == 4);  // only the resumed epoch: its state was not in the file
  // Issue 28: a resume that saves nothing calls no state_dict (Lightning calls none).
  BOOST_TEST(data.state_dicts == 0);
  BOOST_TEST(other->state_dicts == 0);

  auto remembers = std::make_shared<Remembers>("remembers");
  Net again;
  CountingData same_data;
  Trainer third(parity_options(dir).max_epochs(2), {remembers});
  third.fit(again, same_data, path);
  BOOST_TEST(remembers->batches == 8);  // 4 restored + 4 of the resumed epoch
  BOOST_TEST(remembers->state_dicts == 0);
  BOOST_TEST(same_data.state_dicts == 0);
}

// Issue 28: a checkpoint holds the module's state_dict() and gives it back to load_state_dict(),
// which a module may override (renamed keys, a tensor that is no parameter), in Lightning's order:
// state_dict before on_save_checkpoint; on_load_checkpoint before load_state_dict.
BOOST_AUTO_TEST_CASE(the_modules_overridden_state_dict_is_saved_and_loaded) {
  TempDir dir;
  class Renamed final : public Net {
   public:
    explicit Renamed(std::vector<std::string>& calls) : calls_(calls) {}
    TensorDict state_dict() override {
      calls_.push_back("state_dict");
      TensorDict out;
      for (const auto& entry : Net::state_dict()) out.insert("model." + entry.key(), entry.value());
      out.insert("extra.scale", scale);
      return out;
    }
    void load_state_dict(const TensorDict& state) override {
      calls_.push_back("load_state_dict");
      TensorDict mine;
      for (const auto& entry : state)
        if (entry.key().rfind("model.", 0) == 0) mine.insert(entry.key().substr(6), entry.value());
      Net::load_state_dict(mine);
      scale = state.at("extra.scale").clone();
    }
    void on_save_checkpoint(Checkpoint&) override { calls_.push_back("on_save_checkpoint"); }
    void on_load_checkpoint(const Checkpoint&) override { calls_.push_back("on_load_checkpoint"); }
    at::Tensor scale = torch::ones({1});

   private:
    std::vector<std::string>& calls_;
  };
  const std::string path = dir.file("renamed.ckpt");
  std::vector<std::string> calls;
  std::vector<at::Tensor> saved_weights;
  {
    Renamed model(calls);
    model.scale.fill_(2.5);
    fit_first_epoch_saving(model, dir, path);
    saved_weights = weights_of(model);
  }
  BOOST_TEST(calls == (std::vector<std::string>{"state_dict", "on_save_checkpoint"}),
             boost::test_tools::per_element());
  const auto weights = read_checkpoint_file(path).toGenericDict().at("state_dict").toGenericDict();
  BOOST_TEST(weights.contains("model.l1.weight"));
  BOOST_TEST(!weights.contains("l1.weight"));
  BOOST_TEST(weights.at("extra.scale").toTensor().item<float>() == 2.5f);

  calls.clear();
  torch::manual_seed(77);
  Renamed model(calls);
  Trainer trainer(parity_options(dir).max_epochs(1));  // the saved epoch was the last: no training
  trainer.fit(model, nullptr, path);
  BOOST_TEST(calls == (std::vector<std::string>{"on_load_checkpoint", "load_state_dict"}),
             boost::test_tools::per_element());
  BOOST_TEST(model.scale.item<float>() == 2.5f);
  BOOST_TEST(bitwise_equal(weights_of(model), saved_weights));
}

BOOST_AUTO_TEST_CASE(custom_scheduler_state) {
  TempDir dir;
  class Custom final : public Module {
   public:
    Custom() : Module("lm") { l = register_module("l", torch::nn::Linear(8, 2)); }
    StepOutput training_step(const Batch& b, std::int64_t) override {
      return {{"loss", torch::mse_loss(l(b["x"]), b["y"])}};
    }
    OptimizerConfig configure_optimizers() override {
      auto sgd = std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.1));
      auto calls = std::make_shared<std::int64_t>(0);
      counter = calls;
      return OptimizerConfig().add(sgd).add_scheduler(
          SchedulerConfig::custom([calls](std::optional<double>) { ++*calls; })
              .interval(Interval::step)
              .state([calls] { return c10::IValue(*calls); },
                     [calls](const c10::IValue& v) { *calls = v.toInt(); }));
    }
    DataLoaders train_dataloader() override {
      return {std::make_shared<data::DataLoader>(random_dataset(16, 8, 2, 1),
                                                 data::DataLoaderOptions().batch_size(4))};
    }
    torch::nn::Linear l{nullptr};
    std::shared_ptr<std::int64_t> counter;
  };
  const std::string path = dir.file("s.ckpt");
  {
    Custom model;
    fit_first_epoch_saving(model, dir, path);
    BOOST_TEST(*model.counter == 4);
  }
  Custom model;
  Trainer trainer(parity_options(dir).max_epochs(2));
  trainer.fit(model, nullptr, path);
  BOOST_TEST(*model.counter == 8);  // continued from 4, not from 0
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(checkpoint_evaluation)

BOOST_AUTO_TEST_CASE(validate_test_and_predict_load_weights_from_a_checkpoint) {
  TempDir dir;
  const std::string path = dir.file("w.ckpt");
  std::vector<at::Tensor> trained;
  {
    NetConfig config;
    config.validation = true;
    Net model(config);
    class SaveWeights final : public Callback {
     public:
      explicit SaveWeights(std::string p) : Callback("save_weights"), path(std::move(p)) {}
      void on_train_end(Trainer& t, Module&) override { t.save_checkpoint(path, true); }
      std::string path;
    };
    Trainer trainer(parity_options(dir).max_epochs(1), {std::make_shared<SaveWeights>(path)});
    trainer.fit(model);
    trained = weights_of(model);
  }
  NetConfig config;
  config.validation = true;
  torch::manual_seed(42);
  Net fresh(config);
  BOOST_TEST(!bitwise_equal(weights_of(fresh), trained));
  Trainer trainer(parity_options(dir));
  trainer.validate(fresh, nullptr, path);
  BOOST_TEST(trainer.ckpt_path() == path);
  BOOST_TEST(bitwise_equal(weights_of(fresh), trained));
  BOOST_TEST(trainer.callback_metrics().count("val_loss") == 1u);
  // A bad file fails predict before anything runs, and names the file.
  Net other(config);
  const auto before = weights_of(other);
  BOOST_TEST(
      contains(checkpoint_error_of([&] { trainer.predict(other, nullptr, dir.file("nope.ckpt")); }),
               "nope.ckpt"));
  BOOST_TEST(bitwise_equal(before, weights_of(other)));
}

BOOST_AUTO_TEST_CASE(best_without_a_checkpoint_callback_is_a_clear_error) {
  TempDir dir;
  Net model;
  Trainer trainer(parity_options(dir));
  BOOST_CHECK_EXCEPTION(trainer.fit(model, nullptr, "best"), std::invalid_argument,
                        [](const std::invalid_argument& e) {
                          return contains(e.what(), "needs a checkpoint callback");
                        });
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_checkpoint_tests
