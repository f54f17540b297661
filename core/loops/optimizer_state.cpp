#include "hookline/core/loops/optimizer_state.hpp"

#include "hookline/core/checkpoint_io.hpp"
#include "hookline/core/loops/checkpoint_values.hpp"

#include <ATen/core/Dict.h>
#include <ATen/core/List.h>
#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <map>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace hookline::detail {

namespace {

using Dict = c10::impl::GenericDict;
using StateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;

Dict string_dict() {
  return Dict(c10::StringType::get(), c10::AnyType::get());
}

// LibTorch keys an optimizer's state by its parameter's TensorImpl: as a string in 1.x, as the
// pointer itself in 2.x.
template <class Key = StateMap::key_type>
Key state_key(const at::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>)
    return c10::guts::to_string(param.unsafeGetTensorImpl());
  else
    return static_cast<Key>(param.unsafeGetTensorImpl());
}

// ---- plain values --------------------------------------------------------------------------

c10::IValue tensor_or_none(const at::Tensor& t) {
  return t.defined() ? c10::IValue(t.detach()) : c10::IValue();
}

// Reads the fields of one saved dictionary (a parameter group's options or one parameter's
// state); errors name the optimizer, the part and the field.
class Fields {
 public:
  Fields(const c10::IValue& value, std::string where, const std::string& path,
         const at::Tensor* param = nullptr)
      : where_(std::move(where)), path_(path), param_(param) {
    if (!value.isGenericDict()) fail("is not a dictionary");
    dict_ = value.toGenericDict();
  }

  double real(const char* key) const {
    const c10::IValue& v = at(key);
    if (!v.isDouble() && !v.isInt()) fail(key, "is not a number");
    const double out = v.isDouble() ? v.toDouble() : static_cast<double>(v.toInt());
    if (!std::isfinite(out)) fail(key, "is not finite");
    return out;
  }
  bool flag(const char* key) const {
    const c10::IValue& v = at(key);
    if (!v.isBool()) fail(key, "is not a boolean");
    return v.toBool();
  }
  std::int64_t count(const char* key) const {
    const c10::IValue& v = at(key);
    // PyTorch 1.12+ keeps Adam's "step" as a one-element float tensor.
    if (v.isTensor() && v.toTensor().defined() && v.toTensor().numel() == 1) {
      const double x = v.toTensor().item<double>();
      if (x >= 0 && x < 9.0e15 && x == std::floor(x)) return static_cast<std::int64_t>(x);
    }
    if (!v.isInt() || v.toInt() < 0) fail(key, "is not a count (an integer >= 0)");
    return v.toInt();
  }
  std::tuple<double, double> pair(const char* key) const {
    const c10::IValue& v = at(key);
    if (!v.isTuple() || v.toTupleRef().elements().size() != 2) fail(key, "is not a pair");
    const auto& e = v.toTupleRef().elements();
    for (const c10::IValue& x : e)
      if (!x.isDouble() || !std::isfinite(x.toDouble())) fail(key, "is not a pair of numbers");
    return {e[0].toDouble(), e[1].toDouble()};
  }
  // A state tensor: shaped like the parameter, of a floating type; returned as a copy with the
  // parameter's type and device. None or no entry (when `optional`) give an undefined tensor.
  at::Tensor tensor(const char* key, bool optional = false) const {
    if (optional && dict_.find(key) == dict_.end()) return {};  // PyTorch leaves unused ones out
    const c10::IValue& v = at(key);
    if (v.isNone() && optional) return {};
    if (!v.isTensor() || !v.toTensor().defined()) fail(key, "is not a tensor");
    const at::Tensor& t = v.toTensor();
    if (t.sizes() != param_->sizes())
      fail(key, "has shape " + c10::str(t.sizes()) + " but the parameter has shape " +
                    c10::str(param_->sizes()));
    if (!t.is_floating_point())
      fail(key, "is " + std::string(c10::toString(t.scalar_type())) + ", not a floating type");
    return t.to(param_->options(), /*non_blocking=*/false, /*copy=*/true);
  }
  // The parameter indices of a group.
  std::vector<std::int64_t> indices(const char* key) const {
    const c10::IValue& v = at(key);
    if (!v.isList()) fail(key, "is not a list");
    std::vector<std::int64_t> out;
    for (const c10::IValue& x : v.toListRef()) {
      if (!x.isInt()) fail(key, "holds something that is not an index");
      out.push_back(x.toInt());
    }
    return out;
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw CheckpointError(path_, where_ + " " + problem);
  }
  [[noreturn]] void fail(const char* key, const std::string& problem) const {
    throw CheckpointError(path_, where_ + ": '" + key + "' " + problem);
  }

 private:
  const c10::IValue& at(const char* key) const {
    auto it = dict_.find(key);
    if (it == dict_.end()) fail(key, "is missing");
    return it->value();
  }

  Dict dict_ = string_dict();
  std::string where_;
  const std::string& path_;
  const at::Tensor* param_;
};

// How one LibTorch optimizer's options and per-parameter state become plain values and back.
// `name` is the type recorded in the checkpoint.
template <class Optim>
struct Codec;

template <>
struct Codec<torch::optim::SGD> {
  using Options = torch::optim::SGDOptions;
  using State = torch::optim::SGDParamState;
  static constexpr const char* name = "SGD";
  static void save(Dict& d, const Options& o) {
    d.insert("lr", o.lr());
    d.insert("momentum", o.momentum());
    d.insert("dampening", o.dampening());
    d.insert("weight_decay", o.weight_decay());
    d.insert("nesterov", o.nesterov());
  }
  static void load(const Fields& f, Options& o) {
    o.lr(f.real("lr"))
        .momentum(f.real("momentum"))
        .dampening(f.real("dampening"))
        .weight_decay(f.real("weight_decay"))
        .nesterov(f.flag("nesterov"));
  }
  static void save(Dict& d, const State& s) {
    d.insert("momentum_buffer", tensor_or_none(s.momentum_buffer()));
  }
  static void load(const Fields& f, State& s) {
    s.momentum_buffer(f.tensor("momentum_buffer", true));
  }
};

template <class Options, class State>
struct AdamCodec {
  static void save(Dict& d, const Options& o) {
    d.insert("lr", o.lr());
    d.insert("betas", c10::ivalue::Tuple::create(std::get<0>(o.betas()), std::get<1>(o.betas())));
    d.insert("eps", o.eps());
    d.insert("weight_decay", o.weight_decay());
    d.insert("amsgrad", o.amsgrad());
  }
  static void load(const Fields& f, Options& o) {
    o.lr(f.real("lr"))
        .betas(f.pair("betas"))
        .eps(f.real("eps"))
        .weight_decay(f.real("weight_decay"))
        .amsgrad(f.flag("amsgrad"));
  }
  static void save(Dict& d, const State& s) {
    d.insert("step", s.step());
    d.insert("exp_avg", tensor_or_none(s.exp_avg()));
    d.insert("exp_avg_sq", tensor_or_none(s.exp_avg_sq()));
    d.insert("max_exp_avg_sq", tensor_or_none(s.max_exp_avg_sq()));
  }
  static void load(const Fields& f, State& s) {
    s.step(f.count("step"));
    s.exp_avg(f.tensor("exp_avg"));
    s.exp_avg_sq(f.tensor("exp_avg_sq"));
    s.max_exp_avg_sq(f.tensor("max_exp_avg_sq", true));
  }
};

template <>
struct Codec<torch::optim::Adam>
    : AdamCodec<torch::optim::AdamOptions, torch::optim::AdamParamState> {
  using Options = torch::optim::AdamOptions;
  using State = torch::optim::AdamParamState;
  static constexpr const char* name = "Adam";
};

template <>
struct Codec<torch::optim::AdamW>
    : AdamCodec<torch::optim::AdamWOptions, torch::optim::AdamWParamState> {
  using Options = torch::optim::AdamWOptions;
  using State = torch::optim::AdamWParamState;
  static constexpr const char* name = "AdamW";
};

template <>
struct Codec<torch::optim::RMSprop> {
  using Options = torch::optim::RMSpropOptions;
  using State = torch::optim::RMSpropParamState;
  static constexpr const char* name = "RMSprop";
  static void save(Dict& d, const Options& o) {
    d.insert("lr", o.lr());
    d.insert("alpha", o.alpha());
    d.insert("eps", o.eps());
    d.insert("weight_decay", o.weight_decay());
    d.insert("momentum", o.momentum());
    d.insert("centered", o.centered());
  }
  static void load(const Fields& f, Options& o) {
    o.lr(f.real("lr"))
        .alpha(f.real("alpha"))
        .eps(f.real("eps"))
        .weight_decay(f.real("weight_decay"))
        .momentum(f.real("momentum"))
        .centered(f.flag("centered"));
  }
  static void save(Dict& d, const State& s) {
    d.insert("step", s.step());
    d.insert("square_avg", tensor_or_none(s.square_avg()));
    d.insert("momentum_buffer", tensor_or_none(s.momentum_buffer()));
    d.insert("grad_avg", tensor_or_none(s.grad_avg()));
  }
  static void load(const Fields& f, State& s) {
    s.step(f.count("step"));
    s.square_avg(f.tensor("square_avg"));
    s.momentum_buffer(f.tensor("momentum_buffer", true));
    s.grad_avg(f.tensor("grad_avg", true));
  }
};

template <>
struct Codec<torch::optim::Adagrad> {
  using Options = torch::optim::AdagradOptions;
  using State = torch::optim::AdagradParamState;
  static constexpr const char* name = "Adagrad";
  static void save(Dict& d, const Options& o) {
    d.insert("lr", o.lr());
    d.insert("lr_decay", o.lr_decay());
    d.insert("weight_decay", o.weight_decay());
    d.insert("initial_accumulator_value", o.initial_accumulator_value());
    d.insert("eps", o.eps());
  }
  static void load(const Fields& f, Options& o) {
    o.lr(f.real("lr"))
        .lr_decay(f.real("lr_decay"))
        .weight_decay(f.real("weight_decay"))
        .initial_accumulator_value(f.real("initial_accumulator_value"))
        .eps(f.real("eps"));
  }
  static void save(Dict& d, const State& s) {
    d.insert("step", s.step());
    d.insert("sum", tensor_or_none(s.sum()));
  }
  static void load(const Fields& f, State& s) {
    s.step(f.count("step"));
    s.sum(f.tensor("sum"));
  }
};

template <class Optim>
c10::IValue save_plain(const torch::optim::Optimizer& optimizer) {
  using C = Codec<Optim>;
  Dict state(c10::IntType::get(), c10::AnyType::get());
  c10::impl::GenericList groups(c10::AnyType::get());
  std::int64_t index = 0;
  for (const auto& group : optimizer.param_groups()) {
    Dict saved = string_dict();
    C::save(saved, static_cast<const typename C::Options&>(group.options()));
    c10::List<std::int64_t> params;
    for (const at::Tensor& param : group.params()) {
      auto it = optimizer.state().find(state_key(param));
      if (it != optimizer.state().end()) {
        Dict entry = string_dict();
        C::save(entry, static_cast<const typename C::State&>(*it->second));
        state.insert(index, entry);
      }
      params.push_back(index++);
    }
    saved.insert("params", params);
    groups.push_back(saved);
  }
  Dict out = string_dict();
  out.insert("type", std::string(C::name));
  out.insert("state", state);
  out.insert("param_groups", groups);
  return out;
}

template <class Optim>
std::function<void()> prepare_plain(const c10::IValue& saved, torch::optim::Optimizer& optimizer,
                                    const std::string& which, const std::string& path) {
  using C = Codec<Optim>;
  using Options = typename C::Options;
  using State = typename C::State;
  const Fields top(saved, which, path);
  const Dict dict = saved.toGenericDict();
  // PyTorch's own Optimizer.state_dict() (from Python, a Lightning checkpoint) has no "type":
  // its parameter groups' fields are checked instead.
  auto type = dict.find("type");
  if (type != dict.end() && !type->value().isString())
    top.fail("has an optimizer type that is not a string; the checkpoint is damaged");
  if (type != dict.end() && type->value().toStringRef() != C::name)
    top.fail("was saved from " + type->value().toStringRef() +
             " but configure_optimizers() gives " + C::name +
             "; configure the same optimizers as the saved run");
  auto groups_it = dict.find("param_groups");
  if (groups_it == dict.end() || !groups_it->value().isList())
    top.fail("has no list of parameter groups; the checkpoint is damaged");
  const auto saved_groups = groups_it->value().toListRef();
  auto& live = optimizer.param_groups();
  if (saved_groups.size() != live.size())
    top.fail("has " + std::to_string(saved_groups.size()) +
             " parameter groups in the checkpoint but " + std::to_string(live.size()) +
             " in configure_optimizers(); configure the same optimizers");

  std::vector<Options> options;
  std::vector<const at::Tensor*> params;  // by saved index
  for (std::size_t g = 0; g < live.size(); ++g) {
    const Fields group(saved_groups[g], which + ", parameter group " + std::to_string(g), path);
    Options o = static_cast<const Options&>(live[g].options());
    C::load(group, o);
    const std::vector<std::int64_t> indices = group.indices("params");
    const auto& live_params = live[g].params();
    if (indices.size() != live_params.size())
      group.fail("has " + std::to_string(indices.size()) + " parameters in the checkpoint but " +
                 std::to_string(live_params.size()) +
                 " now; the model or configure_optimizers() changed");
    for (std::size_t i = 0; i < indices.size(); ++i) {
      if (indices[i] != static_cast<std::int64_t>(params.size()))
        group.fail("numbers its parameters out of order; the checkpoint is damaged");
      params.push_back(&live_params[i]);
    }
    options.push_back(std::move(o));
  }

  auto state_it = dict.find("state");
  if (state_it == dict.end() || !state_it->value().isGenericDict())
    top.fail("has no per-parameter state; the checkpoint is damaged");
  std::vector<std::pair<const at::Tensor*, std::unique_ptr<State>>> states;
  for (const auto& entry : state_it->value().toGenericDict()) {
    const c10::IValue& key = entry.key();
    if (!key.isInt() || key.toInt() < 0 || key.toInt() >= static_cast<std::int64_t>(params.size()))
      top.fail("has state for a parameter it does not have; the checkpoint is damaged");
    const at::Tensor* param = params[static_cast<std::size_t>(key.toInt())];
    const Fields fields(entry.value(),
                        which + ", state of parameter " + std::to_string(key.toInt()), path, param);
    auto state = std::make_unique<State>();
    C::load(fields, *state);
    states.emplace_back(param, std::move(state));
  }

  // Everything fits. What follows only moves values into place (shared, as std::function must be
  // copyable).
  auto ready = std::make_shared<std::pair<decltype(options), decltype(states)>>(std::move(options),
                                                                                std::move(states));
  return [ready, &optimizer] {
    auto& groups = optimizer.param_groups();
    for (std::size_t g = 0; g < groups.size(); ++g)
      static_cast<Options&>(groups[g].options()) = ready->first[g];
    auto& state = optimizer.state();
    state.clear();
    for (auto& [param, value] : ready->second) state[state_key(*param)] = std::move(value);
  };
}

// ---- LibTorch's archive, for other optimizers ---------------------------------------------

at::Tensor archive_tensor(const torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  std::vector<char> bytes;
  archive.save_to([&](const void* data, std::size_t size) {
    const char* p = static_cast<const char*>(data);
    bytes.insert(bytes.end(), p, p + size);
    return size;
  });
  return at::empty({static_cast<std::int64_t>(bytes.size())}, at::kByte)
      .copy_(at::from_blob(bytes.data(), {static_cast<std::int64_t>(bytes.size())}, at::kByte));
}

torch::serialize::InputArchive archive_of(const at::Tensor& bytes) {
  torch::serialize::InputArchive archive;
  const at::Tensor contiguous = bytes.contiguous();
  archive.load_from(static_cast<const char*>(contiguous.data_ptr()),
                    static_cast<std::size_t>(contiguous.numel()));
  return archive;
}

std::int64_t read_size(torch::serialize::InputArchive& archive, const std::string& key) {
  at::Tensor t;
  archive.read(key, t);
  return t.item<std::int64_t>();
}

// Checks that a saved archive fits `optimizer`: the same parameter groups with the same sizes.
// LibTorch's own load checks less and changes the optimizer as it goes, so this runs first. (The
// state's shapes are not checked: an optimizer such as LBFGS keeps state that is not per
// parameter.)
void check_archive_fits(torch::serialize::InputArchive& archive,
                        const torch::optim::Optimizer& optimizer, const std::string& which,
                        const std::string& path) {
  torch::serialize::InputArchive groups;
  archive.read("param_groups", groups);
  const std::int64_t saved_groups = read_size(groups, "param_groups/size");
  const auto& live_groups = optimizer.param_groups();
  if (saved_groups != static_cast<std::int64_t>(live_groups.size()))
    throw CheckpointError(path, which + " has " + std::to_string(saved_groups) +
                                    " parameter groups in the checkpoint but " +
                                    std::to_string(live_groups.size()) +
                                    " in configure_optimizers(); configure the same optimizers");
  for (std::int64_t g = 0; g < saved_groups; ++g) {
    torch::serialize::InputArchive group;
    groups.read("param_groups/" + std::to_string(g), group);
    const std::int64_t n = read_size(group, "params/size");
    const std::size_t live = live_groups[static_cast<std::size_t>(g)].params().size();
    if (n != static_cast<std::int64_t>(live))
      throw CheckpointError(path, which + ", parameter group " + std::to_string(g) + " has " +
                                      std::to_string(n) + " parameters in the checkpoint but " +
                                      std::to_string(live) +
                                      " now; the model or configure_optimizers() changed");
  }
}

// LibTorch's Optimizer::load restores the per-parameter state but not the groups' options (the
// learning rate a scheduler changed, momentum, ...): those come from the same archive.
void load_group_options(torch::serialize::InputArchive& archive,
                        torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive groups;
  archive.read("param_groups", groups);
  auto& live = optimizer.param_groups();
  for (std::size_t g = 0; g < live.size(); ++g) {
    torch::serialize::InputArchive group, options;
    groups.read("param_groups/" + std::to_string(g), group);
    group.read("options", options);
    live[g].options().serialize(options);
  }
}

std::function<void()> prepare_archive(const c10::IValue& saved, torch::optim::Optimizer& optimizer,
                                      const std::string& which, const std::string& path) {
  if (!saved.isTensor() || !saved.toTensor().defined() ||
      saved.toTensor().scalar_type() != at::kByte || saved.toTensor().dim() != 1)
    throw CheckpointError(path, which + " is not LibTorch's optimizer archive (bytes); was it " +
                                    "saved from another optimizer type?");
  const at::Tensor bytes = saved.toTensor();
  try {
    torch::serialize::InputArchive archive = archive_of(bytes);
    check_archive_fits(archive, optimizer, which, path);
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    throw CheckpointError(path, which + " cannot be read: " + detail::libtorch_failure(e));
  }
  return [bytes, &optimizer] {
    torch::serialize::InputArchive archive = archive_of(bytes);
    optimizer.load(archive);
    load_group_options(archive, optimizer);
  };
}

// The plain codecs, tried in order: the first whose type the optimizer has is used; none (None,
// an empty function) for other optimizers.
template <class... Optims>
struct Known {
  static c10::IValue save(const torch::optim::Optimizer& optimizer) {
    c10::IValue out;
    auto as = [&](auto* type) {
      using Optim = std::remove_pointer_t<decltype(type)>;
      if (!dynamic_cast<const Optim*>(&optimizer)) return false;
      out = save_plain<Optim>(optimizer);
      return true;
    };
    (void)(as(static_cast<Optims*>(nullptr)) || ...);
    return out;
  }
  static std::function<void()> prepare(const c10::IValue& saved, torch::optim::Optimizer& optimizer,
                                       const std::string& which, const std::string& path) {
    std::function<void()> out;
    auto as = [&](auto* type) {
      using Optim = std::remove_pointer_t<decltype(type)>;
      if (!dynamic_cast<Optim*>(&optimizer)) return false;
      out = prepare_plain<Optim>(saved, optimizer, which + " (" + Codec<Optim>::name + ")", path);
      return true;
    };
    (void)(as(static_cast<Optims*>(nullptr)) || ...);
    return out;
  }
};
using Plain = Known<torch::optim::SGD, torch::optim::Adam, torch::optim::AdamW,
                    torch::optim::RMSprop, torch::optim::Adagrad>;

}  // namespace

c10::IValue optimizer_state(const torch::optim::Optimizer& optimizer) {
  c10::IValue plain = Plain::save(optimizer);
  return plain.isNone() ? c10::IValue(archive_tensor(optimizer)) : plain;
}

std::function<void()> prepare_optimizer_load(const c10::IValue& saved,
                                             torch::optim::Optimizer& optimizer, std::size_t index,
                                             const std::string& path) {
  const std::string which = "optimizer " + std::to_string(index);
  if (auto plain = Plain::prepare(saved, optimizer, which, path)) return plain;
  return prepare_archive(saved, optimizer, which, path);
}

}  // namespace hookline::detail
