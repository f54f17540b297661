// libFuzzer target: the TFRecord reader and writer of TensorBoard event files.
// Properties: any bytes read as records or give a TFRecordError, never another failure or an
// allocation beyond the input's size; payloads cut from the input, framed and read back, are
// the same payloads.
#include <hookline/loggers/tfrecord.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const auto records = hookline::tfrecord_read(bytes);
    std::size_t total = 0;
    for (const auto& r : records) total += r.size() + 16;
    if (total != size) {
      std::fprintf(stderr, "fuzz_tfrecord: records cover %zu of %zu bytes\n", total, size);
      std::abort();
    }
  } catch (const hookline::TFRecordError&) {
  }
  // Round trip: the first byte of each piece gives the length of the piece that follows.
  std::vector<std::string> payloads;
  std::string framed;
  for (std::size_t at = 0; at < size;) {
    const std::size_t n = std::min<std::size_t>(data[at], size - at - 1);
    payloads.emplace_back(bytes.substr(at + 1, n));
    framed += hookline::tfrecord_frame(payloads.back());
    at += 1 + n;
  }
  if (hookline::tfrecord_read(framed) != payloads) {
    std::fprintf(stderr, "fuzz_tfrecord: framed payloads did not read back\n");
    std::abort();
  }
  return 0;
}
