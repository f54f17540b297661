// examples/interop: a model written in Python (examples/interop/model.py), trained by hookline.
//
//   /usr/bin/python3 examples/interop/model.py export model.pt
//   build/release/examples/interop_train model.pt out      # 1 epoch on Fashion-MNIST
//   /usr/bin/python3 examples/interop/model.py evaluate out
//
// ScriptModule takes the script's forward, training_step, validation_step and
// configure_optimizers; the Trainer runs it with its callbacks. out/last.ckpt is a hookline
// checkpoint (torch.load opens it; Lightning reads its keys), out/trained.pt the trained script.
#include <hookline/callbacks/model_checkpoint.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/script_module.hpp>
#include <hookline/core/trainer.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>

using namespace hookline;

class FashionMnist : public DataModule {
 public:
  DataLoaders train_dataloader() override { return {loader(data::Split::kTrain, true)}; }
  DataLoaders val_dataloader() override { return {loader(data::Split::kTest, false)}; }

 private:
  static std::shared_ptr<data::DataLoader> loader(data::Split split, bool shuffle) {
    auto set = std::make_shared<data::TensorDataset>(data::load_fashion_mnist(split));
    return std::make_shared<data::DataLoader>(
        set, data::DataLoaderOptions().batch_size(128).shuffle(shuffle));
  }
};

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr,
                 "usage: interop_train MODEL.pt OUT_DIR\n"
                 "  MODEL.pt: /usr/bin/python3 examples/interop/model.py export MODEL.pt\n");
    return 2;
  }
  const std::filesystem::path out = argv[2];
  try {
    ScriptModule model(argv[1]);
    FashionMnist data;
    auto checkpoints = std::make_shared<ModelCheckpoint>(ModelCheckpointOptions()
                                                             .dirpath(out.string())
                                                             .monitor("val_loss")
                                                             .save_last(SaveLast::yes));
    Trainer trainer(TrainerOptions().max_epochs(1).default_root_dir(out.string()), {checkpoints});
    trainer.fit(model, data);
    model.save_script((out / "trained.pt").string());
    std::printf("val_acc %.4f; wrote %s and %s\n", trainer.callback_metrics().at("val_acc"),
                (out / "last.ckpt").c_str(), (out / "trained.pt").c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "interop_train: %s\n", e.what());
    return 1;
  }
  return 0;
}
