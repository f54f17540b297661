// Test helpers: a fresh directory under the system's temporary directory, removed with everything
// in it at the end of its scope, and reading a file whole. Torch-free, for every test runner.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace test_support {

struct TempDir {
  std::filesystem::path path;
  /// `prefix` names the directory ("<prefix><random number>"), to tell leftovers apart.
  explicit TempDir(const std::string& prefix = "hookline-test-") {
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
  /// The path of `name` inside the directory.
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string str() const { return path.string(); }
  /// Writes `text` to `name` inside the directory and returns the file's path.
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return file(name);
  }
};

/// The whole of file `path`, byte for byte ("" when it cannot be read).
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace test_support
