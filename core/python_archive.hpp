// hookline: reading archives that Python's torch.save wrote (a Lightning checkpoint, say).
//
// LibTorch's own reader (torch::pickle_load) reads what LibTorch's writer makes, but not what
// Python's pickler makes of a Lightning checkpoint: it stops at the OrderedDict of a state_dict
// (whose `_metadata` attribute comes as a BUILD), and at any class it does not know (a
// hyper-parameter that is a Python object). This reader takes the pickle opcodes of protocols 2
// to 4 that torch.save writes and makes plain values of them: dicts (OrderedDict too), lists,
// tuples, strings, numbers, booleans, None and tensors (`torch._utils._rebuild_tensor_v2` over
// storages of the archive, `_rebuild_parameter`). What has no C++ value (an object of a Python
// class, bytes, sets, integers beyond 64 bits) becomes None and is listed in `dropped` by its
// place in the checkpoint ("hyper_parameters.loss_fn: a Python object
// 'torch.nn.modules.loss.MSELoss'"); an object of a dict subclass (Lightning's AttributeDict)
// becomes its dict, listed too. It trusts nothing in the input: a damaged archive gives a
// CheckpointError, never a crash.
#pragma once

#include <ATen/core/ivalue.h>

#include <cstddef>
#include <string>
#include <vector>

namespace hookline::detail {

struct PythonArchive {
  c10::IValue value;
  std::vector<std::string> dropped;  // "where: what", in the order met
};

/// Reads the torch.save archive in `data`; `path` names the file in errors (CheckpointError).
PythonArchive read_python_archive(const char* data, std::size_t size, const std::string& path);

}  // namespace hookline::detail
