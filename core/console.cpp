#include "hookline/core/console.hpp"

#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

namespace hookline {

namespace {

// One lock for everything printed around a LineOwner, and the owner itself.
std::recursive_mutex& terminal_mutex() {
  static std::recursive_mutex m;
  return m;
}
LineOwner* g_owner = nullptr;

// Runs `print` between the installed owner's clear_lines() and restore_lines().
template <class F>
void around_owner(F&& print) {
  std::lock_guard lock(terminal_mutex());
  LineOwner* owner = g_owner;
  if (owner) owner->clear_lines();
  print();
  if (owner) owner->restore_lines();
}

// The console's sink: the colour sink to stderr, each line printed around the line owner.
class AboveTheBarSink final : public spdlog::sinks::sink {
 public:
  AboveTheBarSink() : inner_(std::make_shared<spdlog::sinks::stderr_color_sink_mt>()) {}
  void log(const spdlog::details::log_msg& msg) override {
    around_owner([&] {
      inner_->log(msg);
      inner_->flush();
    });
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::stderr_color_sink_mt> inner_;
};

}  // namespace

spdlog::logger& console() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    std::shared_ptr<spdlog::logger> l = spdlog::get("hookline");
    if (!l) {
      l = std::make_shared<spdlog::logger>("hookline", std::make_shared<AboveTheBarSink>());
      spdlog::register_logger(l);
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

void write_line(std::string_view text, std::FILE* stream) {
  around_owner([&] {
    std::fwrite(text.data(), 1, text.size(), stream);
    std::fputc('\n', stream);
    std::fflush(stream);
  });
}

LineOwner* install_line_owner(LineOwner* owner) {
  std::lock_guard lock(terminal_mutex());
  LineOwner* previous = g_owner;
  g_owner = owner;
  return previous;
}

void uninstall_line_owner(LineOwner* owner) {
  std::lock_guard lock(terminal_mutex());
  if (g_owner == owner) g_owner = nullptr;
}

}  // namespace hookline
