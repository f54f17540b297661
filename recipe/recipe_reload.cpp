#include "hookline/recipe/recipe_reload.hpp"

#include "hookline/core/console.hpp"
#include "hookline/core/trainer.hpp"
#include "hookline/recipe/recipe.hpp"

#include <fstream>
#include <sstream>

namespace hookline {

namespace {

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

RecipeReload::RecipeReload(std::string path, std::shared_ptr<CallbackPack> current,
                           std::optional<std::string> trainer_section)
    : Callback("RecipeReload", band::checkpoint + band::width - 1),
      path_(std::move(path)),
      current_(std::move(current)),
      trainer_text_(trainer_section.value_or(std::string())) {
  stamp_ = stamp();
  if (auto text = read_text(path_)) {
    text_ = std::move(*text);
    if (trainer_section) return;
    try {
      trainer_text_ = Recipe::parse(text_, path_).section("trainer");
    } catch (const RecipeError&) {
      // The trainer was made from it, so it parsed then; nothing to compare against.
    }
  }
}

std::optional<RecipeReload::Stamp> RecipeReload::stamp() const {
  std::error_code ec;
  Stamp s;
  s.mtime = std::filesystem::last_write_time(path_, ec);
  if (ec) return std::nullopt;
  s.size = std::filesystem::file_size(path_, ec);
  if (ec) return std::nullopt;
  return s;
}

bool RecipeReload::check(Trainer& trainer) {
  const auto now = stamp();
  if (now == stamp_) return false;
  stamp_ = now;
  if (!now) {
    last_error_ = "cannot read the recipe file '" + path_ + "'";
    console().error("recipe reload: {}; keeping the current callbacks", last_error_);
    return false;
  }
  auto text = read_text(path_);
  if (!text || *text == text_) return false;
  text_ = *text;
  std::shared_ptr<CallbackPack> next;
  try {
    Recipe recipe = Recipe::parse(text_, path_);
    if (recipe.section("trainer") != trainer_text_)
      console().warn(
          "recipe reload: the 'trainer:' section of '{}' changed; trainer options are read when "
          "the trainer is made, so the change applies from the next start",
          path_);
    next = recipe.build_pack(current_ ? current_->name() : "recipe");
  } catch (const std::exception& e) {
    last_error_ = e.what();
    console().error("recipe reload: {}; keeping the current callbacks", last_error_);
    return false;
  }
  // Callbacks that stay (same checkpoint key within the pack) keep their state.
  if (current_)
    for (const auto& [key, callback] : next->keyed_callbacks()) {
      if (auto old = current_->find(key)) {
        Checkpoint state;
        old->state_dict(state);
        if (!state.empty()) callback->load_state_dict(state);
      }
    }
  const std::shared_ptr<CallbackPack> previous = current_;
  if (previous) trainer.remove_pack(*previous);
  try {
    trainer.add_pack(next);
  } catch (const std::exception& e) {
    last_error_ = e.what();
    console().error("recipe reload: {}; keeping the current callbacks", last_error_);
    if (previous) trainer.add_pack(previous);
    return false;
  }
  current_ = next;
  last_error_.clear();
  ++reloads_;
  console().info("recipe reload: '{}' changed; the recipe now has {} callbacks", path_,
                 next->callbacks().size());
  return true;
}

void RecipeReload::on_train_epoch_end(Trainer& trainer, Module&) {
  check(trainer);
}

}  // namespace hookline
