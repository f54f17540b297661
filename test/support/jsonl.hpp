// Test helper: reading JSON-lines text (traces) into records. Torch-free, for every test runner.
#pragma once

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace test_support {

/// One JSON value per line of `text`; throws nlohmann::json::parse_error at a bad line.
inline std::vector<nlohmann::json> parse_jsonl(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace test_support
