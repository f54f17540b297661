// Test helpers for suites that run a program as a child process (fault_tests, ddp_tests).
#pragma once

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <random>
#include <string>

namespace test_support {

/// The value of "<prefix>VALUE" among test_core's own arguments (after "--"), or "".
inline std::string framework_argument(const std::string& prefix) {
  const auto& suite = boost::unit_test::framework::master_test_suite();
  for (int i = 1; i < suite.argc; ++i) {
    const std::string a = suite.argv[i];
    if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
  }
  return {};
}

/// A fresh directory under the system's temporary directory, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix) {
    static std::mt19937_64 rng(std::random_device{}());
    path = std::filesystem::temp_directory_path() / (prefix + std::to_string(rng()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace test_support
