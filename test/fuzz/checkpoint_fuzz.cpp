// libFuzzer target: the checkpoint loader behind validate/fit(..., ckpt_path), from the payload
// in: the input is a checkpoint's payload (the zip archive without its seal), framed here
// with a valid seal and checksum so that every input reaches the decoder and the restore.
// The raw input is also loaded as it is (no seal: the reader of Python's torch.save archives).
// Properties, for any payload:
//  - validate() and fit() either load it or throw CheckpointError (nothing else escapes,
//    nothing crashes);
//  - after a failure the live model's parameters are bitwise what they were before.
// The seed corpus (corpus/checkpoint) holds real payloads of this model; to write them again:
//   HOOKLINE_FUZZ_WRITE_SEEDS=<dir> build/asan/test/fuzz/fuzz_checkpoint
#include "../support/checkpoint_helpers.hpp"
#include "../support/trace_recorder.hpp"
#include "../support/trainer_options.hpp"

#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/core/checkpoint_io.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace hookline;

// BoringModel with Adam (per-parameter state) and a StepLR whose step count is checkpointed.
class FuzzModel final : public test_support::BoringModel {
 public:
  OptimizerConfig configure_optimizers() override {
    auto adam = std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(0.01));
    auto step = std::make_shared<torch::optim::StepLR>(*adam, 1, 0.5);
    return OptimizerConfig().add(adam).add_scheduler(SchedulerConfig::from(step));
  }
  DataLoaders train_dataloader() override { return {test_support::loader(8, 4)}; }
  DataLoaders val_dataloader() override { return {test_support::loader(4, 4)}; }
};

// Where the harness writes its files (checkpoints of the seeds, the input framed as a file).
const fs::path& scratch() {
  static const fs::path dir = [] {
    const fs::path d = fs::temp_directory_path() / "hookline-fuzz-checkpoint";
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

TrainerOptions options() {
  TrainerOptions quiet = test_support::silent_options(scratch());
  return quiet.max_epochs(1).limit_val_batches(1).handle_signals(false);
}

// Seeds: payloads saved at the end of the fit, in the middle of the epoch, and weights only.
void write_seeds(const fs::path& dir) {
  fs::create_directories(dir);
  torch::manual_seed(0);
  FuzzModel model;
  LambdaHooks hooks;
  hooks.on_train_batch_end = [&](Trainer& t, Module&, const StepOutput&, const Batch&,
                                 std::int64_t index) {
    if (index == 0) t.save_checkpoint((scratch() / "mid_epoch.ckpt").string());
  };
  hooks.on_fit_end = [&](Trainer& t, Module&) {
    t.save_checkpoint((scratch() / "end.ckpt").string());
    t.save_checkpoint((scratch() / "weights_only.ckpt").string(), /*weights_only=*/true);
  };
  Trainer trainer(options(), {std::make_shared<LambdaCallback>(hooks)});
  trainer.fit(model);
  for (const char* name : {"mid_epoch", "end", "weights_only"}) {
    const std::vector<char> file =
        test_support::read_bytes(scratch() / (std::string(name) + ".ckpt"));
    test_support::write_bytes(dir / name, hookline::checkpoint_payload(file));
  }
}

[[noreturn]] void fail(const char* stage, const std::string& what) {
  std::fprintf(stderr, "fuzz_checkpoint: %s: %s\n", stage, what.c_str());
  std::abort();
}

// Loads the checkpoint through `run`; checks the outcome is a load or a clean refusal.
template <class Run>
void load(const char* stage, Run run) {
  torch::manual_seed(1);
  FuzzModel model;
  const std::vector<at::Tensor> before = test_support::weights_of(model);
  Trainer trainer(options());
  try {
    run(trainer, model);
  } catch (const CheckpointError& e) {
    if (!test_support::bitwise_equal(before, test_support::weights_of(model)))
      fail(stage, std::string("the model changed although loading failed: ") + e.what());
  } catch (const std::exception& e) {
    fail(stage, std::string("failed with something else than a CheckpointError: ") + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("HOOKLINE_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<char> payload(reinterpret_cast<const char*>(data),
                                  reinterpret_cast<const char*>(data) + size);
  static const std::string input = (scratch() / "input.ckpt").string();
  test_support::write_bytes(input, frame_checkpoint_payload(payload));
  load("validate", [](Trainer& t, FuzzModel& m) { t.validate(m, nullptr, input); });
  load("fit", [](Trainer& t, FuzzModel& m) { t.fit(m, nullptr, input); });
  // The same bytes without a seal: read as an archive Python's torch.save wrote.
  static const std::string unsealed = (scratch() / "unsealed.ckpt").string();
  test_support::write_bytes(unsealed, payload);
  load("validate unsealed", [](Trainer& t, FuzzModel& m) { t.validate(m, nullptr, unsealed); });
  load("fit unsealed", [](Trainer& t, FuzzModel& m) { t.fit(m, nullptr, unsealed); });
  return 0;
}
