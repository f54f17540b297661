// libFuzzer target: recipe files (YAML -> trainer options, callbacks, packs).
// Properties, for any text:
//  - Recipe::parse returns or throws RecipeError (nothing else escapes, nothing crashes);
//  - a recipe that parsed gives its trainer options and fresh parts without throwing (parsing
//    already checked and built everything once);
//  - apply() adds all parts or none: after a failure the trainer has exactly the callbacks and
//    packs it had before, and remove() after a success restores that too.
#include <hookline/core/trainer.hpp>
#include <hookline/recipe/recipe.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>

namespace {

[[noreturn]] void fail(const std::string& text, const char* what) {
  std::fprintf(stderr, "fuzz_recipe: %s\n--- recipe ---\n%s\n---\n", what, text.c_str());
  std::abort();
}

hookline::TrainerOptions quiet() {
  return hookline::TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false)
      .logger(false)
      .handle_signals(false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::optional<hookline::Recipe> recipe;
  try {
    recipe.emplace(hookline::Recipe::parse(text, "fuzz.yaml"));
  } catch (const hookline::RecipeError&) {
    return 0;
  }
  try {
    (void)recipe->trainer_options();
    (void)recipe->trace();
    (void)recipe->section("trainer");
    (void)recipe->build();
    (void)recipe->build_pack("recipe");
  } catch (const std::exception& e) {
    fail(text, (std::string("a parsed recipe failed later: ") + e.what()).c_str());
  }
  hookline::Trainer trainer(quiet());
  const std::size_t callbacks = trainer.callbacks().size();
  const std::size_t packs = trainer.packs().size();
  try {
    const hookline::AppliedRecipe applied = recipe->apply(trainer);
    applied.remove(trainer);
  } catch (const std::exception& e) {
    if (std::getenv("HOOKLINE_FUZZ_VERBOSE")) std::fprintf(stderr, "fuzz_recipe: %s\n", e.what());
    // A clear error (a duplicate state key, say) is fine; a half-applied recipe is not.
  }
  if (trainer.callbacks().size() != callbacks || trainer.packs().size() != packs)
    fail(text, ("apply() or remove() left the trainer with " +
                std::to_string(trainer.callbacks().size()) + " callbacks and " +
                std::to_string(trainer.packs().size()) + " packs instead of " +
                std::to_string(callbacks) + " and " + std::to_string(packs))
                   .c_str());
  return 0;
}
