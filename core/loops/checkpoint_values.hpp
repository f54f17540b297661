// hookline: reading and copying the values of a checkpoint's dictionary (internal to the
// checkpoint connector): typed fields that throw CheckpointError naming the file and the key,
// deep copies for background writes, the module's named tensors, the random generators.
#pragma once

#include <ATen/core/Dict.h>
#include <ATen/core/Generator.h>
#include <ATen/core/ivalue.h>

#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/loops/progress.hpp"

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace hookline::detail {

using Dict = c10::impl::GenericDict;

/// An empty dictionary of string keys and any values.
Dict new_dict();
/// Parameters and buffers by their dotted names.
std::vector<std::pair<std::string, at::Tensor>> module_tensors(torch::nn::Module& module);
/// A copy of `value` whose tensors share nothing with the live run (for background writes).
c10::IValue deep_copy(const c10::IValue& value);

/// `dict[key]`, or a CheckpointError for `path` saying that `where` has no `key`.
const c10::IValue& field(const Dict& dict, const std::string& key, const std::string& where,
                         const std::string& path);
std::int64_t int_field(const Dict& dict, const std::string& key, const std::string& where,
                       const std::string& path);
bool bool_field(const Dict& dict, const std::string& key, const std::string& where,
                const std::string& path);
Dict dict_field(const Dict& dict, const std::string& key, const std::string& where,
                const std::string& path);

/// Rethrows the exception being handled; malformed data met while applying a checkpoint (a
/// missing key, a value of the wrong type, a state a callback refuses) becomes a CheckpointError
/// naming the file. Other exceptions keep their type.
[[noreturn]] void rethrow_as_checkpoint_error(const std::string& path, const std::string& during);

/// Where the fit loop stood when a checkpoint was saved: its "epoch_progress" and the train
/// loader's position ("train_loader", absent when the run had no train loader yet).
struct LoopPosition {
  EpochProgress progress;
  std::optional<data::DataLoaderState> loader;
};
/// `progress` as the "epoch_progress" dictionary that read_loop_position reads back.
Dict epoch_progress_dict(const EpochProgress& progress);
/// Reads and checks the position in `fit_loop` (of a checkpoint saved in epoch `epoch`): every
/// count in range, the flags consistent with each other and with the loader's position, as
/// CheckpointConnector::dump writes them. Throws CheckpointError naming the field.
LoopPosition read_loop_position(const Dict& fit_loop, std::int64_t epoch, const std::string& path);

/// The gradients accumulated so far ("grads" in `fit_loop`, absent outside an accumulation
/// window), each checked to match a parameter of `module` (`name`) in shape and dtype.
std::vector<std::pair<std::string, at::Tensor>> read_grads(const Dict& fit_loop,
                                                           torch::nn::Module& module,
                                                           const std::string& name,
                                                           const std::string& path);
/// Gives the parameters of `module` named in `grads` copies of those gradients.
void set_grads(torch::nn::Module& module,
               const std::vector<std::pair<std::string, at::Tensor>>& grads);

/// A one-line description of what went wrong inside LibTorch, in hookline's words (its own text,
/// with a backtrace or an internal assertion, is only logged at debug level).
std::string libtorch_failure(const std::exception& error);

/// The default generator of every CUDA device (none without CUDA).
std::vector<at::Generator> cuda_generators();

}  // namespace hookline::detail
