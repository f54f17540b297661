// Fashion-MNIST with hookline: the example to read first.
//
// A small network learns to tell apart ten kinds of clothing from 28x28 grey images. The program
// trains it, validates it after every epoch, then tests it. The quick default is a perceptron
// (784 -> 256 -> 10, 2 epochs, about 0.84 test accuracy in seconds); --cnn trains a small
// convolutional network on augmented images (random crop with padding 4, horizontal flip) made by
// two DataLoader workers, 8 epochs, about 0.905 (docs/performance.md says how long it takes).
//
//   ./build/release/examples/fashion_mnist                       # the perceptron, 2 epochs
//   ./build/release/examples/fashion_mnist --cnn                 # the CNN, augmented, 2 workers
//   ./build/release/examples/fashion_mnist --cnn --image-folder fashion_png  # from PNG files
//   ./build/release/examples/fashion_mnist --epochs 5 --batch-size 128
//   ./build/release/examples/fashion_mnist --limit-train-batches 0.1 --trace trace.jsonl
//   ./build/release/examples/fashion_mnist --threads 2               # torch threads (default 1)
//   ./build/release/examples/fashion_mnist --epochs 4 --resume       # continue the last run
//   ./build/release/examples/fashion_mnist --trainer.fast_dev_run=5 --model.lr=0.1
//   ./build/release/examples/fashion_mnist --callbacks+=EarlyStopping:{monitor: val_loss}
//   ./build/release/examples/fashion_mnist --print-config > run.yaml # then: --config run.yaml
//   ./build/release/examples/fashion_mnist --help                    # every option
//
// The command line is hookline::Cli's (recipe/cli.hpp): every trainer option, the model's and the
// data's options and the callbacks are reachable as recipe keys. A usage error (an unknown
// option, a bad value) is refused with the option named and exit status 2.
//
// The data comes from Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist);
// --data-dir points elsewhere. --image-folder DIR writes the images once as DIR/<split>/<class>/
// <n>.png and then reads them back with hookline's ImageFolder dataset (decoded by the workers).
//
// What it shows, top to bottom:
//   1. a Module: the network, what one training / validation / test step does, what it logs, and
//      its optimizer and learning-rate schedule;
//   2. a DataModule: loads the files once and hands out a loader for each stage; with
//      augmentation, a MapDataset of images whose random crop and flip run on the loader's
//      workers, reproducibly (each sample's generator comes from the seed, epoch and index);
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
#include <hookline/core/data/image_folder.hpp>
#include <hookline/core/data/sample.hpp>
#include <hookline/core/data/transforms.hpp>
#include <hookline/core/data_module.hpp>
#include <hookline/core/module.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/events/bus.hpp>
#include <hookline/hooks/hooks.hpp>
#include <hookline/loggers/csv_logger.hpp>
#include <hookline/loggers/tensorboard_logger.hpp>
#include <hookline/recipe/cli.hpp>
#include <hookline/recipe/recipe.hpp>
#include <hookline/recipe/registry.hpp>
#include <hookline/recipe/tracing.hpp>
#include <hookline/tracing/trace_sinks.hpp>

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
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
  // From the recipe's `model:` section (--model.arch, --model.hidden, --model.lr).
  explicit FashionClassifier(hookline::RecipeOptions& o)
      : Module("classifier"),
        arch_(o.get_or<std::string>("arch", "mlp")),
        lr_(o.get_or<double>("lr", arch_ == "cnn" ? 0.002 : 0.05)) {
    const std::int64_t width = o.get_or<std::int64_t>("hidden", 256);
    if (width < 1) o.fail("hidden", "expected a positive integer, got " + std::to_string(width));
    if (!(lr_ > 0)) o.fail("lr", "expected a learning rate > 0");
    if (arch_ == "mlp") {  // 784 -> hidden -> 10
      hidden = register_module("hidden", torch::nn::Linear(28 * 28, width));
      output = register_module("output", torch::nn::Linear(width, 10));
    } else if (arch_ == "cnn") {
      // 3x3 convolutions to 32 and 64 channels, each followed by a 2x2 max-pooling, then
      // 3136 -> 128 -> 10.
      conv1 = register_module("conv1",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).padding(1)));
      conv2 = register_module("conv2",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1)));
      hidden = register_module("hidden", torch::nn::Linear(64 * 7 * 7, 128));
      output = register_module("output", torch::nn::Linear(128, 10));
    } else {
      o.fail("arch", "expected mlp or cnn, got '" + arch_ + "'");
    }
  }

  // Logits of a batch of images in [0, 1]: [N, 784] or [N, 1, 28, 28].
  at::Tensor forward(const at::Tensor& images) {
    if (arch_ == "mlp") return output(torch::relu(hidden(images.flatten(1))));
    // Fashion-MNIST's mean and standard deviation, so the convolutions see centred inputs.
    at::Tensor x = (images.view({-1, 1, 28, 28}) - 0.286) / 0.353;
    x = torch::max_pool2d(torch::relu(conv1(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2(x)), 2);
    return output(torch::relu(hidden(x.flatten(1))));
  }

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
    // SGD with momentum for the perceptron, Adam for the CNN (it converges in fewer epochs).
    std::shared_ptr<torch::optim::Optimizer> optimizer;
    if (arch_ == "cnn")
      optimizer =
          std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(lr_));
    else
      optimizer = std::make_shared<torch::optim::SGD>(parameters(),
                                                      torch::optim::SGDOptions(lr_).momentum(0.9));
    // Lower the learning rate after every epoch (SchedulerConfig steps it at epoch ends): halve
    // it for the perceptron's 2 epochs, times 0.7 for the CNN's 8.
    auto decay = std::make_shared<torch::optim::StepLR>(*optimizer, /*step_size=*/1,
                                                        /*gamma=*/arch_ == "cnn" ? 0.7 : 0.5);
    return hookline::OptimizerConfig().add(optimizer).add_scheduler(
        hookline::SchedulerConfig::from(decay).interval(hookline::Interval::epoch).name("decay"));
  }

  torch::nn::Linear hidden{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear output{nullptr};

 private:
  std::string arch_;
  double lr_;
  std::pair<at::Tensor, at::Tensor> evaluate(const Batch& batch) {
    at::Tensor logits = forward(batch["x"]);
    at::Tensor loss = torch::nn::functional::cross_entropy(logits, batch["y"]);
    at::Tensor accuracy = logits.argmax(1).eq(batch["y"]).to(torch::kFloat).mean();
    return {loss, accuracy};
  }
};

// ---- 2. the data --------------------------------------------------------------------------------

namespace data = hookline::data;
namespace fs = std::filesystem;

// The classes as folder names that sort in label order (ImageFolder numbers them by name).
constexpr const char* kClassFolders[] = {"0_tshirt_top", "1_trouser",   "2_pullover", "3_dress",
                                         "4_coat",       "5_sandal",    "6_shirt",    "7_sneaker",
                                         "8_bag",        "9_ankle_boot"};

// Images as samples {"x": [1, 28, 28], "y": label}, with a transform (the augmentation) that the
// loader's workers run. get() draws its random numbers from `rng`, the sample's own generator, so
// the batches are the same whatever the number of workers.
class FashionImages final : public data::MapDataset {
 public:
  FashionImages(at::Tensor images, at::Tensor labels, data::Transform transform)
      : images_(std::move(images)), labels_(std::move(labels)), transform_(std::move(transform)) {}
  std::int64_t size() const override { return images_.size(0); }
  Batch get(std::int64_t i, data::SampleGenerator& rng) const override {
    return Batch{{"x", transform_(images_[i], rng)}, {"y", labels_[i]}};
  }

 private:
  at::Tensor images_;  // uint8 [N, 1, 28, 28]
  at::Tensor labels_;  // int64 [N]
  data::Transform transform_;
};

// Writes uint8 images [N, 1, 28, 28] as dir/<class>/<n>.png, unless an earlier run finished it.
void write_image_folder(const fs::path& dir, const at::Tensor& images, const at::Tensor& labels) {
  const fs::path done = dir / ".complete";
  if (fs::exists(done)) return;
  for (const char* name : kClassFolders) fs::create_directories(dir / name);
  const std::int64_t* label = labels.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < images.size(0); ++i)
    data::write_png(dir / kClassFolders[label[i]] / (std::to_string(i) + ".png"), images[i]);
  std::ofstream(done) << images.size(0) << " images\n";
}

// The 60000 training images split 55000 / 5000 into training and validation sets (a fixed random
// split), and the 10000 "t10k" images for testing. With `augment`, the training images are
// randomly cropped (padding 4) and flipped by the loader's workers; with `image_folder`, every
// split is written once as PNG files and read back through data::ImageFolder.
class FashionMnistData : public hookline::DataModule {
 public:
  struct Options {
    hookline_examples::DataOptions files;
    bool augment = false;
    int num_workers = 0;
    std::string image_folder;
  };
  // From the recipe's `data:` section (--data.data_dir, --data.batch_size, --data.augment,
  // --data.num_workers, --data.image_folder).
  explicit FashionMnistData(hookline::RecipeOptions& o) : FashionMnistData(options(o)) {}
  explicit FashionMnistData(Options o) : DataModule("fashion_mnist"), o_(std::move(o)) {}

  // setup() runs at the start of every fit / validate / test; load each split only once.
  void setup(hookline::Stage stage) override {
    const fs::path dir = o_.files.dir;
    if (stage != hookline::Stage::test && !train_) {
      const data::TensorDataset all = data::load_fashion_mnist(dir, data::Split::kTrain);
      at::Tensor order =
          torch::randperm(all.size(), at::detail::createCPUGenerator(/*seed=*/0), torch::kLong);
      const Batch train = all.get_batch(order.slice(0, 0, 55000));
      const Batch val = all.get_batch(order.slice(0, 55000));
      const data::Transform augment =
          o_.augment ? data::compose({data::random_crop(28, 4), data::random_horizontal_flip(),
                                      data::to_float()})
                     : data::to_float();
      train_ = dataset(train, "train", augment);
      val_ = dataset(val, "val", data::to_float());
    }
    if (stage == hookline::Stage::test && !test_)
      test_ = dataset(data::load_fashion_mnist(dir, data::Split::kTest).tensors(), "test",
                      data::to_float());
  }

  hookline::DataLoaders train_dataloader() override {
    return {loader(train_, /*shuffle=*/true)};  // a new permutation every epoch
  }
  hookline::DataLoaders val_dataloader() override { return {loader(val_, false)}; }
  hookline::DataLoaders test_dataloader() override { return {loader(test_, false)}; }

 private:
  static Options options(hookline::RecipeOptions& o) {
    Options out{hookline_examples::data_options(o), o.get_or<bool>("augment", false),
                static_cast<int>(o.get_or<std::int64_t>("num_workers", 0)),
                o.get_or<std::string>("image_folder", "")};
    if (out.num_workers < 0) o.fail("num_workers", "expected 0 or more worker threads");
    return out;
  }

  // One split: the tensors as they are (x: [N, 784] in [0, 1]) when nothing is done per sample;
  // else samples of uint8 images, from memory or from the image folder, through `transform`.
  std::shared_ptr<const data::Dataset> dataset(const Batch& split, const std::string& name,
                                               const data::Transform& transform) const {
    const bool images = o_.augment || !o_.image_folder.empty();
    if (!images) return std::make_shared<data::TensorDataset>(split);
    const at::Tensor pixels =
        split["x"].mul(255).round_().to(torch::kByte).view({-1, 1, 28, 28}).contiguous();
    if (o_.image_folder.empty())
      return std::make_shared<FashionImages>(pixels, split["y"], transform);
    const fs::path folder = fs::path(o_.image_folder) / name;
    write_image_folder(folder, pixels, split["y"]);
    return std::make_shared<data::ImageFolder>(folder, transform, data::ImageMode::kGray);
  }

  std::shared_ptr<data::DataLoader> loader(std::shared_ptr<const data::Dataset> dataset,
                                           bool shuffle) const {
    // Workers make the batches (decoding, augmenting, collating) while the step runs.
    return std::make_shared<data::DataLoader>(std::move(dataset),
                                              data::DataLoaderOptions()
                                                  .batch_size(o_.files.batch_size)
                                                  .shuffle(shuffle)
                                                  .seed(0)
                                                  .num_workers(o_.num_workers));
  }

  Options o_;
  std::shared_ptr<const data::Dataset> train_, val_, test_;
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

// The defaults under the command line (hookline::Cli): the model and data registered below, and
// the trainer options this example runs with. Torch intra-op threads: the trainer's default is
// one per core, but a model this small gains little from more than one, and when other programs
// keep the cores busy, OpenMP's spinning worker threads can make two threads ten times slower.
// With --cnn: the convolutional network, augmented images made by 2 workers (the second core),
// batches of 128, 8 epochs (its validation accuracy passes 0.90 at the sixth).
std::string default_recipe(bool cnn) {
  return "trainer:\n"
         "  max_epochs: " +
         std::string(cnn ? "8" : "2") +
         "\n"
         "  num_threads: 1\n"
         "  default_root_dir: fashion_mnist_run   # checkpoints go to <root>/checkpoints\n"
         "  seed: 0                               # the same initial weights every run\n"
         "model:\n"
         "  class: FashionClassifier\n"
         "  arch: " +
         std::string(cnn ? "cnn" : "mlp") +
         "\n"
         "data:\n"
         "  class: FashionMnist\n"
         "  data_dir: " +
         std::string(hookline::data::kFashionMnistDir) + "\n" +
         (cnn ? "  augment: true\n  num_workers: 2\n  batch_size: 128\n" : "");
}

}  // namespace

int main(int argc, char** argv) try {
  hookline::registry().add_model<FashionClassifier>("FashionClassifier");
  hookline::registry().add_data<FashionMnistData>("FashionMnist");
  bool resume = false;
  bool cnn = false;  // read first: it chooses the defaults under the command line
  for (int i = 1; i < argc; ++i) cnn = cnn || std::strcmp(argv[i], "--cnn") == 0;
  hookline::Cli cli("fashion_mnist",
                    "Trains a perceptron (or, with --cnn, a CNN on augmented images) on "
                    "Fashion-MNIST, validates it every epoch, then tests it.");
  hookline_examples::setup_cli(cli, "fashion_mnist");
  cli.defaults(default_recipe(cnn))
      .flag("--resume", resume, "continue the last run from its newest checkpoint")
      .flag("--cnn", cnn,
            "train the CNN on augmented images made by 2 DataLoader workers, 8 epochs (the "
            "defaults of model.arch, data.augment, data.num_workers, data.batch_size, "
            "trainer.max_epochs)")
      .alias("--workers", "data.num_workers")
      .alias("--image-folder", "data.image_folder");
  if (const auto status = cli.parse(argc, argv)) return *status;
  const hookline::Recipe& recipe = cli.recipe();
  hookline::Module& model = *cli.model();
  hookline::DataModule& data = *cli.data();
  hookline::TrainerOptions options = recipe.trainer_options();
  const std::string root_dir = options.default_root_dir();
  // ---- 6. checkpoints
  // ----------------------------------------------------------------------------
  const std::string checkpoints = root_dir + "/checkpoints";
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
  // (--trainer.logger=false turns them off; --trainer.logger=csv uses the recipe's one instead.)
  auto tensorboard = std::make_shared<hookline::TensorBoardLogger>(
      root_dir, hookline::TensorBoardLoggerOptions().name("tensorboard"));
  auto csv =
      std::make_shared<hookline::CSVLogger>(root_dir, hookline::CSVLoggerOptions().name("csv"));
  const bool own_loggers = options.logger() && options.loggers().empty();
  if (own_loggers) options.logger({tensorboard, csv});
  hookline::Trainer trainer(options,
                            {std::make_shared<EpochSummary>(), best,
                             std::make_shared<hookline::OnExceptionCheckpoint>(checkpoints)});
  // The recipe's callbacks and packs (--callbacks+=..., --config FILE).
  recipe.apply(trainer);

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
  if (!recipe.trace().empty()) tracer = hookline::enable_tracing(trainer, recipe.trace());

  const auto started = std::chrono::steady_clock::now();
  try {
    trainer.fit(model, data, resume ? "last" : "");
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
                  static_cast<unsigned long long>(jsonl->lines()), recipe.trace().c_str());
    else
      std::printf("trace: %s\n", recipe.trace().c_str());
  }
  std::printf("best checkpoint: %s\n", best->best_model_path().c_str());
  if (own_loggers)
    std::printf("logs: %s (TensorBoard), %s/metrics.csv\n", tensorboard->log_dir().c_str(),
                csv->log_dir().c_str());
  std::printf("fit + test took %.1f s\n", took.count());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "fashion_mnist: %s\n", e.what());
  return 1;
}
