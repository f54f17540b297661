#include "hookline/recipe/recipe_options.hpp"

#include "hookline/callbacks/model_checkpoint.hpp"
#include "hookline/core/trainer_options.hpp"
#include "hookline/recipe/registry.hpp"
#include "hookline/recipe/yaml_node.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>

namespace hookline {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A value and where it is, for the conversions below.
struct Value {
  const YAML::Node& node;
  const RecipeOptions& owner;
  const std::string& key;

  [[noreturn]] void expected(const std::string& what) const {
    std::string got;
    if (node.IsScalar())
      got = "'" + node.Scalar() + "'";
    else if (node.IsSequence())
      got = "a list";
    else if (node.IsMap())
      got = "a mapping";
    else
      got = "nothing";
    owner.fail(key, "expected " + what + ", got " + got);
  }
  // The text of a plain (unquoted) scalar, or nothing.
  std::optional<std::string> plain() const {
    if (!node.IsScalar() || node.Tag() == "!") return std::nullopt;
    return node.Scalar();
  }
};

// An integer that does not fit in 64 bits ("123456789012345678901234").
constexpr const char* kOutOfRange =
    "out of range: an integer from -9223372036854775808 to 9223372036854775807 (64 bits)";

// Whether `text` is written as an integer (digits after an optional sign), whatever its size.
bool integer_syntax(const std::string& text) {
  const std::size_t start = !text.empty() && (text[0] == '+' || text[0] == '-') ? 1 : 0;
  return text.size() > start &&
         std::all_of(text.begin() + static_cast<std::ptrdiff_t>(start), text.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::int64_t> parse_int(const std::string& text) {
  std::int64_t out = 0;
  const char* first = text.data() + (text.size() > 1 && text[0] == '+' ? 1 : 0);
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, out);
  if (ec != std::errc() || end != last || first == last) return std::nullopt;
  return out;
}

std::optional<double> parse_double(const std::string& text) {
  const std::string t = lower(text);
  if (t == ".inf" || t == "+.inf") return std::numeric_limits<double>::infinity();
  if (t == "-.inf") return -std::numeric_limits<double>::infinity();
  if (t == ".nan") return std::numeric_limits<double>::quiet_NaN();
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
  char* end = nullptr;
  const double out = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return out;
}

template <class T>
T convert(const Value& v);

template <>
bool convert<bool>(const Value& v) {
  if (auto text = v.plain()) {
    const std::string t = lower(*text);
    if (t == "true" || t == "yes" || t == "on") return true;
    if (t == "false" || t == "no" || t == "off") return false;
  }
  v.expected("true or false");
}

template <>
std::int64_t convert<std::int64_t>(const Value& v) {
  if (auto text = v.plain()) {
    if (auto n = parse_int(*text)) return *n;
    if (integer_syntax(*text)) v.owner.fail(v.key, std::string(kOutOfRange) + ", got " + *text);
  }
  v.expected("an integer");
}

template <>
int convert<int>(const Value& v) {
  const std::int64_t n = convert<std::int64_t>(v);
  if (n < std::numeric_limits<int>::min() || n > std::numeric_limits<int>::max())
    v.expected("an integer that fits in 32 bits");
  return static_cast<int>(n);
}

template <>
std::uint64_t convert<std::uint64_t>(const Value& v) {
  if (auto text = v.plain()) {
    std::uint64_t out = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), out);
    if (ec == std::errc() && end == text->data() + text->size() && !text->empty()) return out;
    if (ec == std::errc::result_out_of_range && integer_syntax(*text))
      v.owner.fail(v.key,
                   "out of range: a non-negative integer up to 18446744073709551615 (64 "
                   "bits), got " +
                       *text);
  }
  v.expected("a non-negative integer");
}

template <>
double convert<double>(const Value& v) {
  if (auto text = v.plain())
    if (auto d = parse_double(*text)) return *d;
  v.expected("a number");
}

template <>
std::string convert<std::string>(const Value& v) {
  if (!v.node.IsScalar()) v.expected("a string");
  return v.node.Scalar();
}

template <class T>
std::vector<T> convert_list(const Value& v, const std::string& what) {
  if (!v.node.IsSequence()) v.expected("a list of " + what);
  std::vector<T> out;
  for (const auto& item : v.node) out.push_back(convert<T>(Value{item, v.owner, v.key}));
  return out;
}

template <>
std::vector<std::int64_t> convert<std::vector<std::int64_t>>(const Value& v) {
  return convert_list<std::int64_t>(v, "integers");
}
template <>
std::vector<double> convert<std::vector<double>>(const Value& v) {
  return convert_list<double>(v, "numbers");
}
template <>
std::vector<std::string> convert<std::vector<std::string>>(const Value& v) {
  return convert_list<std::string>(v, "strings");
}

template <>
std::map<std::int64_t, std::int64_t> convert<std::map<std::int64_t, std::int64_t>>(const Value& v) {
  if (!v.node.IsMap()) v.expected("a mapping of integers to integers");
  std::map<std::int64_t, std::int64_t> out;
  for (const auto& item : v.node)
    out[convert<std::int64_t>(Value{item.first, v.owner, v.key})] =
        convert<std::int64_t>(Value{item.second, v.owner, v.key});
  return out;
}

template <>
BatchAmount convert<BatchAmount>(const Value& v) {
  if (auto text = v.plain()) {
    if (auto n = parse_int(*text)) return BatchAmount(*n);
    if (integer_syntax(*text)) v.owner.fail(v.key, std::string(kOutOfRange) + ", got " + *text);
    if (auto d = parse_double(*text)) return BatchAmount(*d);
  }
  v.expected("a number of batches (integer) or a fraction (e.g. 0.25)");
}

// ((DD * 24 + HH) * 60 + MM) * 60 + SS seconds in milliseconds; nullopt past 64 bits.
std::optional<std::int64_t> dhms_milliseconds(const std::int64_t (&parts)[4]) {
  std::int64_t total = parts[0];
  const std::int64_t factors[] = {24, 60, 60};
  for (int i = 0; i < 3; ++i)
    if (__builtin_mul_overflow(total, factors[i], &total) ||
        __builtin_add_overflow(total, parts[i + 1], &total))
      return std::nullopt;
  if (__builtin_mul_overflow(total, std::int64_t{1000}, &total)) return std::nullopt;
  return total;
}

constexpr const char* kDuration =
    "a duration: seconds, or \"DD:HH:MM:SS\" (under 292 million years, the range of 64-bit "
    "milliseconds)";

template <>
std::chrono::milliseconds convert<std::chrono::milliseconds>(const Value& v) {
  if (auto text = v.plain())
    if (auto d = parse_double(*text); d && *d >= 0 && std::isfinite(*d)) {
      if (*d * 1000 >= 9.2e18) v.expected(kDuration);  // llround would overflow
      return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(*d * 1000)));
    }
  if (v.node.IsScalar()) {  // "DD:HH:MM:SS", Lightning's max_time string
    const std::string& text = v.node.Scalar();
    std::int64_t parts[4];
    std::size_t start = 0;
    int n = 0;
    bool ok = true;
    while (ok && n < 4) {
      const std::size_t colon = text.find(':', start);
      const std::string piece =
          text.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      const auto value = parse_int(piece);
      ok = value && *value >= 0 && piece.find_first_of("+-") == std::string::npos;
      if (ok) parts[n++] = *value;
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (ok && n == 4 && std::count(text.begin(), text.end(), ':') == 3)
      if (const auto ms = dhms_milliseconds(parts)) return std::chrono::milliseconds(*ms);
  }
  v.expected(kDuration);
}

template <>
SaveLast convert<SaveLast>(const Value& v) {
  if (auto text = v.plain()) {
    const std::string t = lower(*text);
    if (t == "true" || t == "yes") return SaveLast::yes;
    if (t == "false" || t == "no") return SaveLast::no;
  }
  if (v.node.IsScalar() && v.node.Scalar() == "link") return SaveLast::link;
  v.expected("true, false or \"link\"");
}

template <>
Precision convert<Precision>(const Value& v) {
  if (v.node.IsScalar()) {
    const std::string t = lower(v.node.Scalar());
    if (t == "32" || t == "32-true" || t == "fp32") return Precision::fp32;
    if (t == "bf16-mixed" || t == "bf16_mixed") return Precision::bf16_mixed;
  }
  v.expected("a precision: \"32-true\" or \"bf16-mixed\"");
}

template <>
ClipAlgorithm convert<ClipAlgorithm>(const Value& v) {
  if (v.node.IsScalar()) {
    if (v.node.Scalar() == "norm") return ClipAlgorithm::norm;
    if (v.node.Scalar() == "value") return ClipAlgorithm::value;
  }
  v.expected("\"norm\" or \"value\"");
}

template <>
c10::Device convert<c10::Device>(const Value& v) {
  if (v.node.IsScalar()) {
    try {
      return c10::Device(v.node.Scalar());
    } catch (const std::exception&) {
    }
  }
  v.expected("a device such as \"cpu\" or \"cuda:0\"");
}

// How --help names a type.
template <class T>
const char* type_name();
template <>
const char* type_name<bool>() {
  return "true|false";
}
template <>
const char* type_name<int>() {
  return "integer";
}
template <>
const char* type_name<std::int64_t>() {
  return "integer";
}
template <>
const char* type_name<std::uint64_t>() {
  return "integer >= 0";
}
template <>
const char* type_name<double>() {
  return "number";
}
template <>
const char* type_name<std::string>() {
  return "string";
}
template <>
const char* type_name<std::vector<std::int64_t>>() {
  return "list of integers";
}
template <>
const char* type_name<std::vector<double>>() {
  return "list of numbers";
}
template <>
const char* type_name<std::vector<std::string>>() {
  return "list of strings";
}
template <>
const char* type_name<std::map<std::int64_t, std::int64_t>>() {
  return "mapping of integers";
}
template <>
const char* type_name<BatchAmount>() {
  return "count|fraction";
}
template <>
const char* type_name<std::chrono::milliseconds>() {
  return "seconds|DD:HH:MM:SS";
}
template <>
const char* type_name<SaveLast>() {
  return "true|false|link";
}
template <>
const char* type_name<Precision>() {
  return "32-true|bf16-mixed";
}
template <>
const char* type_name<ClipAlgorithm>() {
  return "norm|value";
}
template <>
const char* type_name<c10::Device>() {
  return "device";
}

std::string number_text(double x) {
  if (std::isinf(x)) return x > 0 ? ".inf" : "-.inf";
  if (std::isnan(x)) return ".nan";
  char buffer[64];
  const auto written = std::to_chars(buffer, buffer + sizeof buffer, x);  // the shortest exact
  std::string text(buffer, written.ptr);
  // Keep a fraction a fraction when read back ("1" would be a count of batches).
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

// A YAML value as one line of text, as --help shows what a recipe gives.
std::string flow_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

}  // namespace

template <class T>
std::string RecipeOptions::describe(const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_same_v<T, double>) {
    return number_text(value);
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(value);
  } else if constexpr (std::is_same_v<T, std::string>) {
    YAML::Emitter out;
    out << value;
    return out.c_str();
  } else if constexpr (std::is_same_v<T, BatchAmount>) {
    return value.is_count() ? std::to_string(value.count()) : number_text(value.fraction());
  } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
    return number_text(static_cast<double>(value.count()) / 1000.0);
  } else if constexpr (std::is_same_v<T, SaveLast>) {
    return value == SaveLast::yes ? "true" : value == SaveLast::no ? "false" : "link";
  } else if constexpr (std::is_same_v<T, Precision>) {
    return value == Precision::fp32 ? "32-true" : "bf16-mixed";
  } else if constexpr (std::is_same_v<T, ClipAlgorithm>) {
    return value == ClipAlgorithm::norm ? "norm" : "value";
  } else if constexpr (std::is_same_v<T, c10::Device>) {
    return value.str();
  } else if constexpr (std::is_same_v<T, std::map<std::int64_t, std::int64_t>>) {
    std::string out;
    for (const auto& [k, v] : value)
      out += (out.empty() ? "" : ", ") + std::to_string(k) + ": " + std::to_string(v);
    return "{" + out + "}";
  } else {  // lists
    std::string out;
    for (const auto& item : value) out += (out.empty() ? "" : ", ") + describe(item);
    return "[" + out + "]";
  }
}

RecipeError::RecipeError(std::string file, int line, int column, std::string key,
                         const std::string& problem)
    : std::runtime_error(
          file +
          (line > 0 ? ":" + std::to_string(line) + ":" + std::to_string(column) : std::string()) +
          ": " + (key.empty() ? std::string() : key + ": ") + problem),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)),
      problem_(problem) {}

RecipeOptions::RecipeOptions(std::shared_ptr<const Node> node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {}
RecipeOptions::~RecipeOptions() = default;
RecipeOptions::RecipeOptions(RecipeOptions&&) noexcept = default;
RecipeOptions& RecipeOptions::operator=(RecipeOptions&&) noexcept = default;

RecipeOptions::Asked& RecipeOptions::asked_entry(const std::string& key) const {
  for (auto& entry : asked_)
    if (entry.key == key) return entry;
  asked_.push_back({key, "", ""});
  return asked_.back();
}

void RecipeOptions::note_default_text(const std::string& key, const std::string& text) const {
  Asked& entry = asked_entry(key);
  if (entry.value.empty()) entry.value = text;
}

template <class T>
std::optional<T> RecipeOptions::get(const std::string& key) const {
  known_.push_back(key);
  Asked& entry = asked_entry(key);
  if (entry.type.empty()) entry.type = type_name<T>();
  if (!node_->value.IsMap()) return std::nullopt;
  const YAML::Node value = node_->value[key];
  if (!value.IsDefined() || value.IsNull()) return std::nullopt;
  entry.value = flow_text(value);
  return convert<T>(Value{value, *this, key});
}

#define HOOKLINE_DESCRIBE(...) \
  template std::string RecipeOptions::describe<__VA_ARGS__>(const __VA_ARGS__&);
HOOKLINE_DESCRIBE(bool)
HOOKLINE_DESCRIBE(int)
HOOKLINE_DESCRIBE(std::int64_t)
HOOKLINE_DESCRIBE(std::uint64_t)
HOOKLINE_DESCRIBE(double)
HOOKLINE_DESCRIBE(std::string)
HOOKLINE_DESCRIBE(std::vector<std::int64_t>)
HOOKLINE_DESCRIBE(std::vector<double>)
HOOKLINE_DESCRIBE(std::vector<std::string>)
HOOKLINE_DESCRIBE(std::map<std::int64_t, std::int64_t>)
HOOKLINE_DESCRIBE(BatchAmount)
HOOKLINE_DESCRIBE(std::chrono::milliseconds)
HOOKLINE_DESCRIBE(SaveLast)
HOOKLINE_DESCRIBE(Precision)
HOOKLINE_DESCRIBE(ClipAlgorithm)
HOOKLINE_DESCRIBE(c10::Device)
#undef HOOKLINE_DESCRIBE

template std::optional<bool> RecipeOptions::get<bool>(const std::string&) const;
template std::optional<int> RecipeOptions::get<int>(const std::string&) const;
template std::optional<std::int64_t> RecipeOptions::get<std::int64_t>(const std::string&) const;
template std::optional<std::uint64_t> RecipeOptions::get<std::uint64_t>(const std::string&) const;
template std::optional<double> RecipeOptions::get<double>(const std::string&) const;
template std::optional<std::string> RecipeOptions::get<std::string>(const std::string&) const;
template std::optional<std::vector<std::int64_t>> RecipeOptions::get<std::vector<std::int64_t>>(
    const std::string&) const;
template std::optional<std::vector<double>> RecipeOptions::get<std::vector<double>>(
    const std::string&) const;
template std::optional<std::vector<std::string>> RecipeOptions::get<std::vector<std::string>>(
    const std::string&) const;
template std::optional<std::map<std::int64_t, std::int64_t>>
RecipeOptions::get<std::map<std::int64_t, std::int64_t>>(const std::string&) const;
template std::optional<BatchAmount> RecipeOptions::get<BatchAmount>(const std::string&) const;
template std::optional<std::chrono::milliseconds> RecipeOptions::get<std::chrono::milliseconds>(
    const std::string&) const;
template std::optional<SaveLast> RecipeOptions::get<SaveLast>(const std::string&) const;
template std::optional<Precision> RecipeOptions::get<Precision>(const std::string&) const;
template std::optional<ClipAlgorithm> RecipeOptions::get<ClipAlgorithm>(const std::string&) const;
template std::optional<c10::Device> RecipeOptions::get<c10::Device>(const std::string&) const;

bool RecipeOptions::has(const std::string& key) const {
  known_.push_back(key);
  if (!node_->value.IsMap()) return false;
  const YAML::Node value = node_->value[key];
  return value.IsDefined() && !value.IsNull();
}

std::vector<std::string> RecipeOptions::keys() const {
  std::vector<std::string> out;
  if (node_->value.IsMap())
    for (const auto& item : node_->value) out.push_back(item.first.Scalar());
  return out;
}

void RecipeOptions::fail(const std::string& key, const std::string& problem) const {
  YAML::Mark mark = node_->mark;
  std::string where = path_;
  if (!key.empty()) {
    where += (where.empty() ? "" : ".") + key;
    if (node_->value.IsMap())
      for (const auto& item : node_->value)
        if (item.first.Scalar() == key) {
          mark = item.second.IsNull() ? item.first.Mark() : item.second.Mark();
          break;
        }
  }
  throw RecipeError(file_, mark.line + 1, mark.column + 1, where, problem);
}

void RecipeOptions::reject_unknown(const std::string& what) const {
  if (!node_->value.IsMap()) return;
  for (const auto& item : node_->value) {
    const std::string key = item.first.Scalar();
    if (std::find(known_.begin(), known_.end(), key) != known_.end()) continue;
    std::vector<std::string> known = known_;
    std::sort(known.begin(), known.end());
    known.erase(std::unique(known.begin(), known.end()), known.end());
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    const std::string near = Registry::closest(key, known);
    const YAML::Mark mark = item.first.Mark();
    throw RecipeError(file_, mark.line + 1, mark.column + 1,
                      path_ + (path_.empty() ? "" : ".") + key,
                      "unknown option '" + key + "' for " + what +
                          (near.empty() ? "" : " (did you mean '" + near + "'?)") +
                          (list.empty() ? " (it takes no options)" : "; its options are: " + list));
  }
}

}  // namespace hookline
