#include "hookline/callbacks/prediction_writer.hpp"

#include "hookline/core/trainer.hpp"

#include <c10/util/Type.h>

#include <numeric>
#include <stdexcept>
#include <typeinfo>

namespace hookline {

BasePredictionWriter::BasePredictionWriter(const std::string& write_interval, std::string name)
    : Callback(std::move(name)), interval_(write_interval) {
  if (interval_ != "batch" && interval_ != "epoch" && interval_ != "batch_and_epoch")
    throw std::invalid_argument(
        "`write_interval` should be one of ['batch', 'epoch', "
        "'batch_and_epoch'] (got '" +
        write_interval + "')");
}

std::string BasePredictionWriter::state_key() const {
  const std::string name = c10::demangle(typeid(*this).name());
  const auto colon = name.rfind("::");
  return colon == std::string::npos ? name : name.substr(colon + 2);
}

void BasePredictionWriter::write_on_batch_end(Trainer&, Module&, const StepOutput&,
                                              const std::vector<std::int64_t>&, const Batch&,
                                              std::int64_t, std::int64_t) {
  throw std::logic_error(name() + ": write_interval '" + interval_ +
                         "' writes every batch; override write_on_batch_end");
}

void BasePredictionWriter::write_on_epoch_end(
    Trainer&, Module&, const std::vector<std::vector<StepOutput>>&,
    const std::vector<std::vector<std::vector<std::int64_t>>>&) {
  throw std::logic_error(name() + ": write_interval '" + interval_ +
                         "' writes at the epoch end; override write_on_epoch_end");
}

void BasePredictionWriter::on_predict_start(Trainer&, Module&) {
  next_index_.clear();
  predictions_.clear();
  batch_indices_.clear();
}

void BasePredictionWriter::on_predict_batch_end(Trainer& trainer, Module& module,
                                                const StepOutput& outputs, const Batch& batch,
                                                std::int64_t batch_idx,
                                                std::int64_t dataloader_idx) {
  const auto dl = static_cast<std::size_t>(dataloader_idx);
  if (next_index_.size() <= dl) next_index_.resize(dl + 1, 0);
  std::vector<std::int64_t> indices(static_cast<std::size_t>(batch.batch_size()));
  std::iota(indices.begin(), indices.end(), next_index_[dl]);
  next_index_[dl] += batch.batch_size();
  if (writes_on_epoch()) {
    if (predictions_.size() <= dl) {
      predictions_.resize(dl + 1);
      batch_indices_.resize(dl + 1);
    }
    predictions_[dl].push_back(outputs);
    batch_indices_[dl].push_back(indices);
  }
  if (writes_on_batch())
    write_on_batch_end(trainer, module, outputs, indices, batch, batch_idx, dataloader_idx);
}

void BasePredictionWriter::on_predict_epoch_end(Trainer& trainer, Module& module) {
  if (!writes_on_epoch()) return;
  write_on_epoch_end(trainer, module, predictions_, batch_indices_);
}

}  // namespace hookline
