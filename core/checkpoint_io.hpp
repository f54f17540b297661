// hookline: checkpoint files.
//
// Format 3 (written since issue 30): a checkpoint file is the zip archive torch::jit::pickle_save
// writes (the container of Python's torch.save, so `torch.load(path)` opens it as it is), sealed:
// the archive's zip comment, its last 31 bytes, is
//
//   "HKLNCKPT VVVV XXXXXXXXXXXXXXXX\n"
//
// the magic, the format version (4 decimal digits) and the XXH3-64 (16 hex digits) of every byte
// of the file but those 16 digits. torch.load and other zip readers ignore the comment.
//
// Format 2 (still read): a 40-byte header, then the same archive:
//
//   offset  size  field
//   0       8     magic "HKLNCKPT"
//   8       4     format version (little-endian), 2
//   12      4     header size (40)
//   16      8     payload size in bytes
//   24      8     XXH3-64 of the payload
//   32      8     XXH3-64 of bytes 0..31 (the header itself)
//
// A zip archive without a seal is read as Python's torch.save wrote it (python_archive.hpp): a
// Lightning checkpoint, say; what it holds that has no C++ value is reported as a warning.
//
// Writes are atomic: the bytes go to a temporary file in the target's directory, which is
// flushed and fsync'ed, renamed over the target, and the directory is fsync'ed. A crash at any
// point leaves either the old file or the new one, never a mix. Reads check every field, so a
// missing, empty, truncated or corrupted file, or one of another format version, fails with a
// CheckpointError that names the file and what is wrong.
//
// Format versions: 1 stored optimizer state as LibTorch's archives (TorchScript modules, whose
// reader crashes on damaged input); 2 stores it as plain values (core/loops/optimizer_state.hpp);
// 3 is 2's content in the sealed archive above, with Lightning's keys (lightning_layout.hpp).
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace hookline {

inline constexpr std::uint32_t kCheckpointFormatVersion = 3;

/// A checkpoint that cannot be read or does not fit the run; what() names the file and the fix.
class CheckpointError : public std::runtime_error {
 public:
  CheckpointError(std::string path, const std::string& problem);
  /// The checkpoint file concerned.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// The bytes of a checkpoint file holding `state` (the sealed archive).
std::vector<char> encode_checkpoint(const c10::IValue& state);
/// The bytes of a checkpoint file of an already serialized archive (`payload`, as
/// torch::jit::pickle_save writes it) with a valid seal for `version`: lets tests and fuzzers
/// reach the archive's decoder past the checksum.
std::vector<char> frame_checkpoint_payload(const std::vector<char>& payload,
                                           std::uint32_t version = kCheckpointFormatVersion);
/// The archive inside the bytes of a checkpoint file, without seal or header (what
/// frame_checkpoint_payload frames); the bytes as they are if they are neither format 2 nor 3.
std::vector<char> checkpoint_payload(const std::vector<char>& file);
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
