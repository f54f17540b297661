// hookline: a program's command line from its recipe, Lightning's LightningCLI for hookline.
//
// A program registers its model and data module (registry.hpp), gives its defaults as a recipe,
// and lets hookline::Cli read the command line. Every recipe key is then an option, with no code
// per option:
//
//   int main(int argc, char** argv) {
//     hookline::registry().add_model<Classifier>("Classifier");  // Classifier(RecipeOptions&)
//     hookline::registry().add_data<Images>("Images");
//     hookline::Cli cli("train", "Trains a classifier.");
//     cli.defaults("trainer: {max_epochs: 3}\nmodel: {class: Classifier}\ndata: {class:
//     Images}\n"); if (auto status = cli.parse(argc, argv)) return *status;  // --help, a usage
//     error, ... auto trainer = cli.recipe().make_trainer(); trainer->fit(*cli.model(),
//     *cli.data());
//   }
//
//   train --trainer.max_epochs=5 --model.lr=0.01 --data.batch_size 128
//   train --config run.yaml --callbacks+=EarlyStopping:{monitor: val_loss, patience: 3}
//   train --callbacks-=ModelSummary --trainer.fast_dev_run=2 --trace=t.jsonl
//   train --print-config > run.yaml      # the recipe in effect; `train -c run.yaml` runs it again
//   train --help                          # every option, its type and the value in effect
//
// Layers, each over the ones before: the program's defaults, the recipe file (a positional
// RECIPE when the program takes one, else its default file), each --config FILE, then the
// overrides in command-line order (--model.class / --data.class first). A mapping section
// (trainer, model, data, packs) merges key by key; `callbacks` is replaced as a whole, or edited
// with += (append an entry) and -= (remove the entries of a name). Giving the model (data) another
// class drops the options the earlier layers gave it. A value is YAML: 5, 0.25, true,
// "00:00:30:00", [1, 2], {monitor: val_loss}; an empty value (--trainer.seed=) unsets the key.
//
// Errors name where the bad value came from: a file's line and column, or the argument itself
// ("--trainer.max_epochs=abc: trainer.max_epochs: expected an integer, got 'abc'"), and parse()
// returns 2 before anything trains: the model and data module are built there, once, so their
// options are checked too.
#pragma once

#include "hookline/recipe/recipe.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hookline {

/// A recipe put together from layers (the rules above); the part of Cli that reads no argv.
class RecipeLayers {
 public:
  RecipeLayers();
  ~RecipeLayers();
  RecipeLayers(RecipeLayers&&) noexcept;
  RecipeLayers& operator=(RecipeLayers&&) noexcept;

  /// A recipe's text over the layers so far; `source` names it in errors. Throws RecipeError
  /// (bad YAML, a key given twice, not a mapping).
  RecipeLayers& add_text(const std::string& text, const std::string& source);
  /// A recipe file over the layers so far. Throws RecipeError.
  RecipeLayers& add_file(const std::string& path);
  /// An override as on the command line without its "--": "trainer.max_epochs=5",
  /// "callbacks+=Timer:{duration: 60}", "callbacks-=ModelSummary". `source` names it in errors
  /// (default: "--" + override). Throws RecipeError.
  RecipeLayers& add_override(const std::string& override_text, const std::string& source = "");
  /// The merged recipe, checked as Recipe::parse checks a file. Throws RecipeError.
  Recipe build() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Cli {
 public:
  /// The exit status parse() returns for a usage error or a bad recipe.
  static constexpr int kUsageError = 2;

  /// `program` names it in usage and messages; `description` opens --help.
  Cli(std::string program, std::string description);
  ~Cli();

  /// What --version prints.
  Cli& version(std::string text);
  /// The program's defaults: a recipe under every other layer.
  Cli& defaults(std::string recipe_text);
  /// A recipe file over the defaults (a positional RECIPE replaces it).
  Cli& default_config(std::string path);
  /// Take one positional argument: the recipe file.
  Cli& positional_config(std::string help);
  /// `name` ("--epochs") as another spelling of the override of `key` ("trainer.max_epochs").
  Cli& alias(std::string name, std::string key);
  /// The program's own flag (no value) and option (one value), not part of the recipe.
  Cli& flag(std::string name, bool& target, std::string help);
  Cli& option(std::string name, std::string& target, std::string help);

  /// Reads the command line. Nothing when the program should run: recipe(), model() and data()
  /// are ready. Otherwise the exit status: 0 after --help, --version or --print-config (printed
  /// on stdout), kUsageError after a usage error or a bad recipe (said on stderr).
  std::optional<int> parse(int argc, const char* const* argv);

  /// The recipe in effect (after parse()).
  const Recipe& recipe() const;
  /// The model and data module the recipe's sections built (null without the section).
  std::shared_ptr<Module> model() const;
  std::shared_ptr<DataModule> data() const;
  /// The --help text for the recipe in effect (or the defaults, before parse()).
  std::string help() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hookline
