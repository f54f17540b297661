// Runner for the LibTorch-side suites: test/core, test/callbacks, test/strategies, test/recipe.
#define BOOST_TEST_MODULE hookline_core
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <random>
#include <string>

namespace {
// Runs the suites in a fresh temporary directory, so what trainers write by default (the default
// ModelCheckpoint's `./checkpoints`) never lands in the build or source tree.
struct InTemporaryDirectory {
  std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("hookline-test-core-" + std::to_string(std::random_device{}()));
  InTemporaryDirectory() {
    std::filesystem::create_directories(dir);
    std::filesystem::current_path(dir);
  }
  ~InTemporaryDirectory() {
    std::filesystem::current_path(previous);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
};
}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(InTemporaryDirectory);
