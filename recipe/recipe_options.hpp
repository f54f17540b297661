// hookline: RecipeOptions, the options of one callback or pack entry of a recipe file, as a
// factory in the registry reads them.
//
//   registry().add_callback("MyCallback", [](RecipeOptions& o) {
//     return std::make_shared<MyCallback>(o.require<double>("threshold"),
//                                         o.get_or<std::string>("mode", "min"));
//   });
//
// - get<T>(key) is empty when the key is absent; a present value of the wrong type throws a
//   RecipeError naming the file, line, column and key ("expected an integer, got 'three'").
// - Every key a factory asks for is "known"; once it returns, a key it never asked for is an
//   error listing the known ones (a typo never passes silently).
// - Types: bool, int, std::int64_t, std::uint64_t, double, std::string, and lists of
//   std::int64_t, double and std::string; also hookline's BatchAmount (count or fraction),
//   std::chrono::milliseconds (seconds as a number, or "DD:HH:MM:SS"), SaveLast (true, false
//   or "link"), Precision ("32", "bf16-mixed"), ClipAlgorithm ("norm", "value"), c10::Device
//   ("cpu", "cuda:0"), and std::map<std::int64_t, std::int64_t> (a mapping of integers).
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace hookline {

/// A recipe file that cannot be used: bad YAML, an unknown name, a wrong option type, a missing
/// required option. what() is "<file>:<line>:<column>: <key>: <problem>".
class RecipeError : public std::runtime_error {
 public:
  RecipeError(std::string file, int line, int column, std::string key, const std::string& problem);
  const std::string& file() const { return file_; }
  /// 1-based; 0 when the problem has no place in the file (it cannot be opened).
  int line() const { return line_; }
  int column() const { return column_; }
  /// The key path of the problem, e.g. "callbacks[1].EarlyStopping.patience".
  const std::string& key() const { return key_; }
  /// The problem alone, without the place.
  const std::string& problem() const { return problem_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string key_;
  std::string problem_;
};

class RecipeOptions {
 public:
  struct Node;  // the YAML mapping and where it is (recipe_options.cpp)
  RecipeOptions(std::shared_ptr<const Node> node, std::string file, std::string path);
  ~RecipeOptions();
  RecipeOptions(RecipeOptions&&) noexcept;
  RecipeOptions& operator=(RecipeOptions&&) noexcept;

  /// The value of `key`, or nothing when it is absent (or null).
  template <class T>
  std::optional<T> get(const std::string& key) const;
  template <class T>
  T get_or(const std::string& key, T fallback) const {
    auto value = get<T>(key);
    if (value) return std::move(*value);
    note_default(key, fallback);
    return fallback;
  }
  /// The value of `key`; a RecipeError "missing required option" when absent.
  template <class T>
  T require(const std::string& key) const {
    auto value = get<T>(key);
    if (!value) fail(key, "missing required option '" + key + "'");
    return std::move(*value);
  }
  /// Whether `key` is present (marks it known).
  bool has(const std::string& key) const;
  /// The keys present, in file order.
  std::vector<std::string> keys() const;

  /// Throws a RecipeError at `key` (at the mapping itself when `key` is empty or absent).
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;
  /// Throws a RecipeError naming the first key nobody asked for, and the known ones.
  void reject_unknown(const std::string& what) const;

  const std::string& file() const { return file_; }
  /// Where these options are in the recipe, e.g. "callbacks[1].EarlyStopping".
  const std::string& path() const { return path_; }

  /// An option a factory asked for (what --help lists): its key, its type ("integer", "count or
  /// fraction", ...) and the value in effect: the recipe's, else the default the factory gave
  /// (get_or, HOOKLINE_RECIPE_OPTION), else "".
  struct Asked {
    std::string key;
    std::string type;
    std::string value;
  };
  /// Every key asked for, once, in the order first asked.
  const std::vector<Asked>& asked() const { return asked_; }
  /// Records `value` as the default of `key` when the recipe does not set it (for asked()).
  template <class T>
  void note_default(const std::string& key, const T& value) const {
    if constexpr (is_optional<T>::value) {
      if (value)
        note_default(key, *value);
      else
        note_default_text(key, "");
    } else {
      note_default_text(key, describe(value));
    }
  }
  /// A value as recipe YAML text ("0.25", "\"00:00:30:00\"", "[1, 2]"); the supported types above.
  template <class T>
  static std::string describe(const T& value);

 private:
  template <class T>
  struct is_optional : std::false_type {};
  template <class T>
  struct is_optional<std::optional<T>> : std::true_type {};
  void note_default_text(const std::string& key, const std::string& text) const;
  Asked& asked_entry(const std::string& key) const;
  std::shared_ptr<const Node> node_;
  std::string file_;
  std::string path_;
  mutable std::vector<std::string> known_;
  mutable std::vector<Asked> asked_;
};

namespace detail {
template <class T>
struct unwrap_optional {
  using type = T;
};
template <class T>
struct unwrap_optional<std::optional<T>> {
  using type = T;
};
}  // namespace detail

}  // namespace hookline

/// Reads option `name` of a chained-options object (core/chained_options.hpp) from a recipe
/// entry, with the setter's type:  HOOKLINE_RECIPE_OPTION(o, EarlyStoppingOptions(), patience)
/// stays a no-op when the recipe does not set it.
#define HOOKLINE_RECIPE_OPTION(recipe_options, target, name)                             \
  do {                                                                                   \
    using hookline_option_t_ = typename ::hookline::detail::unwrap_optional<             \
        std::decay_t<decltype((target).name())>>::type;                                  \
    if (auto hookline_value_ = (recipe_options).template get<hookline_option_t_>(#name)) \
      (target).name(std::move(*hookline_value_));                                        \
    else                                                                                 \
      (recipe_options).note_default(#name, (target).name());                             \
  } while (0)
