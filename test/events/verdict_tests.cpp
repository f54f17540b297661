// Verdicts: folding, who vetoed, rejected verdicts, exceptions, tracing of verdicts.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

#include <stdexcept>

using namespace hookline;
using namespace test_events;

BOOST_AUTO_TEST_SUITE(verdicts)

BOOST_AUTO_TEST_CASE(no_subscribers_means_continue) {
  Bus bus;
  Outcome out = bus.emit(Gate{});
  BOOST_TEST(out.proceed());
  BOOST_TEST(!out.veto);
}

BOOST_AUTO_TEST_CASE(each_action_comes_back_with_its_author) {
  for (Action action : {Action::SkipBatch, Action::SkipRestOfEpoch, Action::StopFit}) {
    Bus bus;
    bus.on<Gate>([] {}, SubscribeOptions().named("quiet"));
    bus.on<Gate>(
        [action] {
          return Verdict{action, "because"};
        },
        SubscribeOptions().named("judge").priority(band::module));
    Outcome out = bus.emit(Gate{});
    BOOST_TEST((out.action == action));
    BOOST_REQUIRE(out.veto);
    BOOST_TEST((out.veto->action == action));
    BOOST_TEST(out.veto->subscriber == "judge");
    BOOST_TEST(out.veto->reason == "because");
    BOOST_TEST(out.veto->priority == band::module);
  }
}

BOOST_AUTO_TEST_CASE(strongest_verdict_wins_whatever_the_order) {
  const std::vector<Action> actions{Action::SkipBatch, Action::StopFit, Action::Continue,
                                    Action::SkipRestOfEpoch};
  Bus bus;
  int i = 0;
  for (Action a : actions) {
    bus.on<Gate>(
        [a] {
          return Verdict{a, std::string(to_string(a))};
        },
        SubscribeOptions().named("s" + std::to_string(i)).priority(i));
    ++i;
  }
  Outcome out = bus.emit(Gate{});
  BOOST_TEST((out.action == Action::StopFit));
  BOOST_TEST(out.veto->subscriber == "s1");
  BOOST_TEST(out.veto->reason == "StopFit");
}

BOOST_AUTO_TEST_CASE(on_ties_the_first_in_order_keeps_the_credit) {
  Bus bus;
  bus.on<Gate>([] { return Verdict::skip_batch("second"); },
               SubscribeOptions().named("b").priority(2));
  bus.on<Gate>([] { return Verdict::skip_batch("first"); },
               SubscribeOptions().named("a").priority(1));
  Outcome out = bus.emit(Gate{});
  BOOST_TEST(out.veto->subscriber == "a");
  BOOST_TEST(out.veto->reason == "first");
}

BOOST_AUTO_TEST_CASE(every_subscriber_still_sees_a_vetoed_event) {
  Bus bus;
  Journal j;
  bus.on<Gate>([] { return Verdict::stop_fit("early"); }, SubscribeOptions().priority(1));
  bus.on<Gate>([&j] { j.add("late"); }, SubscribeOptions().priority(2));
  BOOST_TEST(bus.emit(Gate{}).stops_fit());
  BOOST_TEST(j.entries() == Labels{"late"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(verdict_the_event_does_not_accept_is_a_clear_error) {
  Bus bus;
  bus.on<Ping>([] { return Verdict::stop_fit("nope"); }, SubscribeOptions().named("rogue"));
  BOOST_CHECK_EXCEPTION(bus.emit(Ping{}), std::logic_error, [](const std::logic_error& e) {
    const std::string what = e.what();
    return what.find("rogue") != std::string::npos && what.find("on_ping") != std::string::npos &&
           what.find("StopFit") != std::string::npos;
  });
  // Continue is always accepted.
  Bus quiet;
  quiet.on<Ping>([] { return Verdict::proceed(); });
  BOOST_TEST(quiet.emit(Ping{}).proceed());
}

BOOST_AUTO_TEST_CASE(handler_exception_propagates_and_stops_dispatch) {
  Bus bus;
  Journal j;
  bus.on<Ping>([&j] { j.add("before"); }, SubscribeOptions().priority(1));
  bus.on<Ping>([]() { throw std::runtime_error("boom"); }, SubscribeOptions().priority(2));
  bus.on<Ping>([&j] { j.add("after"); }, SubscribeOptions().priority(3));
  BOOST_CHECK_EXCEPTION(bus.emit(Ping{}), std::runtime_error, [](const std::runtime_error& e) {
    return std::string(e.what()) == "boom";
  });
  BOOST_TEST(j.entries() == Labels{"before"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(handlers_may_modify_the_payload_in_order) {
  Bus bus;
  bus.on<Ping>([](Ping& p) { p.value = p.value * 10 + 1; }, SubscribeOptions().priority(1));
  bus.on<Ping>([](Ping& p) { p.value = p.value * 10 + 2; }, SubscribeOptions().priority(2));
  Ping p{0};
  bus.emit(p);
  BOOST_TEST(p.value == 12);
}

BOOST_AUTO_TEST_CASE(action_names_and_sets) {
  BOOST_TEST(to_string(Action::SkipRestOfEpoch) == "SkipRestOfEpoch");
  ActionSet set{Action::SkipBatch, Action::StopFit};
  BOOST_TEST(set.describe() == "SkipBatch, StopFit");
  BOOST_TEST(set.contains(Action::Continue));
  BOOST_TEST(!set.contains(Action::SkipRestOfEpoch));
  BOOST_TEST(ActionSet{}.describe() == "none");
}

namespace {
class RecordingTracer final : public Tracer {
 public:
  void on_emit(const EventInfo& e, const void* payload, std::uint64_t seq) override {
    j.add("emit " + std::string(e.name) + " #" + std::to_string(seq) +
          (e.describe ? " " + e.describe(payload) : ""));
  }
  void on_call(const EventInfo& e, const SubscriptionInfo& s, Lane, std::uint64_t seq, const void*,
               Clock::time_point start, Clock::time_point end, Action verdict) override {
    BOOST_TEST((start <= end));
    j.add("call " + std::string(e.name) + " #" + std::to_string(seq) + " " + s.name + " " +
          std::string(to_string(verdict)));
  }
  void on_emit_end(const EventInfo& e, std::uint64_t seq, const Outcome& out) override {
    j.add("end " + std::string(e.name) + " #" + std::to_string(seq) + " " +
          std::string(to_string(out.action)));
  }
  Journal j;
};
}  // namespace

BOOST_AUTO_TEST_CASE(tracer_sees_emissions_calls_and_verdicts) {
  Bus bus;
  auto tracer = std::make_shared<RecordingTracer>();
  bus.set_tracer(tracer);
  bus.on<Gate>([] { return Verdict::skip_batch("x"); }, SubscribeOptions().named("judge"));
  BOOST_TEST(bus.wants<Ping>());  // a tracer wants everything
  bus.emit(Ping{});
  bus.emit(Gate{3});
  BOOST_TEST(tracer->j.entries() ==
                 (Labels{"emit on_ping #1", "end on_ping #1 Continue", "emit on_gate #2 step=3",
                         "call on_gate #2 judge SkipBatch", "end on_gate #2 SkipBatch"}),
             boost::test_tools::per_element());
  bus.set_tracer(nullptr);
  bus.emit(Gate{4});
  BOOST_TEST(tracer->j.entries().size() == 5u);
}

BOOST_AUTO_TEST_SUITE_END()
