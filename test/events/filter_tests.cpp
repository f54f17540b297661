// Subscription filters.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "test_events.hpp"

using namespace hookline;
using namespace test_events;

namespace {
// Emits Ping{1..n} and returns the values the filtered subscriber saw.
std::vector<int> admitted(Filter filter, int n, int rank = 0) {
  Bus bus;
  bus.set_rank(rank);
  std::vector<int> seen;
  bus.on<Ping>([&](const Ping& p) { seen.push_back(p.value); },
               SubscribeOptions().filter(std::move(filter)));
  for (int i = 1; i <= n; ++i) bus.emit(Ping{i});
  return seen;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(filters)

BOOST_AUTO_TEST_CASE(every_n) {
  BOOST_TEST(admitted(Filter::every_n(3), 10) == (std::vector<int>{3, 6, 9}),
             boost::test_tools::per_element());
  BOOST_TEST(admitted(Filter::every_n(1), 3) == (std::vector<int>{1, 2, 3}),
             boost::test_tools::per_element());
  BOOST_CHECK_THROW(Filter::every_n(0), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(once_at) {
  BOOST_TEST(admitted(Filter::once_at(4), 10) == std::vector<int>{4},
             boost::test_tools::per_element());
  BOOST_TEST(admitted(Filter::once_at(11), 10).empty());
  BOOST_CHECK_THROW(Filter::once_at(0), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(before_and_after) {
  BOOST_TEST(admitted(Filter::before(3), 6) == (std::vector<int>{1, 2}),
             boost::test_tools::per_element());
  BOOST_TEST(admitted(Filter::after(4), 6) == (std::vector<int>{5, 6}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(predicate) {
  auto even = Filter::when<Ping>([](const Ping& p) { return p.value % 2 == 0; });
  BOOST_TEST(admitted(even, 6) == (std::vector<int>{2, 4, 6}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(predicate_for_another_event_is_rejected) {
  Bus bus;
  auto wrong = Filter::when<Gate>([](const Gate&) { return true; });
  BOOST_CHECK_EXCEPTION(bus.on<Ping>([] {}, SubscribeOptions().filter(wrong)),
                        std::invalid_argument, [](const std::invalid_argument& e) {
                          return std::string(e.what()).find("on_ping") != std::string::npos;
                        });
}

BOOST_AUTO_TEST_CASE(rank_zero) {
  BOOST_TEST(admitted(Filter::rank_zero(), 3, 0).size() == 3u);
  BOOST_TEST(admitted(Filter::rank_zero(), 3, 1).empty());
}

BOOST_AUTO_TEST_CASE(clauses_combine) {
  auto f = Filter::every_n(2) && Filter::after(4) && Filter::before(10);
  BOOST_TEST(admitted(f, 12) == (std::vector<int>{6, 8}), boost::test_tools::per_element());
  BOOST_TEST(f.describe() == "every_n(2) && after(4) && before(10)");
  BOOST_TEST(Filter().describe() == "all");
}

BOOST_AUTO_TEST_CASE(blocked_emissions_do_not_count) {
  Bus bus;
  std::vector<int> seen;
  auto c = bus.on<Ping>([&](const Ping& p) { seen.push_back(p.value); },
                        SubscribeOptions().filter(Filter::every_n(2)));
  bus.emit(Ping{1});
  c.block();
  bus.emit(Ping{2});
  bus.emit(Ping{3});
  c.unblock();
  bus.emit(Ping{4});  // the 2nd emission that reached it
  BOOST_TEST(seen == std::vector<int>{4}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
