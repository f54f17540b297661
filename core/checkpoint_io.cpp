#include "hookline/core/checkpoint_io.hpp"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <xxhash.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

namespace hookline {

namespace {

constexpr char kMagic[8] = {'H', 'K', 'L', 'N', 'C', 'K', 'P', 'T'};
constexpr std::size_t kHeaderSize = 40;

void put_u32(char* at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
void put_u64(char* at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xffu);
}
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

CheckpointError::CheckpointError(std::string path, const std::string& problem)
    : std::runtime_error("checkpoint '" + path + "': " + problem), path_(std::move(path)) {}

std::vector<char> encode_checkpoint(const c10::IValue& state) {
  return frame_checkpoint_payload(torch::jit::pickle_save(state));
}

std::vector<char> frame_checkpoint_payload(const std::vector<char>& payload) {
  std::vector<char> bytes(kHeaderSize);
  std::memcpy(bytes.data(), kMagic, sizeof kMagic);
  put_u32(bytes.data() + 8, kCheckpointFormatVersion);
  put_u32(bytes.data() + 12, static_cast<std::uint32_t>(kHeaderSize));
  put_u64(bytes.data() + 16, payload.size());
  put_u64(bytes.data() + 24, XXH3_64bits(payload.data(), payload.size()));
  put_u64(bytes.data() + 32, XXH3_64bits(bytes.data(), 32));
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  return bytes;
}

namespace {

// LibTorch's unpickler trusts its input: a damaged payload (with matching checksums, so crafted
// or written by a broken writer) can crash it, e.g. a GLOBAL naming a "__torch__" class makes it
// parse a type from garbage (found by the checkpoint mutation test). Before decoding, the
// payload's pickle is checked to use only what torch::jit::pickle_save writes: protocol-2 opcodes
// with in-bounds arguments, and globals from a short list. Returns the problem, or "" if none.
std::string check_pickle(const char* p, std::size_t n) {
  auto u32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    std::memcpy(&v, p + at, 4);  // little-endian, as pickle and x86
    return v;
  };
  auto allowed_global = [](const std::string& module, const std::string& name) {
    if (module == "torch")
      return name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0;
    if (module == "torch._utils") return name == "_rebuild_tensor_v2";
    if (module == "collections") return name == "OrderedDict";
    if (module == "torch.jit._pickle")
      return name == "restore_type_tag" || name == "build_intlist" || name == "build_tensorlist" ||
             name == "build_doublelist" || name == "build_boollist";
    return false;
  };
  std::size_t at = 0;
  std::size_t memo_size = 0;
  while (at < n) {
    const auto op = static_cast<unsigned char>(p[at++]);
    std::size_t arg = 0;  // fixed argument bytes
    switch (op) {
      case '.':  // STOP
        return at == n ? "" : "data after the end of the pickle";
      case '(':
      case 't':
      case ')':
      case '}':
      case 's':
      case 'u':
      case ']':
      case 'a':
      case 'e':
      case 'N':
      case 'Q':
      case 'R':
      case 'b':
      case 0x81:
      case 0x85:
      case 0x86:
      case 0x87:
      case 0x88:
      case 0x89:
      case 'd':
      case 'l':
        break;
      case 'q':    // BINPUT
      case 'h':    // BINGET
      case 'r':    // LONG_BINPUT
      case 'j': {  // LONG_BINGET
        // Memo indices: pickle_save numbers its memo entries 0, 1, 2, ... as it puts them. The
        // unpickler sizes its memo table by the index it is given, so a damaged one (up to 2^32)
        // would make it allocate gigabytes (found by fuzz_checkpoint).
        const std::size_t width = (op == 'q' || op == 'h') ? 1 : 4;
        if (at + width > n) return "truncated";
        const std::size_t index =
            width == 1 ? static_cast<unsigned char>(p[at]) : static_cast<std::size_t>(u32(at));
        if (op == 'q' || op == 'r') {
          if (index > memo_size) return "a memo index out of sequence";
          memo_size = std::max(memo_size, index + 1);
        } else if (index >= memo_size) {
          return "a memo reference to nothing";
        }
        at += width;
        continue;
      }
      case 0x80:
      case 'K':  // PROTO, BININT1
        arg = 1;
        break;
      case 'M':  // BININT2
        arg = 2;
        break;
      case 'J':  // BININT
        arg = 4;
        break;
      case 'G':  // BINFLOAT
        arg = 8;
        break;
      case 0x8a:
      case 'U':
      case 'C':  // LONG1, SHORT_BINSTRING, SHORT_BINBYTES: 1-byte length
        if (at + 1 > n) return "truncated";
        arg = 1 + static_cast<unsigned char>(p[at]);
        break;
      case 'X':
      case 'T':
      case 'B':  // BINUNICODE, BINSTRING, BINBYTES: 4-byte length
        if (at + 4 > n) return "truncated";
        arg = 4 + static_cast<std::size_t>(u32(at));
        break;
      case 'c': {  // GLOBAL "module\nname\n"
        const char* end = p + n;
        const char* m = std::find(p + at, end, '\n');
        if (m == end) return "truncated";
        const char* q = std::find(m + 1, end, '\n');
        if (q == end) return "truncated";
        const std::string module(p + at, m), name(m + 1, q);
        if (!allowed_global(module, name))
          return "it refers to '" + module + "." + name + "', which hookline never writes";
        at = static_cast<std::size_t>(q - p) + 1;
        continue;
      }
      default:
        return "pickle opcode " + std::to_string(op) + " at byte " + std::to_string(at - 1) +
               ", which hookline never writes";
    }
    if (arg > n - at) return "truncated";
    at += arg;
  }
  return "no STOP at its end";
}

// A read adapter over bytes in memory that never reads past them. LibTorch's MemoryReadAdapter
// copies whatever its zip reader asks for, and a damaged archive directory asks for positions
// outside the payload (found by the mutation test under UBSan); a short read here makes the zip
// reader report the archive as damaged instead.
class BoundedReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  BoundedReadAdapter(const char* data, std::size_t size) : data_(data), size_(size) {}
  std::size_t size() const override { return size_; }
  std::size_t read(std::uint64_t pos, void* buf, std::size_t n, const char*) const override {
    if (pos >= size_) return 0;
    n = std::min<std::size_t>(n, size_ - static_cast<std::size_t>(pos));
    std::memcpy(buf, data_ + pos, n);
    return n;
  }

 private:
  const char* data_;
  std::size_t size_;
};

// LibTorch's unpickler builds each tensor from the sizes, strides and offset the pickle gives,
// without checking them against the tensor's storage: in a damaged payload they could make a
// tensor that reads outside its memory. Returns the problem, or "" when every tensor lies within
// its storage.
std::string check_tensors(const c10::IValue& root) {
  std::vector<c10::IValue> pending{root};
  while (!pending.empty()) {
    const c10::IValue value = std::move(pending.back());
    pending.pop_back();
    if (value.isGenericDict()) {
      for (const auto& entry : value.toGenericDict()) {
        pending.push_back(entry.key());
        pending.push_back(entry.value());
      }
    } else if (value.isList()) {
      for (const c10::IValue& element : value.toListRef()) pending.push_back(element);
    } else if (value.isTuple()) {
      for (const c10::IValue& element : value.toTupleRef().elements()) pending.push_back(element);
    } else if (value.isTensor()) {
      const at::Tensor& t = value.toTensor();
      if (!t.defined()) continue;
      if (t.layout() != at::kStrided || !t.has_storage()) return "a tensor is not a dense one";
      if (t.numel() == 0) continue;
      // The last element's position, in elements from the start of the storage, then in bytes.
      std::int64_t last = t.storage_offset();
      if (last < 0) return "a tensor starts before its storage";
      bool overflow = false;
      for (std::int64_t d = 0; d < t.dim(); ++d) {
        std::int64_t span = 0;
        if (t.stride(d) < 0) return "a tensor has a negative stride";
        overflow |= __builtin_mul_overflow(t.size(d) - 1, t.stride(d), &span);
        overflow |= __builtin_add_overflow(last, span, &last);
      }
      std::int64_t needed = 0;
      overflow |= __builtin_add_overflow(last, 1, &needed);
      overflow |=
          __builtin_mul_overflow(needed, static_cast<std::int64_t>(t.element_size()), &needed);
      if (overflow || needed > static_cast<std::int64_t>(t.storage().nbytes()))
        return "a tensor reaches past the end of its storage";
    }
  }
  return "";
}

}  // namespace

c10::IValue decode_checkpoint(const std::vector<char>& bytes, const std::string& path) {
  const std::string earlier = "; resume from an earlier checkpoint";
  if (bytes.empty())
    throw CheckpointError(path,
                          "the file is empty (0 bytes): it was never written completely" + earlier);
  if (bytes.size() < kHeaderSize || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    if (bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0)
      throw CheckpointError(path, "the file is truncated inside its header (" +
                                      std::to_string(bytes.size()) + " of " +
                                      std::to_string(kHeaderSize) + " bytes)" + earlier);
    throw CheckpointError(path,
                          "not a hookline checkpoint (it does not start with \"HKLNCKPT\"); "
                          "pass a file written by Trainer::save_checkpoint or ModelCheckpoint");
  }
  if (XXH3_64bits(bytes.data(), 32) != get_u64(bytes.data() + 32))
    throw CheckpointError(path, "the header is corrupted (its checksum does not match)" + earlier);
  const std::uint32_t version = get_u32(bytes.data() + 8);
  if (version != kCheckpointFormatVersion)
    throw CheckpointError(path, "format version " + std::to_string(version) +
                                    ", but this hookline reads version " +
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
  try {
    std::vector<char> payload(bytes.begin() + kHeaderSize, bytes.end());
    {
      caffe2::serialize::PyTorchStreamReader reader(
          std::make_shared<BoundedReadAdapter>(payload.data(), payload.size()));
      if (!reader.hasRecord("data.pkl"))
        throw CheckpointError(path, "the payload has no 'data.pkl'" + earlier);
      const auto [pickle, size] = reader.getRecord("data.pkl");
      const std::string problem = check_pickle(static_cast<const char*>(pickle.get()), size);
      if (!problem.empty())
        throw CheckpointError(path, "the payload is not one hookline writes: " + problem + earlier);
    }
    c10::IValue state = torch::jit::pickle_load(payload);
    const std::string problem = check_tensors(state);
    if (!problem.empty())
      throw CheckpointError(path, "the payload is not one hookline writes: " + problem + earlier);
    return state;
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    throw CheckpointError(path, std::string("the payload cannot be decoded: ") + e.what());
  }
}

void write_file_atomically(const std::filesystem::path& path, const std::vector<char>& bytes) {
  static std::atomic<std::uint64_t> counter{0};
  const std::string target = path.string();
  const std::filesystem::path dir = path.parent_path();
  std::error_code error;
  if (!dir.empty()) std::filesystem::create_directories(dir, error);
  if (error)
    throw CheckpointError(target, "its directory cannot be created (" + error.message() +
                                      "); choose a writable location");
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
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(name, "cannot be opened for reading; check its permissions");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw CheckpointError(name, "could not be read completely");
  return decode_checkpoint(bytes, name);
}

}  // namespace hookline
