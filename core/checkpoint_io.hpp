// hookline: checkpoint files.
//
// A checkpoint file is a 40-byte header followed by the checkpoint serialized with torch's own
// format (torch::pickle_save, the container torch.save writes):
//
//   offset  size  field
//   0       8     magic "HKLNCKPT"
//   8       4     format version (little-endian), kCheckpointFormatVersion
//   12      4     header size (40)
//   16      8     payload size in bytes
//   24      8     XXH3-64 of the payload
//   32      8     XXH3-64 of bytes 0..31 (the header itself)
//
// Writes are atomic: the bytes go to a temporary file in the target's directory, which is
// flushed and fsync'ed, renamed over the target, and the directory is fsync'ed. A crash at any
// point leaves either the old file or the new one, never a mix. Reads check every field, so a
// missing, empty, truncated or corrupted file, or one of another format version, fails with a
// CheckpointError that names the file and what is wrong.
//
// Format versions: 1 stored optimizer state as LibTorch's archives (TorchScript modules, whose
// reader crashes on damaged input); 2 stores it as plain values (core/loops/optimizer_state.hpp).
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace hookline {

inline constexpr std::uint32_t kCheckpointFormatVersion = 2;

/// A checkpoint that cannot be read or does not fit the run; what() names the file and the fix.
class CheckpointError : public std::runtime_error {
 public:
  CheckpointError(std::string path, const std::string& problem);
  /// The checkpoint file concerned.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// The bytes of a checkpoint file holding `state` (header and payload).
std::vector<char> encode_checkpoint(const c10::IValue& state);
/// The bytes of a checkpoint file around an already serialized payload (a valid header with its
/// checksums): lets tests and fuzzers reach the payload's decoder past the checksums.
std::vector<char> frame_checkpoint_payload(const std::vector<char>& payload);
/// Decodes the bytes of a checkpoint file; `path` only names the file in errors.
c10::IValue decode_checkpoint(const std::vector<char>& bytes, const std::string& path);

/// Writes `bytes` to `path` atomically (see above); creates missing parent directories.
/// Throws CheckpointError when the directory or file cannot be written.
void write_file_atomically(const std::filesystem::path& path, const std::vector<char>& bytes);

/// Writes `state` to `path` atomically.
void write_checkpoint_file(const std::filesystem::path& path, const c10::IValue& state);
/// Reads the checkpoint at `path`; throws CheckpointError naming the file and the problem.
c10::IValue read_checkpoint_file(const std::filesystem::path& path);

}  // namespace hookline
