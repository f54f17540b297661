#include <hookline/core/data/pass_plan.hpp>

#include <hookline/core/data/dataloader.hpp>

#include <ATen/Context.h>
#include <boost/core/demangle.hpp>

#include <cxxabi.h>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

namespace hookline::data::detail {

namespace {

// Rethrows the exception being handled as a DataLoaderError that nests it. Call only from a
// catch block.
[[noreturn]] void rethrow_as_loader_error(int worker, std::int64_t batch, std::int64_t epoch,
                                          std::int64_t sample, const char* stage) {
  std::string type = "unknown exception";
  if (const std::type_info* info = abi::__cxa_current_exception_type())
    type = boost::core::demangle(info->name());
  std::string message;
  try {
    throw;
  } catch (const DataLoaderError&) {
    throw;  // already described
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "(not a std::exception)";
  }
  std::string what = worker >= 0 ? "DataLoader worker " + std::to_string(worker) : "DataLoader";
  what += " failed ";
  what += stage;
  if (sample >= 0) what += " sample " + std::to_string(sample);
  what += " (batch " + std::to_string(batch) + " of epoch " + std::to_string(epoch) + "): " + type +
          ": " + message;
  throw DataLoaderError(what, worker, batch, sample, std::move(type));
}

}  // namespace

at::Tensor PassPlan::indices(std::int64_t k) const {
  if (!batches.empty()) return batches[static_cast<std::size_t>(k)];
  const std::int64_t start = k * batch_size;
  return order.narrow(0, start, std::min(batch_size, samples - start));
}

Batch PassPlan::make(std::int64_t k, int worker, const std::function<bool()>* cancelled) const {
  const at::Tensor idx = indices(k);
  Batch out;
  if (map != nullptr) {
    const std::int64_t* data = idx.data_ptr<std::int64_t>();
    const std::int64_t n = idx.numel();
    const std::int64_t size = map->size();
    std::vector<Batch> items;
    items.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      if (cancelled != nullptr && (*cancelled)()) return Batch();
      const std::int64_t index = data[i];
      try {
        if (index < 0 || index >= size)
          throw std::out_of_range("index " + std::to_string(index) +
                                  " is outside the dataset's range [0, " + std::to_string(size) +
                                  ")");
        SampleGenerator rng(seed, epoch, index);
        items.push_back(map->get(index, rng));
      } catch (...) {
        rethrow_as_loader_error(worker, k, epoch, index, "on");
      }
    }
    try {
      out = collate ? collate(items) : stack_collate(items);
    } catch (...) {
      rethrow_as_loader_error(worker, k, epoch, -1, "collating");
    }
  } else if (wrap_errors) {
    try {
      out = dataset->get_batch(idx);
    } catch (...) {
      rethrow_as_loader_error(worker, k, epoch, -1, "making");
    }
  } else {
    out = dataset->get_batch(idx);
  }
  if (pin && at::globalContext().hasCUDA()) {
    Batch pinned;
    for (const auto& [name, tensor] : out) pinned.set(name, tensor.pin_memory());
    out = std::move(pinned);
  }
  return out;
}

}  // namespace hookline::data::detail
