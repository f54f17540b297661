#include <hookline/core/data/dataloader.hpp>

#include <hookline/core/data/pass_plan.hpp>
#include <hookline/core/data/worker_pool.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/randperm.h>
#include <c10/core/TensorImpl.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace hookline::data {

namespace {

void check_worker_options(const DataLoaderOptions& o) {
  if (o.num_workers() < 0)
    throw std::invalid_argument("DataLoader: num_workers must be >= 0 (got " +
                                std::to_string(o.num_workers()) +
                                "); use 0 to make batches on the calling thread");
  if (o.prefetch_factor() < 1)
    throw std::invalid_argument("DataLoader: prefetch_factor must be >= 1 (got " +
                                std::to_string(o.prefetch_factor()) + ")");
  if (o.timeout().count() < 0)
    throw std::invalid_argument("DataLoader: timeout must be >= 0 seconds (got " +
                                std::to_string(o.timeout().count()) + "); 0 waits forever");
  if (o.sampler() && o.shuffle())
    throw std::invalid_argument(
        "DataLoader: sampler and shuffle(true) are mutually exclusive; shuffle in the sampler");
  if (o.batch_sampler() && (o.batch_size() != 1 || o.shuffle() || o.sampler() || o.drop_last()))
    throw std::invalid_argument(
        "DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, sampler and "
        "drop_last; leave those at their defaults");
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  if (!dataset_)
    throw std::invalid_argument("DataLoader: dataset is null; pass a std::make_shared<...>(...)");
  check_worker_options(options_);
  map_ = dynamic_cast<const MapDataset*>(dataset_.get());
  const std::int64_t n = epoch_samples();
  const std::int64_t batch = options_.batch_size();
  if (dataset_->size() <= 0 || n <= 0)
    throw std::invalid_argument(
        "DataLoader: the dataset is empty (size() == " + std::to_string(n) +
        "); check that it was loaded (right directory or split) before building the loader");
  if (batch <= 0)
    throw std::invalid_argument("DataLoader: batch_size must be > 0 (got " + std::to_string(batch) +
                                "); set e.g. DataLoaderOptions().batch_size(32)");
  if (options_.drop_last() && batch > n)
    throw std::invalid_argument(
        "DataLoader: batch_size (" + std::to_string(batch) + ") exceeds the dataset size (" +
        std::to_string(n) +
        ") with drop_last(true), so every sample would be dropped; lower batch_size or set "
        "drop_last(false)");
  samples_ = n;
  num_batches_ = options_.batch_sampler() ? options_.batch_sampler()->size() : batches_of(n);
  if (num_batches_ <= 0)
    throw std::invalid_argument("DataLoader: the batch_sampler has no batches (size() == " +
                                std::to_string(num_batches_) + ")");
}

DataLoader::DataLoader(std::shared_ptr<const IterableDataset> dataset, DataLoaderOptions options)
    : iterable_(std::move(dataset)), options_(std::move(options)) {
  if (!iterable_)
    throw std::invalid_argument("DataLoader: dataset is null; pass a std::make_shared<...>(...)");
  check_worker_options(options_);
  if (options_.shuffle() || options_.sampler() || options_.batch_sampler())
    throw std::invalid_argument(
        "DataLoader: shuffle, sampler and batch_sampler do not apply to an IterableDataset (its "
        "streams choose the order); leave them unset");
  if (options_.batch_size() <= 0)
    throw std::invalid_argument("DataLoader: batch_size must be > 0 (got " +
                                std::to_string(options_.batch_size()) + ")");
  samples_ = iterable_->size();
  if (samples_ <= 0)
    throw std::invalid_argument(
        "DataLoader: the iterable dataset is empty (size() == " + std::to_string(samples_) + ")");
  const int streams = std::max(1, options_.num_workers());
  auto schedule = std::make_shared<std::vector<detail::StreamBatch>>(
      detail::stream_schedule(samples_, streams, options_.batch_size(), options_.drop_last()));
  num_batches_ = static_cast<std::int64_t>(schedule->size());
  if (num_batches_ == 0)
    throw std::invalid_argument(
        "DataLoader: with drop_last(true) and batch_size " + std::to_string(options_.batch_size()) +
        " every worker's shard of " + std::to_string(samples_) +
        " samples is dropped; lower batch_size or num_workers, or set drop_last(false)");
  if (options_.num_workers() > 0)
    for (const auto& b : *schedule) owners_.push_back(b.worker);
  schedule_ = std::move(schedule);
}

DataLoader::~DataLoader() = default;

const Dataset& DataLoader::dataset() const {
  if (!dataset_)
    throw std::logic_error("DataLoader::dataset: this loader reads an IterableDataset");
  return *dataset_;
}

std::int64_t DataLoader::epoch_samples() const {
  if (iterable_) return iterable_->size();
  return options_.sampler() ? options_.sampler()->size() : dataset_->size();
}

std::int64_t DataLoader::batches_of(std::int64_t samples) const {
  const std::int64_t batch = options_.batch_size();
  return options_.drop_last() ? samples / batch : (samples + batch - 1) / batch;
}

void DataLoader::set_distributed(int rank, int replicas) {
  if (replicas < 1 || rank < 0 || rank >= replicas)
    throw std::invalid_argument("DataLoader::set_distributed: rank " + std::to_string(rank) +
                                " is not in [0, " + std::to_string(replicas) + ")");
  if (iterable_) {  // the dataset shards by rank itself (StreamInfo)
    rank_ = rank;
    replicas_ = replicas;
    return;
  }
  if (options_.batch_sampler() && replicas > 1)
    throw std::invalid_argument(
        "DataLoader::set_distributed: a batch_sampler cannot be sharded across ranks; use a "
        "sampler (or shuffle) with batch_size, or shard inside the batch_sampler and turn "
        "TrainerOptions::use_distributed_sampler off");
  rank_ = rank;
  replicas_ = replicas;
  const std::int64_t n = epoch_samples();
  samples_ = options_.drop_last() ? n / replicas : (n + replicas - 1) / replicas;
  if (samples_ == 0)
    throw std::invalid_argument("DataLoader::set_distributed: " + std::to_string(n) +
                                " samples cannot be shared by " + std::to_string(replicas) +
                                " ranks with drop_last");
  num_batches_ = batches_of(samples_);
}

at::Tensor DataLoader::epoch_order(std::int64_t epoch) const {
  const std::int64_t n = epoch_samples();
  at::Tensor order;
  if (options_.sampler()) {
    order = options_.sampler()->indices(epoch);
    if (!order.defined() || order.dim() != 1 || order.size(0) != n)
      throw std::invalid_argument("DataLoader: the sampler's indices(" + std::to_string(epoch) +
                                  ") must be a 1-D tensor of its size() = " + std::to_string(n) +
                                  " indices");
    order = order.to(at::kCPU, at::kLong).contiguous();
  } else if (options_.shuffle()) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(options_.seed() +
                                                              static_cast<std::uint64_t>(epoch));
    order = at::randperm(n, generator, at::kLong);
  } else {
    order = at::arange(n, at::kLong);
  }
  if (replicas_ == 1) return order;
  const std::int64_t total = samples_ * replicas_;
  if (total > n) {  // pad with the order's start (repeated as often as needed)
    std::vector<at::Tensor> parts{order};
    for (std::int64_t have = n; have < total; have += n)
      parts.push_back(order.narrow(0, 0, std::min(n, total - have)));
    order = at::cat(parts);
  }
  return order.narrow(0, 0, total).slice(0, rank_, total, replicas_).contiguous();
}

DataLoader::Iterator DataLoader::begin() {
  if (resume_pending_) {
    resume_pending_ = false;  // resume at (epoch_, cursor_)
  } else if (cursor_ > 0) {
    ++epoch_;  // the previous pass was abandoned part-way: start the next epoch
    cursor_ = 0;
  }
  ++pass_;
  if (pool_) {
    if (options_.persistent_workers())
      pool_->cancel();
    else
      pool_.reset();  // fresh workers for every pass
  }
  if (!options_.batch_sampler() && !map_ && !iterable_ && options_.num_workers() == 0) {
    plan_.reset();
    order_ = epoch_order(epoch_);
    return Iterator(this, pass_);
  }
  order_ = at::Tensor();
  plan_ = plan_of(epoch_);
  if (options_.num_workers() > 0 && cursor_ < num_batches_) {
    if (!pool_)
      pool_ = std::make_unique<detail::WorkerPool>(
          options_.num_workers(),
          static_cast<std::int64_t>(options_.num_workers()) * options_.prefetch_factor(),
          options_.worker_init_fn());
    pool_->start_pass(
        cursor_, num_batches_,
        [plan = plan_](std::int64_t k, int worker, const std::function<bool()>& cancelled) {
          return plan->make(k, worker, &cancelled);
        },
        owners_);  // an iterable's batch is made by the worker that owns its stream
  }
  return Iterator(this, pass_);
}

std::shared_ptr<const detail::PassPlan> DataLoader::plan_of(std::int64_t epoch) const {
  auto plan = std::make_shared<detail::PassPlan>();
  plan->dataset = dataset_;
  plan->map = map_;
  plan->collate = options_.collate();
  plan->batch_size = options_.batch_size();
  plan->samples = samples_;
  plan->epoch = epoch;
  plan->seed = options_.seed();
  plan->pin = options_.pin_memory();
  plan->wrap_errors = map_ != nullptr || options_.num_workers() > 0;
  if (iterable_) {
    plan->iterable = iterable_;
    plan->schedule = schedule_;
    plan->stream_info.num_workers = std::max(1, options_.num_workers());
    plan->stream_info.epoch = epoch;
    plan->stream_info.seed = options_.seed();
    plan->stream_info.rank = rank_;
    plan->stream_info.replicas = replicas_;
    plan->streams.resize(static_cast<std::size_t>(plan->stream_info.num_workers));
  } else if (options_.batch_sampler()) {
    plan->batches = options_.batch_sampler()->batches(epoch);
    if (static_cast<std::int64_t>(plan->batches.size()) != num_batches_)
      throw std::invalid_argument("DataLoader: the batch_sampler's batches(" +
                                  std::to_string(epoch) + ") returned " +
                                  std::to_string(plan->batches.size()) +
                                  " batches but its size() is " + std::to_string(num_batches_));
    for (auto& b : plan->batches) {
      if (!b.defined() || b.dim() != 1)
        throw std::invalid_argument(
            "DataLoader: every batch of the batch_sampler must be a 1-D integer tensor");
      b = b.to(at::kCPU, at::kLong).contiguous();
    }
  } else {
    plan->order = epoch_order(epoch);
  }
  return plan;
}

void DataLoader::drop_pass() {
  ++pass_;  // invalidate a live pass
  if (!pool_) return;
  if (options_.persistent_workers())
    pool_->cancel();
  else
    pool_.reset();
}

void DataLoader::end_pass(std::uint64_t pass) {
  if (pass != pass_ || !pool_) return;
  if (options_.persistent_workers())
    pool_->cancel();
  else
    pool_.reset();
}

void DataLoader::shutdown_workers() {
  if (!pool_) return;
  ++pass_;
  pool_.reset();
}

int DataLoader::running_workers() const {
  return pool_ ? pool_->workers() : 0;
}

void DataLoader::set_epoch(std::int64_t epoch) {
  if (epoch < 0)
    throw std::invalid_argument("DataLoader::set_epoch: epoch must be >= 0 (got " +
                                std::to_string(epoch) + ")");
  if (resume_pending_ && epoch == epoch_) return;  // keep the restored position
  drop_pass();
  epoch_ = epoch;
  cursor_ = 0;
  resume_pending_ = false;
}

DataLoaderState DataLoader::state() const {
  return {epoch_, cursor_, options_.seed()};
}

void DataLoader::load_state(const DataLoaderState& state) {
  if (state.epoch < 0)
    throw std::invalid_argument("DataLoader::load_state: epoch must be >= 0 (got " +
                                std::to_string(state.epoch) + "); the state is corrupt");
  if (state.batches_yielded < 0 || state.batches_yielded > num_batches_)
    throw std::invalid_argument(
        "DataLoader::load_state: batches_yielded (" + std::to_string(state.batches_yielded) +
        ") is outside [0, " + std::to_string(num_batches_) +
        "]; the state was saved by a loader with another dataset size, batch_size or drop_last");
  drop_pass();
  options_.seed(state.seed);
  epoch_ = state.epoch;
  cursor_ = state.batches_yielded;
  resume_pending_ = true;
}

DataLoader::Iterator::Iterator(DataLoader* loader, std::uint64_t pass)
    : loader_(loader), pass_(pass) {
  if (loader->pool_)
    pass_guard_ = std::shared_ptr<void>(nullptr, [loader, pass](void*) { loader->end_pass(pass); });
  fetch();
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (loader_ == nullptr)
    throw std::logic_error("DataLoader::Iterator: incremented past the end of the pass");
  fetch();
  return *this;
}

namespace {

// Rows [offset, offset + length) of `tensor`, a view sharing its storage. For the plain strided
// tensors a chunk holds, the view is built directly (as narrow() would build it) without a trip
// through the operator dispatcher, which costs about a microsecond per call in LibTorch; anything
// else goes through narrow(). Batches never require grad, so no autograd view metadata is needed.
at::Tensor rows_view(const at::Tensor& tensor, std::int64_t offset, std::int64_t length) {
  if (tensor.layout() != c10::kStrided || tensor.is_quantized() || tensor.dim() == 0 ||
      tensor.requires_grad() || !tensor.has_storage())
    return tensor.narrow(0, offset, length);
  auto impl = c10::make_intrusive<c10::TensorImpl>(c10::Storage(tensor.storage()), tensor.key_set(),
                                                   tensor.dtype());
  c10::SmallVector<std::int64_t, 5> sizes(tensor.sizes().begin(), tensor.sizes().end());
  sizes[0] = length;
  impl->set_sizes_and_strides(sizes, tensor.strides());
  impl->set_storage_offset(tensor.storage_offset() + offset * tensor.stride(0));
  return at::Tensor(std::move(impl));
}

}  // namespace

void DataLoader::Iterator::fetch() {
  DataLoader& loader = *loader_;
  if (loader.pass_ != pass_)
    throw std::logic_error(
        "DataLoader::Iterator: this pass was superseded by begin(), set_epoch() or load_state(); "
        "use one pass at a time");
  if (loader.cursor_ >= loader.num_batches_) {
    ++loader.epoch_;  // the pass ran to the end
    loader.cursor_ = 0;
    loader.order_ = at::Tensor();  // the chunk stays: the next pass refills its buffers
    loader.plan_.reset();
    loader_ = nullptr;
    batch_ = Batch();
    pass_guard_.reset();  // the last iterator of the pass ends it (joins non-persistent workers)
    loader.end_pass(pass_);
    return;
  }
  if (loader.plan_) {
    if (loader.pool_) {
      const std::int64_t k = loader.cursor_;
      batch_ = Batch();
      batch_ = loader.pool_->take(
          k, std::chrono::duration_cast<std::chrono::nanoseconds>(loader.options_.timeout()),
          [&] {
            std::ostringstream what;
            what << "DataLoader timed out after " << loader.options_.timeout().count()
                 << " s waiting for batch " << k << " of epoch " << loader.epoch_ << " from its "
                 << loader.options_.num_workers()
                 << " workers: a worker is stuck in the dataset or slower than the timeout; fix "
                    "the dataset or raise DataLoaderOptions::timeout";
            throw DataLoaderTimeout(what.str());
          },
          // While its workers are busy the loader's thread makes batches too, unless a timeout
          // must be kept, a worker_init_fn prepares the threads, or streams have owners.
          loader.options_.timeout().count() == 0 && !loader.options_.worker_init_fn() &&
              loader.owners_.empty());
    } else {
      batch_ = loader.plan_->make(loader.cursor_, -1, nullptr);
    }
    ++loader.cursor_;
    return;
  }
  const std::int64_t batch = loader.options_.batch_size();
  const std::int64_t start = loader.cursor_ * batch;
  const std::int64_t length = std::min(batch, loader.samples_ - start);
  if (loader.dataset_->gathers_rows()) {
    if (loader.chunk_pass_ != pass_ || loader.cursor_ < loader.chunk_first_ ||
        loader.cursor_ >= loader.chunk_first_ + loader.chunk_batches_) {
      batch_ = Batch();  // this iterator's view of the old chunk must not keep it from reuse
      loader.load_chunk();
    }
    const std::int64_t offset = (loader.cursor_ - loader.chunk_first_) * batch;
    Batch out;
    for (const auto& [name, tensor] : loader.chunk_)
      out.set(name, rows_view(tensor, offset, length));
    batch_ = std::move(out);
  } else {
    batch_ = loader.dataset_->get_batch(loader.order_.narrow(0, start, length));
  }
  ++loader.cursor_;
}

namespace {
// A chunk stays small enough for the cache and for memory: its batches share one allocation
// that lives as long as any batch of it does.
constexpr std::int64_t kChunkBytes = std::int64_t{4} << 20;
constexpr std::int64_t kMaxChunkBatches = 64;
}  // namespace

void DataLoader::load_chunk() {
  const std::int64_t batch = options_.batch_size();
  const std::int64_t count = std::min(chunk_target_, num_batches_ - cursor_);
  const std::int64_t start = cursor_ * batch;
  const std::int64_t rows = std::min(count * batch, samples_ - start);
  // Refills the previous chunk's buffers when no batch of it is alive any more (the usual case:
  // a step drops its batch), which spares an allocation and its page faults per chunk.
  dataset_->get_batch_into(order_.narrow(0, start, rows), chunk_);
  chunk_pass_ = pass_;
  chunk_first_ = cursor_;
  chunk_batches_ = count;
  std::int64_t bytes = 0;
  for (const auto& [name, tensor] : chunk_) bytes += static_cast<std::int64_t>(tensor.nbytes());
  const std::int64_t per_batch =
      std::max<std::int64_t>(1, bytes / std::max<std::int64_t>(count, 1));
  chunk_target_ = std::clamp<std::int64_t>(kChunkBytes / per_batch, 1, kMaxChunkBatches);
}

}  // namespace hookline::data
