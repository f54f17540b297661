// hookline: ModelSummary, Lightning 2.2's table of a module's layers, printed at fit start.
//
//     | Name | Type       | Params
//   ---------------------------------
//   0 | net  | Sequential | 132 K
//   ---------------------------------
//   132 K     Trainable params
//   0         Non-trainable params
//   132 K     Total params
//   0.530     Total estimated model params size (MB)
//
// max_depth 1 (default) lists the module's children, N > 1 every submodule down to N levels
// ("net.0" is level 2), -1 all of them, 0 none (the callback then prints nothing). Params counts
// each layer's parameters with its submodules'; parameters registered on the module itself show
// as "other params". Counts read as Lightning writes them ("123  ", "1.2 K", "3.0 M", "400 T");
// the size is 4 bytes per parameter, as Lightning 2.2 estimates it whatever the precision.
// Layer types are the C++ class names without namespaces or LibTorch's "Impl" suffix ("Linear"
// for torch::nn::LinearImpl).
//
// A Trainer adds one (max_depth 1) unless enable_model_summary(false) or the callbacks already
// hold a ModelSummary. The table goes to the console logger at info level on rank 0.
#pragma once

#include "hookline/core/callback.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace hookline {

struct ModelSummaryTable {
  struct Layer {
    std::string name, type;
    std::int64_t params = 0;
  };
  std::vector<Layer> layers;
  std::int64_t other_params = 0;  // on the module itself, in no listed layer
  std::int64_t total_params = 0, trainable_params = 0;
  double size_mb = 0;
  /// The table as Lightning prints it.
  std::string format() const;
};

/// The summary of `module` at `max_depth` (-1, 0 or > 0; anything else is an invalid_argument).
ModelSummaryTable summarize(const torch::nn::Module& module, int max_depth = 1);

/// Lightning's abbreviation of a count: "123  ", "1.2 K", "2.0 M", "400 T", "5,000 T".
std::string human_readable_count(std::int64_t number);

class ModelSummary : public Callback {
 public:
  /// Throws std::invalid_argument for max_depth < -1.
  explicit ModelSummary(int max_depth = 1);
  int max_depth() const { return max_depth_; }
  void on_fit_start(Trainer& trainer, Module& module) override;
  /// The last table printed (empty before a fit, or with max_depth 0).
  const std::string& last_table() const { return last_table_; }

 private:
  int max_depth_;
  std::string last_table_;
};

}  // namespace hookline
