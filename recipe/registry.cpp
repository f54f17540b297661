#include "hookline/recipe/registry.hpp"

#include "hookline/core/data_module.hpp"
#include "hookline/core/module.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>

namespace hookline {

namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// Runs a factory; a std::exception other than RecipeError becomes one at `options`.
template <class Make>
auto build(const std::string& name, RecipeOptions& options, Make make) {
  try {
    auto made = make(options);
    if (!made) options.fail("", "the factory of '" + name + "' returned nothing");
    options.reject_unknown("'" + name + "'");
    return made;
  } catch (const RecipeError&) {
    throw;
  } catch (const std::exception& e) {
    options.fail("", e.what());
  }
}

// Refuses an empty name or an empty factory given to Registry::<what>.
void check_entry(const char* what, const std::string& name, bool has_factory) {
  if (name.empty())
    throw std::invalid_argument(std::string("Registry::") + what + ": the name is empty");
  if (!has_factory)
    throw std::invalid_argument(std::string("Registry::") + what + "('" + name +
                                "'): the factory is empty");
}

// The names in `factories`, sorted.
template <class Factory>
std::vector<std::string> names_of(const std::map<std::string, Factory>& factories) {
  std::vector<std::string> out;
  for (const auto& entry : factories) out.push_back(entry.first);
  return out;
}

}  // namespace

Registry::Registry() = default;

// A copy of the factory registered as `name` in `factories` (throws std::out_of_range if none),
// so it runs without the registry's lock held.
template <class Factory>
Factory Registry::factory_of(const std::map<std::string, Factory>& factories,
                             const std::string& name) const {
  std::lock_guard lock(mutex_);
  return factories.at(name);
}

Registry& registry() {
  static Registry* instance = [] {
    auto* r = new Registry();  // never destroyed: static registrations may outlive main's locals
    register_builtins(*r);
    return r;
  }();
  return *instance;
}

// Refuses an empty name, an empty factory or a taken name (callbacks and packs share names).
void Registry::check_new(const char* what, const std::string& name, bool has_factory) const {
  check_entry(what, name, has_factory);
  if (callbacks_.count(name) || packs_.count(name))
    throw std::invalid_argument("Registry: the name '" + name +
                                "' is already registered; choose another one");
}

void Registry::add_callback(const std::string& name, CallbackFactory factory) {
  std::lock_guard lock(mutex_);
  check_new("add_callback", name, static_cast<bool>(factory));
  callbacks_.emplace(name, std::move(factory));
}

void Registry::add_pack(const std::string& name, PackFactory factory) {
  std::lock_guard lock(mutex_);
  check_new("add_pack", name, static_cast<bool>(factory));
  packs_.emplace(name, std::move(factory));
}

bool Registry::has_callback(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return callbacks_.count(name) != 0;
}

bool Registry::has_pack(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return packs_.count(name) != 0;
}

std::vector<std::string> Registry::callback_names() const {
  std::lock_guard lock(mutex_);
  return names_of(callbacks_);
}

std::vector<std::string> Registry::pack_names() const {
  std::lock_guard lock(mutex_);
  return names_of(packs_);
}

std::shared_ptr<Callback> Registry::make_callback(const std::string& name,
                                                  RecipeOptions& options) const {
  return build(name, options, factory_of(callbacks_, name));
}

std::shared_ptr<CallbackPack> Registry::make_pack(const std::string& name,
                                                  RecipeOptions& options) const {
  return build(name, options, factory_of(packs_, name));
}

std::string Registry::suggest(const std::string& name) const {
  std::vector<std::string> names = callback_names();
  const std::vector<std::string> packs = pack_names();
  names.insert(names.end(), packs.begin(), packs.end());
  return closest(name, names);
}

std::string Registry::closest(const std::string& name, const std::vector<std::string>& names) {
  std::string best;
  std::size_t best_distance = 4;
  for (const auto& candidate : names)
    if (const auto d = edit_distance(name, candidate); d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  return best;
}

namespace {

// Adds `factory` under `name` to `factories` (models and data modules: a namespace each).
template <class Factory>
void add_to(std::map<std::string, Factory>& factories, const char* what, const std::string& name,
            Factory factory) {
  check_entry(what, name, static_cast<bool>(factory));
  if (!factories.emplace(name, std::move(factory)).second)
    throw std::invalid_argument(std::string("Registry::") + what + ": the name '" + name +
                                "' is already registered; choose another one");
}

}  // namespace

void Registry::add_model(const std::string& name, ModelFactory factory) {
  std::lock_guard lock(mutex_);
  add_to(models_, "add_model", name, std::move(factory));
}

void Registry::add_data(const std::string& name, DataFactory factory) {
  std::lock_guard lock(mutex_);
  add_to(data_, "add_data", name, std::move(factory));
}

bool Registry::has_model(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return models_.count(name) != 0;
}

bool Registry::has_data(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return data_.count(name) != 0;
}

std::vector<std::string> Registry::model_names() const {
  std::lock_guard lock(mutex_);
  return names_of(models_);
}

std::vector<std::string> Registry::data_names() const {
  std::lock_guard lock(mutex_);
  return names_of(data_);
}

std::shared_ptr<Module> Registry::make_model(const std::string& name,
                                             RecipeOptions& options) const {
  return build(name, options, factory_of(models_, name));
}

std::shared_ptr<DataModule> Registry::make_data(const std::string& name,
                                                RecipeOptions& options) const {
  return build(name, options, factory_of(data_, name));
}

}  // namespace hookline
