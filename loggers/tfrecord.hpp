// hookline: TFRecord framing, the container of TensorBoard's event files (no LibTorch, no
// protobuf: records are opaque bytes here).
//
// A record is: the payload length (uint64, little-endian), the masked CRC-32C of those 8 bytes
// (uint32 LE), the payload, the masked CRC-32C of the payload (uint32 LE). "Masked" is
// TensorFlow's rotate-right-by-15 plus 0xa282ead8.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hookline {

/// CRC-32C (Castagnoli) of `size` bytes, and TensorFlow's masked form of it.
std::uint32_t crc32c(const void* data, std::size_t size);
std::uint32_t masked_crc32c(const void* data, std::size_t size);

/// `payload` framed as one TFRecord.
std::string tfrecord_frame(std::string_view payload);

/// A TFRecord stream that is truncated or fails a checksum; what() names the byte offset of the
/// record and what is wrong with it.
class TFRecordError : public std::runtime_error {
 public:
  TFRecordError(std::uint64_t offset, const std::string& what);
  std::uint64_t offset() const { return offset_; }

 private:
  std::uint64_t offset_;
};

/// The payloads of every record in `bytes`, in order, after checking both CRCs of each. Throws
/// TFRecordError on the first bad or truncated record. A record may not claim more than
/// `max_record` bytes (default 1 GiB), so a corrupted length cannot ask for unbounded memory.
std::vector<std::string> tfrecord_read(std::string_view bytes,
                                       std::uint64_t max_record = std::uint64_t{1} << 30);

}  // namespace hookline
