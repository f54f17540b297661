// hookline: recipe files, a training setup (trainer options, callbacks, packs) in YAML that can be
// changed without recompiling.
//
//   # recipe.yaml
//   trainer:                      # TrainerOptions, by their names
//     max_epochs: 5
//     limit_val_batches: 0.5
//   trace: "ring:10000"           # optional: tracing (recipe/tracing.hpp spec)
//   reload: false                 # optional: re-read the file at each epoch end (RecipeReload)
//   model:                        # optional: a registered model (registry.hpp) and its options
//     class: Classifier           #   (class may be left out when one model is registered)
//     lr: 0.01
//   data:                         # optional: a registered data module and its options
//     class: FashionMnist
//     batch_size: 64
//   packs:                        # optional: packs defined here, by name
//     monitoring:
//       - LearningRateMonitor: {logging_interval: epoch}
//       - Timer: {duration: "00:02:00:00"}
//   callbacks:                    # callbacks and packs, in order
//     - EarlyStopping: {monitor: val_loss, patience: 3}
//     - monitoring                # a pack defined above (or a registered one; no options)
//     - classification_defaults: {monitor: val_acc, mode: max}
//
//   auto trainer = Trainer::from_recipe("recipe.yaml");       // or:
//   Recipe recipe = Recipe::load("recipe.yaml");
//   Trainer trainer(recipe.trainer_options());
//   AppliedRecipe applied = recipe.apply(trainer);             // and later applied.remove(trainer)
//
// An entry is a name (no options) or a one-key mapping name: {options}. A name is looked up
// among the packs defined in the file, then the registry's packs and callbacks (registry.hpp).
// Any entry may set `priority` (an int, the bus band; see events/bands.hpp).
//
// Loading checks everything and builds every part once: unknown names ("did you mean ...?"),
// unknown or mistyped options, missing required ones, bad YAML, and options a constructor
// rejects all throw RecipeError with the file, line, column and key, before any trainer exists;
// apply() adds all parts or none. The model's and data's options are checked by their factories
// when make_model() / make_data() build them (hookline::Cli does it before anything trains).
//
// Recipes can be layered, later sources over earlier ones (the program's defaults, files, then
// command-line overrides): see recipe/cli.hpp.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/callback_pack.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/recipe/recipe_options.hpp"

#include <memory>
#include <string>
#include <vector>

namespace hookline {

class Trainer;
class Module;
class DataModule;

/// What Recipe::apply added to a trainer, so it can be taken out again.
struct AppliedRecipe {
  std::vector<std::shared_ptr<Callback>> callbacks;
  std::vector<std::shared_ptr<CallbackPack>> packs;
  /// Removes the callbacks and packs from `trainer` (those still there).
  void remove(Trainer& trainer) const;
};

class Recipe {
 public:
  /// Reads and checks `path`. Throws RecipeError.
  static Recipe load(const std::string& path);
  /// Checks a recipe given as text; `source` names it in errors. Throws RecipeError.
  static Recipe parse(const std::string& text, const std::string& source = "<recipe>");

  ~Recipe();
  Recipe(Recipe&&) noexcept;
  Recipe& operator=(Recipe&&) noexcept;

  /// The file (or source name) it was read from.
  const std::string& source() const;
  /// TrainerOptions from the `trainer:` section (defaults for what it does not set).
  TrainerOptions trainer_options() const;
  /// The `trace:` spec ("" when absent).
  const std::string& trace() const;
  /// The `reload:` flag.
  bool reload() const;
  /// A top-level section as normalised YAML text ("" when absent), to compare two recipes.
  std::string section(const std::string& name) const;
  /// The whole recipe as YAML text that loads back to the same recipe (--print-config).
  std::string to_yaml() const;

  /// Whether the recipe has a `model:` (`data:`) section.
  bool has_model() const;
  bool has_data() const;
  /// The registered name the section picks: its `class:`, else the one registered model (data
  /// module); "" without a section.
  std::string model_class() const;
  std::string data_class() const;
  /// A fresh model (data module) from its registered factory, given the section's other keys;
  /// null without a section. Throws RecipeError (unknown or mistyped options, ...).
  std::shared_ptr<Module> make_model() const;
  std::shared_ptr<DataModule> make_data() const;
  /// The options a section ("trainer", "model" or "data") reads, with their types and the values
  /// in effect (for "model" and "data" the factory runs once). Throws RecipeError.
  std::vector<RecipeOptions::Asked> describe(const std::string& section) const;

  /// Fresh instances of the callbacks and packs of `callbacks:`, in order.
  struct Parts {
    std::vector<std::shared_ptr<Callback>> callbacks;
    std::vector<std::shared_ptr<CallbackPack>> packs;
  };
  Parts build() const;
  /// The parts as one pack named `name` (what RecipeReload swaps).
  std::shared_ptr<CallbackPack> build_pack(const std::string& name) const;

  /// Adds fresh parts to `trainer`, all or none (a failure removes those already added and
  /// rethrows). Trainer options and `trace` are not applied (they belong to making a trainer).
  AppliedRecipe apply(Trainer& trainer) const;

  /// A trainer with the recipe's options, tracing and parts. With `reload: true` the parts live
  /// in a pack "recipe" that a RecipeReload callback swaps when the file changes.
  std::unique_ptr<Trainer> make_trainer() const;

 private:
  friend struct RecipeAccess;  // recipe/recipe_root.hpp
  struct Impl;
  explicit Recipe(std::shared_ptr<const Impl> impl);
  std::unique_ptr<Trainer> make_trainer_here() const;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace hookline
