#include "hookline/recipe/cli.hpp"

#include "hookline/core/data_module.hpp"
#include "hookline/core/module.hpp"
#include "hookline/recipe/recipe_root.hpp"
#include "hookline/recipe/registry.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace hookline {

namespace {

bool cli_is_section(const std::string& name) {
  const auto& names = RecipeAccess::sections();
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool cli_is_mapping_section(const std::string& name) {
  return name == "trainer" || name == "model" || name == "data" || name == "packs";
}

std::string cli_join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// The name of a callbacks entry: "Name" or {Name: {...}}.
std::string cli_entry_name(const YAML::Node& entry) {
  if (entry.IsScalar()) return entry.Scalar();
  if (entry.IsMap() && entry.size() == 1 && entry.begin()->first.IsScalar())
    return entry.begin()->first.Scalar();
  return "";
}

}  // namespace

// ---- RecipeLayers
// --------------------------------------------------------------------------------

struct RecipeLayers::Impl {
  // A key and its value, with the layer that gave them (a file's nodes keep their place).
  struct Item {
    YAML::Node key;
    YAML::Node value;
    RecipeOrigin origin;
  };
  // A top-level section: a mapping merged key by key (entries), the callbacks list (items), or
  // any other value as given.
  struct Section {
    YAML::Node key;
    RecipeOrigin origin;
    YAML::Node value;
    bool mapped = false;
    bool list = false;
    std::vector<Item> items;
  };
  std::map<std::string, Section> sections;
  std::vector<std::string> order;  // sections not in RecipeAccess::sections(), as first given
  std::string source;              // errors with no better place name this

  Section& section(const std::string& name, const YAML::Node& key) {
    auto [it, added] = sections.try_emplace(name);
    if (added) {
      it->second.key = key;
      if (!cli_is_section(name)) order.push_back(name);
    }
    return it->second;
  }

  static std::string key_of(const Item& item) {
    return item.key.IsScalar() ? item.key.Scalar() : "";
  }

  // Sets one key of a mapping section.
  static void set_entry(Section& s, const YAML::Node& key, const YAML::Node& value,
                        const RecipeOrigin& origin) {
    const std::string name = key.Scalar();
    const auto it = std::find_if(s.items.begin(), s.items.end(),
                                 [&](const Item& item) { return key_of(item) == name; });
    if (value.IsNull()) {
      if (it != s.items.end()) s.items.erase(it);
    } else if (it != s.items.end()) {
      *it = Item{key, value, origin};
    } else {
      s.items.push_back(Item{key, value, origin});
    }
  }

  // The value of `key` in a mapping section, or a null node.
  static YAML::Node entry(const Section& s, const std::string& key) {
    for (const auto& item : s.items)
      if (key_of(item) == key) return item.value;
    return YAML::Node();
  }

  // A section given whole by a layer.
  void merge(const YAML::Node& key, const YAML::Node& value, const RecipeOrigin& origin) {
    const std::string name = key.IsScalar() ? key.Scalar() : "";
    if (value.IsNull() && sections.count(name)) return;  // an empty section changes nothing
    Section& s = section(name, key);
    s.key = key;
    s.origin = origin;
    if (name == "callbacks" && value.IsSequence()) {
      s = Section{key, origin, YAML::Node(), false, true, {}};
      for (const auto& entry_node : value)
        s.items.push_back(Item{YAML::Node(), entry_node, origin});
    } else if (cli_is_mapping_section(name) && value.IsMap()) {
      if (!s.mapped) s = Section{key, origin, YAML::Node(), true, false, {}};
      // Another model (data) class: the options given for the old one go.
      const YAML::Node now = entry(s, "class"), next = value["class"];
      if ((name == "model" || name == "data") && now.IsScalar() && next.IsDefined() &&
          next.IsScalar() && now.Scalar() != next.Scalar())
        s.items.clear();
      for (const auto& item : value) set_entry(s, item.first, item.second, origin);
    } else {
      s = Section{key, origin, value, false, false, {}};
    }
  }

  void add_root(const YAML::Node& root, const std::string& name) {
    if (!root.IsDefined() || root.IsNull()) return;
    if (!root.IsMap())
      throw RecipeError(
          name, root.Mark().line + 1, root.Mark().column + 1, "",
          "a recipe is a mapping with the sections " + cli_join(RecipeAccess::sections()));
    for (const auto& item : root) merge(item.first, item.second, RecipeOrigin{name, true});
    source = name;
  }

  // `base` with `path[i...]` set to `value` (nested mappings made as needed).
  static YAML::Node with_path(const YAML::Node& base, const std::vector<std::string>& path,
                              std::size_t i, const YAML::Node& value) {
    if (i == path.size()) return value;
    YAML::Node out(YAML::NodeType::Map);
    bool set = false;
    if (base.IsMap())
      for (const auto& item : base) {
        if (item.first.IsScalar() && item.first.Scalar() == path[i]) {
          out.force_insert(item.first, with_path(item.second, path, i + 1, value));
          set = true;
        } else {
          out.force_insert(item.first, item.second);
        }
      }
    if (!set) out.force_insert(YAML::Node(path[i]), with_path(YAML::Node(), path, i + 1, value));
    return out;
  }

  void add_override(const std::string& text, const std::string& given_source) {
    const std::string source_name = given_source.empty() ? "--" + text : given_source;
    const RecipeOrigin origin{source_name, false};
    const std::size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
      throw RecipeError(source_name, 0, 0, "",
                        "an override is KEY=VALUE, KEY+=ENTRY or KEY-=NAME, e.g. "
                        "trainer.max_epochs=5");
    char op = '=';
    std::string path_text = text.substr(0, eq);
    if (path_text.back() == '+' || path_text.back() == '-') {
      op = path_text.back();
      path_text.pop_back();
    }
    const std::string value_text = text.substr(eq + 1);
    std::vector<std::string> path;
    for (std::size_t start = 0;;) {
      const std::size_t dot = path_text.find('.', start);
      path.push_back(path_text.substr(start, dot == std::string::npos ? dot : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    const auto fail = [&](const std::string& problem) -> void {
      throw RecipeError(source_name, 0, 0, path_text, problem);
    };
    if (std::any_of(path.begin(), path.end(), [](const std::string& p) { return p.empty(); }))
      fail("a key path is names joined by '.', like trainer.max_epochs");
    const std::string& name = path[0];
    if (!cli_is_section(name))
      fail("unknown section '" + name + "'; a recipe has the sections " +
           cli_join(RecipeAccess::sections()));
    const bool callbacks = name == "callbacks";
    if (op != '=' && !callbacks)
      fail("+= and -= edit the callbacks list: --callbacks+=Name:{options}, --callbacks-=Name");
    if (path.size() > 1 && !cli_is_mapping_section(name))
      fail(callbacks ? "change the callbacks with --callbacks+=Name:{options} (add), "
                       "--callbacks-=Name (remove) or --callbacks=[...] (replace the list)"
                     : "'" + name + "' takes a value: --" + name + "=VALUE");
    if (op == '-') {
      Section& s = section(name, YAML::Node(name));
      const auto before = s.items.size();
      std::vector<std::string> present;
      for (const auto& item : s.items) present.push_back(cli_entry_name(item.value));
      std::erase_if(s.items,
                    [&](const Item& item) { return cli_entry_name(item.value) == value_text; });
      if (s.items.size() == before)
        fail("no callback or pack '" + value_text + "' in the recipe" +
             (present.empty() ? std::string(" (it has none)")
                              : "; its callbacks are: " + cli_join(present)));
      return;
    }
    YAML::Node value;
    try {
      if (op == '+' && !value_text.empty() && value_text.front() != '{') {
        // Name, or Name:{options} (YAML wants a space after the colon; this form needs none).
        const std::size_t colon = value_text.find(':');
        const std::string entry_name = value_text.substr(0, colon);
        if (colon == std::string::npos) {
          value = YAML::Node(entry_name);
        } else {
          const YAML::Node options = YAML::Load(value_text.substr(colon + 1));
          if (!options.IsNull() && !options.IsMap())
            fail("the options of '" + entry_name + "' must be a mapping, like {monitor: val_loss}");
          value = YAML::Node(YAML::NodeType::Map);
          value.SetStyle(YAML::EmitterStyle::Flow);
          value.force_insert(YAML::Node(entry_name), options);
        }
      } else {
        value = YAML::Load(value_text);
      }
    } catch (const YAML::ParserException& e) {
      fail("bad YAML value '" + value_text + "': " + e.msg);
    }
    if (op == '+') {
      if (value.IsNull()) fail("name the callback to add: --callbacks+=Name:{options}");
      Section& s = section(name, YAML::Node(name));
      if (!s.list) s = Section{s.key, origin, YAML::Node(), false, true, {}};
      s.items.push_back(Item{YAML::Node(), value, origin});
      return;
    }
    if (path.size() == 1) {
      if (value.IsNull())
        sections.erase(name);
      else
        merge(YAML::Node(name), value, origin);
      return;
    }
    Section& s = section(name, YAML::Node(name));
    if (!s.mapped) s = Section{s.key, origin, YAML::Node(), true, false, {}};
    s.origin = origin;
    if (path.size() == 2) {
      if ((name == "model" || name == "data") && path[1] == "class") {
        const YAML::Node now = entry(s, "class");
        if (now.IsScalar() && value.IsScalar() && now.Scalar() != value.Scalar()) s.items.clear();
      }
      set_entry(s, YAML::Node(path[1]), value, origin);
    } else {
      set_entry(s, YAML::Node(path[1]), with_path(entry(s, path[1]), path, 2, value), origin);
    }
  }

  Recipe build() const {
    YAML::Node root(YAML::NodeType::Map);
    std::map<std::string, RecipeOrigin> origins;
    std::vector<std::string> names = RecipeAccess::sections();
    names.insert(names.end(), order.begin(), order.end());
    for (const auto& name : names) {
      const auto it = sections.find(name);
      if (it == sections.end()) continue;
      const Section& s = it->second;
      origins[name] = s.origin;
      YAML::Node value = s.value;
      if (s.mapped) {
        value = YAML::Node(YAML::NodeType::Map);
        for (const auto& item : s.items) {
          value.force_insert(item.key, item.value);
          origins[name + "." + key_of(item)] = item.origin;
        }
      } else if (s.list) {
        value = YAML::Node(YAML::NodeType::Sequence);
        for (std::size_t i = 0; i < s.items.size(); ++i) {
          value.push_back(s.items[i].value);
          origins[name + "[" + std::to_string(i) + "]"] = s.items[i].origin;
        }
      }
      root.force_insert(s.key, value);
    }
    return RecipeAccess::from_root(root, source.empty() ? "<command line>" : source,
                                   std::move(origins));
  }
};

RecipeLayers::RecipeLayers() : impl_(std::make_unique<Impl>()) {}
RecipeLayers::~RecipeLayers() = default;
RecipeLayers::RecipeLayers(RecipeLayers&&) noexcept = default;
RecipeLayers& RecipeLayers::operator=(RecipeLayers&&) noexcept = default;

RecipeLayers& RecipeLayers::add_text(const std::string& text, const std::string& source) {
  impl_->add_root(RecipeAccess::parse_yaml(text, source), source);
  return *this;
}

RecipeLayers& RecipeLayers::add_file(const std::string& path) {
  return add_text(RecipeAccess::read_file(path), path);
}

RecipeLayers& RecipeLayers::add_override(const std::string& override_text,
                                         const std::string& source) {
  impl_->add_override(override_text, source);
  return *this;
}

Recipe RecipeLayers::build() const {
  return impl_->build();
}

}  // namespace hookline
