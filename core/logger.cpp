#include "hookline/core/logger.hpp"

#include "hookline/core/console.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace hookline {

namespace fs = std::filesystem;

void Logger::finalize(const std::string&) {
  save();
}

DirectoryLogger::DirectoryLogger(std::string save_dir, std::string name,
                                 std::optional<LoggerVersion> version, std::string sub_dir)
    : version_(std::move(version)),
      save_dir_(std::move(save_dir)),
      name_(std::move(name)),
      sub_dir_(std::move(sub_dir)) {}

std::string DirectoryLogger::root_dir() const {
  return name_.empty() ? save_dir_ : (fs::path(save_dir_) / name_).string();
}

LoggerVersion DirectoryLogger::version() {
  std::lock_guard lock(mutex_);
  if (!version_) version_ = next_logger_version(root_dir());
  return *version_;
}

std::string DirectoryLogger::run_dir(const LoggerVersion& version) const {
  fs::path dir = fs::path(root_dir()) / version_dirname(version);
  if (!sub_dir_.empty()) dir /= sub_dir_;
  return dir.string();
}

std::string DirectoryLogger::log_dir() {
  return run_dir(version());
}

void DirectoryLogger::init_experiment() {
  const std::string dir = log_dir();
  std::lock_guard lock(mutex_);
  log_dir_ = dir;
  ensure_experiment();
}

void DirectoryLogger::resolve_log_dir() {
  if (!log_dir_.empty()) return;
  if (!version_) version_ = next_logger_version(root_dir());
  log_dir_ = run_dir(*version_);
}

std::string version_dirname(const LoggerVersion& version) {
  if (const auto* n = std::get_if<std::int64_t>(&version)) return "version_" + std::to_string(*n);
  return std::get<std::string>(version);
}

std::string version_string(const LoggerVersion& version) {
  if (const auto* n = std::get_if<std::int64_t>(&version)) return std::to_string(*n);
  return std::get<std::string>(version);
}

std::int64_t next_logger_version(const std::string& root) {
  std::error_code error;
  if (!fs::is_directory(root, error)) {
    console().warn("Missing logger folder: {}", root);
    return 0;
  }
  std::int64_t next = 0;
  for (const auto& entry : fs::directory_iterator(root, error)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory(error) || name.rfind("version_", 0) != 0) continue;
    // Like Lightning: the part between the first and a second underscore, digits only.
    std::string number = name.substr(8);
    number = number.substr(0, number.find('_'));
    if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos) continue;
    next = std::max<std::int64_t>(next, std::stoll(number) + 1);
  }
  return next;
}

std::vector<c10::IValue> sequence_items(const c10::IValue& value) {
  std::vector<c10::IValue> items;
  if (value.isList())
    for (const auto& e : value.toListRef()) items.push_back(e);
  else if (value.isTuple())
    for (const auto& e : value.toTupleRef().elements()) items.push_back(e);
  return items;
}

std::string python_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  // The shortest digits that read back as `value`, placed the way repr() places them: fixed
  // notation for exponents -4..15, else d.ddde+XX.
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string sci(buf, result.ptr);
  const bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  const std::size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  const int exponent = std::stoi(sci.substr(e + 1));
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out;
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<std::size_t>(exponent) + 1 >= digits.size()) {
      out =
          digits + std::string(static_cast<std::size_t>(exponent) + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<std::size_t>(exponent) + 1) + "." +
            digits.substr(static_cast<std::size_t>(exponent) + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp;
  }
  return negative ? "-" + out : out;
}

}  // namespace hookline

namespace hookline {

namespace {

bool yaml_plain_ok(const std::string& s) {
  if (s.empty()) return false;
  static const char* const reserved[] = {"true", "false", "yes",   "no",  "on", "off", "null",
                                         "~",    "True",  "False", "Yes", "No", "On",  "Off",
                                         "Null", "TRUE",  "FALSE", "YES", "NO", "ON",  "OFF",
                                         "NULL", "y",     "n",     "Y",   "N"};
  for (const char* r : reserved)
    if (s == r) return false;
  if (std::string("-?:,[]{}#&*!|>'\"%@` \t").find(s[0]) != std::string::npos) return false;
  if (s.back() == ' ' || s.back() == ':') return false;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos ||
      s.find('\n') != std::string::npos || s.find('\t') != std::string::npos)
    return false;
  // Anything that reads as a number stays a string only when quoted.
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  if (end == s.c_str() + s.size()) return false;
  if (s == ".inf" || s == "-.inf" || s == ".nan" || s == ".NaN" || s == ".Inf") return false;
  return true;
}

std::string yaml_scalar(const c10::IValue& v) {
  if (v.isNone()) return "null";
  if (v.isBool()) return v.toBool() ? "true" : "false";
  if (v.isInt()) return std::to_string(v.toInt());
  if (v.isDouble()) {
    const double d = v.toDouble();
    if (std::isnan(d)) return ".nan";
    if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
    std::string r = python_float(d);
    if (r.find('.') == std::string::npos && r.find('e') != std::string::npos)
      r.replace(r.find('e'), 1, ".0e");
    return r;
  }
  if (v.isString()) {
    const std::string& s = v.toStringRef();
    if (yaml_plain_ok(s)) return s;
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
    return q + "'";
  }
  return "null";
}

bool yaml_skippable(const std::string& key, const c10::IValue& v) {
  if (v.isTensor() || v.isObject() || v.isCapsule() || v.isDevice() || v.isGenerator()) {
    console().warn("Skipping '{}' parameter because it is not possible to safely dump to YAML.",
                   key);
    return true;
  }
  return false;
}

void yaml_value(std::string& out, const c10::IValue& v, const std::string& indent);

void yaml_dict(std::string& out, const std::map<std::string, c10::IValue>& entries,
               const std::string& indent) {
  for (const auto& [key, value] : entries) {
    if (yaml_skippable(key, value)) continue;
    const std::string k = yaml_plain_ok(key) ? key : yaml_scalar(c10::IValue(key));
    if (value.isGenericDict() && value.toGenericDict().size() > 0) {
      out += indent + k + ":\n";
      yaml_value(out, value, indent + "  ");
    } else if (value.isList() && value.toListRef().size() > 0) {
      out += indent + k + ":\n";
      yaml_value(out, value, indent);
    } else if (value.isTuple() && !value.toTupleRef().elements().empty()) {
      out += indent + k + ":\n";
      yaml_value(out, value, indent);
    } else {
      out += indent + k + ": ";
      yaml_value(out, value, indent);
    }
  }
}

void yaml_value(std::string& out, const c10::IValue& v, const std::string& indent) {
  if (v.isGenericDict()) {
    const auto d = v.toGenericDict();
    if (d.size() == 0) {
      out += "{}\n";
      return;
    }
    std::map<std::string, c10::IValue> sorted;
    for (const auto& e : d)
      sorted[e.key().isString() ? e.key().toStringRef() : yaml_scalar(e.key())] = e.value();
    yaml_dict(out, sorted, indent);
    return;
  }
  if (v.isList() || v.isTuple()) {
    const std::vector<c10::IValue> items = sequence_items(v);
    if (items.empty()) {
      out += "[]\n";
      return;
    }
    for (const auto& item : items) {
      if (item.isGenericDict() && item.toGenericDict().size() > 0) {
        std::string nested;
        yaml_value(nested, item, indent + "  ");
        // "- " replaces the indentation of the first key.
        out += indent + "- " + nested.substr(indent.size() + 2);
      } else if ((item.isList() && item.toListRef().size() > 0)) {
        std::string nested;
        yaml_value(nested, item, indent + "  ");
        out += indent + "- " + nested.substr(indent.size() + 2);
      } else {
        out += indent + "- ";
        yaml_value(out, item, indent + "  ");
      }
    }
    return;
  }
  out += yaml_scalar(v) + "\n";
}

}  // namespace

std::string hparams_to_yaml(const Checkpoint& params) {
  if (params.empty()) return "{}\n";
  std::string out;
  yaml_dict(out, params.entries(), "");
  return out.empty() ? "{}\n" : out;
}

}  // namespace hookline
