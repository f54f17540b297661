// libFuzzer target: the trace spec parser (HOOKLINE_TRACE, recipe files, --trace options).
// Property: any text parses or throws std::invalid_argument; a parsed spec's items are
// well-formed (a path where one is needed, a ring with a capacity).
#include <hookline/tracing/trace_spec.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  hookline::TraceSpec spec;
  try {
    spec = hookline::TraceSpec::parse(text);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  using Kind = hookline::TraceSpec::Item::Kind;
  for (const auto& item : spec.items) {
    const bool bad =
        ((item.kind == Kind::jsonl || item.kind == Kind::chrome) && item.path.empty()) ||
        (item.kind == Kind::ring && item.capacity == 0) || item.key.empty();
    if (bad) {
      std::fprintf(stderr, "fuzz_trace_spec: '%.*s' parsed into a malformed item '%s'\n",
                   static_cast<int>(text.size()), text.data(), item.key.c_str());
      std::abort();
    }
  }
  return 0;
}
