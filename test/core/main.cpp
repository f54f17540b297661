// Runner for the LibTorch-side suites (test/core/*_tests.cpp): data, trainer, callbacks.
#define BOOST_TEST_MODULE hookline_core
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>
