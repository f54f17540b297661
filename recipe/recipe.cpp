#include "hookline/recipe/recipe.hpp"

#include "hookline/core/data_module.hpp"
#include "hookline/core/module.hpp"
#include "hookline/core/trainer.hpp"
#include "hookline/loggers/csv_logger.hpp"
#include "hookline/loggers/tensorboard_logger.hpp"
#include "hookline/recipe/recipe_reload.hpp"
#include "hookline/recipe/recipe_root.hpp"
#include "hookline/recipe/registry.hpp"
#include "hookline/recipe/tracing.hpp"
#include "hookline/recipe/yaml_node.hpp"
#include "hookline/tracing/trace_spec.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <variant>

namespace hookline {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out.append(", ");
    out.append(item);
  }
  return out;
}

// `map[key]`, or a null node when `map` is not a mapping or has no `key` (yaml-cpp's operator[]
// on a missing key gives a node whose every query but IsDefined() throws).
YAML::Node child(const YAML::Node& map, const std::string& key) {
  if (!map.IsDefined() || !map.IsMap()) return YAML::Node();
  const YAML::Node value = map[key];
  return value.IsDefined() ? value : YAML::Node();
}

[[noreturn]] void fail_at(const std::string& file, const YAML::Mark& mark, const std::string& key,
                          const std::string& problem) {
  throw RecipeError(file, mark.line + 1, mark.column + 1, key, problem);
}

// Options for a whole section or entry (errors point at `mark` when a key is not found).
RecipeOptions options_of(const YAML::Node& value, const YAML::Mark& mark, const std::string& file,
                         const std::string& path) {
  auto node = std::make_shared<RecipeOptions::Node>();
  node->value = value;
  node->mark = mark;
  return RecipeOptions(std::move(node), file, path);
}

// Reads `trainer:` into `t`; `logger` gets "csv" or "tensorboard" when the recipe names one
// (made fresh for every trainer by Recipe::trainer_options).
void read_trainer_options(RecipeOptions& o, TrainerOptions& t, std::string& logger) {
  HOOKLINE_RECIPE_OPTION(o, t, max_epochs);
  HOOKLINE_RECIPE_OPTION(o, t, min_epochs);
  HOOKLINE_RECIPE_OPTION(o, t, max_steps);
  HOOKLINE_RECIPE_OPTION(o, t, min_steps);
  HOOKLINE_RECIPE_OPTION(o, t, max_time);
  HOOKLINE_RECIPE_OPTION(o, t, limit_train_batches);
  HOOKLINE_RECIPE_OPTION(o, t, limit_val_batches);
  HOOKLINE_RECIPE_OPTION(o, t, limit_test_batches);
  HOOKLINE_RECIPE_OPTION(o, t, limit_predict_batches);
  HOOKLINE_RECIPE_OPTION(o, t, val_check_interval);
  HOOKLINE_RECIPE_OPTION(o, t, check_val_every_n_epoch);
  HOOKLINE_RECIPE_OPTION(o, t, num_sanity_val_steps);
  HOOKLINE_RECIPE_OPTION(o, t, accumulate_grad_batches);
  HOOKLINE_RECIPE_OPTION(o, t, gradient_clip_val);
  HOOKLINE_RECIPE_OPTION(o, t, gradient_clip_algorithm);
  HOOKLINE_RECIPE_OPTION(o, t, log_every_n_steps);
  HOOKLINE_RECIPE_OPTION(o, t, fast_dev_run);
  HOOKLINE_RECIPE_OPTION(o, t, overfit_batches);
  HOOKLINE_RECIPE_OPTION(o, t, reload_dataloaders_every_n_epochs);
  HOOKLINE_RECIPE_OPTION(o, t, deterministic);
  HOOKLINE_RECIPE_OPTION(o, t, seed);
  HOOKLINE_RECIPE_OPTION(o, t, default_root_dir);
  HOOKLINE_RECIPE_OPTION(o, t, precision);
  HOOKLINE_RECIPE_OPTION(o, t, inference_mode);
  HOOKLINE_RECIPE_OPTION(o, t, num_threads);
  HOOKLINE_RECIPE_OPTION(o, t, device);
  HOOKLINE_RECIPE_OPTION(o, t, accelerator);
  HOOKLINE_RECIPE_OPTION(o, t, strategy);
  HOOKLINE_RECIPE_OPTION(o, t, devices);
  HOOKLINE_RECIPE_OPTION(o, t, num_nodes);
  HOOKLINE_RECIPE_OPTION(o, t, process_group_timeout);
  HOOKLINE_RECIPE_OPTION(o, t, use_distributed_sampler);
  HOOKLINE_RECIPE_OPTION(o, t, enable_checkpointing);
  HOOKLINE_RECIPE_OPTION(o, t, async_checkpointing);
  HOOKLINE_RECIPE_OPTION(o, t, handle_signals);
  HOOKLINE_RECIPE_OPTION(o, t, tune_allocator);
  HOOKLINE_RECIPE_OPTION(o, t, enable_progress_bar);
  HOOKLINE_RECIPE_OPTION(o, t, enable_model_summary);
  // logger: true / false (Lightning's), or which logger: "tensorboard" or "csv".
  if (const auto given = o.get<std::string>("logger")) {
    const std::string& value = *given;
    if (value == "true" || value == "false") {
      t.logger(value == "true");
    } else if (value == "tensorboard" || value == "csv") {
      logger = value;
    } else {
      o.fail("logger", "expected true, false, \"tensorboard\" or \"csv\", got '" + value + "'");
    }
  } else {
    o.note_default("logger", true);
  }
  o.reject_unknown("the trainer");
  try {
    t.validate();
  } catch (const std::invalid_argument& e) {
    // "TrainerOptions::max_steps(-5) is invalid: ...": the error is at that option.
    const std::string message = e.what(), prefix = "TrainerOptions::";
    std::string key;
    if (message.rfind(prefix, 0) == 0)
      key = message.substr(prefix.size(),
                           message.find_first_of("(: ", prefix.size()) - prefix.size());
    o.fail(o.has(key) ? key : "", message);
  }
}

// The model or data section's class: `class:`, else the one registered name.
std::string class_of(const YAML::Node& section, const std::vector<std::string>& registered) {
  if (const YAML::Node name = child(section, "class"); name.IsScalar()) return name.Scalar();
  return registered.size() == 1 ? registered.front() : std::string();
}

}  // namespace

struct Recipe::Impl {
  std::string source;
  std::map<std::string, RecipeOrigin> origins;  // a merged recipe's sources (recipe_root.hpp)
  YAML::Node root;
  TrainerOptions options;
  std::string logger;  // "", "csv" or "tensorboard"
  std::string trace;
  bool reload = false;

  // One entry of `callbacks:` or of a pack definition: a callback or a pack.
  using Part = std::variant<std::shared_ptr<Callback>, std::shared_ptr<CallbackPack>>;

  Part build_entry(const YAML::Node& entry, const std::string& path,
                   std::vector<std::string>& building) const {
    std::string name;
    YAML::Node options;
    YAML::Mark mark = entry.Mark();
    if (entry.IsScalar()) {
      name = entry.Scalar();
    } else if (entry.IsMap() && entry.size() == 1) {
      const auto item = *entry.begin();
      if (!item.first.IsScalar()) fail_at(source, mark, path, "an entry's name must be a string");
      name = item.first.Scalar();
      options = item.second;
      if (!options.IsNull() && !options.IsMap())
        fail_at(source, options.Mark(), path + "." + name,
                "the options of '" + name + "' must be a mapping, like {monitor: val_loss}");
      mark = item.first.Mark();
    } else {
      fail_at(source, mark, path,
              "an entry is a name, or a one-key mapping 'Name: {options}' (did you indent the "
              "options under the name?)");
    }
    const std::string where = path + "." + name;
    RecipeOptions o = options_of(options, mark, source, where);
    const YAML::Node defined = child(child(root, "packs"), name);
    if (!defined.IsNull()) {
      if (std::find(building.begin(), building.end(), name) != building.end())
        fail_at(source, mark, where, "pack '" + name + "' contains itself");
      o.reject_unknown("pack '" + name + "' (defined in this file)");
      building.push_back(name);
      auto pack = std::make_shared<CallbackPack>(name);
      std::size_t i = 0;
      for (const auto& member : defined) {
        const std::string member_path = "packs." + name + "[" + std::to_string(i++) + "]";
        try {
          std::visit([&](auto&& part) { pack->add(part); },
                     build_entry(member, member_path, building));
        } catch (const std::invalid_argument& e) {
          fail_at(source, member.Mark(), member_path, e.what());
        }
      }
      building.pop_back();
      return pack;
    }
    const Registry& r = registry();
    if (r.has_pack(name)) return r.make_pack(name, o);
    if (r.has_callback(name)) {
      const auto priority = o.get<int>("priority");
      auto callback = r.make_callback(name, o);
      if (priority) callback->set_priority(*priority);
      return callback;
    }
    const std::string suggestion = r.suggest(name);
    fail_at(source, mark, where,
            "unknown callback or pack '" + name + "'" +
                (suggestion.empty() ? std::string() : "; did you mean '" + suggestion + "'?") +
                " (define packs under 'packs:'; register your own types with "
                "hookline::registry().add_callback)");
  }

  // Whether a `callbacks:` entry names a pack (defined here or registered).
  bool is_pack_entry(const YAML::Node& entry) const {
    std::string name;
    if (entry.IsScalar())
      name = entry.Scalar();
    else if (entry.IsMap() && entry.size() == 1)
      name = entry.begin()->first.Scalar();
    return !child(child(root, "packs"), name).IsNull() || registry().has_pack(name);
  }

  // `error` at the source of its key path (a merged recipe), else as it is.
  RecipeError relocate(const RecipeError& error) const {
    if (origins.empty() || error.file() != source) return error;
    std::string path = error.key();
    while (!path.empty()) {
      if (const auto it = origins.find(path); it != origins.end()) {
        const bool place = it->second.has_place && error.line() > 0;
        return RecipeError(it->second.source, place ? error.line() : 0, place ? error.column() : 0,
                           error.key(), error.problem());
      }
      const std::size_t cut = path.find_last_of(".[");
      path = cut == std::string::npos ? std::string() : path.substr(0, cut);
    }
    return error;
  }

  // Runs `f`; a RecipeError it throws comes out at its source.
  template <class F>
  auto relocated(F f) const {
    try {
      return f();
    } catch (const RecipeError& e) {
      throw relocate(e);
    }
  }

  // A model or data section: its options (without `class`) and the registered name to build.
  template <class Has>
  std::pair<std::string, RecipeOptions> section_options(const char* name,
                                                        const std::vector<std::string>& registered,
                                                        Has has) const {
    const YAML::Node section = child(root, name);
    RecipeOptions o = options_of(section, section.Mark(), source, name);
    const std::string kind = std::string(name) == "model" ? "model" : "data module";
    const std::string type = class_of(section, registered);
    (void)o.get<std::string>("class");
    if (type.empty())
      o.fail(o.has("class") ? "class" : "",
             registered.empty()
                 ? "no " + kind + " is registered; register yours with hookline::registry().add_" +
                       name + "(\"Name\", factory)"
                 : "name the " + kind +
                       " with 'class:'; the registered ones are: " + join(registered));
    if (!has(type)) {
      const std::string suggestion = Registry::closest(type, registered);
      o.fail("class", "unknown " + kind + " '" + type + "'" +
                          (suggestion.empty() ? "" : "; did you mean '" + suggestion + "'?") +
                          (registered.empty() ? "" : " (registered: " + join(registered) + ")"));
    }
    return {type, std::move(o)};
  }

  std::pair<std::string, RecipeOptions> model_options() const {
    return section_options("model", registry().model_names(),
                           [](const std::string& n) { return registry().has_model(n); });
  }
  std::pair<std::string, RecipeOptions> data_options() const {
    return section_options("data", registry().data_names(),
                           [](const std::string& n) { return registry().has_data(n); });
  }

  // Checks a model or data section (a mapping whose class is registered); builds nothing.
  void check_section(const char* name) const {
    const YAML::Node section = child(root, name);
    if (section.IsNull()) return;
    if (!section.IsMap())
      fail_at(
          source, section.Mark(), name,
          std::string("'") + name + "' must be a mapping of options, like {class: Name, lr: 0.01}");
    (void)(std::string(name) == "model" ? model_options() : data_options());
  }

  Parts build() const {
    Parts parts;
    const YAML::Node list = child(root, "callbacks");
    if (!list.IsSequence()) return parts;
    std::vector<std::string> building;
    std::size_t i = 0;
    for (const auto& entry : list) {
      const std::string path = "callbacks[" + std::to_string(i++) + "]";
      std::visit(
          [&](auto&& part) {
            if constexpr (std::is_same_v<std::decay_t<decltype(part)>, std::shared_ptr<Callback>>)
              parts.callbacks.push_back(std::move(part));
            else
              parts.packs.push_back(std::move(part));
          },
          build_entry(entry, path, building));
    }
    return parts;
  }
};

Recipe::Recipe(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Recipe::~Recipe() = default;
Recipe::Recipe(Recipe&&) noexcept = default;
Recipe& Recipe::operator=(Recipe&&) noexcept = default;

const std::vector<std::string>& RecipeAccess::sections() {
  static const std::vector<std::string> names{"trainer", "model", "data",     "trace",
                                              "reload",  "packs", "callbacks"};
  return names;
}

std::string RecipeAccess::read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw RecipeError(path, 0, 0, "",
                      "is a directory, not a recipe file; give the path of a recipe (.yaml) file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw RecipeError(path, 0, 0, "",
                      std::string("cannot open the recipe file: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Recipe Recipe::load(const std::string& path) {
  return parse(RecipeAccess::read_file(path), path);
}

Recipe Recipe::parse(const std::string& text, const std::string& source) {
  return RecipeAccess::from_root(RecipeAccess::parse_yaml(text, source), source, {});
}

const YAML::Node& RecipeAccess::root(const Recipe& recipe) {
  return recipe.impl_->root;
}

Recipe RecipeAccess::from_root(YAML::Node root_node, const std::string& source,
                               std::map<std::string, RecipeOrigin> origins) {
  auto impl = std::make_shared<Recipe::Impl>();
  impl->source = source;
  impl->root = root_node;
  impl->origins = std::move(origins);
  impl->relocated([&] { check(*impl); });
  return Recipe(std::move(impl));
}

void RecipeAccess::check(Recipe::Impl& impl_ref) {
  Recipe::Impl* impl = &impl_ref;
  const std::string& source = impl->source;
  const YAML::Node& root = impl->root;
  if (root.IsNull() || !root.IsDefined())
    throw RecipeError(source, 1, 1, "",
                      "the recipe is empty; give it a 'trainer:' or a 'callbacks:' section");
  if (!root.IsMap())
    fail_at(source, root.Mark(), "",
            "a recipe is a mapping with the sections " + join(RecipeAccess::sections()));
  for (const auto& item : root) {
    const std::string key = item.first.Scalar();
    const auto& keys = RecipeAccess::sections();
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      fail_at(source, item.first.Mark(), key,
              "unknown section '" + key + "'; a recipe has the sections " + join(keys));
  }
  RecipeOptions top = options_of(root, root.Mark(), source, "");
  if (const YAML::Node trainer = root["trainer"]; trainer.IsDefined() && !trainer.IsNull()) {
    if (!trainer.IsMap())
      fail_at(source, trainer.Mark(), "trainer",
              "'trainer' must be a mapping of TrainerOptions, like {max_epochs: 3}");
    RecipeOptions o = options_of(trainer, trainer.Mark(), source, "trainer");
    read_trainer_options(o, impl->options, impl->logger);
  }
  impl->trace = top.get_or<std::string>("trace", "");
  if (!impl->trace.empty()) {
    try {
      (void)TraceSpec::parse(impl->trace);
    } catch (const std::invalid_argument& e) {
      top.fail("trace", e.what());
    }
  }
  impl->reload = top.get_or<bool>("reload", false);
  impl->check_section("model");
  impl->check_section("data");
  if (const YAML::Node packs = root["packs"]; packs.IsDefined() && !packs.IsNull()) {
    if (!packs.IsMap())
      fail_at(source, packs.Mark(), "packs",
              "'packs' must be a mapping of pack names to lists of callbacks");
    for (const auto& item : packs) {
      const std::string name = item.first.Scalar();
      const std::string where = "packs." + name;
      if (!item.second.IsSequence())
        fail_at(source, item.second.Mark(), where,
                "a pack definition is a list of callbacks and packs");
      if (name.empty() || name.find('/') != std::string::npos)
        fail_at(source, item.first.Mark(), where, "a pack name must be non-empty, without '/'");
      if (registry().has_pack(name) || registry().has_callback(name))
        fail_at(source, item.first.Mark(), where,
                "'" + name + "' is already a registered name; give the pack another one");
    }
  }
  if (const YAML::Node list = root["callbacks"]; list.IsDefined() && !list.IsNull()) {
    if (!list.IsSequence())
      fail_at(source, list.Mark(), "callbacks",
              "'callbacks' must be a list (each entry starts with '- ')");
  }
  // Built once now, so every error surfaces before a trainer is half made; then what a trainer
  // would refuse: two packs of one name, two callbacks of one state key.
  {
    std::set<std::string> packs, keys;
    const Recipe::Parts parts = impl->build();
    const YAML::Node list = child(root, "callbacks");
    std::size_t callback_i = 0, pack_i = 0;
    for (std::size_t i = 0; list.IsSequence() && i < list.size(); ++i) {
      const std::string path = "callbacks[" + std::to_string(i) + "]";
      if (impl->is_pack_entry(list[i])) {
        const auto& pack = parts.packs[pack_i++];
        if (!packs.insert(pack->name()).second)
          fail_at(source, list[i].Mark(), path,
                  "pack '" + pack->name() +
                      "' is used twice; packs of one trainer need distinct names (set 'name:' "
                      "where the pack takes one)");
      } else {
        const auto& callback = parts.callbacks[callback_i++];
        if (!keys.insert(callback->state_key()).second)
          fail_at(source, list[i].Mark(), path,
                  "a second '" + callback->name() + "' with the same state key '" +
                      callback->state_key() +
                      "'; give it other options (e.g. another monitor) or put it in a pack");
      }
    }
  }
}

const std::string& Recipe::source() const {
  return impl_->source;
}
TrainerOptions Recipe::trainer_options() const {
  TrainerOptions options = impl_->options;
  if (impl_->logger == "csv")
    options.logger(std::make_shared<CSVLogger>(options.default_root_dir()));
  if (impl_->logger == "tensorboard")
    options.logger(std::make_shared<TensorBoardLogger>(options.default_root_dir()));
  return options;
}
const std::string& Recipe::trace() const {
  return impl_->trace;
}
bool Recipe::reload() const {
  return impl_->reload;
}
Recipe::Parts Recipe::build() const {
  return impl_->relocated([this] { return impl_->build(); });
}

bool Recipe::has_model() const {
  return !child(impl_->root, "model").IsNull();
}
bool Recipe::has_data() const {
  return !child(impl_->root, "data").IsNull();
}
std::string Recipe::model_class() const {
  return has_model() ? class_of(child(impl_->root, "model"), registry().model_names()) : "";
}
std::string Recipe::data_class() const {
  return has_data() ? class_of(child(impl_->root, "data"), registry().data_names()) : "";
}

std::shared_ptr<Module> Recipe::make_model() const {
  if (!has_model()) return nullptr;
  return impl_->relocated([this] {
    auto [type, o] = impl_->model_options();
    return registry().make_model(type, o);
  });
}

std::shared_ptr<DataModule> Recipe::make_data() const {
  if (!has_data()) return nullptr;
  return impl_->relocated([this] {
    auto [type, o] = impl_->data_options();
    return registry().make_data(type, o);
  });
}

std::vector<RecipeOptions::Asked> Recipe::describe(const std::string& name) const {
  return impl_->relocated([&] {
    std::vector<RecipeOptions::Asked> out;
    if (name == "trainer") {
      const YAML::Node section = child(impl_->root, "trainer");
      RecipeOptions o = options_of(section, section.Mark(), impl_->source, "trainer");
      TrainerOptions options;
      std::string logger;
      read_trainer_options(o, options, logger);
      out = o.asked();
    } else if ((name == "model" && has_model()) || (name == "data" && has_data())) {
      const bool model = name == "model";
      auto [type, o] = model ? impl_->model_options() : impl_->data_options();
      if (model)
        (void)registry().make_model(type, o);
      else
        (void)registry().make_data(type, o);
      for (const auto& asked : o.asked())
        if (asked.key != "class") out.push_back(asked);
    }
    return out;
  });
}

std::string Recipe::section(const std::string& name) const {
  const YAML::Node& root = impl_->root;
  const YAML::Node value = root[name];
  if (!value.IsDefined() || value.IsNull()) return {};
  return YAML::Dump(value);
}

std::shared_ptr<CallbackPack> Recipe::build_pack(const std::string& name) const {
  auto pack = std::make_shared<CallbackPack>(name);
  Parts parts = build();
  for (auto& callback : parts.callbacks) pack->add(std::move(callback));
  for (auto& nested : parts.packs) pack->add(std::move(nested));
  return pack;
}

AppliedRecipe Recipe::apply(Trainer& trainer) const {
  Parts parts = build();
  AppliedRecipe applied;
  try {
    for (auto& callback : parts.callbacks) {
      trainer.add_callback(callback);
      applied.callbacks.push_back(callback);
    }
    for (auto& pack : parts.packs) {
      trainer.add_pack(pack);
      applied.packs.push_back(pack);
    }
  } catch (...) {
    applied.remove(trainer);
    throw;
  }
  return applied;
}

void AppliedRecipe::remove(Trainer& trainer) const {
  for (const auto& pack : packs) trainer.remove_pack(*pack);
  for (const auto& callback : callbacks) trainer.remove_callback(*callback);
}

std::unique_ptr<Trainer> Recipe::make_trainer() const {
  return impl_->relocated([this] { return make_trainer_here(); });
}

std::unique_ptr<Trainer> Recipe::make_trainer_here() const {
  std::unique_ptr<Trainer> trainer;
  if (impl_->reload) {
    auto pack = build_pack("recipe");
    auto reloader = std::make_shared<RecipeReload>(impl_->source, pack, section("trainer"));
    trainer = std::make_unique<Trainer>(trainer_options(),
                                        std::vector<std::shared_ptr<Callback>>{reloader},
                                        std::vector<std::shared_ptr<CallbackPack>>{pack});
  } else {
    Parts parts = build();
    trainer = std::make_unique<Trainer>(trainer_options(), std::move(parts.callbacks),
                                        std::move(parts.packs));
  }
  if (!impl_->trace.empty()) enable_tracing(*trainer, impl_->trace);
  return trainer;
}

std::unique_ptr<Trainer> Trainer::from_recipe(const std::string& path) {
  return Recipe::load(path).make_trainer();
}

}  // namespace hookline
