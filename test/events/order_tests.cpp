// Ordering: priorities, ties, bands, order rules, dispatch policies, custom events.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

using namespace hookline;
using namespace test_events;

namespace {
template <class E>
Connection record(Bus& bus, Journal& j, std::string label, int priority) {
  return bus.on<E>([&j, label] { j.add(label); },
                   SubscribeOptions().named(label).priority(priority));
}

// Subscribes a recorder per (label, priority), in this order, to E on a bus with `policy` (none:
// the default), emits E once and returns the labels in the order they ran.
template <class E>
Labels dispatch_order(const std::vector<std::pair<std::string, int>>& subscribers,
                      std::shared_ptr<const DispatchPolicy> policy = nullptr) {
  Bus bus(Bus::Options{std::move(policy), {}});
  Journal j;
  for (const auto& [label, priority] : subscribers) record<E>(bus, j, label, priority);
  bus.emit(E{});
  return j.entries();
}
}  // namespace

BOOST_AUTO_TEST_SUITE(order)

BOOST_AUTO_TEST_CASE(lower_priority_runs_first) {
  BOOST_TEST(dispatch_order<Ping>({{"c", 30}, {"a", -5}, {"b", 10}}) == (Labels{"a", "b", "c"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ties_keep_registration_order) {
  BOOST_TEST(dispatch_order<Ping>(
                 {{"first", 7}, {"second", 7}, {"third", 7}, {"fourth", 7}, {"early", 6}}) ==
                 (Labels{"early", "first", "second", "third", "fourth"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(default_subscription_is_in_callback_band) {
  Bus bus;
  auto c = bus.on<Ping>([] {});
  BOOST_TEST(c.info().priority == band::callback);
  BOOST_TEST(c.info().name == "anonymous");
}

BOOST_AUTO_TEST_CASE(standard_band_order) {
  // Registered in scrambled order; each band must come out in Lightning's order.
  BOOST_TEST(dispatch_order<Ping>({{"module", band::module},
                                   {"checkpoint", band::checkpoint},
                                   {"data_module", band::data_module},
                                   {"callback", band::callback},
                                   {"monitoring", band::monitoring},
                                   {"tuner", band::tuner}}) ==
                 (Labels{"tuner", "callback", "monitoring", "checkpoint", "data_module", "module"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(data_module_first_rule) {
  BOOST_TEST(dispatch_order<Setup>({{"module", band::module},
                                    {"callback", band::callback},
                                    {"data_module", band::data_module},
                                    {"checkpoint", band::checkpoint}}) ==
                 (Labels{"data_module", "callback", "checkpoint", "module"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(module_before_monitoring_rule_splits_callbacks) {
  BOOST_TEST(dispatch_order<EpochEnd>({{"ckpt", band::checkpoint},
                                       {"early_stop", band::monitoring},
                                       {"module", band::module},
                                       {"printer", band::callback},
                                       {"tuner", band::tuner}}) ==
                 (Labels{"tuner", "printer", "module", "early_stop", "ckpt"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(offsets_inside_a_band_and_out_of_band_priorities) {
  BOOST_TEST(dispatch_order<EpochEnd>({{"after_all", 100000},
                                       {"module+1", band::module + 1},
                                       {"module", band::module},
                                       {"before_all", -1},
                                       {"callback+999", band::callback + 999}}) ==
                 (Labels{"before_all", "callback+999", "module", "module+1", "after_all"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(reverse_end_order_reverses_only_end_events) {
  Bus bus(Bus::Options{std::make_shared<ReverseEndOrder>(), {}});
  Journal j;
  for (const char* n : {"A", "B", "C"}) {
    record<SpanStart>(bus, j, n, band::callback);
    record<SpanEnd>(bus, j, n, band::callback);
    record<Ping>(bus, j, n, band::callback);
  }
  bus.emit(SpanStart{});
  bus.emit(SpanEnd{});
  bus.emit(Ping{});
  BOOST_TEST(j.entries() == (Labels{"A", "B", "C", "C", "B", "A", "A", "B", "C"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(reverse_end_order_within_band_keeps_bands) {
  BOOST_TEST(dispatch_order<SpanEnd>(
                 {{"cb1", band::callback},
                  {"cb2", band::callback + 3},
                  {"ckpt", band::checkpoint},
                  {"module", band::module}},
                 std::make_shared<ReverseEndOrder>(ReverseEndOrder::Scope::within_band)) ==
                 (Labels{"cb2", "cb1", "ckpt", "module"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(policy_can_be_replaced_at_runtime) {
  Bus bus;
  Journal j;
  record<SpanEnd>(bus, j, "A", 1);
  record<SpanEnd>(bus, j, "B", 2);
  bus.emit(SpanEnd{});
  bus.set_policy(std::make_shared<ReverseEndOrder>());
  bus.emit(SpanEnd{});
  BOOST_TEST(j.entries() == (Labels{"A", "B", "B", "A"}), boost::test_tools::per_element());
  BOOST_TEST(bus.policy().name() == "ReverseEndOrder");
  BOOST_CHECK_THROW(bus.set_policy(nullptr), std::invalid_argument);
}

namespace {
// A user policy: subscribers whose name starts with '!' go first, everything else keeps order.
class BangFirst final : public DispatchPolicy {
 public:
  void arrange(const EventInfo&, std::vector<Placement>& order) const override {
    std::stable_partition(order.begin(), order.end(), [](const Placement& p) {
      return !p.subscription->name.empty() && p.subscription->name[0] == '!';
    });
  }
  std::string_view name() const override { return "BangFirst"; }
};
class BreaksSlots final : public DispatchPolicy {
 public:
  void arrange(const EventInfo&, std::vector<Placement>& order) const override {
    for (auto& p : order) p.slot += 100;
  }
  std::string_view name() const override { return "BreaksSlots"; }
};
}  // namespace

BOOST_AUTO_TEST_CASE(user_policy) {
  BOOST_TEST(dispatch_order<Ping>({{"x", 1}, {"!urgent", 50}, {"y", 2}},
                                  std::make_shared<BangFirst>()) == (Labels{"!urgent", "x", "y"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(policy_that_corrupts_slots_is_reported) {
  Bus bus(Bus::Options{std::make_shared<BreaksSlots>(), {}});
  bus.on<Ping>([] {});
  BOOST_CHECK_EXCEPTION(bus.emit(Ping{}), std::logic_error, [](const std::logic_error& e) {
    return std::string(e.what()).find("BreaksSlots") != std::string::npos;
  });
}

BOOST_AUTO_TEST_CASE(synchronous_only_runs_async_subscribers_inline_in_order) {
  Bus bus(Bus::Options{std::make_shared<SynchronousOnly>(), {}});
  Journal j;
  bus.on<Ping>([&j](const Ping&) { j.add("async"); },
               SubscribeOptions().priority(1).lane(Lane::async));
  record<Ping>(bus, j, "sync", 2);
  bus.emit(Ping{});
  // No flush: SynchronousOnly ran the async subscriber in the emitting thread.
  BOOST_TEST(j.entries() == (Labels{"async", "sync"}), boost::test_tools::per_element());
  auto subs = bus.subscribers<Ping>();
  BOOST_REQUIRE(subs.size() == 2u);
  BOOST_TEST((subs[0].lane == Lane::sync));
}

BOOST_AUTO_TEST_CASE(subscribers_lists_dispatch_order) {
  Bus bus;
  bus.on<EpochEnd>([] {}, SubscribeOptions().named("ckpt").priority(band::checkpoint));
  bus.on<EpochEnd>([] {}, SubscribeOptions().named("module").priority(band::module));
  auto subs = bus.subscribers<EpochEnd>();
  BOOST_REQUIRE(subs.size() == 2u);
  BOOST_TEST(subs[0].name == "module");
  BOOST_TEST(subs[1].name == "ckpt");
  BOOST_TEST(bus.subscriber_count<EpochEnd>() == 2u);
  BOOST_TEST(bus.subscriber_count<Ping>() == 0u);
}

// ---- custom events ------------------------------------------------------------------------

namespace {
struct LossSpike {
  static constexpr std::string_view name = "on_loss_spike";
  static constexpr ActionSet vetoes{Action::StopFit};
  double loss;
  std::string describe() const { return "loss=" + std::to_string(loss); }
};
struct Counted {
  static constexpr std::string_view name = "on_counted";
  static inline int constructed = 0;
  explicit Counted(int v) : value(v) { ++constructed; }
  int value;
};
}  // namespace

BOOST_AUTO_TEST_CASE(user_event_types_share_the_bus) {
  Bus bus;
  double seen = 0;
  bus.on<LossSpike>([&](const LossSpike& e) -> Verdict {
    seen = e.loss;
    return e.loss > 10 ? Verdict::stop_fit("loss exploded") : Verdict{};
  });
  BOOST_TEST(bus.emit(LossSpike{3.0}).proceed());
  auto out = bus.emit(LossSpike{42.0});
  BOOST_TEST(seen == 42.0);
  BOOST_TEST(out.stops_fit());
  BOOST_TEST(out.veto->reason == "loss exploded");
  const EventInfo& info = event_info<LossSpike>();
  BOOST_TEST(info.name == "on_loss_spike");
  BOOST_TEST(info.vetoes.contains(Action::StopFit));
  BOOST_TEST(!info.vetoes.contains(Action::SkipBatch));
  BOOST_REQUIRE(info.describe != nullptr);
  LossSpike sample{1.5};
  BOOST_TEST(info.describe(&sample) == "loss=1.500000");
  BOOST_TEST(event_info<Ping>().describe == nullptr);
  BOOST_TEST(event_id<LossSpike>() != event_id<Ping>());
}

BOOST_AUTO_TEST_CASE(emit_new_builds_payload_only_when_wanted) {
  Bus bus;
  Counted::constructed = 0;
  BOOST_TEST(!bus.wants<Counted>());
  bus.emit_new<Counted>(1);
  BOOST_TEST(Counted::constructed == 0);
  int sum = 0;
  auto c = bus.on<Counted>([&](const Counted& e) { sum += e.value; });
  BOOST_TEST(bus.wants<Counted>());
  bus.emit_new<Counted>(5);
  BOOST_TEST(Counted::constructed == 1);
  BOOST_TEST(sum == 5);
  c.disconnect();
  bus.emit_new<Counted>(7);
  BOOST_TEST(Counted::constructed == 1);
}

BOOST_AUTO_TEST_SUITE_END()
