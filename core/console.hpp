// hookline: the console, where the library says what it has to say (spdlog).
//
// Everything hookline prints besides the progress bar goes through one spdlog logger named
// "hookline", to stderr: info (e.g. why a fit stopped), warnings (e.g. a stop request ignored
// until min_epochs), errors. Its level is info unless the environment variable
// HOOKLINE_LOG_LEVEL says otherwise (trace, debug, info, warning, error, critical, off), or you
// call set_log_level:
//
//   hookline::set_log_level(spdlog::level::warn);   // only warnings and errors
//
// While a progress bar is shown on a terminal, printing with printf would land on the end of the
// bar's line. write_line prints above the bar instead (tqdm's `write`): the bar is cleared, the
// line printed, the bar drawn again below it. The console's own lines go the same way.
//
//   hookline::write_line("epoch 3: new best model");   // stdout, above the bar
#pragma once

#include <spdlog/logger.h>

#include <cstdio>
#include <string_view>

namespace hookline {

/// The "hookline" logger (created on first use, registered with spdlog).
spdlog::logger& console();
/// Sets the console's level.
void set_log_level(spdlog::level::level_enum level);

/// Prints `text` and a newline to `stream` (flushed), above the progress bar if one is shown.
void write_line(std::string_view text, std::FILE* stream = stdout);

/// What holds the terminal's last lines (a progress bar): the console and write_line call
/// clear() before they print and restore() after, one line at a time, under one lock.
class LineOwner {
 public:
  virtual ~LineOwner() = default;
  /// Erase what it drew, leaving the cursor at the start of its first line.
  virtual void clear_lines() = 0;
  /// Draw it again (at the cursor, below what was printed).
  virtual void restore_lines() = 0;
};

/// Installs `owner` (nullptr: none) and returns the one it replaces. The owner must stay alive
/// until it is replaced; uninstall_line_owner(owner) removes it only if it is still installed.
LineOwner* install_line_owner(LineOwner* owner);
void uninstall_line_owner(LineOwner* owner);

}  // namespace hookline
