// Fashion-MNIST with hookline: the example to read first.
//
// A small perceptron (784 -> 256 -> 10) learns to tell apart ten kinds of clothing from 28x28
// grey images. The program trains it, validates it after every epoch, then tests it.
//
//   ./build/release/examples/fashion_mnist                       # 2 epochs, batches of 64
//   ./build/release/examples/fashion_mnist --epochs 5 --batch-size 128
//   ./build/release/examples/fashion_mnist --limit-train-batches 0.1 --trace trace.jsonl
//   ./build/release/examples/fashion_mnist --threads 2               # torch threads (default 1)
//   ./build/release/examples/fashion_mnist --epochs 4 --resume       # continue the last run
//   ./build/release/examples/fashion_mnist --help                    # every option
//
// A usage error (an unknown option, a bad value) is refused with the option named and exit
// status 2 (examples/example_cli.hpp).
//
// The data comes from Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist);
// --data-dir points elsewhere.
//
// What it shows, top to bottom:
//   1. a Module: the network, what one training / validation / test step does, what it logs, and
//      its optimizer and learning-rate schedule;
//   2. a DataModule: loads the files once and hands out a loader for each stage;
//   3. a Callback: prints one line per epoch from trainer.callback_metrics();
//   4. a plain bus subscriber on the async lane: counts training batches off the training thread;
//   5. tracing (--trace FILE or spec, as HOOKLINE_TRACE): one JSON line for every emission and
//      subscriber call, with the run's stage, step and durations;
//   6. checkpoints: ModelCheckpoint keeps the best epoch by validation accuracy and a last.ckpt in
//      <root-dir>/checkpoints, OnExceptionCheckpoint saves if the run fails or is interrupted
//      (Ctrl-C, SIGTERM), and --resume continues from the newest of those, exactly where it
//      stopped;
//   7. logs: TensorBoard event files and a metrics.csv under <root-dir>, and a progress bar (on a
//      terminal it redraws in place; piped, it prints plain lines).
#include <hookline/callbacks/model_checkpoint.hpp>
#include <hookline/callbacks/on_exception_checkpoint.hpp>
#include <hookline/core/callback.hpp>
#include <hookline/core/console.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/data_module.hpp>
#include <hookline/core/module.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/events/bus.hpp>
#include <hookline/hooks/hooks.hpp>
#include <hookline/loggers/csv_logger.hpp>
#include <hookline/loggers/tensorboard_logger.hpp>
#include <hookline/recipe/tracing.hpp>
#include <hookline/tracing/trace_sinks.hpp>

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "example_cli.hpp"

using hookline::Batch;
using hookline::LogOptions;
using hookline::StepOutput;

namespace {

// ---- 1. the model -------------------------------------------------------------------------------

class FashionClassifier : public hookline::Module {
 public:
  FashionClassifier() : Module("classifier") {
    hidden = register_module("hidden", torch::nn::Linear(28 * 28, 256));
    output = register_module("output", torch::nn::Linear(256, 10));
  }

  // Logits of a batch of flattened images [N, 784].
  at::Tensor forward(const at::Tensor& images) { return output(torch::relu(hidden(images))); }

  StepOutput training_step(const Batch& batch, std::int64_t /*batch_idx*/) override {
    at::Tensor loss = torch::nn::functional::cross_entropy(forward(batch["x"]), batch["y"]);
    // In training steps log() keeps the latest value (on_step) by default; on_epoch(true) also
    // averages it over the epoch, as "train_loss_epoch".
    log("train_loss", loss, LogOptions().prog_bar(true).on_epoch(true));
    return {{"loss", loss}};  // the trainer runs backward() and the optimizer on "loss"
  }

  StepOutput validation_step(const Batch& batch, std::int64_t, std::int64_t) override {
    auto [loss, accuracy] = evaluate(batch);
    // In validation and test steps log() averages over the epoch (on_epoch) by default.
    log("val_loss", loss, LogOptions().on_epoch(true));
    log("val_acc", accuracy, LogOptions().on_epoch(true).prog_bar(true));
    return {{"loss", loss}};
  }

  StepOutput test_step(const Batch& batch, std::int64_t, std::int64_t) override {
    auto [loss, accuracy] = evaluate(batch);
    log("test_loss", loss);
    log("test_acc", accuracy);
    return {{"loss", loss}};
  }

  hookline::OptimizerConfig configure_optimizers() override {
    auto sgd = std::make_shared<torch::optim::SGD>(parameters(),
                                                   torch::optim::SGDOptions(0.05).momentum(0.9));
    // Halve the learning rate after every epoch (SchedulerConfig steps it at epoch ends).
    auto halve = std::make_shared<torch::optim::StepLR>(*sgd, /*step_size=*/1, /*gamma=*/0.5);
    return hookline::OptimizerConfig().add(sgd).add_scheduler(
        hookline::SchedulerConfig::from(halve).interval(hookline::Interval::epoch).name("halve"));
  }

  torch::nn::Linear hidden{nullptr};
  torch::nn::Linear output{nullptr};

 private:
  std::pair<at::Tensor, at::Tensor> evaluate(const Batch& batch) {
    at::Tensor logits = forward(batch["x"]);
    at::Tensor loss = torch::nn::functional::cross_entropy(logits, batch["y"]);
    at::Tensor accuracy = logits.argmax(1).eq(batch["y"]).to(torch::kFloat).mean();
    return {loss, accuracy};
  }
};

// ---- 2. the data --------------------------------------------------------------------------------

// The 60000 training images split 55000 / 5000 into training and validation sets (a fixed random
// split), and the 10000 "t10k" images for testing.
class FashionMnistData : public hookline::DataModule {
 public:
  FashionMnistData(std::filesystem::path dir, std::int64_t batch_size)
      : DataModule("fashion_mnist"), dir_(std::move(dir)), batch_size_(batch_size) {}

  // setup() runs at the start of every fit / validate / test; load each split only once.
  void setup(hookline::Stage stage) override {
    namespace data = hookline::data;
    if (stage != hookline::Stage::test && !train_) {
      const data::TensorDataset all = data::load_fashion_mnist(dir_, data::Split::kTrain);
      at::Tensor order =
          torch::randperm(all.size(), at::detail::createCPUGenerator(/*seed=*/0), torch::kLong);
      train_ = std::make_shared<data::TensorDataset>(all.get_batch(order.slice(0, 0, 55000)));
      val_ = std::make_shared<data::TensorDataset>(all.get_batch(order.slice(0, 55000)));
    }
    if (stage == hookline::Stage::test && !test_)
      test_ =
          std::make_shared<data::TensorDataset>(data::load_fashion_mnist(dir_, data::Split::kTest));
  }

  hookline::DataLoaders train_dataloader() override {
    return {loader(train_, /*shuffle=*/true)};  // a new permutation every epoch
  }
  hookline::DataLoaders val_dataloader() override { return {loader(val_, false)}; }
  hookline::DataLoaders test_dataloader() override { return {loader(test_, false)}; }

 private:
  std::shared_ptr<hookline::data::DataLoader> loader(
      std::shared_ptr<const hookline::data::Dataset> dataset, bool shuffle) const {
    return std::make_shared<hookline::data::DataLoader>(
        std::move(dataset),
        hookline::data::DataLoaderOptions().batch_size(batch_size_).shuffle(shuffle).seed(0));
  }

  std::filesystem::path dir_;
  std::int64_t batch_size_;
  std::shared_ptr<hookline::data::TensorDataset> train_, val_, test_;
};

// ---- 3. a callback ------------------------------------------------------------------------------

// Prints (with hookline::write_line, above the progress bar) "epoch 1/2  train_loss ...  val_loss
// ...  val_acc ...  lr ...  (2.0 s)" when an epoch ends. The epoch's validation has run by then, so
// its metrics are in callback_metrics().
class EpochSummary : public hookline::Callback {
 public:
  EpochSummary() : Callback("epoch_summary") {}

  void on_train_epoch_start(hookline::Trainer&, hookline::Module&) override {
    started_ = std::chrono::steady_clock::now();
  }

  void on_train_epoch_end(hookline::Trainer& trainer, hookline::Module&) override {
    const hookline::MetricMap& metrics = trainer.callback_metrics();
    const auto get = [&](const std::string& name) {
      auto it = metrics.find(name);
      return it == metrics.end() ? std::nan("") : it->second;
    };
    // The learning rate this epoch trained with (the StepLR steps right after this hook).
    const double lr =
        trainer.optimizer_config().optimizers.at(0)->param_groups()[0].options().get_lr();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_;
    char line[160];
    std::snprintf(line, sizeof line,
                  "epoch %lld/%lld  train_loss %.4f  val_loss %.4f  val_acc %.4f  lr %g  (%.1f s)",
                  static_cast<long long>(trainer.current_epoch() + 1),
                  static_cast<long long>(trainer.options().effective_max_epochs()),
                  get("train_loss_epoch"), get("val_loss"), get("val_acc"), lr, took.count());
    // Above the progress bar (printf would land on the end of the bar's line).
    hookline::write_line(line);
  }

 private:
  std::chrono::steady_clock::time_point started_;
};

// ---- command line -------------------------------------------------------------------------------

struct Args {
  std::int64_t epochs = 2;
  std::int64_t batch_size = 64;
  hookline::BatchAmount limit_train_batches = 1.0;  // all of them
  std::string data_dir{hookline::data::kFashionMnistDir};
  std::string trace;  // a trace spec, as HOOKLINE_TRACE takes ("" : none)
  // Torch intra-op threads. The trainer's default is one per core, but a model this small gains
  // little from more than one, and when other programs keep the cores busy, OpenMP's spinning
  // worker threads can make two threads ten times slower than one.
  int threads = 1;
  std::string root_dir = "fashion_mnist_run";  // checkpoints go to <root_dir>/checkpoints
  bool resume = false;
};

Args parse_args(int argc, char** argv) {
  Args args;
  CLI::App app{"Trains a perceptron on Fashion-MNIST, validates it every epoch, then tests it.",
               "fashion_mnist"};
  hookline_examples::setup_cli(app);
  hookline_examples::add_epochs(app, args.epochs);
  app.add_option("--batch-size", args.batch_size, "samples per batch")
      ->check(hookline_examples::positive_integer())
      ->capture_default_str();
  hookline_examples::add_limit_train_batches(app, args.limit_train_batches);
  hookline_examples::add_data_dir(app, args.data_dir);
  app.add_option("--trace", args.trace,
                 "trace the run, as HOOKLINE_TRACE does: a file (t.jsonl; t.json is a Chrome "
                 "trace) or a spec such as \"t.jsonl,summary\" (tracing/trace_spec.hpp)");
  app.add_option("--threads", args.threads, "torch intra-op threads")
      ->check(hookline_examples::positive_integer())
      ->capture_default_str();
  app.add_option("--root-dir", args.root_dir, "where checkpoints and logs go")
      ->capture_default_str();
  app.add_flag("--resume", args.resume, "continue the last run from its newest checkpoint");
  hookline_examples::parse_cli(app, argc, argv);
  return args;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse_args(argc, argv);
  torch::manual_seed(0);  // the same initial weights every run

  FashionClassifier model;
  FashionMnistData data(args.data_dir, args.batch_size);
  // ---- 6. checkpoints
  // ----------------------------------------------------------------------------
  const std::string checkpoints = args.root_dir + "/checkpoints";
  auto best = std::make_shared<hookline::ModelCheckpoint>(hookline::ModelCheckpointOptions()
                                                              .dirpath(checkpoints)
                                                              .monitor("val_acc")
                                                              .mode("max")
                                                              .filename("{epoch}-{val_acc:.4f}")
                                                              .save_last(hookline::SaveLast::yes));
  // ---- 7. logs
  // ----------------------------------------------------------------------------------- Every
  // log(...) of the module goes to both loggers, each in its own numbered version directory:
  // <root-dir>/tensorboard/version_N (open with `tensorboard --logdir <root-dir>/tensorboard`) and
  // <root-dir>/csv/version_N/metrics.csv. Without .logger(...) the trainer writes TensorBoard
  // files to <root-dir>/lightning_logs, as Lightning does; .logger(false) writes none.
  auto tensorboard = std::make_shared<hookline::TensorBoardLogger>(
      args.root_dir, hookline::TensorBoardLoggerOptions().name("tensorboard"));
  auto csv = std::make_shared<hookline::CSVLogger>(args.root_dir,
                                                   hookline::CSVLoggerOptions().name("csv"));
  hookline::Trainer trainer(hookline::TrainerOptions()
                                .logger({tensorboard, csv})
                                .max_epochs(args.epochs)
                                .limit_train_batches(args.limit_train_batches)
                                .default_root_dir(args.root_dir)
                                .num_threads(args.threads),
                            {std::make_shared<EpochSummary>(), best,
                             std::make_shared<hookline::OnExceptionCheckpoint>(checkpoints)});

  // ---- 4. a subscriber on the async lane --------------------------------------------------------
  // Anything can listen on the trainer's bus, not only callbacks. An async subscriber gets its own
  // copy of each event on a background thread, so it never holds up the training loop (and it
  // cannot veto). The trainer waits for the async lane before fit() returns.
  std::atomic<std::int64_t> batches_seen{0};
  trainer.bus().on<hookline::TrainBatchEnd>(
      [&batches_seen](const hookline::TrainBatchEnd&) {
        batches_seen.fetch_add(1, std::memory_order_relaxed);
      },
      hookline::SubscribeOptions().named("batch_counter").lane(hookline::Lane::async));

  // ---- 5. tracing -------------------------------------------------------------------------------
  // A tracer sees every emission and every subscriber call. enable_tracing is what HOOKLINE_TRACE
  // and recipes use: records carry the run's stage, epoch, step and durations, and the file
  // passes `hookline-trace check`.
  std::shared_ptr<hookline::TraceRecorder> tracer;
  if (!args.trace.empty()) tracer = hookline::enable_tracing(trainer, args.trace);

  const auto started = std::chrono::steady_clock::now();
  try {
    trainer.fit(model, data, args.resume ? "last" : "");
  } catch (const hookline::RunInterrupted& e) {
    std::fprintf(stderr, "fashion_mnist: %s\nrun again with --resume to continue\n", e.what());
    return 128 + e.signal();
  }
  if (!trainer.ckpt_path().empty()) std::printf("resumed from %s\n", trainer.ckpt_path().c_str());
  const hookline::MetricMap results = trainer.test(model, data).at(0);  // one map per loader
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;

  std::printf("test_acc %.4f  test_loss %.4f\n", results.at("test_acc"), results.at("test_loss"));
  std::printf("%lld optimizer steps; the async batch counter saw %lld training batches\n",
              static_cast<long long>(trainer.global_step()),
              static_cast<long long>(batches_seen.load()));
  if (tracer) {
    tracer->flush();
    if (const auto jsonl = tracer->sink<hookline::JsonlSink>())
      std::printf("trace: %llu lines written to %s\n",
                  static_cast<unsigned long long>(jsonl->lines()), args.trace.c_str());
    else
      std::printf("trace: %s\n", args.trace.c_str());
  }
  std::printf("best checkpoint: %s\n", best->best_model_path().c_str());
  std::printf("logs: %s (TensorBoard), %s/metrics.csv\n", tensorboard->log_dir().c_str(),
              csv->log_dir().c_str());
  std::printf("fit + test took %.1f s\n", took.count());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
  return 1;
}
