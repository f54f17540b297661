#include "hookline/core/script_module.hpp"

#include "hookline/core/checkpoint_io.hpp"

#include <torch/csrc/jit/serialization/import.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace hookline {

namespace {

// The holder of a dotted name's last part: `root`'s submodule path, created as plain modules
// where missing ("a.b.weight" -> root.a.b).
torch::nn::Module& holder_of(torch::nn::Module& root, const std::string& dotted,
                             std::string& leaf) {
  torch::nn::Module* at = &root;
  std::size_t from = 0;
  for (std::size_t dot = dotted.find('.'); dot != std::string::npos;
       from = dot + 1, dot = dotted.find('.', from)) {
    const std::string part = dotted.substr(from, dot - from);
    auto children = at->named_children();
    if (const auto* child = children.find(part))
      at = child->get();
    else
      at = at->register_module(part, std::make_shared<torch::nn::Module>()).get();
  }
  leaf = dotted.substr(from);
  return *at;
}

}  // namespace

ScriptModule::ScriptModule(const std::string& path, ScriptModuleOptions options, std::string name)
    : Module(std::move(name)), path_(path), options_(std::move(options)) {
  try {
    script_ = torch::jit::load(path);
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw std::invalid_argument(
        "ScriptModule: cannot load '" + path + "' (" + what.substr(0, what.find('\n')) +
        "); pass a file written by torch.jit.save(torch.jit.script(model))");
  }
  // The script's tensors become this module's, under the same names: the optimizers step, and
  // checkpoints save and load, exactly what the script computes with.
  for (const auto& item : script_.named_parameters(/*recurse=*/true)) {
    std::string leaf;
    holder_of(*this, item.name, leaf)
        .register_parameter(leaf, item.value, item.value.requires_grad());
  }
  for (const auto& item : script_.named_buffers(/*recurse=*/true)) {
    std::string leaf;
    holder_of(*this, item.name, leaf).register_buffer(leaf, item.value);
  }
  train(script_.is_training());
}

bool ScriptModule::has_method(const std::string& method) const {
  return script_.find_method(method).has_value();
}

c10::IValue ScriptModule::call(const std::string& method, std::vector<c10::IValue> inputs) {
  auto found = script_.find_method(method);
  if (!found)
    throw std::invalid_argument("ScriptModule '" + path_ + "' has no method '" + method + "'");
  return (*found)(std::move(inputs));
}

at::Tensor ScriptModule::forward(const at::Tensor& x) {
  const c10::IValue out = script_.forward({x});
  if (!out.isTensor())
    throw std::invalid_argument("ScriptModule '" + path_ + "': forward returned a " +
                                out.tagKind() + ", not a tensor; call() it instead");
  return out.toTensor();
}

void ScriptModule::train(bool on) {
  Module::train(on);
  script_.train(on);
}

StepOutput ScriptModule::run_step(const char* method, const Batch& batch, std::int64_t batch_idx,
                                  bool training) {
  c10::Dict<std::string, at::Tensor> fields;
  for (const auto& [key, tensor] : batch) fields.insert(key, tensor);
  const c10::IValue out = call(method, {fields, batch_idx});
  StepOutput result;
  if (out.isTensor()) {
    result.set("loss", out.toTensor());
  } else if (out.isGenericDict()) {
    for (const auto& entry : out.toGenericDict()) {
      if (!entry.key().isString() || !entry.value().isTensor())
        throw std::invalid_argument("ScriptModule '" + path_ + "': " + method +
                                    " must return Dict[str, Tensor]");
      result.set(entry.key().toStringRef(), entry.value().toTensor());
    }
  } else {
    throw std::invalid_argument("ScriptModule '" + path_ + "': " + method + " returned a " +
                                out.tagKind() + "; return Dict[str, Tensor] (with \"loss\")");
  }
  if (options_.log_step_outputs)
    for (const auto& [key, value] : result)
      if (value.defined() && value.numel() == 1)
        log(training && key == "loss" ? "train_loss" : key, value.detach());
  return result;
}

StepOutput ScriptModule::training_step(const Batch& batch, std::int64_t batch_idx) {
  if (has_method("training_step")) return run_step("training_step", batch, batch_idx, true);
  if (options_.training_step) return options_.training_step(*this, batch, batch_idx);
  throw std::logic_error("ScriptModule '" + path_ +
                         "' has no training_step; define it in the script (batch: Dict[str, "
                         "Tensor], batch_idx: int) -> Dict[str, Tensor], or give "
                         "ScriptModuleOptions::training_step");
}

StepOutput ScriptModule::validation_step(const Batch& batch, std::int64_t batch_idx,
                                         std::int64_t dataloader_idx) {
  if (has_method("validation_step")) return run_step("validation_step", batch, batch_idx, false);
  if (options_.validation_step) return options_.validation_step(*this, batch, batch_idx);
  return Module::validation_step(batch, batch_idx, dataloader_idx);  // says what to do
}

OptimizerConfig ScriptModule::configure_optimizers() {
  if (!has_method("configure_optimizers")) {
    if (options_.configure_optimizers) return options_.configure_optimizers(*this);
    throw std::logic_error("ScriptModule '" + path_ +
                           "' has no configure_optimizers; define it in the script (-> "
                           "Tuple[str, Dict[str, float]]) or give "
                           "ScriptModuleOptions::configure_optimizers");
  }
  const c10::IValue out = call("configure_optimizers", {});
  const std::string where = "ScriptModule '" + path_ + "': configure_optimizers ";
  if (!out.isTuple() || out.toTupleRef().elements().size() != 2 ||
      !out.toTupleRef().elements()[0].isString() || !out.toTupleRef().elements()[1].isGenericDict())
    throw std::invalid_argument(where + "must return Tuple[str, Dict[str, float]]");
  const std::string type = out.toTupleRef().elements()[0].toStringRef();
  std::map<std::string, double> settings;
  for (const auto& entry : out.toTupleRef().elements()[1].toGenericDict())
    settings[entry.key().toStringRef()] = entry.value().toDouble();
  std::set<std::string> used;
  auto get = [&](const std::string& key, double fallback) {
    used.insert(key);
    auto it = settings.find(key);
    return it == settings.end() ? fallback : it->second;
  };
  std::shared_ptr<torch::optim::Optimizer> optimizer;
  if (type == "SGD") {
    optimizer =
        std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(get("lr", 0.01))
                                                              .momentum(get("momentum", 0))
                                                              .dampening(get("dampening", 0))
                                                              .weight_decay(get("weight_decay", 0))
                                                              .nesterov(get("nesterov", 0) != 0));
  } else if (type == "Adam" || type == "AdamW") {
    const double lr = get("lr", 1e-3), b1 = get("beta1", 0.9), b2 = get("beta2", 0.999);
    const double eps = get("eps", 1e-8);
    const bool amsgrad = get("amsgrad", 0) != 0;
    if (type == "Adam")
      optimizer = std::make_shared<torch::optim::Adam>(
          parameters(),
          torch::optim::AdamOptions(lr).betas({b1, b2}).eps(eps).amsgrad(amsgrad).weight_decay(
              get("weight_decay", 0)));
    else
      optimizer = std::make_shared<torch::optim::AdamW>(
          parameters(),
          torch::optim::AdamWOptions(lr).betas({b1, b2}).eps(eps).amsgrad(amsgrad).weight_decay(
              get("weight_decay", 1e-2)));
  } else {
    throw std::invalid_argument(where + "names optimizer '" + type +
                                "'; use SGD, Adam or AdamW, or give "
                                "ScriptModuleOptions::configure_optimizers");
  }
  for (const auto& [key, value] : settings)
    if (!used.count(key))
      throw std::invalid_argument(where + "gives '" + key + "', which " + type +
                                  " does not take here");
  return OptimizerConfig().add(optimizer);
}

void ScriptModule::save_script(const std::string& path) const {
  std::ostringstream out;
  script_.save(out);
  const std::string bytes = out.str();
  write_file_atomically(path, std::vector<char>(bytes.begin(), bytes.end()));
}

}  // namespace hookline
