#include "hookline/core/loops/checkpoint_values.hpp"

#include "hookline/core/checkpoint_io.hpp"

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>

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

[[noreturn]] void rethrow_as_checkpoint_error(const std::string& path, const std::string& during) {
  try {
    throw;
  } catch (const CheckpointError&) {
    throw;
  } catch (const c10::Error& e) {
    throw CheckpointError(path, during + ": " + e.what_without_backtrace());
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
