// hookline: the data side of the loops: requesting dataloaders, batch limits, batch transfer.
#include "hookline/core/loops/data_connector.hpp"

#include "hookline/core/data/dataloader.hpp"

#include <algorithm>
#include <stdexcept>

namespace hookline {

std::vector<std::int64_t> DataConnector::limit_batches(const DataLoaders& loaders,
                                                       const BatchAmount& limit) const {
  std::vector<std::int64_t> out;
  for (const auto& loader : loaders) {
    std::int64_t n = limit.of(loader->size());
    if (options_.fast_dev_run() > 0) n = std::min(n, options_.fast_dev_run());
    out.push_back(n);
  }
  return out;
}

void DataConnector::shard(const DataLoaders& loaders) const {
  if (!strategy_.distributed() || !options_.use_distributed_sampler()) return;
  for (const auto& loader : loaders)
    if (loader) loader->set_distributed(strategy_.global_rank(), strategy_.world_size());
}

void DataConnector::ensure_train_loader() {
  if (!train_loaders_.empty()) return;
  TrainDataloader request;
  hooks_.emit(request);
  for (const auto& loader : request.loaders)
    if (!loader) throw std::invalid_argument("train_dataloader() returned a null loader");
  if (request.loaders.empty())
    throw std::invalid_argument(
        "fit needs a train dataloader: override Module::train_dataloader() or pass a DataModule "
        "whose train_dataloader() returns one");
  if (request.loaders.size() != 1)
    throw std::invalid_argument("fit takes one train dataloader (got " +
                                std::to_string(request.loaders.size()) +
                                "); combine the data into one Dataset");
  train_loaders_ = std::move(request.loaders);
  shard(train_loaders_);
  const bool overfit = options_.overfit_batches().positive();
  if (overfit) train_loaders_[0]->set_shuffle(false);
  num_training_batches_ = limit_batches(
      train_loaders_, overfit ? options_.overfit_batches() : options_.limit_train_batches())[0];
  const BatchAmount& interval = options_.val_check_interval();
  if (interval.is_count()) {
    if (interval.count() > num_training_batches_ && num_training_batches_ > 0)
      throw std::invalid_argument("TrainerOptions::val_check_interval(" +
                                  std::to_string(interval.count()) +
                                  ") is larger than the number of training batches per epoch (" +
                                  std::to_string(num_training_batches_) +
                                  "); use a smaller count, or a fraction of the epoch");
    val_check_batch_ = interval.count();
  } else {
    val_check_batch_ = std::max<std::int64_t>(
        1, static_cast<std::int64_t>(static_cast<double>(num_training_batches_) *
                                     interval.fraction()));
  }
  if (options_.fast_dev_run() > 0) val_check_batch_ = num_training_batches_;
}

void DataConnector::reload_train_and_val() {
  train_loaders_.clear();
  val_loaders_.clear();
  val_loaders_requested_ = false;
  ensure_train_loader();
}

void DataConnector::clear() {
  // Lightning's teardown: the workers of the run's loaders stop, persistent ones included.
  for (const auto& loaders : {train_loaders_, val_loaders_})
    for (const auto& loader : loaders)
      if (loader) loader->shutdown_workers();
  train_loaders_.clear();
  val_loaders_.clear();
  val_loaders_requested_ = false;
}

void DataConnector::ensure_val_loaders() {
  if (val_loaders_requested_) return;
  ValDataloader request;
  hooks_.emit(request);
  for (const auto& loader : request.loaders)
    if (!loader) throw std::invalid_argument("val_dataloader() returned a null loader");
  val_loaders_ = std::move(request.loaders);
  const bool overfit = options_.overfit_batches().positive();
  num_val_batches_ = limit_batches(
      val_loaders_, overfit ? options_.overfit_batches() : options_.limit_val_batches());
  val_loaders_requested_ = true;
  seen_eval_batches_.assign(val_loaders_.size(), 0);
}

DataLoaders DataConnector::request_loaders(EvalKind kind) {
  DataLoaders loaders;
  std::string_view hook;
  if (kind == EvalKind::validation) {
    ensure_val_loaders();
    loaders = val_loaders_;
    hook = "val_dataloader";
  } else if (kind == EvalKind::test) {
    TestDataloader request;
    hooks_.emit(request);
    loaders = std::move(request.loaders);
    hook = "test_dataloader";
  } else {
    PredictDataloader request;
    hooks_.emit(request);
    loaders = std::move(request.loaders);
    hook = "predict_dataloader";
  }
  for (const auto& loader : loaders)
    if (!loader) throw std::invalid_argument(std::string(hook) + "() returned a null loader");
  if (loaders.empty() && state_.stage != Stage::fit)
    throw std::invalid_argument("Trainer::" + std::string(to_string(state_.stage)) + " needs " +
                                std::string(hook) + "(): override it in the Module or pass a " +
                                "DataModule that returns at least one loader");
  return loaders;
}

Batch DataConnector::transfer(Batch batch, std::int64_t dataloader_idx) {
  // A hook nobody would be called for (both default to doing nothing) is not emitted.
  if (hooks_.wants<BeforeBatchTransfer>()) {
    BeforeBatchTransfer before;
    before.batch = std::move(batch);
    before.dataloader_idx = dataloader_idx;
    hooks_.emit(before);
    batch = std::move(before.batch);
  }
  TransferBatchToDevice move;
  move.batch = std::move(batch);
  move.device = strategy_.root_device();
  move.dataloader_idx = dataloader_idx;
  hooks_.emit_or_default(move);
  if (!hooks_.wants<AfterBatchTransfer>()) return std::move(move.batch);
  AfterBatchTransfer after;
  after.batch = std::move(move.batch);
  after.dataloader_idx = dataloader_idx;
  hooks_.emit(after);
  return std::move(after.batch);
}

}  // namespace hookline
