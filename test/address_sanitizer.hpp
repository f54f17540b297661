// HOOKLINE_TEST_UNDER_ASAN is 1 when the tests are built with AddressSanitizer (GCC or clang),
// for the checks ASan changes by design (its quarantine keeps freed memory in RSS).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define HOOKLINE_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HOOKLINE_TEST_UNDER_ASAN 1
#endif
#endif
#ifndef HOOKLINE_TEST_UNDER_ASAN
#define HOOKLINE_TEST_UNDER_ASAN 0
#endif
