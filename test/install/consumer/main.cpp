// Uses an installed hookline: a custom event on the bus and, when the LibTorch part is installed,
// a Batch. Cheap to compile on purpose: no <torch/torch.h>. Exit status 0 = everything checked out.
#include <hookline/events/bus.hpp>
#ifdef CONSUMER_WITH_TORCH
#include <hookline/hooks/batch.hpp>

#include <ATen/ops/zeros.h>
#endif

#include <cstdio>
#include <stdexcept>
#include <string_view>

namespace {

struct LossReported {
  static constexpr std::string_view name = "on_loss_reported";
  static constexpr hookline::ActionSet vetoes{hookline::Action::StopFit};
  double loss = 0.0;
};

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

void use_bus() {
  using namespace hookline;
  Bus bus;
  double last = 0.0;
  int calls = 0;
  bus.on<LossReported>(
      [&](const LossReported& e) {
        last = e.loss;
        ++calls;
      },
      SubscribeOptions().named("recorder"));
  bus.on<LossReported>(
      [](const LossReported& e) -> Verdict {
        if (e.loss > 1.0) return Verdict::stop_fit("loss diverged");
        return {};
      },
      SubscribeOptions().named("guard"));
  check(bus.subscriber_count<LossReported>() == 2, "two subscribers");

  const Outcome calm = bus.emit(LossReported{0.5});
  check(calm.proceed() && calls == 1 && last == 0.5, "emission reaches the subscriber");

  const Outcome stop = bus.emit(LossReported{2.0});
  check(stop.stops_fit() && stop.veto != nullptr && stop.veto->subscriber == "guard" &&
            stop.veto->reason == "loss diverged",
        "a subscriber's verdict stops the fit");
  check(calls == 2 && last == 2.0, "second emission reached the subscriber");
}

#ifdef CONSUMER_WITH_TORCH
void use_batch() {
  hookline::Batch batch{{"x", at::zeros({4, 3})}};
  batch.set("y", at::zeros({4}));
  check(batch.num_fields() == 2 && batch.batch_size() == 4, "Batch holds tensors");
  bool threw = false;
  try {
    (void)batch["missing"];
  } catch (const std::out_of_range&) {
    threw = true;
  }
  check(threw, "Batch throws on a missing field");
}
#endif

}  // namespace

int main() {
  try {
    use_bus();
#ifdef CONSUMER_WITH_TORCH
    use_batch();
#endif
  } catch (const std::exception& e) {
    std::printf("FAIL: exception: %s\n", e.what());
    return 1;
  }
  if (failures == 0)
    std::printf("consumer: all checks passed\n");
  else
    std::printf("consumer: %d check(s) failed\n", failures);
  return failures == 0 ? 0 : 1;
}
