#include "hookline/core/loops/checkpoint_values.hpp"

#include "hookline/core/checkpoint_io.hpp"
#include "hookline/core/console.hpp"

#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>

#include <map>
#include <stdexcept>

namespace hookline::detail {

c10::impl::GenericDict new_dict() {
  return c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get());
}

std::vector<std::pair<std::string, at::Tensor>> module_tensors(torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : module.named_parameters(true)) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(true)) out.emplace_back(item.key(), item.value());
  return out;
}

c10::IValue deep_copy(const c10::IValue& value) {
  if (value.isTensor()) {
    const at::Tensor& t = value.toTensor();
    return t.defined() ? c10::IValue(t.detach().clone()) : value;
  }
  if (value.isGenericDict()) {
    const Dict in = value.toGenericDict();
    Dict out(in.keyType(), in.valueType());
    for (const auto& entry : in) out.insert(entry.key(), deep_copy(entry.value()));
    return out;
  }
  if (value.isList()) {
    const c10::List<c10::IValue> in = value.toList();
    c10::impl::GenericList out(in.elementType());
    for (const c10::IValue& element : in) out.push_back(deep_copy(element));
    return out;
  }
  if (value.isTuple()) {
    std::vector<c10::IValue> elements;
    for (const c10::IValue& element : value.toTupleRef().elements())
      elements.push_back(deep_copy(element));
    return c10::ivalue::Tuple::create(std::move(elements));
  }
  return value;
}

const c10::IValue& field(const Dict& dict, const std::string& key, const std::string& where,
                         const std::string& path) {
  auto it = dict.find(key);
  if (it == dict.end())
    throw CheckpointError(
        path, where + " has no '" + key + "'; the file was not written by this hookline version");
  return it->value();
}

std::int64_t int_field(const Dict& dict, const std::string& key, const std::string& where,
                       const std::string& path) {
  const c10::IValue& v = field(dict, key, where, path);
  if (!v.isInt()) throw CheckpointError(path, where + "'" + key + "' is not an integer");
  return v.toInt();
}

bool bool_field(const Dict& dict, const std::string& key, const std::string& where,
                const std::string& path) {
  const c10::IValue& v = field(dict, key, where, path);
  if (!v.isBool()) throw CheckpointError(path, where + "'" + key + "' is not a boolean");
  return v.toBool();
}

Dict dict_field(const Dict& dict, const std::string& key, const std::string& where,
                const std::string& path) {
  const c10::IValue& v = field(dict, key, where, path);
  if (!v.isGenericDict()) throw CheckpointError(path, where + "'" + key + "' is not a dictionary");
  return v.toGenericDict();
}

namespace {
// EpochProgress's flags by their keys in "epoch_progress" (after "batches_done"), in file order.
constexpr std::pair<const char*, bool EpochProgress::*> kProgressFlags[] = {
    {"tail_pending", &EpochProgress::tail_pending},
    {"last_ran_step", &EpochProgress::last_ran_step},
    {"last_stepped", &EpochProgress::last_stepped},
    {"validated", &EpochProgress::validated},
    {"reached_last_batch", &EpochProgress::reached_last_batch},
    {"epoch_end_done", &EpochProgress::epoch_end_done},
};
}  // namespace

Dict epoch_progress_dict(const EpochProgress& progress) {
  Dict out = new_dict();
  out.insert("batches_done", progress.batches_done);
  for (const auto& [key, flag] : kProgressFlags) out.insert(key, progress.*flag);
  return out;
}

LoopPosition read_loop_position(const Dict& fit_loop, std::int64_t epoch, const std::string& path) {
  LoopPosition out;
  const std::string where = "'loops.fit_loop.epoch_progress' ";
  const Dict progress = dict_field(fit_loop, "epoch_progress", "'loops.fit_loop' ", path);
  EpochProgress& p = out.progress;
  p.batches_done = int_field(progress, "batches_done", where, path);
  for (const auto& [key, flag] : kProgressFlags) p.*flag = bool_field(progress, key, where, path);
  if (p.batches_done < 0)
    throw CheckpointError(path, where + "'batches_done' is " + std::to_string(p.batches_done) +
                                    "; a count of batches cannot be negative");
  if (p.tail_pending && p.batches_done == 0)
    throw CheckpointError(path, where +
                                    "'tail_pending' is set but 'batches_done' is 0: no batch "
                                    "can be pending before the first");
  if ((p.last_stepped && !p.last_ran_step) || (p.tail_pending && p.epoch_end_done))
    throw CheckpointError(path, where +
                                    "'last_stepped', 'last_ran_step', 'tail_pending' and "
                                    "'epoch_end_done' contradict each other");
  if (!fit_loop.contains("train_loader")) return out;
  const std::string at = "'loops.fit_loop.train_loader' ";
  const Dict loader = dict_field(fit_loop, "train_loader", "'loops.fit_loop' ", path);
  data::DataLoaderState state;
  state.epoch = int_field(loader, "epoch", at, path);
  state.batches_yielded = int_field(loader, "batches_yielded", at, path);
  state.seed = static_cast<std::uint64_t>(int_field(loader, "seed", at, path));
  if (state.epoch != epoch)
    throw CheckpointError(path, at + "'epoch' is " + std::to_string(state.epoch) +
                                    " but the checkpoint was saved in epoch " +
                                    std::to_string(epoch));
  if (state.batches_yielded < 0)
    throw CheckpointError(path, at + "'batches_yielded' is " +
                                    std::to_string(state.batches_yielded) +
                                    "; a count of batches cannot be negative");
  // Until the epoch's end the loader's position is the loop's (dump writes it so).
  if (!p.epoch_end_done && state.batches_yielded != p.batches_done)
    throw CheckpointError(path, at + "'batches_yielded' is " +
                                    std::to_string(state.batches_yielded) + " but " + where +
                                    "'batches_done' is " + std::to_string(p.batches_done) +
                                    "; they must agree inside an epoch");
  out.loader = state;
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> read_grads(const Dict& fit_loop,
                                                           torch::nn::Module& module,
                                                           const std::string& name,
                                                           const std::string& path) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (!fit_loop.contains("grads")) return out;
  std::map<std::string, at::Tensor> parameters;
  for (const auto& item : module.named_parameters(true))
    parameters.emplace(item.key(), item.value());
  for (const auto& entry : dict_field(fit_loop, "grads", "'loops.fit_loop' ", path)) {
    const std::string key = entry.key().isString() ? entry.key().toStringRef() : "";
    auto it = parameters.find(key);
    if (it == parameters.end() || !entry.value().isTensor() ||
        entry.value().toTensor().sizes() != it->second.sizes() ||
        entry.value().toTensor().scalar_type() != it->second.scalar_type())
      throw CheckpointError(path, "'loops.fit_loop.grads' holds '" + key +
                                      "', which is not the gradient of a parameter of " + name);
    out.emplace_back(key, entry.value().toTensor());
  }
  return out;
}

void set_grads(torch::nn::Module& module,
               const std::vector<std::pair<std::string, at::Tensor>>& grads) {
  if (grads.empty()) return;
  at::NoGradGuard no_grad;
  const std::map<std::string, at::Tensor> saved(grads.begin(), grads.end());
  for (auto& item : module.named_parameters(true)) {
    auto it = saved.find(item.key());
    if (it != saved.end())
      item.value().mutable_grad() = it->second.to(item.value().device()).clone();
  }
}

std::string libtorch_failure(const std::exception& error) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&error);
  console().debug("LibTorch's error: {}",
                  c10_error ? c10_error->what_without_backtrace() : error.what());
  return "a value in it does not have the type, shape or size LibTorch expects";
}

[[noreturn]] void rethrow_as_checkpoint_error(const std::string& path, const std::string& during) {
  try {
    throw;
  } catch (const CheckpointError&) {
    throw;
  } catch (const c10::Error& e) {
    throw CheckpointError(path, during + ": " + libtorch_failure(e));
  } catch (const std::out_of_range& e) {
    throw CheckpointError(path, during + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(path, during + ": " + e.what());
  }
}

std::vector<at::Generator> cuda_generators() {
  std::vector<at::Generator> out;
  if (!at::hasCUDA()) return out;
  const auto n = static_cast<c10::DeviceIndex>(at::getNumGPUs());
  for (c10::DeviceIndex i = 0; i < n; ++i)
    out.push_back(at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, i)));
  return out;
}

}  // namespace hookline::detail
