#include "hookline/loggers/tensorboard_logger.hpp"

#include "hookline/core/console.hpp"
#include "tensorboard.pb.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace hookline {

namespace fs = std::filesystem;
namespace pb = hookline::tensorboard;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::atomic<int> file_counter{0};  // torch's per-process event file uid

// Python's str() of a value, for hyperparameters TensorBoard cannot show as they are.
std::string py_str(const c10::IValue& v, bool nested = false) {
  if (v.isNone()) return "None";
  if (v.isBool()) return v.toBool() ? "True" : "False";
  if (v.isInt()) return std::to_string(v.toInt());
  if (v.isDouble()) return python_float(v.toDouble());
  if (v.isString()) {
    if (!nested) return v.toStringRef();
    return "'" + v.toStringRef() + "'";
  }
  if (v.isList() || v.isTuple()) {
    const std::vector<c10::IValue> items = sequence_items(v);
    std::string out = v.isList() ? "[" : "(";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + py_str(items[i], true);
    if (v.isTuple() && items.size() == 1) out += ",";
    return out + (v.isList() ? "]" : ")");
  }
  if (v.isGenericDict()) {
    std::string out = "{";
    bool first = true;
    for (const auto& e : v.toGenericDict()) {
      out += (first ? "" : ", ") + py_str(e.key(), true) + ": " + py_str(e.value(), true);
      first = false;
    }
    return out + "}";
  }
  if (v.isTensor()) return "tensor";
  return v.tagKind();
}

// Lightning's _flatten_dict: nested dicts become "outer/inner" keys.
void flatten(const std::string& prefix, const c10::IValue& value,
             std::map<std::string, c10::IValue>& out) {
  if (value.isGenericDict()) {
    for (const auto& e : value.toGenericDict())
      flatten(prefix + (prefix.empty() ? "" : "/") + py_str(e.key()), e.value(), out);
    return;
  }
  out[prefix] = value;
}

std::string plugin_content(const pb::HParamsPluginData& data) {
  std::string bytes;
  data.SerializeToString(&bytes);
  return bytes;
}

}  // namespace

TensorBoardLogger::TensorBoardLogger(std::string save_dir, TensorBoardLoggerOptions options)
    : DirectoryLogger(std::move(save_dir), options.name(), options.version(), options.sub_dir()),
      options_(std::move(options)) {}

TensorBoardLogger::~TensorBoardLogger() {
  std::lock_guard lock(mutex_);
  close();
}

std::string TensorBoardLogger::event_file() const {
  std::lock_guard lock(mutex_);
  return event_file_;
}

void TensorBoardLogger::ensure_experiment() {
  if (file_) return;  // after finalize, a new run gets a new file (as SummaryWriter does)
  resolve_log_dir();
  std::error_code error;
  fs::create_directories(log_dir_, error);
  if (error)
    throw std::runtime_error("TensorBoardLogger: cannot create '" + log_dir_ +
                             "': " + error.message() + "; choose a writable save_dir");
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  char name[512];
  std::snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%d.%d",
                static_cast<long long>(std::time(nullptr)), host, static_cast<int>(::getpid()),
                file_counter.fetch_add(1));
  event_file_ = (fs::path(log_dir_) / name).string();
  file_ = std::fopen(event_file_.c_str(), "wb");
  if (!file_)
    throw std::runtime_error("TensorBoardLogger: cannot open '" + event_file_ +
                             "' for writing; choose a writable save_dir");
  pb::Event event;
  event.set_wall_time(now_seconds());
  event.set_file_version("brain.Event:2");
  write_record(event.SerializeAsString());
  std::fflush(file_);
}

void TensorBoardLogger::write_record(const std::string& data) {
  if (!file_) return;
  const std::string record = tfrecord_frame(data);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    throw std::runtime_error("TensorBoardLogger: writing '" + event_file_ + "' failed");
}

void TensorBoardLogger::write_scalars(const std::map<std::string, double>& metrics,
                                      std::int64_t step) {
  for (const auto& [key, value] : metrics) {
    pb::Event event;
    event.set_wall_time(now_seconds());
    event.set_step(step);
    pb::Summary::Value* v = event.mutable_summary()->add_value();
    v->set_tag(options_.prefix().empty() ? key : options_.prefix() + "-" + key);
    v->set_simple_value(static_cast<float>(value));
    write_record(event.SerializeAsString());
  }
}

void TensorBoardLogger::log_metrics(const std::map<std::string, double>& metrics,
                                    std::optional<std::int64_t> step) {
  std::lock_guard lock(mutex_);
  ensure_experiment();
  write_scalars(metrics, step.value_or(0));
}

void TensorBoardLogger::log_hyperparams(const Checkpoint& params) {
  std::map<std::string, double> metrics;
  if (options_.default_hp_metric()) metrics["hp_metric"] = -1;
  log_hyperparams(params, metrics);
}

void TensorBoardLogger::log_hyperparams(const Checkpoint& params,
                                        const std::map<std::string, double>& metrics) {
  std::lock_guard lock(mutex_);
  ensure_experiment();
  for (const auto& [key, value] : params.entries()) hparams_.set(key, value);
  if (metrics.empty()) return;
  write_scalars(metrics, 0);

  std::map<std::string, c10::IValue> flat;
  for (const auto& [key, value] : params.entries()) flatten(key, value, flat);
  pb::Experiment experiment;
  pb::SessionStartInfo start;
  for (const auto& [key, value] : flat) {
    if (value.isNone()) continue;
    pb::HParamInfo* info = experiment.add_hparam_infos();
    info->set_name(key);
    google::protobuf::Value& v = (*start.mutable_hparams())[key];
    if (value.isInt() || value.isDouble() || value.isBool()) {
      v.set_number_value(value.isInt()    ? static_cast<double>(value.toInt())
                         : value.isBool() ? (value.toBool() ? 1.0 : 0.0)
                                          : value.toDouble());
      info->set_type(pb::DATA_TYPE_FLOAT64);
    } else if (value.isTensor() && value.toTensor().numel() >= 1 && value.toTensor().dim() <= 1) {
      v.set_number_value(value.toTensor().flatten()[0].item<double>());
      info->set_type(pb::DATA_TYPE_FLOAT64);
    } else {
      v.set_string_value(py_str(value));
      info->set_type(pb::DATA_TYPE_STRING);
    }
  }
  for (const auto& [key, value] : metrics)
    experiment.add_metric_infos()->mutable_name()->set_tag(key);

  auto write_plugin = [&](const char* tag, const pb::HParamsPluginData& data) {
    pb::Event event;
    event.set_wall_time(now_seconds());
    pb::Summary::Value* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    auto* plugin = v->mutable_metadata()->mutable_plugin_data();
    plugin->set_plugin_name("hparams");
    plugin->set_content(plugin_content(data));
    write_record(event.SerializeAsString());
  };
  pb::HParamsPluginData exp_data;
  exp_data.set_version(0);
  *exp_data.mutable_experiment() = experiment;
  write_plugin("_hparams_/experiment", exp_data);
  pb::HParamsPluginData start_data;
  start_data.set_version(0);
  *start_data.mutable_session_start_info() = start;
  write_plugin("_hparams_/session_start_info", start_data);
  pb::HParamsPluginData end_data;
  end_data.set_version(0);
  end_data.mutable_session_end_info()->set_status(pb::STATUS_SUCCESS);
  write_plugin("_hparams_/session_end_info", end_data);
}

void TensorBoardLogger::log_text(const std::string& tag, const std::string& text,
                                 std::int64_t step) {
  std::lock_guard lock(mutex_);
  ensure_experiment();
  pb::Event event;
  event.set_wall_time(now_seconds());
  event.set_step(step);
  pb::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag + "/text_summary");
  v->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  pb::TensorProto* tensor = v->mutable_tensor();
  tensor->set_dtype(7);  // DT_STRING
  tensor->mutable_tensor_shape()->add_dim()->set_size(1);
  tensor->add_string_val(text);
  write_record(event.SerializeAsString());
}

void TensorBoardLogger::save() {
  std::lock_guard lock(mutex_);
  if (file_) std::fflush(file_);
  // hparams.yaml once, if the run's directory exists (Lightning's TensorBoardLogger.save).
  std::error_code error;
  if (!log_dir_.empty() && fs::is_directory(log_dir_, error)) {
    const fs::path yaml = fs::path(log_dir_) / "hparams.yaml";
    if (!fs::exists(yaml, error)) {
      std::ofstream out(yaml, std::ios::binary);
      out << hparams_to_yaml(hparams_);
    }
  }
}

void TensorBoardLogger::close() {
  if (file_) {
    std::fflush(file_);
    std::fclose(file_);
    file_ = nullptr;
  }
}

void TensorBoardLogger::finalize(const std::string& status) {
  {
    std::lock_guard lock(mutex_);
    close();
  }
  if (status == "success") save();
}

}  // namespace hookline
