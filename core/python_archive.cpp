#include "hookline/core/python_archive.hpp"

#include "hookline/core/checkpoint_format.hpp"
#include "hookline/core/checkpoint_io.hpp"

#include <ATen/Functions.h>
#include <ATen/core/Dict.h>
#include <ATen/core/List.h>
#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

namespace hookline::detail {

namespace pickle_reader {

// A Python value while the pickle is read. Containers are shared (the memo refers to them and
// later opcodes fill them), as in Python, so a damaged pickle can make one contain itself: the
// reader owns every value (its arena) and values refer to each other by plain pointers.
struct Obj;
using P = Obj*;
struct Obj {
  enum Kind {
    none,
    boolean,
    integer,
    real,
    text,
    bytes,
    list,
    tuple,
    dict,
    tensor,
    global,
    object
  };
  Kind kind = none;
  bool flag = false;
  std::int64_t number = 0;
  double real_value = 0;
  std::string text_value;                // text; a global's or an object's class as "module.name"
  std::vector<P> items;                  // list, tuple; an object's list items
  std::vector<std::pair<P, P>> entries;  // dict; an object's dict items
  at::Tensor tensor_value;
  bool unreadable = false;  // an integer beyond 64 bits, bytes, a set: no C++ value
};

class Reader {
 public:
  Reader(caffe2::serialize::PyTorchStreamReader& archive, const char* p, std::size_t n,
         const std::string& path)
      : archive_(archive), p_(p), n_(n), path_(path) {}

  P run() {
    while (true) {
      if (at_ >= n_) fail("the pickle has no STOP at its end");
      const auto op = static_cast<unsigned char>(p_[at_++]);
      if (op == '.') break;
      step(op);
    }
    if (stack_.size() != 1 || !marks_.empty())
      fail("the pickle leaves " + std::to_string(stack_.size()) + " values");
    return stack_.back();
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw CheckpointError(path_, "the archive's pickle is damaged or not one torch.save writes: " +
                                     problem + "; save it again with torch.save");
  }
  const char* take(std::size_t width) {
    if (width > n_ - at_) fail("it is truncated");
    const char* out = p_ + at_;
    at_ += width;
    return out;
  }
  std::uint64_t little(std::size_t width) {
    const char* b = take(width);
    std::uint64_t v = 0;
    for (std::size_t i = width; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(b[i]);
    return v;
  }
  std::string line() {
    const char* end = static_cast<const char*>(std::memchr(p_ + at_, '\n', n_ - at_));
    if (!end) fail("it is truncated");
    std::string out(p_ + at_, end);
    at_ = static_cast<std::size_t>(end - p_) + 1;
    return out;
  }
  P pop() {
    if (stack_.empty() || (!marks_.empty() && marks_.back() >= stack_.size()))
      fail("an opcode takes a value from an empty stack");
    P out = stack_.back();
    stack_.pop_back();
    return out;
  }
  P& top() {
    if (stack_.empty()) fail("an opcode needs a value on an empty stack");
    return stack_.back();
  }
  std::vector<P> pop_mark() {
    if (marks_.empty()) fail("a MARK is missing");
    const std::size_t from = marks_.back();
    marks_.pop_back();
    std::vector<P> out(stack_.begin() + static_cast<long>(from), stack_.end());
    stack_.resize(from);
    return out;
  }
  void push(P value) {
    if (stack_.size() > 1'000'000) fail("too many values");
    stack_.push_back(value);
  }
  P make(Obj::Kind kind) {
    arena_.push_back(std::make_unique<Obj>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }
  P integer(std::int64_t v) {
    P out = make(Obj::integer);
    out->number = v;
    return out;
  }
  P string(std::string s, Obj::Kind kind = Obj::text) {
    P out = make(kind);
    out->text_value = std::move(s);
    if (kind == Obj::bytes) out->unreadable = true;
    return out;
  }
  P tuple(std::vector<P> items) {
    P out = make(Obj::tuple);
    out->items = std::move(items);
    return out;
  }
  void add_entries(P& target, std::vector<P>& flat) {
    if (flat.size() % 2 != 0) fail("SETITEMS with an odd count");
    if (target->kind != Obj::dict && target->kind != Obj::object)
      fail("SETITEMS on something that is not a dictionary");
    for (std::size_t i = 0; i < flat.size(); i += 2)
      target->entries.emplace_back(flat[i], flat[i + 1]);
  }

  void step(unsigned char op);
  P call(P callable, P args);
  P storage(P pid);
  P rebuild_tensor(const std::vector<P>& args);

  caffe2::serialize::PyTorchStreamReader& archive_;
  const char* p_;
  std::size_t n_;
  std::size_t at_ = 0;
  const std::string& path_;
  std::vector<std::unique_ptr<Obj>> arena_;  // every value read, freed with the reader
  std::vector<P> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, P> memo_;
  std::map<std::string, at::Tensor> storages_;  // by key: tensors share them as in Python
};

void Reader::step(unsigned char op) {
  switch (op) {
    case 0x80:  // PROTO
      if (little(1) > 5) fail("an unknown pickle protocol");
      return;
    case 0x95:  // FRAME (protocol 4): its length only
      take(8);
      return;
    case '(':
      marks_.push_back(stack_.size());
      return;
    case '}':
      return push(make(Obj::dict));
    case ']':
      return push(make(Obj::list));
    case ')':
      return push(tuple({}));
    case 't':
      return push(tuple(pop_mark()));
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      std::vector<P> items(op - 0x84);
      for (std::size_t i = items.size(); i-- > 0;) items[i] = pop();
      return push(tuple(std::move(items)));
    }
    case 'N':
      return push(make(Obj::none));
    case 0x88:
    case 0x89: {  // NEWTRUE, NEWFALSE
      P b = make(Obj::boolean);
      b->flag = op == 0x88;
      return push(b);
    }
    case 'K':
      return push(integer(static_cast<std::int64_t>(little(1))));
    case 'M':
      return push(integer(static_cast<std::int64_t>(little(2))));
    case 'J':
      return push(integer(static_cast<std::int32_t>(static_cast<std::uint32_t>(little(4)))));
    case 0x8a: {  // LONG1
      const std::size_t width = static_cast<std::size_t>(little(1));
      if (width > 8) {
        take(width);
        P big = make(Obj::integer);
        big->unreadable = true;
        return push(big);
      }
      std::uint64_t v = width ? little(width) : 0;
      if (width > 0 && width < 8 && ((v >> (8 * width - 1)) & 1u))
        v |= ~std::uint64_t{0} << (8 * width);
      return push(integer(static_cast<std::int64_t>(v)));
    }
    case 'G': {  // BINFLOAT: big-endian
      const char* b = take(8);
      std::uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(b[i]);
      P r = make(Obj::real);
      std::memcpy(&r->real_value, &bits, sizeof bits);
      return push(r);
    }
    case 'X':     // BINUNICODE
    case 0x8d:    // BINUNICODE8
    case 0x8c: {  // SHORT_BINUNICODE
      const std::size_t width = op == 'X' ? 4 : op == 0x8c ? 1 : 8;
      const std::uint64_t length = little(width);
      if (length > n_ - at_) fail("it is truncated");
      return push(string(std::string(take(static_cast<std::size_t>(length)), length)));
    }
    case 'U':    // SHORT_BINSTRING (Python 2 str)
    case 'T': {  // BINSTRING
      const std::uint64_t length = little(op == 'U' ? 1 : 4);
      if (length > n_ - at_) fail("it is truncated");
      return push(string(std::string(take(static_cast<std::size_t>(length)), length)));
    }
    case 'C':     // SHORT_BINBYTES
    case 'B':     // BINBYTES
    case 0x8e: {  // BINBYTES8
      const std::uint64_t length = little(op == 'C' ? 1 : op == 'B' ? 4 : 8);
      if (length > n_ - at_) fail("it is truncated");
      return push(string(std::string(take(static_cast<std::size_t>(length)), length), Obj::bytes));
    }
    case 'q':
    case 'r': {  // BINPUT, LONG_BINPUT
      const std::uint64_t index = little(op == 'q' ? 1 : 4);
      memo_[index] = top();
      return;
    }
    case 0x94:  // MEMOIZE
      memo_[memo_.size()] = top();
      return;
    case 'h':
    case 'j': {  // BINGET, LONG_BINGET
      auto it = memo_.find(little(op == 'h' ? 1 : 4));
      if (it == memo_.end()) fail("a memo entry that was never put");
      return push(it->second);
    }
    case 's': {  // SETITEM
      P value = pop();
      P key = pop();
      std::vector<P> flat{key, value};
      return add_entries(top(), flat);
    }
    case 'u': {  // SETITEMS
      std::vector<P> flat = pop_mark();
      return add_entries(top(), flat);
    }
    case 'a':
    case 'e': {  // APPEND, APPENDS
      std::vector<P> items;
      if (op == 'a')
        items.push_back(pop());
      else
        items = pop_mark();
      P& list = top();
      if (list->kind != Obj::list && list->kind != Obj::object)
        fail("APPEND to something that is not a list");
      list->items.insert(list->items.end(), items.begin(), items.end());
      return;
    }
    case 'c': {  // GLOBAL
      std::string module = line();
      std::string name = line();
      return push(string(module + "." + name, Obj::global));
    }
    case 0x93: {  // STACK_GLOBAL
      P name = pop();
      P module = pop();
      if (name->kind != Obj::text || module->kind != Obj::text) fail("a bad STACK_GLOBAL");
      return push(string(module->text_value + "." + name->text_value, Obj::global));
    }
    case 'R': {  // REDUCE
      P args = pop();
      P callable = pop();
      return push(call(callable, args));
    }
    case 0x81: {  // NEWOBJ: an instance of a Python class (its arguments are not kept)
      pop();
      P cls = pop();
      if (cls->kind != Obj::global) fail("NEWOBJ of something that is not a class");
      return push(string(cls->text_value, Obj::object));
    }
    case 'b': {  // BUILD: an object's state (an OrderedDict's `_metadata`, say), not kept
      pop();
      top();
      return;
    }
    case 'Q':  // BINPERSID
      return push(storage(pop()));
    case '0':  // POP
      pop();
      return;
    case '2':  // DUP
      return push(top());
    default:
      fail("pickle opcode " + std::to_string(op) + " at byte " + std::to_string(at_ - 1));
  }
}

P Reader::call(P callable, P args) {
  if (callable->kind != Obj::global) fail("REDUCE of something that is not a global");
  if (args->kind != Obj::tuple) fail("REDUCE with arguments that are not a tuple");
  const std::string& name = callable->text_value;
  const std::vector<P>& a = args->items;
  if (name == "collections.OrderedDict" && a.empty()) return make(Obj::dict);
  if (name == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(a);
  if ((name == "torch._utils._rebuild_parameter" ||
       name == "torch._utils._rebuild_parameter_with_state") &&
      !a.empty() && a[0]->kind == Obj::tensor)
    return a[0];
  if (name == "torch.jit._pickle.restore_type_tag" && a.size() == 2) return a[0];
  if ((name == "torch.jit._pickle.build_intlist" || name == "torch.jit._pickle.build_doublelist" ||
       name == "torch.jit._pickle.build_boollist" ||
       name == "torch.jit._pickle.build_tensorlist") &&
      a.size() == 1 && a[0]->kind == Obj::list)
    return a[0];
  if (name == "torch.device" && !a.empty() && a[0]->kind == Obj::text) {
    std::string device = a[0]->text_value;
    if (a.size() > 1 && a[1]->kind == Obj::integer) device += ":" + std::to_string(a[1]->number);
    return string(device);
  }
  if (name == "torch.Size" && a.size() == 1 && a[0]->kind == Obj::tuple) return a[0];
  if (name == "copyreg._reconstructor" && !a.empty() && a[0]->kind == Obj::global)
    return string(a[0]->text_value, Obj::object);
  return string(name, Obj::object);  // a Python object: kept only if it turns out to be a dict
}

P Reader::storage(P pid) {
  static const std::map<std::string, at::ScalarType> types{
      {"torch.DoubleStorage", at::kDouble},
      {"torch.FloatStorage", at::kFloat},
      {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},
      {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},
      {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool},
      {"torch.ComplexFloatStorage", at::kComplexFloat},
      {"torch.ComplexDoubleStorage", at::kComplexDouble},
      {"torch.UntypedStorage", at::kByte}};
  const auto& t = pid->items;
  if (pid->kind != Obj::tuple || t.size() != 5 || t[0]->kind != Obj::text ||
      t[0]->text_value != "storage" || t[1]->kind != Obj::global || t[2]->kind != Obj::text ||
      t[4]->kind != Obj::integer || t[4]->number < 0 || !types.count(t[1]->text_value))
    fail("a storage reference of an unknown form");
  const at::ScalarType type = types.at(t[1]->text_value);
  const std::string& key = t[2]->text_value;
  auto it = storages_.find(key);
  if (it == storages_.end()) {
    const std::string record = "data/" + key;
    if (!archive_.hasRecord(record)) fail("a tensor's storage '" + key + "' is missing");
    auto [data, size] = archive_.getRecord(record);
    const std::int64_t item = static_cast<std::int64_t>(c10::elementSize(type));
    std::uint64_t needed = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(t[4]->number),
                               static_cast<std::uint64_t>(item), &needed) ||
        size < needed)
      fail("a tensor's storage '" + key + "' is shorter than the pickle says");
    at::Tensor flat = at::empty({t[4]->number}, at::TensorOptions().dtype(type));
    if (needed) std::memcpy(flat.data_ptr(), data.get(), needed);
    it = storages_.emplace(key, flat).first;
  }
  P out = make(Obj::tensor);
  out->tensor_value = it->second;
  return out;
}

P Reader::rebuild_tensor(const std::vector<P>& a) {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  if (a.size() < 4 || a[0]->kind != Obj::tensor || a[1]->kind != Obj::integer ||
      a[2]->kind != Obj::tuple || a[3]->kind != Obj::tuple ||
      a[2]->items.size() != a[3]->items.size())
    fail("a tensor of an unknown form");
  const at::Tensor& flat = a[0]->tensor_value;
  std::vector<std::int64_t> sizes, strides;
  std::int64_t last = a[1]->number;  // the last element's index in the storage
  bool bad = last < 0;
  bool empty = false;
  for (std::size_t d = 0; d < a[2]->items.size(); ++d) {
    const P& size = a[2]->items[d];
    const P& stride = a[3]->items[d];
    if (size->kind != Obj::integer || stride->kind != Obj::integer || size->number < 0 ||
        stride->number < 0)
      fail("a tensor with a bad shape");
    sizes.push_back(size->number);
    strides.push_back(stride->number);
    empty |= size->number == 0;
    std::int64_t span = 0;
    bad |=
        __builtin_mul_overflow(std::max<std::int64_t>(size->number - 1, 0), stride->number, &span);
    bad |= __builtin_add_overflow(last, span, &last);
  }
  if (bad || (!empty && last >= flat.numel())) fail("a tensor reaches past the end of its storage");
  P out = make(Obj::tensor);
  out->tensor_value =
      empty ? at::empty(sizes, flat.options()) : flat.as_strided(sizes, strides, a[1]->number);
  return out;
}

// Plain values of the read objects, with each one that has none noted by its place.
class Converter {
 public:
  explicit Converter(std::vector<std::string>& notes) : notes_(notes) {}

  c10::IValue value(P o, const std::string& where, int depth = 0) {
    if (depth > 256) throw std::invalid_argument("values nested more than 256 deep");
    // A value met again (shared in Python) is the same value here: converting it again would
    // copy it, and a damaged pickle can share values so that the copies grow exponentially.
    auto seen = converted_.find(o);
    if (seen != converted_.end()) return seen->second;
    c10::IValue out = convert(o, where, depth);
    converted_.emplace(o, out);
    return out;
  }

 private:
  c10::IValue convert(P o, const std::string& where, int depth) {
    auto drop = [&](const std::string& what) {
      notes_.push_back((where.empty() ? std::string("the checkpoint") : where) + ": " + what +
                       " (no C++ value; read as None)");
      return c10::IValue();
    };
    if (o->unreadable)
      return drop(o->kind == Obj::bytes ? "Python bytes" : "an integer beyond 64 bits");
    switch (o->kind) {
      case Obj::none:
        return {};
      case Obj::boolean:
        return o->flag;
      case Obj::integer:
        return o->number;
      case Obj::real:
        return o->real_value;
      case Obj::text:
        return o->text_value;
      case Obj::bytes:
        return drop("Python bytes");
      case Obj::tensor:
        return o->tensor_value;
      case Obj::global:
        return drop("a Python class or function '" + o->text_value + "'");
      case Obj::list: {
        c10::impl::GenericList out(c10::AnyType::get());
        for (std::size_t i = 0; i < o->items.size(); ++i)
          out.push_back(value(o->items[i], where + "[" + std::to_string(i) + "]", depth + 1));
        return out;
      }
      case Obj::tuple: {
        std::vector<c10::IValue> out;
        for (std::size_t i = 0; i < o->items.size(); ++i)
          out.push_back(value(o->items[i], where + "[" + std::to_string(i) + "]", depth + 1));
        return c10::ivalue::Tuple::create(std::move(out));
      }
      case Obj::dict:
        return dict(o, where, depth);
      case Obj::object:
        if (!o->entries.empty()) {
          notes_.push_back((where.empty() ? std::string("the checkpoint") : where) +
                           ": a Python '" + o->text_value + "' (read as a plain dict)");
          return dict(o, where, depth);
        }
        return drop("a Python object '" + o->text_value + "'");
    }
    return {};
  }

  c10::IValue dict(P o, const std::string& where, int depth) {
    bool strings = true, integers = true;
    for (const auto& [k, v] : o->entries) {
      strings &= k->kind == Obj::text;
      integers &= k->kind == Obj::integer && !k->unreadable;
    }
    const c10::TypePtr key_type = integers && !o->entries.empty()
                                      ? c10::TypePtr(c10::IntType::get())
                                      : c10::TypePtr(c10::StringType::get());
    c10::impl::GenericDict out(key_type, c10::AnyType::get());
    for (const auto& [k, v] : o->entries) {
      std::string name;
      if (k->kind == Obj::text)
        name = k->text_value;
      else if (k->kind == Obj::integer)
        name = std::to_string(k->number);
      else
        name = "<key>";
      const std::string inner = where.empty() ? name : where + "." + name;
      if (!strings && !integers) {
        notes_.push_back(inner +
                         ": a key that is neither a string nor an integer (entry left out)");
        continue;
      }
      c10::IValue key = integers ? c10::IValue(k->number) : c10::IValue(k->text_value);
      out.insert_or_assign(std::move(key), value(v, inner, depth + 1));
    }
    return out;
  }

  std::vector<std::string>& notes_;
  std::unordered_map<P, c10::IValue> converted_;
};

}  // namespace pickle_reader

PythonArchive read_python_archive(const char* data, std::size_t size, const std::string& path) {
  PythonArchive out;
  try {
    caffe2::serialize::PyTorchStreamReader archive(
        std::make_shared<BoundedReadAdapter>(data, size));
    if (archive.hasRecord("byteorder")) {
      auto [order, length] = archive.getRecord("byteorder");
      if (std::string(static_cast<const char*>(order.get()), length) != "little")
        throw CheckpointError(path,
                              "its tensors are stored big-endian; save it on a "
                              "little-endian machine");
    }
    if (!archive.hasRecord("data.pkl"))
      throw CheckpointError(path, "the archive has no 'data.pkl': it is not one torch.save wrote");
    auto [pickle, length] = archive.getRecord("data.pkl");
    pickle_reader::Reader reader(archive, static_cast<const char*>(pickle.get()), length, path);
    const pickle_reader::P root = reader.run();
    pickle_reader::Converter convert(out.dropped);
    out.value = convert.value(root, "");
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw CheckpointError(path, "the archive cannot be read (" + what +
                                    "); is it a file torch.save wrote, complete?");
  }
  return out;
}

}  // namespace hookline::detail
