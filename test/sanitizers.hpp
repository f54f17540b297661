// Which sanitizer the tests are built with (GCC or clang), for the checks a sanitizer changes by
// design: HOOKLINE_TEST_UNDER_ASAN (its quarantine keeps freed memory in RSS; its allocator is not
// glibc's) and HOOKLINE_TEST_UNDER_TSAN (its allocator is not glibc's either). kSanitizedScale
// sizes the soak loops: the sanitizer runs (ASan at -O0, TSan) check the same invariants on a
// tenth of the cycles the release run does.
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

#if defined(__SANITIZE_THREAD__)
#define HOOKLINE_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HOOKLINE_TEST_UNDER_TSAN 1
#endif
#endif
#ifndef HOOKLINE_TEST_UNDER_TSAN
#define HOOKLINE_TEST_UNDER_TSAN 0
#endif

namespace hookline_test {
inline constexpr long kSanitizedScale =
    HOOKLINE_TEST_UNDER_ASAN || HOOKLINE_TEST_UNDER_TSAN ? 10 : 1;
}  // namespace hookline_test
