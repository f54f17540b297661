#include <hookline/core/data/pass_plan.hpp>

#include <hookline/core/data/dataloader.hpp>

#include <ATen/Context.h>
#include <boost/core/demangle.hpp>

#include <cxxabi.h>
#include <algorithm>
#include <exception>
#include <optional>
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

// The batch in page-locked memory when LibTorch has CUDA (pin_memory); unchanged otherwise.
Batch pinned(Batch batch) {
  if (!at::globalContext().hasCUDA()) return batch;
  Batch out;
  for (const auto& [name, tensor] : batch) out.set(name, tensor.pin_memory());
  return out;
}

}  // namespace

std::vector<StreamBatch> stream_schedule(std::int64_t samples, int workers, std::int64_t batch_size,
                                         bool drop_last) {
  std::vector<std::vector<StreamBatch>> per_worker(static_cast<std::size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    const std::int64_t mine = w < samples ? (samples - w + workers - 1) / workers : 0;
    const std::int64_t count = drop_last ? mine / batch_size : (mine + batch_size - 1) / batch_size;
    for (std::int64_t j = 0; j < count; ++j)
      per_worker[static_cast<std::size_t>(w)].push_back(
          {w, j, std::min(batch_size, mine - j * batch_size)});
  }
  std::vector<StreamBatch> out;
  for (std::size_t round = 0;; ++round) {
    bool any = false;
    for (const auto& batches : per_worker)
      if (round < batches.size()) {
        out.push_back(batches[round]);
        any = true;
      }
    if (!any) break;
  }
  return out;
}

std::vector<Batch> PassPlan::stream_samples(std::int64_t k, int worker,
                                            const std::function<bool()>* cancelled) const {
  const StreamBatch& where = (*schedule)[static_cast<std::size_t>(k)];
  const int shards = stream_info.num_workers;
  auto& stream = streams[static_cast<std::size_t>(where.worker)];
  std::vector<Batch> items;
  items.reserve(static_cast<std::size_t>(where.rows));
  for (std::int64_t r = 0; r < where.rows; ++r) {
    if (cancelled != nullptr && (*cancelled)()) return {};
    // The sample's position in the epoch's sequence.
    const std::int64_t position = (where.local * batch_size + r) * shards + where.worker;
    try {
      if (!stream) {
        StreamInfo info = stream_info;
        info.worker = where.worker;
        stream = iterable->open(info);
        if (!stream) throw std::runtime_error("IterableDataset::open returned no stream");
        stream->skip(where.local * batch_size);  // resume: its earlier batches were handed out
      }
      std::optional<Batch> sample = stream->next();
      if (!sample)
        throw std::runtime_error("the stream of worker " + std::to_string(where.worker) + " of " +
                                 std::to_string(shards) + " ended after " +
                                 std::to_string(where.local * batch_size + r) +
                                 " samples, but the dataset's size() says " +
                                 std::to_string(samples) + " in all");
      items.push_back(std::move(*sample));
    } catch (...) {
      rethrow_as_loader_error(worker, k, epoch, position, "on");
    }
  }
  return items;
}

at::Tensor PassPlan::indices(std::int64_t k) const {
  if (!batches.empty()) return batches[static_cast<std::size_t>(k)];
  const std::int64_t start = k * batch_size;
  return order.narrow(0, start, std::min(batch_size, samples - start));
}

Batch PassPlan::make(std::int64_t k, int worker, const std::function<bool()>* cancelled) const {
  Batch out;
  if (iterable) {
    std::vector<Batch> items = stream_samples(k, worker, cancelled);
    if (items.empty()) return out;
    try {
      out = collate ? collate(items) : stack_collate(items);
    } catch (...) {
      rethrow_as_loader_error(worker, k, epoch, -1, "collating");
    }
    return pin ? pinned(std::move(out)) : out;
  }
  const at::Tensor idx = indices(k);
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
  return pin ? pinned(std::move(out)) : out;
}

}  // namespace hookline::data::detail
