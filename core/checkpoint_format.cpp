#include "hookline/core/checkpoint_format.hpp"

#include "hookline/core/checkpoint_io.hpp"
#include "hookline/core/console.hpp"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <map>
#include <optional>

namespace hookline::detail {

namespace {

// LibTorch's unpickler trusts its input: a damaged payload (with matching checksums, so crafted
// or written by a broken writer) can crash it, e.g. a GLOBAL naming a "__torch__" class makes it
// parse a type from garbage (found by the checkpoint mutation test). Before decoding, the
// payload's pickle is checked to use only what torch::jit::pickle_save writes: protocol-2 opcodes
// with in-bounds arguments, globals from a short list, memo entries in sequence, and storage
// references of pickle_save's form. `storages` receives, for each storage record, the bytes the
// pickle says it holds (the unpickler trusts that count too: checked against the record later).
// Returns the problem, or "" if none.
std::string check_pickle(const char* p, std::size_t n,
                         std::map<std::string, std::uint64_t>& storages) {
  // What an opcode pushed, when it is one of the simple values a storage reference is made of.
  struct Token {
    enum Kind { other, text, global, integer } kind = other;
    std::string value;  // text; a global as "module.name"
    std::int64_t number = 0;
  };
  auto little_endian = [&](std::size_t at, std::size_t width) {
    std::uint64_t v = 0;
    for (std::size_t i = width; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(p[at + i]);
    return v;
  };
  auto signed_of = [](std::uint64_t v, std::size_t width) {
    if (width < 8 && (v >> (8 * width - 1)) & 1u) v |= ~std::uint64_t{0} << (8 * width);
    return static_cast<std::int64_t>(v);
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
  static const std::map<std::string, std::uint64_t> item_sizes{
      {"torch.DoubleStorage", 8},       {"torch.FloatStorage", 4},
      {"torch.HalfStorage", 2},         {"torch.BFloat16Storage", 2},
      {"torch.LongStorage", 8},         {"torch.IntStorage", 4},
      {"torch.ShortStorage", 2},        {"torch.CharStorage", 1},
      {"torch.ByteStorage", 1},         {"torch.BoolStorage", 1},
      {"torch.ComplexFloatStorage", 8}, {"torch.ComplexDoubleStorage", 16}};

  std::vector<Token> memo;  // pickle_save numbers memo entries 0, 1, 2, ... as it puts them
  std::vector<std::optional<std::vector<Token>>> groups;  // open MARKs: simple items, or none
  std::optional<std::vector<Token>> tuple;                // what the last TUPLE closed
  std::optional<Token> last_pushed;                       // by the previous opcode, if simple
  unsigned char previous = 0;
  std::size_t at = 0;
  while (at < n) {
    const auto op = static_cast<unsigned char>(p[at++]);
    std::size_t arg = 0;  // argument bytes
    std::optional<Token> pushed;
    switch (op) {
      case '.':  // STOP
        return at == n ? "" : "data after the end of the pickle";
      case '(':  // MARK
        groups.emplace_back(std::vector<Token>());
        break;
      case 't':  // TUPLE
        if (groups.empty()) return "a TUPLE without a MARK";
        tuple = std::move(groups.back());
        groups.pop_back();
        break;
      case 'Q': {  // BINPERSID: ('storage', torch.<T>Storage, key, location, numel)
        const bool ok = previous == 't' && tuple && tuple->size() == 5 &&
                        (*tuple)[0].kind == Token::text && (*tuple)[0].value == "storage" &&
                        (*tuple)[1].kind == Token::global && item_sizes.count((*tuple)[1].value) &&
                        (*tuple)[2].kind == Token::text && (*tuple)[3].kind == Token::text &&
                        (*tuple)[4].kind == Token::integer && (*tuple)[4].number >= 0;
        if (!ok) return "a storage reference hookline never writes";
        std::uint64_t bytes = 0;
        if (__builtin_mul_overflow(static_cast<std::uint64_t>((*tuple)[4].number),
                                   item_sizes.at((*tuple)[1].value), &bytes))
          return "a storage of impossible size";
        std::uint64_t& needed = storages[(*tuple)[2].value];
        needed = std::max(needed, bytes);
        break;
      }
      case ')':
      case '}':
      case 's':
      case 'u':
      case ']':
      case 'a':
      case 'e':
      case 'N':
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
        // The unpickler sizes its memo table by the index it is given, so a damaged one (up to
        // 2^32) would make it allocate gigabytes (found by fuzz_checkpoint).
        const std::size_t width = (op == 'q' || op == 'h') ? 1 : 4;
        if (at + width > n) return "truncated";
        const auto index = static_cast<std::size_t>(little_endian(at, width));
        at += width;
        if (op == 'q' || op == 'r') {
          if (index > memo.size()) return "a memo index out of sequence";
          // A put keeps what the previous opcode pushed, if that was a simple value.
          Token kept;
          if (last_pushed) kept = *last_pushed;
          if (index == memo.size())
            memo.push_back(kept);
          else
            memo[index] = kept;
          previous = op;
          continue;  // pushes nothing; keeps `last_pushed`
        }
        if (index >= memo.size()) return "a memo reference to nothing";
        pushed = memo[index];
        break;
      }
      case 0x80:  // PROTO
        arg = 1;
        break;
      case 'K':    // BININT1
      case 'M':    // BININT2
      case 'J':    // BININT
      case 'G': {  // BINFLOAT
        const std::size_t width = op == 'K' ? 1 : op == 'M' ? 2 : op == 'J' ? 4 : 8;
        if (at + width > n) return "truncated";
        if (op != 'G') {
          Token t;
          t.kind = Token::integer;
          const std::uint64_t v = little_endian(at, width);
          t.number = op == 'J' ? signed_of(v, 4) : static_cast<std::int64_t>(v);
          pushed = t;
        }
        arg = width;
        break;
      }
      case 0x8a: {  // LONG1: 1-byte length, then a little-endian two's complement integer
        if (at + 1 > n) return "truncated";
        const std::size_t width = static_cast<unsigned char>(p[at]);
        if (width > n - at - 1) return "truncated";
        if (width >= 1 && width <= 8) {
          Token t;
          t.kind = Token::integer;
          t.number = signed_of(little_endian(at + 1, width), width);
          pushed = t;
        }
        arg = 1 + width;
        break;
      }
      case 'U':
      case 'C':  // SHORT_BINSTRING, SHORT_BINBYTES: 1-byte length
        if (at + 1 > n) return "truncated";
        arg = 1 + static_cast<unsigned char>(p[at]);
        break;
      case 'X':
      case 'T':
      case 'B': {  // BINUNICODE, BINSTRING, BINBYTES: 4-byte length
        if (at + 4 > n) return "truncated";
        const auto length = static_cast<std::size_t>(little_endian(at, 4));
        if (length > n - at - 4) return "truncated";
        if (op == 'X') {
          Token t;
          t.kind = Token::text;
          t.value.assign(p + at + 4, length);
          pushed = t;
        }
        arg = 4 + length;
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        const char* end = p + n;
        const char* m = std::find(p + at, end, '\n');
        if (m == end) return "truncated";
        const char* q = std::find(m + 1, end, '\n');
        if (q == end) return "truncated";
        const std::string module(p + at, m), name(m + 1, q);
        if (!allowed_global(module, name))
          return "it refers to '" + module + "." + name + "', which hookline never writes";
        Token t;
        t.kind = Token::global;
        t.value = module + "." + name;
        pushed = t;
        at = static_cast<std::size_t>(q - p);  // the final '\n' is skipped below
        arg = 1;
        break;
      }
      default:
        return "pickle opcode " + std::to_string(op) + " at byte " + std::to_string(at - 1) +
               ", which hookline never writes";
    }
    if (arg > n - at) return "truncated";
    at += arg;
    // A MARK group stays simple while only simple values are pushed into it.
    if (!groups.empty() && groups.back() && op != '(') {
      if (pushed)
        groups.back()->push_back(*pushed);
      else
        groups.back().reset();
    }
    last_pushed = pushed;
    previous = op;
  }
  return "no STOP at its end";
}

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

c10::IValue decode_archive(const std::vector<char>& archive, const std::string& path,
                           const std::string& earlier) {
  try {
    {
      caffe2::serialize::PyTorchStreamReader reader(
          std::make_shared<BoundedReadAdapter>(archive.data(), archive.size()));
      if (!reader.hasRecord("data.pkl"))
        throw CheckpointError(path, "the archive has no 'data.pkl'" + earlier);
      const auto [pickle, size] = reader.getRecord("data.pkl");
      std::map<std::string, std::uint64_t> storages;
      std::string problem = check_pickle(static_cast<const char*>(pickle.get()), size, storages);
      // Each storage's record must hold the bytes the pickle says: the unpickler would take a
      // shorter one as it is, and tensors would read past its end (found by fuzz_checkpoint).
      for (const auto& [key, bytes] : storages) {
        if (!problem.empty()) break;
        if (!reader.hasRecord("data/" + key))
          problem = "a tensor's storage '" + key + "' is missing";
        else if (std::get<1>(reader.getRecord("data/" + key)) < bytes)
          problem = "a tensor's storage '" + key + "' is shorter than the pickle says";
      }
      if (!problem.empty())
        throw CheckpointError(path, "the archive is not one hookline writes: " + problem + earlier);
    }
    c10::IValue state = torch::jit::pickle_load(archive);
    const std::string problem = check_tensors(state);
    if (!problem.empty())
      throw CheckpointError(path, "the archive is not one hookline writes: " + problem + earlier);
    return state;
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    console().debug("decoding '{}' failed in LibTorch: {}", path,
                    c10_error ? c10_error->what_without_backtrace() : e.what());
    throw CheckpointError(
        path, "the archive cannot be decoded: its serialized data is damaged" + earlier);
  }
}

}  // namespace hookline::detail
