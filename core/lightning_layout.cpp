#include "hookline/core/lightning_layout.hpp"

#include "hookline/core/checkpoint_io.hpp"
#include "hookline/core/console.hpp"
#include "hookline/core/loops/checkpoint_values.hpp"

#include <ATen/Context.h>
#include <ATen/Functions.h>
#include <ATen/core/Generator.h>
#include <ATen/core/List.h>

#include <cstdint>
#include <stdexcept>

namespace hookline::detail {

namespace lightning_keys {

using Dict = c10::impl::GenericDict;

Dict dict_of(std::initializer_list<std::pair<const char*, c10::IValue>> entries) {
  Dict out = new_dict();
  for (const auto& [key, value] : entries) out.insert(key, value);
  return out;
}

// A Lightning progress record ({"total": {...}, "current": {...}}) with the same counts in both
// (hookline does not count restarts apart). `fields` names the counters, in Lightning's order.
Dict progress(std::initializer_list<std::pair<const char*, std::int64_t>> fields) {
  Dict counts = new_dict();
  for (const auto& [key, value] : fields) counts.insert(key, value);
  return dict_of({{"total", counts}, {"current", counts.copy()}});
}

// `dict[a][b]...` as an integer, or `fallback` when a level is missing or of another type.
std::int64_t int_at(const Dict& dict, std::initializer_list<const char*> keys,
                    std::int64_t fallback) {
  c10::IValue at = dict;
  for (const char* key : keys) {
    if (!at.isGenericDict()) return fallback;
    const Dict d = at.toGenericDict();
    auto it = d.find(key);
    if (it == d.end()) return fallback;
    at = it->value();
  }
  return at.isInt() ? at.toInt() : fallback;
}

bool bool_at(const Dict& dict, const char* a, const char* b, bool fallback) {
  auto it = dict.find(a);
  if (it == dict.end() || !it->value().isGenericDict()) return fallback;
  auto jt = it->value().toGenericDict().find(b);
  return jt != it->value().toGenericDict().end() && jt->value().isBool() ? jt->value().toBool()
                                                                         : fallback;
}

}  // namespace lightning_keys

c10::impl::GenericDict lightning_loops(const c10::impl::GenericDict& fit_loop) {
  using namespace lightning_keys;
  const std::int64_t epoch = fit_loop.at("current_epoch").toInt();
  const std::int64_t step = fit_loop.at("global_step").toInt();
  const Dict p = fit_loop.at("epoch_progress").toGenericDict();
  const std::int64_t batches = p.at("batches_done").toInt();
  const bool epoch_end = p.at("epoch_end_done").toBool();
  // Lightning counts an epoch ready and started when it begins, processed when its batches are
  // done (before on_train_epoch_end) and completed after; current_epoch is "completed".
  const bool begun = batches > 0 || epoch_end;
  const std::int64_t started = begun ? epoch + 1 : epoch;
  const std::int64_t processed = epoch_end ? epoch + 1 : epoch;
  Dict lightning = new_dict();
  lightning.insert("state_dict", new_dict());
  lightning.insert("epoch_progress", progress({{"ready", started},
                                               {"started", started},
                                               {"processed", processed},
                                               {"completed", epoch}}));
  lightning.insert("epoch_loop.state_dict",
                   dict_of({{"_batches_that_stepped", fit_loop.at("batches_that_stepped")}}));
  Dict batch = progress(
      {{"ready", batches}, {"started", batches}, {"processed", batches}, {"completed", batches}});
  batch.insert("is_last_batch", p.at("reached_last_batch").toBool());
  lightning.insert("epoch_loop.batch_progress", batch);
  // global_step is the automatic optimization's completed optimizer steps (the manual one's when
  // the module optimizes manually): both get hookline's count.
  lightning.insert("epoch_loop.automatic_optimization.state_dict", new_dict());
  lightning.insert(
      "epoch_loop.automatic_optimization.optim_progress",
      dict_of(
          {{"optimizer",
            dict_of({{"step", progress({{"ready", step}, {"completed", step}})},
                     {"zero_grad",
                      progress({{"ready", step}, {"started", step}, {"completed", step}})}})}}));
  lightning.insert("epoch_loop.manual_optimization.state_dict", new_dict());
  lightning.insert("epoch_loop.manual_optimization.optim_step_progress",
                   progress({{"ready", step}, {"completed", step}}));
  lightning.insert("epoch_loop.val_loop.state_dict", new_dict());
  lightning.insert("hookline", fit_loop);
  Dict loops = new_dict();
  loops.insert("fit_loop", lightning);
  for (const char* other : {"validate_loop", "test_loop", "predict_loop"})
    loops.insert(other, dict_of({{"state_dict", new_dict()}}));
  return loops;
}

c10::impl::GenericDict hookline_fit_loop(const c10::impl::GenericDict& top, const std::string& path,
                                         bool& from_lightning) {
  using namespace lightning_keys;
  from_lightning = false;
  const Dict loops = dict_field(top, "loops", "the checkpoint's ", path);
  const Dict fit_loop = dict_field(loops, "fit_loop", "'loops' ", path);
  if (fit_loop.contains("hookline"))
    return dict_field(fit_loop, "hookline", "'loops.fit_loop' ", path);
  if (fit_loop.contains("current_epoch")) return fit_loop;  // format 2
  if (!fit_loop.contains("epoch_progress"))
    throw CheckpointError(path,
                          "'loops.fit_loop' has neither hookline's state nor Lightning's "
                          "'epoch_progress'; it was written by neither");
  // Lightning's counters (loops/progress.py): the epoch is its completed count; its batches were
  // processed when "processed" is ahead (saved in on_train_epoch_end).
  from_lightning = true;
  const std::int64_t epoch = int_at(fit_loop, {"epoch_progress", "current", "completed"}, -1);
  const std::int64_t processed = int_at(fit_loop, {"epoch_progress", "current", "processed"}, -1);
  const std::int64_t batches =
      int_at(fit_loop, {"epoch_loop.batch_progress", "current", "completed"}, 0);
  const std::int64_t top_step = int_field(top, "global_step", "the checkpoint ", path);
  const std::int64_t steps = int_at(fit_loop,
                                    {"epoch_loop.automatic_optimization.optim_progress",
                                     "optimizer", "step", "total", "completed"},
                                    top_step);
  const bool last_batch = bool_at(fit_loop, "epoch_loop.batch_progress", "is_last_batch", false);
  if (epoch < 0 || processed < epoch || batches < 0 || steps < 0)
    throw CheckpointError(path,
                          "'loops.fit_loop.epoch_progress' holds no valid Lightning "
                          "progress counts");
  Dict progress = new_dict();
  const bool epoch_end = processed > epoch;
  progress.insert("batches_done", batches);
  progress.insert("tail_pending", false);
  progress.insert("last_ran_step", batches > 0);
  progress.insert("last_stepped", batches > 0);
  // A checkpoint Lightning takes after the last batch is taken at the end of its validation:
  // that validation is not run again.
  progress.insert("validated", last_batch);
  progress.insert("reached_last_batch", last_batch);
  progress.insert("epoch_end_done", epoch_end);
  Dict out = new_dict();
  out.insert("current_epoch", epoch);
  out.insert("global_step", top_step);  // Lightning's trainer.global_step, whichever optimization
  out.insert("batches_that_stepped",
             int_at(fit_loop, {"epoch_loop.state_dict", "_batches_that_stepped"}, top_step));
  out.insert("should_stop", false);
  out.insert("stop_reason", std::string());
  out.insert("epoch_progress", progress);
  Dict rng = new_dict();  // Lightning saves no generator state: the run's own goes on
  rng.insert("cpu", at::detail::getDefaultCPUGenerator().get_state());
  rng.insert("cuda", c10::List<at::Tensor>());
  out.insert("rng", rng);
  // What Lightning's loops hold beyond their counters: the data loaders' own state.
  const Dict loop_state =
      fit_loop.contains("state_dict") && fit_loop.at("state_dict").isGenericDict()
          ? fit_loop.at("state_dict").toGenericDict()
          : new_dict();
  if (loop_state.contains("combined_loader"))
    console().warn(
        "checkpoint '{}': 'loops.fit_loop.state_dict.combined_loader' (the state of "
        "Lightning's stateful data loaders) has no hookline equivalent; the train "
        "loader resumes at the saved batch count instead",
        path);
  return out;
}

c10::IValue score_to_file(double score) {
  return at::scalar_tensor(score, at::TensorOptions().dtype(at::kDouble));
}

double score_from_file(const c10::IValue& value) {
  if (value.isTensor() && value.toTensor().defined() && value.toTensor().numel() == 1)
    return value.toTensor().item<double>();
  if (value.isDouble() || value.isInt()) return value.toScalar().toDouble();
  throw std::invalid_argument("a score is neither a number nor a one-element tensor");
}

c10::IValue scheduler_state_to_file(const c10::IValue& state) {
  if (!state.isInt()) return state;
  // LibTorch's step count is PyTorch's _step_count when the scheduler took PyTorch's constructor
  // step (docs/porting-from-lightning.md); last_epoch is one less.
  c10::impl::GenericDict out = new_dict();
  out.insert("last_epoch", state.toInt() - 1);
  out.insert("_step_count", state.toInt());
  return out;
}

c10::IValue scheduler_state_from_file(const c10::IValue& saved, const c10::IValue& live) {
  if (!live.isInt() || !saved.isGenericDict()) return saved;
  const c10::impl::GenericDict d = saved.toGenericDict();
  auto it = d.find("_step_count");
  return it != d.end() && it->value().isInt() && it->value().toInt() >= 0 ? it->value() : saved;
}

}  // namespace hookline::detail
