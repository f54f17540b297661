#include "hookline/callbacks/gradient_accumulation_scheduler.hpp"

#include "hookline/core/trainer.hpp"

#include <stdexcept>
#include <string>

namespace hookline {

namespace {
template <class Pick>
std::string listed(const std::map<std::int64_t, std::int64_t>& m, Pick pick) {
  std::string out;
  for (const auto& kv : m) out += (out.empty() ? "" : ", ") + std::to_string(pick(kv));
  return "[" + out + "]";
}
}  // namespace

GradientAccumulationScheduler::GradientAccumulationScheduler(
    std::map<std::int64_t, std::int64_t> scheduling)
    : Callback("gradient_accumulation_scheduler"), scheduling_(std::move(scheduling)) {
  if (scheduling_.empty())
    throw std::invalid_argument(
        "GradientAccumulationScheduler: the schedule is empty; give epoch -> factor pairs, e.g. "
        "{{4, 2}}");
  if (scheduling_.begin()->first < 0)
    throw std::invalid_argument(
        "GradientAccumulationScheduler: epoch should be an int greater than or equal to 0. Got " +
        listed(scheduling_, [](const auto& kv) { return kv.first; }));
  for (const auto& [epoch, factor] : scheduling_)
    if (factor < 1)
      throw std::invalid_argument(
          "GradientAccumulationScheduler: accumulation factor should be an int greater than 0. "
          "Got " +
          listed(scheduling_, [](const auto& kv) { return kv.second; }));
  scheduling_.emplace(0, 1);  // epochs before the first key: no accumulation (kept if given)
}

bool GradientAccumulationScheduler::going_to_accumulate_grad_batches() const {
  for (const auto& [epoch, factor] : scheduling_)
    if (factor > 1) return true;
  return false;
}

std::int64_t GradientAccumulationScheduler::get_accumulate_grad_batches(std::int64_t epoch) const {
  auto it = scheduling_.upper_bound(epoch);  // first key after `epoch`
  return it == scheduling_.begin() ? 1 : std::prev(it)->second;
}

void GradientAccumulationScheduler::on_train_start(Trainer& trainer, Module& module) {
  if (!module.automatic_optimization())
    throw std::runtime_error(
        "Automatic gradient accumulation and the GradientAccumulationScheduler are not "
        "supported for manual optimization. Remove the callback or switch to automatic "
        "optimization.");
  if (trainer.options().accumulate_grad_batches() != 1)
    throw std::invalid_argument(
        "You have set accumulate_grad_batches and are using the GradientAccumulationScheduler "
        "callback. Either remove accumulate_grad_batches from the Trainer or remove the "
        "callback.");
}

void GradientAccumulationScheduler::on_train_epoch_start(Trainer& trainer, Module&) {
  trainer.set_accumulate_grad_batches(get_accumulate_grad_batches(trainer.current_epoch()));
}

}  // namespace hookline
