// Test helpers for suites that run a program as a child process (fault_tests, ddp_tests).
#pragma once

#include <boost/test/unit_test.hpp>

#include "temp_dir.hpp"

#include <filesystem>
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

}  // namespace test_support
