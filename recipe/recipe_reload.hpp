// hookline: RecipeReload, a callback that re-reads a recipe file during a fit and swaps the
// callbacks it describes, so a long run can gain or lose a callback without a restart.
//
// Turned on by `reload: true` in the recipe (Trainer::from_recipe); off by default. The recipe's
// callbacks and packs then live in one pack named "recipe".
//
// - When: at the end of every training epoch, after every other callback's on_train_epoch_end
//   (it sits at the end of the checkpoint band). The file counts as changed when its
//   modification time or size changed and its text differs.
// - What: the new recipe is checked in full first; a bad file is reported (spdlog error with the
//   file, line and key) and the current callbacks stay. A good one is built, each new callback
//   whose checkpoint key matches an old one takes over the old one's state (state_dict ->
//   load_state_dict: EarlyStopping keeps its patience count, ModelCheckpoint its best), then the
//   old pack is removed and the new one added. The new callbacks get setup() at once and see
//   every event from the next one on (on_train_epoch_start of the next epoch).
// - Only the callbacks change: `trainer:` options and `trace:` are read when the trainer is
//   made; a change there is reported as ignored.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/callback_pack.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace hookline {

class RecipeReload : public Callback {
 public:
  /// `current`: the pack the trainer holds now for this recipe (may be null: the first reload
  /// only adds). `trainer_section`: Recipe::section("trainer") of the recipe the trainer was
  /// made from, when the caller has it (otherwise the file is parsed once more to get it).
  explicit RecipeReload(std::string path, std::shared_ptr<CallbackPack> current = nullptr,
                        std::optional<std::string> trainer_section = std::nullopt);

  const std::string& path() const { return path_; }
  /// The recipe's pack in the trainer now.
  const std::shared_ptr<CallbackPack>& current() const { return current_; }
  /// How many times the callbacks were swapped.
  std::int64_t reloads() const { return reloads_; }
  /// The last reload error ("" when the last check was fine).
  const std::string& last_error() const { return last_error_; }

  /// Checks the file now and swaps when it changed (what on_train_epoch_end does); returns
  /// whether it swapped.
  bool check(Trainer& trainer);

  void on_train_epoch_end(Trainer& trainer, Module& module) override;

 private:
  struct Stamp {
    std::filesystem::file_time_type mtime{};
    std::uintmax_t size = 0;
    bool operator==(const Stamp&) const = default;
  };
  std::optional<Stamp> stamp() const;

  std::string path_;
  std::shared_ptr<CallbackPack> current_;
  std::optional<Stamp> stamp_;
  std::string text_;
  std::string trainer_text_;
  std::int64_t reloads_ = 0;
  std::string last_error_;
};

}  // namespace hookline
