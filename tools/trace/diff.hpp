// hookline-trace diff: the first place two traces differ.
#pragma once

#include "trace_file.hpp"

#include <set>
#include <string>
#include <vector>

namespace hookline::trace_tool {

struct DiffOptions {
  /// Fields left out of the comparison (timing and process details by default).
  std::set<std::string> ignore = {"start_ns", "duration_ns", "thread", "bus"};
  std::size_t context = 3;  ///< records shown before and after the divergence
  std::size_t window = 50;  ///< how far ahead to look for a moved record
  bool async = false;       ///< compare async-lane calls too (their order is not deterministic)
};

struct DiffResult {
  bool same = true;
  std::size_t compared = 0;  ///< records compared (after selection)
  std::size_t position = 0;  ///< 1-based index of the first differing record (if !same)
  std::string report;
};

DiffResult diff_traces(const std::vector<const Record*>& a, const std::string& a_name,
                       const std::vector<const Record*>& b, const std::string& b_name,
                       const DiffOptions& options);

}  // namespace hookline::trace_tool
