// Soak: a long fit with everything a real run has on (the default progress bar, ModelCheckpoint,
// a TensorBoardLogger and a CSVLogger, EarlyStopping that never fires, tracing to JSON lines and a
// ring buffer) must not grow: the same open file descriptors at the last epoch as at epoch 2, and
// memory flat once warmed up (see the allowances below).
#include <boost/test/unit_test.hpp>

#include "sanitizers.hpp"

#include "trace_recorder.hpp"

#include <hookline/callbacks/early_stopping.hpp>
#include <hookline/loggers/csv_logger.hpp>
#include <hookline/loggers/tensorboard_logger.hpp>
#include <hookline/recipe/tracing.hpp>

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace hookline_test_soak_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// A "VmRSS:" / "VmHWM:" line of /proc/self/status, in kB.
long status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  return -1;
}

struct Sample {
  std::size_t fds = 0;
  long rss_kb = 0, hwm_kb = 0;
  std::size_t heap_in_use = 0;  // glibc's allocated bytes (mallinfo2().uordblks)
};

class Probe final : public Callback {
 public:
  Probe() : Callback("soak_probe") { samples.reserve(1000); }  // no growth of its own
  void on_train_epoch_end(Trainer& trainer, Module&) override {
    // The loggers on the async lane and the trace file's writer thread may lag the training
    // thread by a variable number of records (their queues are bounded); drain them so each
    // sample sees the same state.
    trainer.bus().flush();
    if (recorder) recorder->flush();
    samples.push_back(
        {open_fds(), status_kb("VmRSS:"), status_kb("VmHWM:"), ::mallinfo2().uordblks});
  }
  std::vector<Sample> samples;
  std::shared_ptr<TraceRecorder> recorder;
};

struct Logs : BoringModel {
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    auto out = BoringModel::training_step(b, i);
    log("train_loss", out["loss"], LogOptions().prog_bar(true).on_epoch(true));
    return out;
  }
  StepOutput validation_step(const Batch& b, std::int64_t i, std::int64_t d) override {
    auto out = BoringModel::validation_step(b, i, d);
    log("val_loss", out["x"]);
    return out;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(soak)

BOOST_AUTO_TEST_CASE(a_long_fit_does_not_grow) {
  const fs::path root = fs::temp_directory_path() / ("hookline-soak-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  constexpr std::int64_t kEpochs = 120;
  Logs model;
  auto probe = std::make_shared<Probe>();
  {
    // The progress bar prints one plain line per bar when stdout is not a terminal (as under
    // ctest); it is part of the run that must not grow.
    Trainer trainer(TrainerOptions()
                        .logger({std::make_shared<TensorBoardLogger>(root.string()),
                                 std::make_shared<CSVLogger>(root.string())})
                        .max_epochs(kEpochs)
                        .limit_train_batches(8)
                        .limit_val_batches(2)
                        .log_every_n_steps(2)
                        .default_root_dir(root.string()),
                    {probe, std::make_shared<EarlyStopping>(
                                EarlyStoppingOptions().monitor("val_loss").patience(1000))});
    probe->recorder = enable_tracing(trainer, (root / "trace.jsonl").string() + ",ring:1000");
    trainer.fit(model);
    BOOST_TEST(trainer.current_epoch() == kEpochs);
  }
  BOOST_REQUIRE_EQUAL(probe->samples.size(), static_cast<std::size_t>(kEpochs));
  const Sample& second = probe->samples.at(1);
  const Sample& middle = probe->samples.at(kEpochs / 2 - 1);
  const Sample& last = probe->samples.back();
  BOOST_TEST_MESSAGE("soak: epoch 2: "
                     << second.fds << " fds, RSS " << second.rss_kb << " kB, peak " << second.hwm_kb
                     << " kB, heap " << second.heap_in_use << " B; epoch " << kEpochs / 2
                     << ": RSS " << middle.rss_kb << " kB, heap " << middle.heap_in_use
                     << " B; epoch " << kEpochs << ": " << last.fds << " fds, RSS " << last.rss_kb
                     << " kB, peak " << last.hwm_kb << " kB, heap " << last.heap_in_use << " B");
  // A file the async lane has open for a moment (a logger flushing) may be counted: the fewest
  // over the last five epochs is compared; one leaked descriptor per epoch would be 100 more.
  std::size_t fewest_fds = last.fds;
  for (std::size_t i = probe->samples.size() - 5; i < probe->samples.size(); ++i)
    fewest_fds = std::min(fewest_fds, probe->samples[i].fds);
  BOOST_TEST(fewest_fds <= second.fds);
  // Memory: the first epochs warm up (allocator arenas of the async lane's threads, file
  // buffers, the trace ring filling): 8 MB allowed from epoch 2 to the end. After that nothing
  // may grow: RSS within 1 MB over the second half, and the bytes allocated on the heap by less
  // than 512 bytes per epoch (a leaked batch is 4 kB here; measured: 40-140 bytes per epoch, not
  // yet attributed, with a checkpoint, log rows and trace records written every epoch; before
  // the async lane was drained before each sample, a loaded machine once showed 4 kB per epoch,
  // most likely records still queued there).
  // Under ASan freed memory sits in its quarantine, so RSS grows by design; LeakSanitizer and
  // the fd count stand in for these there.
#if !HOOKLINE_TEST_UNDER_ASAN
  BOOST_TEST(last.rss_kb <= second.rss_kb + 8192);
  BOOST_TEST(last.hwm_kb <= second.hwm_kb + 8192);
  BOOST_TEST(last.rss_kb <= middle.rss_kb + 1024);
#endif
  // The fewest bytes in use over five epochs at each end of the second half: a buffer that
  // happens to be full at one sample does not count as growth.
  auto fewest_heap = [&](std::size_t from) {
    std::size_t n = probe->samples.at(from).heap_in_use;
    for (std::size_t i = from; i < from + 5; ++i) n = std::min(n, probe->samples.at(i).heap_in_use);
    return static_cast<double>(n);
  };
  const double heap_per_epoch = (fewest_heap(kEpochs - 5) - fewest_heap(kEpochs / 2 - 1)) /
                                static_cast<double>(kEpochs - 4 - kEpochs / 2);
  BOOST_TEST_MESSAGE("soak: heap growth over the second half: " << heap_per_epoch
                                                                << " bytes per epoch");
  BOOST_TEST(heap_per_epoch < 512.0);
  fs::remove_all(root);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_soak_tests
