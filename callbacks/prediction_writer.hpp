// hookline: BasePredictionWriter, Lightning 2.2's base for callbacks that write predictions out
// (to files, a database...) while trainer.predict() runs.
//
//   class NpyWriter : public BasePredictionWriter {
//    public:
//     NpyWriter() : BasePredictionWriter("batch") {}
//     void write_on_batch_end(Trainer&, Module&, const StepOutput& prediction,
//                             const std::vector<std::int64_t>& batch_indices, const Batch&,
//                             std::int64_t batch_idx, std::int64_t dataloader_idx) override {...}
//   };
//
// - write_interval "batch": write_on_batch_end from every on_predict_batch_end; "epoch":
//   write_on_epoch_end from on_predict_epoch_end with every prediction of the run; both with
//   "batch_and_epoch". Another value throws std::invalid_argument naming the valid ones.
// - batch_indices: the positions in the dataset of the batch's samples (Lightning's
//   predict_loop.current_batch_indices). They are counted in order, so they are the dataset's
//   indices for predict dataloaders that do not shuffle (Lightning's predict loaders never do).
// - write_on_epoch_end receives the predictions and batch indices per dataloader (outer index),
//   per batch. Lightning hands over the inner lists alone when there is one dataloader.
// - A hook the interval calls and the subclass does not override throws std::logic_error, as
//   Lightning's NotImplementedError.
#pragma once

#include "hookline/core/callback.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace hookline {

class BasePredictionWriter : public Callback {
 public:
  /// write_interval: "batch" (Lightning's default), "epoch" or "batch_and_epoch".
  explicit BasePredictionWriter(const std::string& write_interval = "batch",
                                std::string name = "BasePredictionWriter");

  /// Lightning's default state key, the class's name: the writer's own class, without
  /// namespaces (so writers of different classes can be used together).
  std::string state_key() const override;
  const std::string& write_interval() const { return interval_; }
  bool writes_on_batch() const { return interval_ != "epoch"; }
  bool writes_on_epoch() const { return interval_ != "batch"; }

  /// Writes one batch's prediction.
  virtual void write_on_batch_end(Trainer& trainer, Module& module, const StepOutput& prediction,
                                  const std::vector<std::int64_t>& batch_indices,
                                  const Batch& batch, std::int64_t batch_idx,
                                  std::int64_t dataloader_idx);
  /// Writes every prediction of the run: predictions[dataloader][batch], with the matching
  /// batch_indices[dataloader][batch].
  virtual void write_on_epoch_end(
      Trainer& trainer, Module& module, const std::vector<std::vector<StepOutput>>& predictions,
      const std::vector<std::vector<std::vector<std::int64_t>>>& batch_indices);

  void on_predict_start(Trainer& trainer, Module& module) override;
  void on_predict_batch_end(Trainer& trainer, Module& module, const StepOutput& outputs,
                            const Batch& batch, std::int64_t batch_idx,
                            std::int64_t dataloader_idx) override;
  void on_predict_epoch_end(Trainer& trainer, Module& module) override;

 private:
  std::string interval_;
  std::vector<std::int64_t> next_index_;  // per dataloader: the dataset index of the next sample
  std::vector<std::vector<StepOutput>> predictions_;
  std::vector<std::vector<std::vector<std::int64_t>>> batch_indices_;
};

}  // namespace hookline
