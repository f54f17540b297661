// hookline: the console, where the library says what it has to say (spdlog).
//
// Everything hookline prints besides the progress bar goes through one spdlog logger named
// "hookline", to stderr: info (e.g. why a fit stopped), warnings (e.g. a stop request ignored
// until min_epochs), errors. Its level is info unless the environment variable
// HOOKLINE_LOG_LEVEL says otherwise (trace, debug, info, warning, error, critical, off), or you
// call set_log_level:
//
//   hookline::set_log_level(spdlog::level::warn);   // only warnings and errors
#pragma once

#include <spdlog/logger.h>

namespace hookline {

/// The "hookline" logger (created on first use, registered with spdlog).
spdlog::logger& console();
/// Sets the console's level.
void set_log_level(spdlog::level::level_enum level);

}  // namespace hookline
