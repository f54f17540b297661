// hookline: the Fashion-MNIST data set (Zalando's 28x28 grey clothing images, 10 classes).
//
// Contract: `load_fashion_mnist(dir, split)` reads `<prefix>-images-idx3-ubyte[.gz]` and
// `<prefix>-labels-idx1-ubyte[.gz]` (prefix "train" or "t10k") from `dir` and returns a
// TensorDataset with "x": float32 [N, 784] in [0, 1] and "y": int64 [N] in 0..9 (N = 60000 for
// train, 10000 for test). The default directory is where Debian's dataset-fashion-mnist package
// installs the files. A missing file, a malformed one, or images and labels that disagree throw
// std::runtime_error naming the file and what to do. The same files layout as MNIST also loads.
#pragma once

#include <hookline/core/data/dataset.hpp>

#include <filesystem>
#include <string_view>

namespace hookline::data {

/// Which half of the data set to load.
enum class Split {
  kTrain,  ///< 60000 training samples ("train-*" files).
  kTest,   ///< 10000 test samples ("t10k-*" files).
};

/// Where `apt-get install dataset-fashion-mnist` puts the files.
inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Loads one split of Fashion-MNIST from `dir`; see the contract above.
TensorDataset load_fashion_mnist(const std::filesystem::path& dir, Split split);
/// Loads one split of Fashion-MNIST from kFashionMnistDir.
inline TensorDataset load_fashion_mnist(Split split = Split::kTrain) {
  return load_fashion_mnist(std::filesystem::path(kFashionMnistDir), split);
}

}  // namespace hookline::data
