#include <hookline/core/data/idx.hpp>

#include <ATen/ops/empty.h>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace hookline::data {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw std::runtime_error("IDX file '" + path.string() + "': " + what);
}

// Owns a zlib file handle; gzread passes plain (uncompressed) files through unchanged.
class GzReader {
 public:
  explicit GzReader(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      fail(path, "not found; check the path (or download/install the data set)");
    if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, not an IDX file");
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr)
      fail(path, std::string("cannot be opened: ") +
                     (errno != 0 ? std::strerror(errno) : "out of memory") +
                     "; check its permissions");
    gzbuffer(file_, 1U << 17);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  ~GzReader() { gzclose(file_); }

  // Reads up to `size` bytes; returns how many were read (fewer only at the end of the file).
  std::size_t read(void* out, std::size_t size) {
    auto* bytes = static_cast<unsigned char*>(out);
    std::size_t done = 0;
    while (done < size) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(size - done, 1U << 30));
      const int got = gzread(file_, bytes + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* message = gzerror(file_, &code);
        fail(path_, std::string("read error (") + (message ? message : "unknown") +
                        "); the file is corrupt, re-download or reinstall it");
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

 private:
  std::filesystem::path path_;
  gzFile file_ = nullptr;
};

struct ElementType {
  at::ScalarType dtype;
  std::size_t bytes;
};

bool element_type(unsigned char code, ElementType& out) {
  switch (code) {
    case 0x08:
      out = {at::kByte, 1};
      return true;
    case 0x09:
      out = {at::kChar, 1};
      return true;
    case 0x0B:
      out = {at::kShort, 2};
      return true;
    case 0x0C:
      out = {at::kInt, 4};
      return true;
    case 0x0D:
      out = {at::kFloat, 4};
      return true;
    case 0x0E:
      out = {at::kDouble, 8};
      return true;
    default:
      return false;
  }
}

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

void to_native_order(unsigned char* data, std::size_t count, std::size_t width) {
  if constexpr (std::endian::native == std::endian::big) return;
  if (width == 1) return;
  for (std::size_t i = 0; i < count; ++i) std::reverse(data + i * width, data + (i + 1) * width);
}

std::string hex(unsigned value) {
  static constexpr char digits[] = "0123456789abcdef";
  return std::string("0x") + digits[(value >> 4) & 0xF] + digits[value & 0xF];
}

}  // namespace

at::Tensor read_idx(const std::filesystem::path& path) {
  GzReader reader(path);
  std::array<unsigned char, 4> magic{};
  if (reader.read(magic.data(), magic.size()) != magic.size())
    fail(path, "shorter than the 4-byte IDX magic; the file is truncated or not an IDX file");
  ElementType type{};
  if (magic[0] != 0 || magic[1] != 0 || !element_type(magic[2], type) || magic[3] == 0)
    fail(path, "bad magic " + hex(magic[0]) + " " + hex(magic[1]) + " " + hex(magic[2]) + " " +
                   hex(magic[3]) +
                   " (expected 0x00 0x00 <type 0x08..0x0e> <ndims >= 1>); this is not an IDX "
                   "file, or it is corrupt: check the path or re-download it");

  const std::size_t ndims = magic[3];
  std::vector<unsigned char> header(ndims * 4);
  if (reader.read(header.data(), header.size()) != header.size())
    fail(path, "truncated in its header (" + std::to_string(ndims) +
                   " dimensions announced); re-download the file");
  std::vector<std::int64_t> shape(ndims);
  std::int64_t count = 1;
  for (std::size_t i = 0; i < ndims; ++i) {
    shape[i] = big_endian_u32(header.data() + 4 * i);
    if (shape[i] != 0 && count > std::numeric_limits<std::int64_t>::max() /
                                     static_cast<std::int64_t>(type.bytes) / shape[i])
      fail(path, "dimensions too large; the header is corrupt");
    count *= shape[i];
  }

  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(type.dtype));
  auto* data = static_cast<unsigned char*>(out.data_ptr());
  const std::size_t expected = static_cast<std::size_t>(count) * type.bytes;
  const std::size_t got = reader.read(data, expected);
  if (got != expected)
    fail(path, "truncated: the header announces " + std::to_string(expected) +
                   " bytes of data but only " + std::to_string(got) +
                   " are present; re-download the file");
  unsigned char extra = 0;
  if (reader.read(&extra, 1) != 0)
    fail(path, "has bytes after the " + std::to_string(expected) +
                   " announced by its header; the file is corrupt or not an IDX file");
  to_native_order(data, static_cast<std::size_t>(count), type.bytes);
  return out;
}

}  // namespace hookline::data
