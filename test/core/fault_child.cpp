// A training program that the fault tests (fault_tests.cpp) run as a child process and then
// interrupt: it raises SIGTERM at a chosen point of training or validation, throws from a callback,
// or writes checkpoints in a loop until it is killed.
//
//   fault_child DIR [--resume] [--sigterm-at-step K] [--sigterm-in-validation K]
//                   [--sigterm-in-sanity-check] [--throw-at-step K] [--save-forever]
//
// Checkpoints go to DIR/last.ckpt (every 4 steps and on any exception); the final weights to
// DIR/final.ckpt. Exit codes: 0 done, 143 interrupted by a signal (resumable), 4 other error.
#include <hookline/core/checkpoint_io.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/trainer.hpp>

#include <torch/torch.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

using namespace hookline;

namespace {

struct Args {
  std::string dir;
  bool resume = false;
  std::int64_t sigterm_at_step = -1;
  std::int64_t sigterm_in_validation = -1;
  std::int64_t throw_at_step = -1;
  bool sigterm_in_sanity_check = false;
  bool save_forever = false;
};

class Net : public Module {
 public:
  explicit Net(std::int64_t hidden) : Module("net") {
    l1 = register_module("l1", torch::nn::Linear(16, hidden));
    drop = register_module("drop", torch::nn::Dropout(0.2));
    l2 = register_module("l2", torch::nn::Linear(hidden, 2));
  }
  at::Tensor forward(const at::Tensor& x) { return l2(drop(torch::relu(l1(x)))); }
  StepOutput training_step(const Batch& b, std::int64_t) override {
    auto loss = torch::mse_loss(forward(b["x"]), b["y"]);
    return {{"loss", loss}};
  }
  StepOutput validation_step(const Batch& b, std::int64_t, std::int64_t) override {
    return {{"val_loss", torch::mse_loss(forward(b["x"]), b["y"])}};
  }
  OptimizerConfig configure_optimizers() override {
    return OptimizerConfig().add(
        std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(0.01)));
  }
  DataLoaders train_dataloader() override { return {make_loader(64, 3, true)}; }
  DataLoaders val_dataloader() override { return {make_loader(32, 4, false)}; }
  torch::nn::Linear l1{nullptr}, l2{nullptr};
  torch::nn::Dropout drop{nullptr};

 private:
  static std::shared_ptr<data::DataLoader> make_loader(std::int64_t n, std::uint64_t seed,
                                                       bool shuffle) {
    at::Generator gen = at::detail::createCPUGenerator(seed);
    Batch all{{"x", torch::randn({n, 16}, gen)}, {"y", torch::randn({n, 2}, gen)}};
    return std::make_shared<data::DataLoader>(
        std::make_shared<data::TensorDataset>(all),
        data::DataLoaderOptions().batch_size(8).shuffle(shuffle).seed(seed));
  }
};

// Saves DIR/last.ckpt every 4 optimizer steps and when the run fails; raises faults on request.
class Faults final : public Callback {
 public:
  Faults(const Args& args) : Callback("faults"), args_(args) {}
  void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                          std::int64_t) override {
    if (t.global_step() % 4 == 0) t.save_checkpoint(args_.dir + "/last.ckpt");
    if (t.global_step() == args_.sigterm_at_step) raise_sigterm();
    if (t.global_step() == args_.throw_at_step) throw std::runtime_error("callback failed");
  }
  void on_validation_batch_start(Trainer& t, Module&, const Batch&, std::int64_t batch_idx,
                                 std::int64_t) override {
    if (!t.sanity_checking() && t.global_step() == args_.sigterm_in_validation && batch_idx == 0)
      raise_sigterm();
    if (t.sanity_checking() && args_.sigterm_in_sanity_check && batch_idx == 0) raise_sigterm();
  }
  void on_exception(Trainer& t, Module&, const std::exception_ptr&) override {
    t.save_checkpoint(args_.dir + "/last.ckpt");
    std::ofstream(args_.dir + "/on_exception_ran") << (t.validating() ? "validating" : "training");
  }

 private:
  // A real SIGTERM; the pause lets the watcher thread record it before the next batch boundary.
  static void raise_sigterm() {
    std::raise(SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  Args args_;
};

int save_forever(const Args& args) {
  // About 24 MB of parameters (plus Adam state), saved again and again until killed.
  Net model(370000 / 16 * 16);
  class Saver final : public Callback {
   public:
    explicit Saver(std::string dir) : Callback("saver"), dir_(std::move(dir)) {}
    void on_train_start(Trainer& t, Module&) override {
      t.save_checkpoint(dir_ + "/last.ckpt");
      std::ofstream(dir_ + "/ready");
      for (;;) t.save_checkpoint(dir_ + "/last.ckpt");
    }

   private:
    std::string dir_;
  };
  Trainer trainer(TrainerOptions()
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .max_epochs(1)
                      .num_sanity_val_steps(0)
                      .enable_checkpointing(false),
                  {std::make_shared<Saver>(args.dir)});
  trainer.fit(model);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fault_child DIR [options]\n");
    return 2;
  }
  Args args;
  args.dir = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return std::stoll(argv[++i]); };
    if (a == "--resume")
      args.resume = true;
    else if (a == "--sigterm-at-step")
      args.sigterm_at_step = next();
    else if (a == "--sigterm-in-validation")
      args.sigterm_in_validation = next();
    else if (a == "--throw-at-step")
      args.throw_at_step = next();
    else if (a == "--sigterm-in-sanity-check")
      args.sigterm_in_sanity_check = true;
    else if (a == "--save-forever")
      args.save_forever = true;
    else {
      std::fprintf(stderr, "fault_child: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  torch::set_num_threads(1);
  if (args.save_forever) return save_forever(args);
  torch::manual_seed(args.resume ? 99 : 1);
  Net model(32);
  Trainer trainer(TrainerOptions()
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .max_epochs(3)
                      .val_check_interval(0.5)
                      .enable_checkpointing(false)
                      .default_root_dir(args.dir)
                      .num_threads(1)
                      .seed(7),
                  {std::make_shared<Faults>(args)});
  try {
    trainer.fit(model, nullptr, args.resume ? args.dir + "/last.ckpt" : std::string());
  } catch (const RunInterrupted& e) {
    std::fprintf(stderr, "fault_child: %s\n", e.what());
    return 128 + e.signal();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fault_child: %s\n", e.what());
    return 4;
  }
  c10::impl::GenericDict weights(c10::StringType::get(), c10::AnyType::get());
  for (const auto& p : model.named_parameters()) weights.insert(p.key(), p.value().detach());
  write_checkpoint_file(args.dir + "/final.ckpt", weights);
  std::printf("fault_child: done at step %lld\n", static_cast<long long>(trainer.global_step()));
  return 0;
}
