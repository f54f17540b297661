// hookline: glibc malloc's thresholds raised while a run trains (TrainerOptions::tune_allocator).
//
// Why: with glibc's default settings a CPU training step's large freed blocks (activations,
// gradients, batches: hundreds of KiB to MiB each) go back to the kernel (munmap, or trimming the
// top of the heap) and are faulted in again, page by page, on the next step; on a small CNN that
// is thousands of page faults and a step two to three times slower (docs/performance.md).
//
// Contract:
// - An AllocatorTuning made with `enabled` holds the tuning for its lifetime. While at least one
//   is held (process-wide, counted; the Trainer holds one for each fit / validate / test /
//   predict), glibc's M_MMAP_THRESHOLD is 32 MiB (kTunedMmapThreshold: blocks below it come from
//   the heap and are reused) and M_TRIM_THRESHOLD is INT_MAX (the heap's free top is kept).
// - When the last holder goes, the thresholds are "restored": glibc has no getter for them and
//   cannot turn its dynamic mmap threshold back on once mallopt set one, so hookline sets both to
//   glibc's documented starting values (128 KiB, kGlibcDefaultThreshold) and calls malloc_trim(0),
//   which gives the free memory the run kept back to the kernel.
// - Nothing is changed when `enabled` is false, on a C library other than glibc (the class
//   compiles to a no-op), or when the environment already sets either threshold
//   (GLIBC_TUNABLES=...glibc.malloc.mmap_threshold / trim_threshold, MALLOC_MMAP_THRESHOLD_,
//   MALLOC_TRIM_THRESHOLD_): the user's choice stands. A program that calls mallopt itself should
//   turn TrainerOptions::tune_allocator off.
// - The cost: the process keeps its peak heap for the run instead of returning it between steps.
#pragma once

#include <cstddef>

namespace hookline {

/// glibc's M_MMAP_THRESHOLD while tuned.
inline constexpr std::size_t kTunedMmapThreshold = std::size_t{32} << 20;
/// What both thresholds are set back to afterwards (glibc's starting value, 128 KiB).
inline constexpr std::size_t kGlibcDefaultThreshold = std::size_t{128} << 10;

/// Holds the allocator tuning for its lifetime; see the contract above.
class AllocatorTuning {
 public:
  explicit AllocatorTuning(bool enabled = true);
  ~AllocatorTuning();
  AllocatorTuning(const AllocatorTuning&) = delete;
  AllocatorTuning& operator=(const AllocatorTuning&) = delete;

  /// True when this holder counts (it was enabled and the tuning is possible here).
  bool holds() const { return holds_; }

  /// True while the thresholds are raised (some holder is alive).
  static bool active();
  /// True on glibc without thresholds set by the environment: the tuning can apply.
  static bool available();

 private:
  bool holds_ = false;
};

}  // namespace hookline
