// Runner for the torch-free suites: the event bus (test/events) and tracing (test/tracing).
#define BOOST_TEST_MODULE hookline_bus
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>
