// A scratch directory for one test, removed afterwards, and reading a file whole.
#pragma once

#include "support/temp_dir.hpp"

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace tracing_tests {

struct Scratch {
  std::filesystem::path path;
  Scratch() {
    std::string pattern = (std::filesystem::temp_directory_path() / "hookline-tracing-XXXXXX");
    path = ::mkdtemp(pattern.data());
  }
  ~Scratch() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

using test_support::read_text;

}  // namespace tracing_tests
