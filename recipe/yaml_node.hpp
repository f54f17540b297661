// hookline (private): the YAML node behind a RecipeOptions, and where it is in its file.
#pragma once

#include "hookline/recipe/recipe_options.hpp"

#include <yaml-cpp/yaml.h>

namespace hookline {

struct RecipeOptions::Node {
  YAML::Node value;  // a mapping, or null for an entry without options
  YAML::Mark mark;   // where the entry is (for errors about the entry as a whole)
};

}  // namespace hookline
