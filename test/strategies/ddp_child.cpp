// ddp_child: the training program the DDP tests run (test/strategies/ddp_tests.cpp). Started once;
// with devices(2) it launches its second rank itself (strategies/launcher.hpp). Each rank writes
// "<dir>/rank<R>.txt": its global step, epoch, stop reason and final weights (one float per
// line, "%.9g"), so the test can compare ranks and runs.
//
//   ddp_child <scenario> <dir>
//   scenarios: single (1 process, global batch 16), ddp (2 processes, batch 8 each),
//              ddp_accumulate (2 processes, batch 4, accumulate 2), veto_rank1 (rank 1 alone
//              asks to stop at batch 2 of epoch 1), checkpoint (saves, then "resume"),
//              resume, throw_rank1 (rank 1 throws at batch 3), throw_rank0, sigterm (trains
//              slowly until a signal stops it: "<dir>/training" appears at batch 2, each rank
//              writes its pid to "<dir>/pid<R>", OnExceptionCheckpoint in <dir>/ckpt; exits
//              128 + the signal), sigterm_resume (3 epochs from <dir>/ckpt/on_exception.ckpt,
//              "<dir>/resumed_step" holds the step it started from).
#include <hookline/callbacks/early_stopping.hpp>
#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/callbacks/model_checkpoint.hpp>
#include <hookline/callbacks/on_exception_checkpoint.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/loops/logger_connector.hpp>
#include <hookline/core/signals.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/strategies/ddp.hpp>

#include "ddp_limits.hpp"

#include <torch/torch.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

using namespace hookline;

namespace {

class Net : public Module {
 public:
  explicit Net(std::int64_t batch_size) : Module("net"), batch_size_(batch_size) {
    torch::manual_seed(1);  // every run starts from the same weights (rank 0's are broadcast)
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 3));
  }
  StepOutput training_step(const Batch& batch, std::int64_t) override {
    const at::Tensor logits = fc2(torch::tanh(fc1(batch["x"])));
    const at::Tensor loss = torch::nn::functional::cross_entropy(logits, batch["y"]);
    log("train_loss", loss, LogOptions().on_epoch(true).sync_dist(true));
    return {{"loss", loss}};
  }
  OptimizerConfig configure_optimizers() override {
    return OptimizerConfig().add(
        std::make_shared<torch::optim::SGD>(parameters(), torch::optim::SGDOptions(0.2)));
  }
  DataLoaders train_dataloader() override {
    torch::manual_seed(7);
    auto data = std::make_shared<data::TensorDataset>(
        Batch{{"x", torch::randn({96, 8})}, {"y", torch::randint(0, 3, {96}, torch::kLong)}});
    return {std::make_shared<data::DataLoader>(
        data, data::DataLoaderOptions().batch_size(batch_size_).shuffle(true).seed(3))};
  }
  void prepare_data() override {  // once per node: only local rank 0 writes its marker
    std::ofstream(dir + "/prepare_data_rank" + std::to_string(trainer().local_rank())) << "x";
  }
  std::string dir;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  std::int64_t batch_size_;
};

void report(const std::string& dir, Trainer& trainer, Net& net) {
  std::ofstream out(dir + "/rank" + std::to_string(trainer.global_rank()) + ".txt");
  out << "world " << trainer.world_size() << "\n";
  out << "step " << trainer.global_step() << "\n";
  out << "epoch " << trainer.current_epoch() << "\n";
  out << "stop " << trainer.stop_reason() << "\n";
  for (const auto& p : net.parameters()) {
    const at::Tensor flat = p.detach().reshape({-1});
    for (std::int64_t i = 0; i < flat.numel(); ++i) {
      char line[32];
      std::snprintf(line, sizeof line, "%.9g\n", flat[i].item<double>());
      out << line;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: ddp_child <scenario> <dir>\n");
    return 2;
  }
  const std::string scenario = argv[1];
  const std::string dir = argv[2];
  const bool single = scenario == "single" || scenario == "early_stop_single";
  TrainerOptions options = TrainerOptions()
                               .max_epochs(3)
                               .num_threads(1)
                               .enable_progress_bar(false)
                               .enable_model_summary(false)
                               .enable_checkpointing(false)
                               .logger(false)
                               .handle_signals(false)
                               .default_root_dir(dir);
  if (!single)
    options.strategy("ddp").devices(2).process_group_timeout(
        std::chrono::seconds(kProcessGroupTimeoutSeconds));
  std::int64_t batch = single ? 16 : 8;
  if (scenario == "ddp_accumulate") {
    batch = 4;
    options.accumulate_grad_batches(2);
  }
  std::vector<std::shared_ptr<Callback>> callbacks;
  LambdaHooks hooks;
  if (scenario == "veto_rank1") {
    hooks.on_train_batch_start = [](Trainer& t, Module&, const Batch&, std::int64_t i) {
      if (t.global_rank() == 1 && t.current_epoch() == 1 && i == 2)
        t.set_should_stop(true, "rank 1 wants to stop");
    };
  }
  if (scenario == "early_stop_rank1" || scenario == "early_stop_single") {
    // An EarlyStopping at train-epoch end on a metric that only rank 1 sees as not improving.
    hooks.on_train_epoch_end = [](Trainer& t, Module&) {
      const double value = t.global_rank() == 1 ? 1.0 : 1.0 / (1.0 + t.current_epoch());
      t.logger_connector().update_callback_metrics({{"score", value}});
    };
    callbacks.push_back(std::make_shared<EarlyStopping>(
        EarlyStoppingOptions().monitor("score").patience(1).check_on_train_epoch_end(true)));
    options.max_epochs(10);
    if (scenario == "early_stop_single") options.strategy("auto").devices(1);
  }
  if (scenario == "throw_rank1" || scenario == "throw_rank0") {
    const int thrower = scenario == "throw_rank1" ? 1 : 0;
    hooks.on_train_batch_end = [thrower](Trainer& t, Module&, const StepOutput&, const Batch&,
                                         std::int64_t i) {
      if (t.global_rank() == thrower && i == 3)
        throw std::runtime_error("boom from rank " + std::to_string(thrower));
    };
  }
  if (scenario == "checkpoint" || scenario == "resume") {
    options.enable_checkpointing(true);
    callbacks.push_back(std::make_shared<ModelCheckpoint>(
        ModelCheckpointOptions().dirpath(dir + "/ckpt").save_last(SaveLast::yes)));
    if (scenario == "checkpoint") options.max_epochs(2);
  }
  if (scenario == "checkpoint")  // Lightning's save_checkpoint writes on rank 0 only
    hooks.on_fit_end = [dir](Trainer& t, Module&) {
      t.save_checkpoint(dir + "/manual_rank" + std::to_string(t.global_rank()) + ".ckpt");
    };
  const bool sigterm = scenario == "sigterm" || scenario == "sigterm_resume";
  if (sigterm) {
    options.handle_signals(true).enable_checkpointing(true);
    callbacks.push_back(std::make_shared<OnExceptionCheckpoint>(dir + "/ckpt"));
  }
  if (scenario == "sigterm") {
    options.max_epochs(1000);
    hooks.on_train_start = [dir](Trainer& t, Module&) {
      std::ofstream(dir + "/pid" + std::to_string(t.global_rank())) << ::getpid();
    };
    hooks.on_train_batch_end = [dir](Trainer& t, Module&, const StepOutput&, const Batch&,
                                     std::int64_t i) {
      if (t.global_rank() == 0 && t.current_epoch() == 0 && i == 2)
        std::ofstream(dir + "/training") << "x";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    };
  }
  if (scenario == "sigterm_resume")
    hooks.on_train_start = [dir](Trainer& t, Module&) {
      if (t.global_rank() == 0) std::ofstream(dir + "/resumed_step") << t.global_step();
    };
  callbacks.push_back(std::make_shared<LambdaCallback>(hooks, "scenario"));
  Trainer trainer(options, callbacks);
  Net net(batch);
  net.dir = dir;
  std::string ckpt;
  if (scenario == "resume") ckpt = dir + "/ckpt/last.ckpt";
  if (scenario == "sigterm_resume") ckpt = dir + "/ckpt/on_exception.ckpt";
  try {
    trainer.fit(net, nullptr, ckpt);
  } catch (const RunInterrupted& e) {
    report(dir, trainer, net);
    return 128 + e.signal();
  }
  report(dir, trainer, net);
  return 0;
}
