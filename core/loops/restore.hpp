// hookline: a checkpoint being restored (internal to the trainer; see checkpoint_connector.cpp).
#pragma once

#include "hookline/core/checkpoint.hpp"
#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/trainer.hpp"

#include <ATen/core/Dict.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hookline {

inline c10::impl::GenericDict new_dict() {
  return c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get());
}

// What restore_modules_and_callbacks read, kept until the fit loop reaches the saved position.
struct Trainer::Restore {
  std::string path;
  Checkpoint checkpoint;
  c10::impl::GenericDict fit_loop = new_dict();
  EpochProgress progress;
  data::DataLoaderState loader;
  at::Tensor rng;
  std::vector<at::Tensor> cuda_rng;
  // For rolling back when a later part does not fit.
  std::vector<std::pair<at::Tensor, at::Tensor>> weights;  // live tensor, copy before loading
  std::vector<std::pair<Callback*, Checkpoint>> callbacks;
  std::optional<Checkpoint> data_module;
  bool loop_reached = false;
  bool committed = false;  // past the point where a failure rolls the restore back
};

}  // namespace hookline
