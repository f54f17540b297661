// Mutated checkpoints: the loader behind fit/validate(..., ckpt_path) against damaged payloads.
//
// libFuzzer cannot build this path here (it needs clang, and Debian's LibTorch 1.13 headers do
// not compile under clang in C++20 mode: libstdc++'s constexpr std::vector meets c10::IValue while
// it is incomplete, ATen/core/List.h), so this is a seeded mutation test built with the suite's
// compiler: a valid checkpoint's payload is damaged (bit flips, overwritten, inserted, deleted
// and duplicated bytes, truncation), given a valid header with correct checksums (so the decoder
// and the restore behind it see it), and loaded. The property: the run either loads it or fails
// with a CheckpointError naming the file, and after a failure the live model is bitwise what it
// was before. HOOKLINE_MUTATION_RUNS=N runs more (the suite runs 200, about 2 s);
// HOOKLINE_MUTATION_SEED picks another sequence; HOOKLINE_MUTATION_VERBOSE=1 prints each run's
// number (to find the one that fails).
#include <boost/test/unit_test.hpp>

#include "checkpoint_helpers.hpp"
#include "trace_recorder.hpp"
#include "trainer_options.hpp"

#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/core/checkpoint_io.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace hookline_test_checkpoint_mutation_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

class Tiny final : public BoringModel {
 public:
  OptimizerConfig configure_optimizers() override {
    return OptimizerConfig().add(
        std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(0.01)));
  }
  DataLoaders train_dataloader() override { return {loader(8, 2)}; }
  DataLoaders val_dataloader() override { return {loader(2, 2)}; }
};

TrainerOptions options(const fs::path& root) {
  return silent_options(root)
      .max_epochs(2)
      .limit_train_batches(2)
      .limit_val_batches(1)
      .handle_signals(false);
}

std::size_t env_number(const char* name, std::size_t fallback) {
  const char* text = std::getenv(name);
  return text ? static_cast<std::size_t>(std::strtoull(text, nullptr, 10)) : fallback;
}

// One to four random damages.
void mutate(std::vector<char>& p, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  const int count = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < count && !p.empty(); ++k) {
    const std::size_t at = pick(p.size());
    switch (rng() % 6) {
      case 0:
        p[at] = static_cast<char>(p[at] ^ (1 << (rng() % 8)));
        break;
      case 1:
        p[at] = static_cast<char>(rng());
        break;
      case 2: {
        const std::size_t n = 1 + pick(16);
        std::vector<char> bytes(n);
        for (char& b : bytes) b = static_cast<char>(rng());
        p.insert(p.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin(), bytes.end());
        break;
      }
      case 3: {
        const std::size_t n = std::min(p.size() - at, 1 + pick(64));
        p.erase(p.begin() + static_cast<std::ptrdiff_t>(at),
                p.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
      case 4: {
        const std::size_t n = std::min(p.size() - at, 1 + pick(64));
        const std::vector<char> chunk(p.begin() + static_cast<std::ptrdiff_t>(at),
                                      p.begin() + static_cast<std::ptrdiff_t>(at + n));
        const std::size_t to = pick(p.size());
        p.insert(p.begin() + static_cast<std::ptrdiff_t>(to), chunk.begin(), chunk.end());
        break;
      }
      default:
        p.resize(at);
        break;
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_mutation)

BOOST_AUTO_TEST_CASE(damaged_payloads_load_or_fail_cleanly) {
  const fs::path root =
      fs::temp_directory_path() / ("hookline-mutation-" + std::to_string(::getpid()));
  fs::create_directories(root);
  const fs::path valid = root / "valid.ckpt";
  {
    Tiny model;
    LambdaHooks hooks;
    hooks.on_fit_end = [&](Trainer& t, Module&) { t.save_checkpoint(valid.string()); };
    Trainer trainer(options(root).max_epochs(1), {std::make_shared<LambdaCallback>(hooks)});
    trainer.fit(model);
  }
  const std::vector<char> file = read_bytes(valid);
  const std::vector<char> payload = checkpoint_payload(file);
  BOOST_REQUIRE(payload.size() < file.size());

  const std::size_t runs = env_number("HOOKLINE_MUTATION_RUNS", 200);
  std::mt19937_64 rng(env_number("HOOKLINE_MUTATION_SEED", 20261125));
  const fs::path damaged = root / "damaged.ckpt";
  std::size_t loaded = 0, refused = 0;
  // One load of `file`, which must load or fail with a one-line CheckpointError.
  auto attempt = [&](std::size_t i, const fs::path& file, bool fit) {
    torch::manual_seed(static_cast<std::uint64_t>(i));
    Tiny model;
    const std::vector<at::Tensor> before = weights_of(model);
    Trainer trainer(options(root));
    try {
      if (fit)
        trainer.fit(model, nullptr, file.string());
      else
        trainer.validate(model, nullptr, file.string());
      ++loaded;
    } catch (const CheckpointError& e) {
      ++refused;
      if (!bitwise_equal(before, weights_of(model)))
        BOOST_FAIL("run " << i << ": the model changed although loading failed: " << e.what());
      // One line in hookline's words: no c10 backtrace, no LibTorch assertion (issue 28).
      const std::string message = e.what();
      for (const char* libtorch :
           {"\n", "Exception raised from", "INTERNAL ASSERT", "report a bug", "frame #"})
        if (message.find(libtorch) != std::string::npos)
          BOOST_FAIL("run " << i << ": the message holds LibTorch's text (" << libtorch
                            << "): " << message);
    } catch (const std::exception& e) {
      BOOST_FAIL("run " << i << " (seed " << env_number("HOOKLINE_MUTATION_SEED", 20261125)
                        << "): a damaged checkpoint failed with something else than a "
                           "CheckpointError: "
                        << e.what());
    }
  };
  const fs::path unsealed = root / "unsealed.ckpt";
  for (std::size_t i = 0; i < runs; ++i) {
    std::vector<char> p = payload;
    mutate(p, rng);
    if (std::getenv("HOOKLINE_MUTATION_VERBOSE")) std::fprintf(stderr, "run %zu\n", i);
    write_bytes(damaged, frame_checkpoint_payload(p));
    attempt(i, damaged, i % 2 == 1);
    // Every fourth one also without a seal: the reader of Python's torch.save archives.
    if (i % 4 == 0) {
      write_bytes(unsealed, p);
      attempt(i, unsealed, false);
    }
  }
  BOOST_TEST_MESSAGE("checkpoint_mutation: " << runs << " damaged payloads: " << loaded
                                             << " loaded, " << refused << " refused");
  BOOST_TEST(refused > 0u);
  fs::remove_all(root);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_checkpoint_mutation_tests
