// Runner for the event bus suites (test/bus/*_tests.cpp).
#define BOOST_TEST_MODULE hookline_bus
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>
