// hookline: the registry of callback and pack types that recipe files name.
//
// Every built-in callback and pack is registered under its class name ("EarlyStopping",
// "ModelCheckpoint", ...; packs "classification_defaults", "debugging"). Register your own with
// one line, before the recipe is loaded:
//
//   hookline::registry().add_callback<MyCallback>("MyCallback");  // MyCallback(RecipeOptions&)
//   hookline::registry().add_callback("Noisy", [](RecipeOptions& o) {
//     return std::make_shared<Noisy>(o.get_or<double>("level", 1.0)); });
//
// or at namespace scope in one of your .cpp files:  HOOKLINE_REGISTER_CALLBACK(MyCallback);
// Names are unique across callbacks and packs; registering a taken name throws.
//
// Models and data modules a recipe's `model:` and `data:` sections name (`class: Name`) are
// registered the same way, each kind with names of its own:
//
//   hookline::registry().add_model("Classifier", [](RecipeOptions& o) {
//     return std::make_shared<Classifier>(o.get_or<std::int64_t>("hidden", 256),
//                                         o.get_or<double>("lr", 0.05)); });
//   hookline::registry().add_data<MyData>("MyData");              // MyData(RecipeOptions&)
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/callback_pack.hpp"
#include "hookline/recipe/recipe_options.hpp"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hookline {

class Module;
class DataModule;

class Registry {
 public:
  using CallbackFactory = std::function<std::shared_ptr<Callback>(RecipeOptions&)>;
  /// A pack factory gets the options and the name the pack should have.
  using PackFactory = std::function<std::shared_ptr<CallbackPack>(RecipeOptions&)>;

  /// Throws std::invalid_argument for an empty or taken name or a null factory.
  void add_callback(const std::string& name, CallbackFactory factory);
  template <class T>
  void add_callback(const std::string& name) {
    add_callback(name, [](RecipeOptions& options) { return std::make_shared<T>(options); });
  }
  void add_pack(const std::string& name, PackFactory factory);

  using ModelFactory = std::function<std::shared_ptr<Module>(RecipeOptions&)>;
  using DataFactory = std::function<std::shared_ptr<DataModule>(RecipeOptions&)>;
  /// Throws std::invalid_argument for an empty or taken model (data) name or a null factory.
  void add_model(const std::string& name, ModelFactory factory);
  template <class T>
  void add_model(const std::string& name) {
    add_model(name, [](RecipeOptions& options) { return std::make_shared<T>(options); });
  }
  void add_data(const std::string& name, DataFactory factory);
  template <class T>
  void add_data(const std::string& name) {
    add_data(name, [](RecipeOptions& options) { return std::make_shared<T>(options); });
  }
  bool has_model(const std::string& name) const;
  bool has_data(const std::string& name) const;
  std::vector<std::string> model_names() const;
  std::vector<std::string> data_names() const;
  /// Builds a model (data module) as make_callback builds a callback.
  std::shared_ptr<Module> make_model(const std::string& name, RecipeOptions& options) const;
  std::shared_ptr<DataModule> make_data(const std::string& name, RecipeOptions& options) const;

  bool has_callback(const std::string& name) const;
  bool has_pack(const std::string& name) const;
  /// Registered names, sorted.
  std::vector<std::string> callback_names() const;
  std::vector<std::string> pack_names() const;

  /// Builds a callback (or pack); the options' unknown keys are rejected afterwards. Errors
  /// thrown by the type's constructor become RecipeErrors at `options`. Throws
  /// std::out_of_range for a name that is not registered.
  std::shared_ptr<Callback> make_callback(const std::string& name, RecipeOptions& options) const;
  std::shared_ptr<CallbackPack> make_pack(const std::string& name, RecipeOptions& options) const;

  /// The registered name closest to `name` (edit distance at most 3), or "".
  std::string suggest(const std::string& name) const;
  /// The one of `names` closest to `name` (edit distance at most 3), or "".
  static std::string closest(const std::string& name, const std::vector<std::string>& names);

 private:
  friend Registry& registry();
  Registry();
  void check_new(const char* what, const std::string& name, bool has_factory) const;
  template <class Factory>
  Factory factory_of(const std::map<std::string, Factory>& factories,
                     const std::string& name) const;
  mutable std::mutex mutex_;
  std::map<std::string, CallbackFactory> callbacks_;
  std::map<std::string, PackFactory> packs_;
  std::map<std::string, ModelFactory> models_;
  std::map<std::string, DataFactory> data_;
};

/// The process-wide registry, with every built-in registered.
Registry& registry();

/// Registers the built-ins into `r` (registry() does it once; recipe/builtins.cpp).
void register_builtins(Registry& r);

}  // namespace hookline

/// Registers `Type` (constructible from RecipeOptions&) under its own name, at static
/// initialisation; use at namespace scope in a .cpp file of your program.
#define HOOKLINE_REGISTER_CALLBACK(Type)                               \
  [[maybe_unused]] static const bool hookline_registered_##Type = [] { \
    ::hookline::registry().add_callback<Type>(#Type);                  \
    return true;                                                       \
  }()

/// Registers a model (data module) type constructible from RecipeOptions& under its own name.
#define HOOKLINE_REGISTER_MODEL(Type)                                        \
  [[maybe_unused]] static const bool hookline_registered_model_##Type = [] { \
    ::hookline::registry().add_model<Type>(#Type);                           \
    return true;                                                             \
  }()
#define HOOKLINE_REGISTER_DATA(Type)                                        \
  [[maybe_unused]] static const bool hookline_registered_data_##Type = [] { \
    ::hookline::registry().add_data<Type>(#Type);                           \
    return true;                                                            \
  }()
