#include "hookline/core/trainer_options.hpp"

#include <cmath>
#include <stdexcept>

namespace hookline {

std::int64_t BatchAmount::of(std::int64_t available) const {
  if (is_count()) return std::min(count(), available);
  const auto n = static_cast<std::int64_t>(std::floor(fraction() * static_cast<double>(available)));
  if (n == 0 && fraction() > 0 && available > 0) return 1;
  return n;
}

std::string BatchAmount::describe() const {
  return is_count() ? std::to_string(count()) : std::to_string(fraction());
}

namespace {
[[noreturn]] void bad(const std::string& option, const std::string& value, const std::string& fix) {
  throw std::invalid_argument("TrainerOptions::" + option + "(" + value + ") is invalid: " + fix);
}

void check_amount(const char* option, const BatchAmount& a, bool allow_zero = true) {
  if (a.is_count()) {
    if (a.count() < 0 || (!allow_zero && a.count() == 0))
      bad(option, a.describe(),
          allow_zero ? "a batch count must be >= 0" : "a batch count must be >= 1");
  } else if (!(a.fraction() >= 0.0 && a.fraction() <= 1.0) ||
             (!allow_zero && a.fraction() == 0.0)) {
    bad(option, a.describe(),
        "a fraction must be in " + std::string(allow_zero ? "[0, 1]" : "(0, 1]") +
            "; pass an integer for a number of batches");
  }
}
}  // namespace

void TrainerOptions::validate() const {
  if (max_epochs_ && *max_epochs_ < -1)
    bad("max_epochs", std::to_string(*max_epochs_), "use -1 for no limit or a count >= 0");
  if (min_epochs_ && *min_epochs_ < 0)
    bad("min_epochs", std::to_string(*min_epochs_), "must be >= 0");
  if (max_epochs_ && min_epochs_ && *max_epochs_ >= 0 && *min_epochs_ > *max_epochs_)
    bad("min_epochs", std::to_string(*min_epochs_),
        "must not exceed max_epochs (" + std::to_string(*max_epochs_) + ")");
  if (max_steps_ < -1) bad("max_steps", std::to_string(max_steps_), "use -1 or a count >= 0");
  if (min_steps_ < -1) bad("min_steps", std::to_string(min_steps_), "use -1 or a count >= 0");
  if (max_steps_ >= 0 && min_steps_ > max_steps_)
    bad("min_steps", std::to_string(min_steps_),
        "must not exceed max_steps (" + std::to_string(max_steps_) + ")");
  if (max_time_ && max_time_->count() <= 0)
    bad("max_time", std::to_string(max_time_->count()) + "ms", "must be positive");
  check_amount("limit_train_batches", limit_train_batches_);
  check_amount("limit_val_batches", limit_val_batches_);
  check_amount("limit_test_batches", limit_test_batches_);
  check_amount("limit_predict_batches", limit_predict_batches_);
  check_amount("val_check_interval", val_check_interval_, false);
  check_amount("overfit_batches", overfit_batches_);
  if (check_val_every_n_epoch_ < 1)
    bad("check_val_every_n_epoch", std::to_string(check_val_every_n_epoch_), "must be >= 1");
  if (num_sanity_val_steps_ < -1)
    bad("num_sanity_val_steps", std::to_string(num_sanity_val_steps_),
        "use -1 (all batches), 0 (none) or a count");
  if (accumulate_grad_batches_ < 1)
    bad("accumulate_grad_batches", std::to_string(accumulate_grad_batches_), "must be >= 1");
  if (gradient_clip_val_ && !(*gradient_clip_val_ >= 0))
    bad("gradient_clip_val", std::to_string(*gradient_clip_val_), "must be >= 0");
  if (gradient_clip_algorithm_ && !gradient_clip_val_)
    bad("gradient_clip_algorithm", std::string(to_string(*gradient_clip_algorithm_)),
        "set gradient_clip_val too, or the algorithm has nothing to clip with");
  if (log_every_n_steps_ < 0)
    bad("log_every_n_steps", std::to_string(log_every_n_steps_), "must be >= 0 (0: never)");
  for (const auto& logger : loggers_)
    if (!logger)
      throw std::invalid_argument(
          "TrainerOptions::logger: a logger is null; pass loggers, or logger(false) for none");
  if (fast_dev_run_ < 0) bad("fast_dev_run", std::to_string(fast_dev_run_), "must be >= 0");
  if (reload_dataloaders_every_n_epochs_ < 0)
    bad("reload_dataloaders_every_n_epochs", std::to_string(reload_dataloaders_every_n_epochs_),
        "must be >= 0");
  if (num_threads_ && *num_threads_ < 1)
    bad("num_threads", std::to_string(*num_threads_), "must be >= 1");
  if (accelerator_ != "auto" && accelerator_ != "cpu" && accelerator_ != "cuda")
    bad("accelerator", accelerator_, "use \"auto\", \"cpu\" or \"cuda\"");
  if (devices_ < 1) bad("devices", std::to_string(devices_), "must be >= 1");
  if (num_nodes_ < 1) bad("num_nodes", std::to_string(num_nodes_), "must be >= 1");
  if (strategy_ != "auto" && strategy_ != "single_device" && strategy_ != "ddp")
    bad("strategy", strategy_, "use \"auto\", \"single_device\" or \"ddp\"");
  if (strategy_ == "single_device" && devices_ * num_nodes_ > 1)
    bad("strategy", strategy_, "runs one process; use \"ddp\" for devices x num_nodes > 1");
  if (process_group_timeout_.count() <= 0)
    bad("process_group_timeout", std::to_string(process_group_timeout_.count()) + " ms",
        "must be > 0");
}

std::int64_t TrainerOptions::effective_max_epochs() const {
  if (fast_dev_run_ > 0) return 1;  // Lightning's fast_dev_run sets the fit loop's max_epochs
  if (max_epochs_) return *max_epochs_;
  return max_steps_ == -1 ? 1000 : -1;
}

}  // namespace hookline
