// A recipe's YAML: duplicate keys refused, and the recipe written back as YAML (--print-config).
#include "hookline/recipe/recipe_root.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace hookline {

namespace {

// yaml-cpp keeps both values of a key given twice in one mapping (and lookups find the first):
// refuse it, naming both lines. `path` is where `node` is ("" for the root).
void reject_duplicates(const YAML::Node& node, const std::string& path, const std::string& file) {
  if (node.IsSequence()) {
    std::size_t i = 0;
    for (const auto& item : node)
      reject_duplicates(item, path + "[" + std::to_string(i++) + "]", file);
  } else if (node.IsMap()) {
    std::vector<std::pair<std::string, YAML::Mark>> seen;
    for (const auto& item : node) {
      const std::string key = item.first.IsScalar() ? item.first.Scalar() : "";
      const std::string where = path.empty() ? key : path + "." + key;
      if (item.first.IsScalar()) {
        const auto first =
            std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == key; });
        const YAML::Mark mark = item.first.Mark();
        if (first != seen.end())
          throw RecipeError(file, mark.line + 1, mark.column + 1, where,
                            "'" + key + "' is given twice in one mapping, on line " +
                                std::to_string(first->second.line + 1) + " and on line " +
                                std::to_string(mark.line + 1) + "; keep one of them");
        seen.emplace_back(key, mark);
      }
      reject_duplicates(item.second, where, file);
    }
  }
}

// Writes `node` keeping what makes it read back the same: a scalar that was quoted in its file
// (tag "!") stays quoted ("32", "yes" stay strings), collections keep their flow or block style.
void emit_yaml(YAML::Emitter& out, const YAML::Node& node) {
  if (node.IsScalar()) {
    if (node.Tag() == "!") out << YAML::DoubleQuoted;
    out << node.Scalar();
  } else if (node.IsSequence()) {
    if (node.Style() == YAML::EmitterStyle::Flow) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& item : node) emit_yaml(out, item);
    out << YAML::EndSeq;
  } else if (node.IsMap()) {
    if (node.Style() == YAML::EmitterStyle::Flow) out << YAML::Flow;
    out << YAML::BeginMap;
    for (const auto& item : node) {
      out << YAML::Key;
      emit_yaml(out, item.first);
      out << YAML::Value;
      emit_yaml(out, item.second);
    }
    out << YAML::EndMap;
  } else {
    out << YAML::Null;
  }
}

}  // namespace

YAML::Node RecipeAccess::parse_yaml(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw RecipeError(source, e.mark.line + 1, e.mark.column + 1, "", "bad YAML: " + e.msg);
  }
  reject_duplicates(root, "", source);
  return root;
}

std::string Recipe::to_yaml() const {
  YAML::Emitter out;
  out.SetIndent(2);
  emit_yaml(out, RecipeAccess::root(*this));
  return std::string(out.c_str()) + "\n";
}

}  // namespace hookline
