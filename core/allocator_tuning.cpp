#include "hookline/core/allocator_tuning.hpp"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace hookline {

namespace {

std::mutex& tuning_mutex() {
  static std::mutex mutex;
  return mutex;
}
int tuning_holders = 0;  // under tuning_mutex()

// True when the environment sets a threshold (glibc reads it at the first malloc).
bool environment_sets_thresholds() {
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr ||
      std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr)
    return true;
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  return tunables != nullptr && (std::strstr(tunables, "glibc.malloc.mmap_threshold") != nullptr ||
                                 std::strstr(tunables, "glibc.malloc.trim_threshold") != nullptr);
}

}  // namespace

bool AllocatorTuning::available() {
#if defined(__GLIBC__)
  static const bool available = !environment_sets_thresholds();
  return available;
#else
  return false;
#endif
}

bool AllocatorTuning::active() {
  std::lock_guard lock(tuning_mutex());
  return tuning_holders > 0;
}

AllocatorTuning::AllocatorTuning(bool enabled) {
  if (!enabled || !available()) return;
  std::lock_guard lock(tuning_mutex());
#if defined(__GLIBC__)
  if (tuning_holders == 0) {
    mallopt(M_MMAP_THRESHOLD, static_cast<int>(kTunedMmapThreshold));
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
  }
#endif
  ++tuning_holders;
  holds_ = true;
}

AllocatorTuning::~AllocatorTuning() {
  if (!holds_) return;
  std::lock_guard lock(tuning_mutex());
  if (--tuning_holders > 0) return;
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kGlibcDefaultThreshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kGlibcDefaultThreshold));
  malloc_trim(0);
#endif
}

}  // namespace hookline
