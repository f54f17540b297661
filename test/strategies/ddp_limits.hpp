// hookline tests: how long the two-rank runs of ddp_tests may take.
//
// A run that should end at once (a rank failed, a signal arrived) is checked against
// kNoHangSeconds: far above what a run takes under a sanitizer on a loaded 2-core machine, far
// below the process group's timeout, which is what a rank left waiting would run into.
#pragma once

inline constexpr int kProcessGroupTimeoutSeconds = 240;
inline constexpr double kNoHangSeconds = 90.0;
