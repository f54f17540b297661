#include "hookline/core/checkpoint_io.hpp"

#include "hookline/core/checkpoint_format.hpp"
#include "hookline/core/console.hpp"
#include "hookline/core/python_archive.hpp"

#include <torch/csrc/jit/serialization/pickle.h>
#include <xxhash.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <system_error>

namespace hookline {

namespace {

constexpr char kMagic[8] = {'H', 'K', 'L', 'N', 'C', 'K', 'P', 'T'};
constexpr std::size_t kHeaderSize = 40;

std::uint32_t get_u32(const char* at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(at[i]);
  return v;
}
std::uint64_t get_u64(const char* at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(at[i]);
  return v;
}

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void fsync_directory(const std::filesystem::path& dir, const std::string& target) {
  Fd d{::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0 || ::fsync(d.fd) != 0)
    throw CheckpointError(target, "its directory could not be synced to disk (" +
                                      errno_text(errno) + "); check the file system");
}

}  // namespace

namespace {

// The problem as one line without LibTorch's own text: a backtrace or an internal assertion that
// reached a message (from a hook's error, say) is cut off at the clause it starts.
std::string one_line(std::string problem) {
  std::size_t cut = problem.find('\n');
  for (const char* libtorch :
       {"INTERNAL ASSERT FAILED", "please report a bug to PyTorch", "Exception raised from"}) {
    const std::size_t at = problem.find(libtorch);
    if (at == std::string::npos) continue;
    const std::size_t clause = problem.rfind(": ", at);
    cut = std::min(cut, clause == std::string::npos ? at : clause);
    problem.resize(std::min(cut, problem.size()));
    problem += ": LibTorch failed on a value in it";
    return problem;
  }
  if (cut != std::string::npos) problem.resize(cut);
  return problem;
}

}  // namespace

CheckpointError::CheckpointError(std::string path, const std::string& problem)
    : std::runtime_error("checkpoint '" + path + "': " + one_line(problem)),
      path_(std::move(path)) {}

namespace {

// Format 3: the seal that ends the archive as its zip comment (see checkpoint_io.hpp).
constexpr std::size_t kSealSize = 31;    // "HKLNCKPT VVVV XXXXXXXXXXXXXXXX\n"
constexpr std::size_t kSealDigits = 14;  // where the 16 hex digits of the checksum start
constexpr std::size_t kEndRecord = 22;   // a zip's end of central directory, without comment

// XXH3-64 of every byte of a sealed file except the 16 digits of its checksum.
std::uint64_t seal_checksum(const char* bytes, std::size_t size) {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 &XXH3_freeState);
  if (!state) throw std::bad_alloc();
  XXH3_64bits_reset(state.get());
  const std::size_t digits = size - kSealSize + kSealDigits;
  XXH3_64bits_update(state.get(), bytes, digits);
  XXH3_64bits_update(state.get(), bytes + digits + 16, size - digits - 16);
  return XXH3_64bits_digest(state.get());
}

c10::IValue decode_format_2(const std::vector<char>& bytes, const std::string& path,
                            const std::string& earlier) {
  if (bytes.size() < kHeaderSize)
    throw CheckpointError(path, "the file is truncated inside its header (" +
                                    std::to_string(bytes.size()) + " of " +
                                    std::to_string(kHeaderSize) + " bytes)" + earlier);
  if (XXH3_64bits(bytes.data(), 32) != get_u64(bytes.data() + 32))
    throw CheckpointError(path, "the header is corrupted (its checksum does not match)" + earlier);
  const std::uint32_t version = get_u32(bytes.data() + 8);
  if (version != 2)
    throw CheckpointError(path, "format version " + std::to_string(version) +
                                    ", but this hookline reads versions 2 and " +
                                    std::to_string(kCheckpointFormatVersion) +
                                    "; load it with the hookline version that wrote it");
  const std::uint32_t header = get_u32(bytes.data() + 12);
  const std::uint64_t expected = get_u64(bytes.data() + 16);
  if (header != kHeaderSize)
    throw CheckpointError(path, "unexpected header size " + std::to_string(header) + earlier);
  const std::uint64_t present = bytes.size() - kHeaderSize;
  if (present < expected)
    throw CheckpointError(path, "the file is truncated: " + std::to_string(present) + " of " +
                                    std::to_string(expected) + " payload bytes" + earlier);
  if (present > expected)
    throw CheckpointError(path, "the file has " + std::to_string(present - expected) +
                                    " bytes past its end; it is damaged" + earlier);
  if (XXH3_64bits(bytes.data() + kHeaderSize, expected) != get_u64(bytes.data() + 24))
    throw CheckpointError(
        path, "the file is corrupted: its checksum does not match its contents" + earlier);
  return detail::decode_archive(std::vector<char>(bytes.begin() + kHeaderSize, bytes.end()), path,
                                earlier);
}

// An archive without a seal: torch.save's (Python, a Lightning checkpoint), or a damaged one.
c10::IValue decode_unsealed(const std::vector<char>& bytes, const std::string& path,
                            const std::string& earlier) {
  // The end of central directory record is the last thing in a zip archive but its comment.
  const std::size_t size = bytes.size();
  const std::size_t lowest = size > kEndRecord + 65535 ? size - kEndRecord - 65535 : 0;
  for (std::size_t at = size >= kEndRecord ? size - kEndRecord + 1 : 0; at-- > lowest;) {
    if (std::memcmp(bytes.data() + at, "PK\x05\x06", 4) != 0) continue;
    const std::size_t comment = static_cast<unsigned char>(bytes[at + 20]) |
                                static_cast<std::size_t>(static_cast<unsigned char>(bytes[at + 21]))
                                    << 8;
    if (at + kEndRecord + comment > size) break;  // cut inside the comment: truncated
    if (at + kEndRecord + comment < size)
      throw CheckpointError(path,
                            "the file has " + std::to_string(size - at - kEndRecord - comment) +
                                " bytes past the end of its archive; it is damaged" + earlier);
    if (comment != 0)  // torch.save writes none: what is left of hookline's seal
      throw CheckpointError(path,
                            "the file is corrupted: the seal at its end is damaged" + earlier);
    detail::PythonArchive archive = detail::read_python_archive(bytes.data(), size, path);
    for (const std::string& note : archive.dropped)
      console().warn("checkpoint '{}' (torch.save without hookline's seal): {}", path, note);
    return archive.value;
  }
  throw CheckpointError(path, "the file is truncated: the end of its archive is missing" + earlier);
}

}  // namespace

std::vector<char> encode_checkpoint(const c10::IValue& state) {
  return frame_checkpoint_payload(torch::jit::pickle_save(state));
}

std::vector<char> frame_checkpoint_payload(const std::vector<char>& payload,
                                           std::uint32_t version) {
  std::vector<char> bytes = payload;
  const std::size_t size = bytes.size();
  // The archive ends with its end of central directory record, without a comment: the seal
  // becomes that comment. (Anything else, a fuzzer's input say, gets the seal appended as is.)
  if (size >= kEndRecord && std::memcmp(bytes.data() + size - kEndRecord, "PK\x05\x06", 4) == 0 &&
      bytes[size - 2] == 0 && bytes[size - 1] == 0) {
    bytes[size - 2] = static_cast<char>(kSealSize);
    bytes[size - 1] = 0;
  }
  char seal[kSealSize + 1];
  std::snprintf(seal, sizeof seal, "HKLNCKPT %04u %016llx\n", version % 10000u, 0ull);
  bytes.insert(bytes.end(), seal, seal + kSealSize);
  const std::uint64_t sum = seal_checksum(bytes.data(), bytes.size());
  std::snprintf(seal, sizeof seal, "%016llx", static_cast<unsigned long long>(sum));
  std::memcpy(bytes.data() + bytes.size() - kSealSize + kSealDigits, seal, 16);
  return bytes;
}

std::vector<char> checkpoint_payload(const std::vector<char>& file) {
  if (file.size() >= kHeaderSize && std::memcmp(file.data(), kMagic, sizeof kMagic) == 0)
    return std::vector<char>(file.begin() + kHeaderSize, file.end());
  const std::size_t size = file.size();
  if (size < kSealSize + kEndRecord ||
      std::memcmp(file.data() + size - kSealSize, kMagic, sizeof kMagic) != 0)
    return file;
  std::vector<char> out(file.begin(), file.end() - kSealSize);
  if (std::memcmp(out.data() + out.size() - kEndRecord, "PK\x05\x06", 4) == 0)
    out[out.size() - 2] = out[out.size() - 1] = 0;
  return out;
}

c10::IValue decode_checkpoint(const std::vector<char>& bytes, const std::string& path) {
  const std::string earlier = "; resume from an earlier checkpoint";
  if (bytes.empty())
    throw CheckpointError(path,
                          "the file is empty (0 bytes): it was never written completely" + earlier);
  auto starts_with = [&](const char* magic, std::size_t n) {
    return std::memcmp(bytes.data(), magic, std::min(n, bytes.size())) == 0;
  };
  if (bytes.size() < 4 && (starts_with(kMagic, sizeof kMagic) || starts_with("PK\x03\x04", 4)))
    throw CheckpointError(
        path, "the file is truncated (" + std::to_string(bytes.size()) + " bytes)" + earlier);
  if (starts_with(kMagic, sizeof kMagic)) return decode_format_2(bytes, path, earlier);
  if (!starts_with("PK\x03\x04", 4))
    throw CheckpointError(path,
                          "not a hookline checkpoint (neither a zip archive nor a file starting "
                          "with \"HKLNCKPT\"); pass a file written by Trainer::save_checkpoint, "
                          "ModelCheckpoint or torch.save (its zip format, PyTorch 1.6 and later)");
  const std::size_t size = bytes.size();
  const char* seal = bytes.data() + size - std::min(size, kSealSize);
  if (size < kSealSize + kEndRecord || std::memcmp(seal, kMagic, sizeof kMagic) != 0)
    return decode_unsealed(bytes, path, earlier);
  auto digits = [&](std::size_t from, std::size_t n, int base) {
    for (std::size_t i = from; i < from + n; ++i)
      if (!(std::isdigit(static_cast<unsigned char>(seal[i])) ||
            (base == 16 && seal[i] >= 'a' && seal[i] <= 'f')))
        return false;
    return true;
  };
  if (seal[8] != ' ' || seal[13] != ' ' || seal[kSealSize - 1] != '\n' || !digits(9, 4, 10) ||
      !digits(kSealDigits, 16, 16))
    throw CheckpointError(path, "the file is corrupted: the seal at its end is damaged" + earlier);
  if (std::strtoull(std::string(seal + kSealDigits, 16).c_str(), nullptr, 16) !=
      seal_checksum(bytes.data(), size))
    throw CheckpointError(
        path, "the file is corrupted: its checksum does not match its contents" + earlier);
  const unsigned long version = std::strtoul(std::string(seal + 9, 4).c_str(), nullptr, 10);
  if (version != kCheckpointFormatVersion)
    throw CheckpointError(path, "format version " + std::to_string(version) +
                                    ", but this hookline reads versions 2 and " +
                                    std::to_string(kCheckpointFormatVersion) +
                                    "; load it with the hookline version that wrote it");
  return detail::decode_archive(bytes, path, earlier);
}

namespace {

// Removes the temporary files (".NAME.tmp-PID-N") that writers killed mid-write left in `dir`:
// those whose process is gone on this machine. Once per directory and process: a writer that dies
// later is another process's to clean up.
void remove_stale_temporaries(const std::filesystem::path& dir) {
  static std::mutex mutex;
  static std::set<std::string> cleaned;
  {
    std::error_code error;
    const std::filesystem::path key =
        std::filesystem::weakly_canonical(dir.empty() ? std::filesystem::path(".") : dir, error);
    const std::lock_guard<std::mutex> lock(mutex);
    if (!cleaned.insert(error ? dir.string() : key.string()).second) return;
  }
  std::error_code error;
  std::filesystem::directory_iterator it(dir.empty() ? std::filesystem::path(".") : dir, error);
  for (; !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    const std::size_t tag = name.rfind(".tmp-");
    if (name.size() < 2 || name[0] != '.' || tag == std::string::npos || tag == 0) continue;
    const std::string rest = name.substr(tag + 5);  // PID-N
    const std::size_t dash = rest.find('-');
    auto digits = [](const std::string& text) {
      return !text.empty() && text.size() <= 18 &&
             std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (dash == std::string::npos || !digits(rest.substr(0, dash)) ||
        !digits(rest.substr(dash + 1)))
      continue;
    const long long pid = std::stoll(rest.substr(0, dash));
    if (pid <= 0 || pid == ::getpid() || pid > std::numeric_limits<pid_t>::max()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or unknown
    std::error_code ignored;
    std::filesystem::remove(it->path(), ignored);
  }
}

}  // namespace

void write_file_atomically(const std::filesystem::path& path, const std::vector<char>& bytes) {
  static std::atomic<std::uint64_t> counter{0};
  const std::string target = path.string();
  const std::filesystem::path dir = path.parent_path();
  std::error_code error;
  if (!dir.empty()) std::filesystem::create_directories(dir, error);
  if (error)
    throw CheckpointError(target, "its directory cannot be created (" + error.message() +
                                      "); choose a writable location");
  remove_stale_temporaries(dir);
  std::string name = ".";
  name += path.filename().string();
  name += ".tmp-";
  name += std::to_string(::getpid());
  name += '-';
  name += std::to_string(counter.fetch_add(1));
  const std::filesystem::path temporary = dir / name;
  auto fail = [&](const std::string& what) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    throw CheckpointError(
        target, what + " (" + errno_text(saved) + "); the previous file, if any, is unchanged");
  };
  {
    Fd file{::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (file.fd < 0) fail("cannot create the temporary file " + temporary.string());
    std::size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t n = ::write(file.fd, bytes.data() + written, bytes.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("cannot write the temporary file");
      }
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(file.fd) != 0) fail("cannot sync the temporary file to disk");
    const int fd = file.fd;
    file.fd = -1;
    if (::close(fd) != 0) fail("cannot close the temporary file");
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) fail("cannot rename the temporary file");
  fsync_directory(dir, target);
}

void write_checkpoint_file(const std::filesystem::path& path, const c10::IValue& state) {
  write_file_atomically(path, encode_checkpoint(state));
}

c10::IValue read_checkpoint_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code error;
  if (!std::filesystem::exists(path, error))
    throw CheckpointError(name, "no such file; check the path (or pass \"last\" / \"best\")");
  if (std::filesystem::is_directory(path, error))
    throw CheckpointError(name, "is a directory; pass a checkpoint file inside it");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw CheckpointError(name, "cannot be opened for reading; check its permissions");
  // One read of the whole file, not a byte at a time through istreambuf_iterator: checkpoints
  // are often hundreds of MB.
  const std::streamoff size = in.tellg();
  if (size < 0) throw CheckpointError(name, "its size cannot be read");
  std::vector<char> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  if (!in.read(bytes.data(), size) || in.gcount() != size)
    throw CheckpointError(name, "could not be read completely");
  return decode_checkpoint(bytes, name);
}

}  // namespace hookline
