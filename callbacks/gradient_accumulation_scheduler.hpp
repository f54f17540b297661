// hookline: GradientAccumulationScheduler, Lightning 2.2's callback that changes the gradient
// accumulation factor by epoch.
//
//   // epochs 0-3: 1 batch per step; 4-7: 2; from 8 on: 4
//   trainer.add_callback(std::make_shared<GradientAccumulationScheduler>(
//       std::map<std::int64_t, std::int64_t>{{4, 2}, {8, 4}}));
//
// As in Lightning: keys are epochs >= 0, factors >= 1 (both checked when constructed, an empty
// schedule is an error), epochs before the first key use 1; at fit start it refuses manual
// optimization and a Trainer whose accumulate_grad_batches is not 1; at each train epoch start it
// sets the trainer's accumulate_grad_batches.
#pragma once

#include "hookline/core/callback.hpp"

#include <cstdint>
#include <map>

namespace hookline {

class GradientAccumulationScheduler : public Callback {
 public:
  /// epoch -> accumulation factor. Throws std::invalid_argument for an empty schedule, an epoch
  /// < 0 or a factor < 1.
  explicit GradientAccumulationScheduler(std::map<std::int64_t, std::int64_t> scheduling);

  std::string state_key() const override { return "GradientAccumulationScheduler"; }
  const std::map<std::int64_t, std::int64_t>& scheduling() const { return scheduling_; }
  bool going_to_accumulate_grad_batches() const;
  std::int64_t get_accumulate_grad_batches(std::int64_t epoch) const;

  void on_train_start(Trainer& trainer, Module& module) override;
  void on_train_epoch_start(Trainer& trainer, Module& module) override;

 private:
  std::map<std::int64_t, std::int64_t> scheduling_;
};

}  // namespace hookline
