#include "hookline/callbacks/model_summary.hpp"

#include "hookline/core/console.hpp"
#include "hookline/core/module.hpp"
#include "hookline/core/trainer.hpp"

#include <torch/nn/module.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace hookline {

namespace {

// "1,234,567": Python's "{:,d}".
std::string with_commas(std::int64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// The C++ class name without its namespaces: "Linear" for "torch::nn::Linear".
std::string short_type(const std::string& name) {
  const auto colon = name.rfind("::");
  std::string type = colon == std::string::npos ? name : name.substr(colon + 2);
  // LibTorch's layers are holders of "...Impl" classes: torch::nn::LinearImpl is Linear.
  if (type.size() > 4 && type.compare(type.size() - 4, 4, "Impl") == 0)
    type.resize(type.size() - 4);
  return type;
}

std::int64_t count(const torch::nn::Module& m, bool trainable_only) {
  std::int64_t n = 0;
  for (const auto& p : m.parameters(/*recurse=*/true))
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace

std::string human_readable_count(std::int64_t number) {
  if (number < 0) throw std::invalid_argument("human_readable_count: negative count");
  static const char* const labels[] = {" ", "K", "M", "B", "T"};
  const int digits = number > 0 ? static_cast<int>(std::floor(std::log10(number))) + 1 : 1;
  const int groups = std::min((digits + 2) / 3, 5);
  const double scaled = static_cast<double>(number) * std::pow(10.0, -3 * (groups - 1));
  const int index = groups - 1;
  if (index < 1 || scaled >= 100)
    return with_commas(static_cast<std::int64_t>(scaled)) + " " + labels[index];
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", scaled, labels[index]);
  return text;
}

ModelSummaryTable summarize(const torch::nn::Module& module, int max_depth) {
  if (max_depth < -1)
    throw std::invalid_argument("ModelSummary: max_depth can be -1, 0 or > 0, got " +
                                std::to_string(max_depth));
  ModelSummaryTable t;
  if (max_depth == 1) {
    for (const auto& child : module.named_children())
      t.layers.push_back(
          {child.key(), short_type(child.value()->name()), count(*child.value(), false)});
  } else if (max_depth != 0) {
    for (const auto& m : module.named_modules("", /*include_self=*/false)) {
      const auto dots = std::count(m.key().begin(), m.key().end(), '.');
      if (max_depth > 0 && dots >= max_depth) continue;
      t.layers.push_back({m.key(), short_type(m.value()->name()), count(*m.value(), false)});
    }
  }
  t.total_params = count(module, false);
  t.trainable_params = count(module, true);
  std::int64_t in_layers = 0;
  for (const auto& layer : t.layers) in_layers += layer.params;
  t.other_params = std::max<std::int64_t>(0, t.total_params - in_layers);
  t.size_mb = static_cast<double>(t.total_params) * 4e-6;
  return t;
}

std::string ModelSummaryTable::format() const {
  struct Column {
    std::string header;
    std::vector<std::string> cells;
  };
  std::vector<Column> cols = {{" ", {}}, {"Name", {}}, {"Type", {}}, {"Params", {}}};
  for (std::size_t i = 0; i < layers.size(); ++i) {
    cols[0].cells.push_back(std::to_string(i));
    cols[1].cells.push_back(layers[i].name);
    cols[2].cells.push_back(layers[i].type);
    cols[3].cells.push_back(human_readable_count(layers[i].params));
  }
  if (other_params > 0) {
    cols[0].cells.push_back(" ");
    cols[1].cells.push_back("other params");
    cols[2].cells.push_back("n/a");
    cols[3].cells.push_back(human_readable_count(other_params));
  }
  std::vector<std::size_t> widths;
  std::size_t total_width = 3 * (cols.size() + 1);  // Lightning counts one column more
  for (const Column& c : cols) {
    std::size_t w = c.header.size();
    for (const auto& cell : c.cells) w = std::max(w, cell.size());
    widths.push_back(w);
    total_width += w;
  }
  std::string out;
  auto row = [&](auto cell) {
    for (std::size_t c = 0; c < cols.size(); ++c) {
      if (c) out.append(" | ");
      const std::string& text = cell(c);
      out.append(text);
      if (text.size() < widths[c]) out.append(widths[c] - text.size(), ' ');
    }
  };
  auto rule = [&] {
    out.push_back('\n');
    out.append(total_width, '-');
  };
  row([&](std::size_t c) -> const std::string& { return cols[c].header; });
  rule();
  for (std::size_t r = 0; r < cols[0].cells.size(); ++r) {
    out.push_back('\n');
    row([&](std::size_t c) -> const std::string& { return cols[c].cells[r]; });
  }
  rule();
  char size[64];
  std::snprintf(size, sizeof size, "%.3f", size_mb);
  const std::string size_text = size;  // Python's "{:,.3f}": commas in the integer part
  const auto point = size_text.find('.');
  const std::string mb =
      with_commas(std::stoll(size_text.substr(0, point))) + size_text.substr(point);
  auto total = [&](const std::string& value, const char* what) {
    out.push_back('\n');
    out.append(value);
    if (value.size() < 10) out.append(10 - value.size(), ' ');
    out.append(what);
  };
  total(human_readable_count(trainable_params), "Trainable params");
  total(human_readable_count(total_params - trainable_params), "Non-trainable params");
  total(human_readable_count(total_params), "Total params");
  total(mb, "Total estimated model params size (MB)");
  return out;
}

ModelSummary::ModelSummary(int max_depth) : Callback("ModelSummary"), max_depth_(max_depth) {
  if (max_depth < -1)
    throw std::invalid_argument("ModelSummary: max_depth can be -1, 0 or > 0, got " +
                                std::to_string(max_depth));
}

void ModelSummary::on_fit_start(Trainer& trainer, Module& module) {
  if (max_depth_ == 0) return;
  last_table_ = summarize(module, max_depth_).format();
  if (trainer.bus().rank() == 0) console().info("\n{}", last_table_);
}

}  // namespace hookline
