// hookline (private): a Recipe made from a YAML tree that several sources were merged into
// (recipe/cli.cpp), with errors that name the source of the key at fault.
#pragma once

#include "hookline/recipe/recipe.hpp"

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace hookline {

/// Where a key of a merged recipe came from: a file (its errors keep their line and column), or
/// a command-line argument (has_place false: the argument is the place).
struct RecipeOrigin {
  std::string source;
  bool has_place = true;
};

struct RecipeAccess {
  /// Checks `root` as Recipe::parse checks a file. An error about key path P ("model.lr",
  /// "callbacks[2].Timer.duration") names the origin of the longest key path in `origins` that
  /// P starts with (`source` when none does).
  static Recipe from_root(YAML::Node root, const std::string& source,
                          std::map<std::string, RecipeOrigin> origins);
  /// The YAML tree of recipe text from `source`: RecipeError for bad YAML, naming line and
  /// column, and for a key given twice in one mapping, naming both lines.
  static YAML::Node parse_yaml(const std::string& text, const std::string& source);
  /// The recipe's YAML tree.
  static const YAML::Node& root(const Recipe& recipe);
  /// Recipe::parse's checks, on a recipe's tree (recipe.cpp).
  static void check(Recipe::Impl& impl);
  /// A recipe's top-level sections, in the order --print-config writes them.
  static const std::vector<std::string>& sections();
  /// The text of the recipe file at `path`; RecipeError for a directory or a file it cannot open.
  static std::string read_file(const std::string& path);
};

}  // namespace hookline
