// Tests of TrainerOptions::tune_allocator (core/allocator_tuning.hpp): glibc malloc's thresholds
// are raised while a fit / validate / test / predict runs, set back when it returns or throws, and
// left alone when the option is off. Linked into the test_core runner.
#include <boost/test/unit_test.hpp>

#include "child_process.hpp"
#include "sanitizers.hpp"
#include "trainer_options.hpp"

#include <hookline/core/allocator_tuning.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/trainer.hpp>

#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// The probe reads glibc's own counters, which the sanitizers' allocators do not keep.
#if defined(__GLIBC__) && !HOOKLINE_TEST_UNDER_ASAN && !HOOKLINE_TEST_UNDER_TSAN
#define HOOKLINE_TEST_GLIBC_MALLOC 1
#else
#define HOOKLINE_TEST_GLIBC_MALLOC 0
#endif

namespace hookline_test_allocator_tests {

using namespace hookline;

namespace {

// Whether 1 MiB mallocs are served by mmap (glibc's threshold at its 128 KiB default) rather than
// the heap (the tuned 32 MiB threshold). glibc serves a request from a free heap chunk that fits
// before it thinks of mmap, whatever the threshold, so the probe holds up to 128 blocks at once:
// past the heap's free chunks, the next one shows the threshold. Always false where it cannot be
// observed.
bool one_mib_is_mmapped() {
#if HOOKLINE_TEST_GLIBC_MALLOC
  const auto before = mallinfo2().hblks;
  std::vector<void*> blocks;
  bool mmapped = false;
  while (!mmapped && blocks.size() < 128) {
    blocks.push_back(std::malloc(std::size_t{1} << 20));
    asm volatile("" : : "r"(blocks.back()) : "memory");  // keep the malloc
    mmapped = mallinfo2().hblks > before;
  }
  for (void* block : blocks) std::free(block);
  return mmapped;
#else
  return false;
#endif
}

// A known starting point: glibc's default threshold, fixed (what a tuned run leaves behind).
void reset_thresholds() {
#if HOOKLINE_TEST_GLIBC_MALLOC
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kGlibcDefaultThreshold));
#endif
}

struct Seen {
  bool active = false;
  bool mmapped = true;
};

// Records the tuning in every stage's start hook.
class Probe final : public Callback {
 public:
  Probe() : Callback("allocator_probe") {}
  void on_train_start(Trainer&, Module&) override { record("train"); }
  void on_validation_start(Trainer&, Module&) override { record("validate"); }
  void on_test_start(Trainer&, Module&) override { record("test"); }
  void on_predict_start(Trainer&, Module&) override { record("predict"); }
  std::map<std::string, Seen> seen;

 private:
  void record(const std::string& stage) {
    seen[stage] = {AllocatorTuning::active(), one_mib_is_mmapped()};
  }
};

class Net final : public Module {
 public:
  explicit Net(bool fail = false) : Module("net"), fail_(fail) {
    fc = register_module("fc", torch::nn::Linear(4, 1));
    auto g = at::make_generator<at::CPUGeneratorImpl>(1);
    data_ = std::make_shared<data::TensorDataset>(
        data::TensorDataset{{"x", at::randn({16, 4}, g)}, {"y", at::randn({16, 1}, g)}});
  }
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    if (fail_ && i == 1) throw std::runtime_error("step fails");
    return {{"loss", torch::mse_loss(fc(b["x"]), b["y"])}};
  }
  StepOutput validation_step(const Batch& b, std::int64_t, std::int64_t) override {
    return {{"loss", torch::mse_loss(fc(b["x"]), b["y"])}};
  }
  StepOutput test_step(const Batch& b, std::int64_t, std::int64_t) override {
    return {{"loss", torch::mse_loss(fc(b["x"]), b["y"])}};
  }
  StepOutput predict_step(const Batch& b, std::int64_t, std::int64_t) override {
    return {{"y", fc(b["x"])}};
  }
  OptimizerConfig configure_optimizers() override {
    OptimizerConfig config;
    config.add(std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.1)));
    return config;
  }
  DataLoaders train_dataloader() override { return {loader()}; }
  DataLoaders val_dataloader() override { return {loader()}; }
  DataLoaders test_dataloader() override { return {loader()}; }
  DataLoaders predict_dataloader() override { return {loader()}; }
  torch::nn::Linear fc{nullptr};

 private:
  std::shared_ptr<data::DataLoader> loader() const {
    return std::make_shared<data::DataLoader>(data_, data::DataLoaderOptions().batch_size(4));
  }
  bool fail_;
  std::shared_ptr<data::TensorDataset> data_;
};

TrainerOptions quiet(const test_support::TempDir& dir) {
  return test_support::silent_options(dir.path).max_epochs(1);
}

// Runs every stage; returns what the probe saw in each.
std::map<std::string, Seen> run_all_stages(const TrainerOptions& options) {
  auto probe = std::make_shared<Probe>();
  Net net;
  Trainer trainer(options, {probe});
  trainer.fit(net);
  trainer.validate(net);
  trainer.test(net);
  trainer.predict(net);
  return probe->seen;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(allocator_tuning)

BOOST_AUTO_TEST_CASE(applied_during_every_stage_and_set_back_after) {
  test_support::TempDir dir("hookline_allocator_");
  if (!AllocatorTuning::available()) {
    BOOST_TEST_MESSAGE("not glibc, or the environment sets malloc's thresholds: nothing to tune");
    for (const auto& [stage, seen] : run_all_stages(quiet(dir))) BOOST_TEST(!seen.active, stage);
    return;
  }
  reset_thresholds();
  BOOST_TEST(!AllocatorTuning::active());
  if (HOOKLINE_TEST_GLIBC_MALLOC) BOOST_TEST(one_mib_is_mmapped());
  const auto seen = run_all_stages(quiet(dir));
  BOOST_TEST(seen.size() == 4u);  // train, validate, test, predict
  for (const auto& [stage, s] : seen) {
    BOOST_TEST(s.active, stage);
    BOOST_TEST(!s.mmapped, stage << ": a 1 MiB block comes from the heap while tuned");
  }
  BOOST_TEST(!AllocatorTuning::active());
  if (HOOKLINE_TEST_GLIBC_MALLOC)
    BOOST_TEST(one_mib_is_mmapped(), "the threshold is back at 128 KiB after the run");
}

BOOST_AUTO_TEST_CASE(set_back_when_the_run_throws) {
  test_support::TempDir dir("hookline_allocator_");
  reset_thresholds();
  auto probe = std::make_shared<Probe>();
  Net net(/*fail=*/true);
  Trainer trainer(quiet(dir), {probe});
  BOOST_CHECK_THROW(trainer.fit(net), std::runtime_error);
  BOOST_TEST(probe->seen.at("train").active == AllocatorTuning::available());
  BOOST_TEST(!AllocatorTuning::active());
  if (HOOKLINE_TEST_GLIBC_MALLOC && AllocatorTuning::available()) BOOST_TEST(one_mib_is_mmapped());
}

BOOST_AUTO_TEST_CASE(untouched_when_turned_off) {
  test_support::TempDir dir("hookline_allocator_");
  reset_thresholds();
  for (const auto& [stage, s] : run_all_stages(quiet(dir).tune_allocator(false))) {
    BOOST_TEST(!s.active, stage);
    if (HOOKLINE_TEST_GLIBC_MALLOC && AllocatorTuning::available())
      BOOST_TEST(s.mmapped, stage << ": glibc's 128 KiB threshold stays in force");
  }
}

BOOST_AUTO_TEST_CASE(holders_nest_the_last_one_sets_back) {
  reset_thresholds();
  {
    const AllocatorTuning outer;
    {
      const AllocatorTuning inner;
      BOOST_TEST(AllocatorTuning::active() == AllocatorTuning::available());
    }
    BOOST_TEST(AllocatorTuning::active() == AllocatorTuning::available());
    if (HOOKLINE_TEST_GLIBC_MALLOC && AllocatorTuning::available())
      BOOST_TEST(!one_mib_is_mmapped());
    const AllocatorTuning off(false);
    BOOST_TEST(!off.holds());
  }
  BOOST_TEST(!AllocatorTuning::active());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_allocator_tests
