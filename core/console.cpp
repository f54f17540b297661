#include "hookline/core/console.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace hookline {

spdlog::logger& console() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    std::shared_ptr<spdlog::logger> l = spdlog::get("hookline");
    if (!l) {
      l = spdlog::stderr_color_mt("hookline");
      l->set_pattern("%^hookline %l:%$ %v");
      spdlog::level::level_enum level = spdlog::level::info;
      if (const char* env = std::getenv("HOOKLINE_LOG_LEVEL")) {
        std::string name(env);
        if (name == "warning") name = "warn";
        level = spdlog::level::from_str(name);
      }
      l->set_level(level);
    }
    return l;
  }();
  return *logger;
}

void set_log_level(spdlog::level::level_enum level) {
  console().set_level(level);
}

}  // namespace hookline
