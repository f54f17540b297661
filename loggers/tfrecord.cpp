#include "hookline/loggers/tfrecord.hpp"

#include <boost/crc.hpp>

namespace hookline {

std::uint32_t crc32c(const void* data, std::size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, size);
  return crc.checksum();
}

std::uint32_t masked_crc32c(const void* data, std::size_t size) {
  const std::uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

namespace {

void put_le(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return value;
}

}  // namespace

std::string tfrecord_frame(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 16);
  put_le(out, payload.size(), 8);
  put_le(out, masked_crc32c(out.data(), 8), 4);
  out.append(payload);
  put_le(out, masked_crc32c(payload.data(), payload.size()), 4);
  return out;
}

TFRecordError::TFRecordError(std::uint64_t offset, const std::string& what)
    : std::runtime_error("TFRecord at byte " + std::to_string(offset) + ": " + what),
      offset_(offset) {}

std::vector<std::string> tfrecord_read(std::string_view bytes, std::uint64_t max_record) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const std::size_t left = bytes.size() - at;
    if (left < 12)
      throw TFRecordError(at, "truncated header (" + std::to_string(left) + " of 12 bytes)");
    const char* header = bytes.data() + at;
    const std::uint64_t length = get_le(header, 8);
    if (static_cast<std::uint32_t>(get_le(header + 8, 4)) != masked_crc32c(header, 8))
      throw TFRecordError(at, "the length's checksum does not match (a corrupted file?)");
    if (length > max_record)
      throw TFRecordError(at, "claims " + std::to_string(length) + " bytes, more than the " +
                                  std::to_string(max_record) + " allowed");
    if (length > left - 12 || left - 12 - length < 4)
      throw TFRecordError(at, "truncated: " + std::to_string(length) + " payload bytes and a " +
                                  "4-byte checksum announced, " + std::to_string(left - 12) +
                                  " left");
    const char* payload = header + 12;
    const std::size_t n = static_cast<std::size_t>(length);
    if (static_cast<std::uint32_t>(get_le(payload + n, 4)) != masked_crc32c(payload, n))
      throw TFRecordError(at, "the payload's checksum does not match (a corrupted file?)");
    out.emplace_back(payload, n);
    at += 12 + n + 4;
  }
  return out;
}

}  // namespace hookline
