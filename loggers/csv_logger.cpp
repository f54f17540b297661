#include "hookline/loggers/csv_logger.hpp"

#include "hookline/core/console.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace hookline {

namespace fs = std::filesystem;

namespace {

// Python's csv.writer with QUOTE_MINIMAL.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void write_row(std::ostream& out, const std::vector<std::string>& keys,
               const std::map<std::string, std::string>& row) {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i) out << ',';
    auto it = row.find(keys[i]);
    if (it != row.end()) out << csv_field(it->second);
  }
  out << "\r\n";
}

std::string metric_text(const std::string& key, double value) {
  // Lightning adds "epoch" as an int; everything logged is a float.
  if (key == "epoch" && value == static_cast<double>(static_cast<std::int64_t>(value)))
    return std::to_string(static_cast<std::int64_t>(value));
  return python_float(value);
}

}  // namespace

std::vector<std::vector<std::string>> read_csv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        record.push_back(std::move(field));
        records.push_back(std::move(record));
      }
      record.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any || !field.empty()) {
    record.push_back(std::move(field));
    records.push_back(std::move(record));
  }
  return records;
}

CSVLogger::CSVLogger(std::string save_dir, CSVLoggerOptions options)
    : DirectoryLogger(std::move(save_dir), options.name(), options.version()),
      options_(std::move(options)) {
  if (options_.flush_logs_every_n_steps() < 1)
    throw std::invalid_argument("CSVLoggerOptions::flush_logs_every_n_steps(" +
                                std::to_string(options_.flush_logs_every_n_steps()) +
                                ") must be >= 1");
}

void CSVLogger::ensure_experiment() {
  if (experiment_) return;
  resolve_log_dir();
  std::error_code error;
  fs::create_directories(root_dir(), error);
  const fs::path metrics = fs::path(log_dir_) / "metrics.csv";
  if (fs::exists(log_dir_, error) && !fs::is_empty(log_dir_, error)) {
    console().warn(
        "Experiment logs directory {} exists and is not empty. Previous log files in this "
        "directory will be deleted when the new ones are saved!",
        log_dir_);
    fs::remove(metrics, error);
  }
  fs::create_directories(log_dir_, error);
  if (error)
    throw std::runtime_error("CSVLogger: cannot create '" + log_dir_ + "': " + error.message() +
                             "; choose a writable save_dir");
  experiment_ = true;
}

void CSVLogger::log_metrics(const std::map<std::string, double>& metrics,
                            std::optional<std::int64_t> step) {
  std::lock_guard lock(mutex_);
  ensure_experiment();
  std::map<std::string, std::string> row;
  for (const auto& [key, value] : metrics) {
    const std::string k = options_.prefix().empty() ? key : options_.prefix() + "-" + key;
    row[k] = metric_text(key, value);
  }
  const std::int64_t s = step.value_or(static_cast<std::int64_t>(rows_.size()));
  row["step"] = std::to_string(s);
  rows_.push_back(std::move(row));
  if ((s + 1) % options_.flush_logs_every_n_steps() == 0) save_locked();
}

void CSVLogger::log_hyperparams(const Checkpoint& params) {
  std::lock_guard lock(mutex_);
  ensure_experiment();
  for (const auto& [key, value] : params.entries()) hparams_.set(key, value);
}

void CSVLogger::save() {
  std::lock_guard lock(mutex_);
  save_locked();
}

void CSVLogger::save_locked() {
  ensure_experiment();
  {
    std::ofstream yaml(fs::path(log_dir_) / "hparams.yaml", std::ios::binary | std::ios::trunc);
    yaml << hparams_to_yaml(hparams_);
    if (!yaml)
      throw std::runtime_error("CSVLogger: cannot write hparams.yaml in '" + log_dir_ + "'");
  }
  if (rows_.empty()) return;
  std::set<std::string> known(keys_.begin(), keys_.end());
  bool new_keys = false;
  for (const auto& row : rows_)
    for (const auto& [key, value] : row)
      if (known.insert(key).second) new_keys = true;
  const fs::path path = fs::path(log_dir_) / "metrics.csv";
  std::error_code error;
  const bool exists = fs::is_regular_file(path, error);
  if (new_keys) keys_.assign(known.begin(), known.end());
  if (new_keys && exists) {
    // The header changes: rewrite the rows already in the file under the new columns.
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    in.close();
    const auto records = read_csv(text.str());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (std::size_t i = 0; i < keys_.size(); ++i) out << (i ? "," : "") << csv_field(keys_[i]);
    out << "\r\n";
    if (!records.empty()) {
      const auto& header = records[0];
      for (std::size_t r = 1; r < records.size(); ++r) {
        std::map<std::string, std::string> old;
        for (std::size_t c = 0; c < header.size() && c < records[r].size(); ++c)
          if (!records[r][c].empty()) old[header[c]] = records[r][c];
        write_row(out, keys_, old);
      }
    }
    if (!out) throw std::runtime_error("CSVLogger: cannot rewrite '" + path.string() + "'");
  }
  std::ofstream out(path, std::ios::binary | (exists ? std::ios::app : std::ios::trunc));
  if (!exists) {
    for (std::size_t i = 0; i < keys_.size(); ++i) out << (i ? "," : "") << csv_field(keys_[i]);
    out << "\r\n";
  }
  for (const auto& row : rows_) write_row(out, keys_, row);
  out.flush();
  if (!out) throw std::runtime_error("CSVLogger: cannot write '" + path.string() + "'");
  rows_.clear();
}

void CSVLogger::finalize(const std::string&) {
  std::lock_guard lock(mutex_);
  if (!experiment_) return;
  save_locked();
}

}  // namespace hookline
