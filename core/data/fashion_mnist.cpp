#include <hookline/core/data/fashion_mnist.hpp>

#include <hookline/core/data/idx.hpp>

#include <stdexcept>
#include <string>
#include <system_error>

namespace hookline::data {
namespace {

constexpr std::int64_t kNumClasses = 10;

// `<dir>/<name>.gz` if present, else `<dir>/<name>`; throws with an install hint if neither is.
std::filesystem::path find_file(const std::filesystem::path& dir, const std::string& name) {
  std::error_code ec;
  const auto gz = dir / (name + ".gz");
  if (std::filesystem::exists(gz, ec)) return gz;
  const auto plain = dir / name;
  if (std::filesystem::exists(plain, ec)) return plain;
  throw std::runtime_error("Fashion-MNIST file '" + gz.string() + "' not found (nor '" +
                           plain.string() +
                           "'); install it with: apt-get install dataset-fashion-mnist, or pass "
                           "the directory that holds the IDX files");
}

}  // namespace

TensorDataset load_fashion_mnist(const std::filesystem::path& dir, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const auto images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const auto labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  const at::Tensor images = read_idx(images_path);
  const at::Tensor labels = read_idx(labels_path);

  const auto fail = [](const std::filesystem::path& path, const std::string& what) {
    throw std::runtime_error("Fashion-MNIST file '" + path.string() + "': " + what +
                             "; reinstall it with: apt-get install --reinstall "
                             "dataset-fashion-mnist");
  };
  if (images.scalar_type() != at::kByte || images.dim() != 3)
    fail(images_path, "expected uint8 images of shape [N, rows, cols], got " +
                          std::string(c10::toString(images.scalar_type())) + " with " +
                          std::to_string(images.dim()) + " dimensions");
  if (labels.scalar_type() != at::kByte || labels.dim() != 1)
    fail(labels_path, "expected uint8 labels of shape [N], got " +
                          std::string(c10::toString(labels.scalar_type())) + " with " +
                          std::to_string(labels.dim()) + " dimensions");
  if (images.size(0) != labels.size(0))
    fail(labels_path, "holds " + std::to_string(labels.size(0)) + " labels but '" +
                          images_path.string() + "' holds " + std::to_string(images.size(0)) +
                          " images (files from different splits, or one is truncated)");
  if (images.size(0) == 0) fail(images_path, "holds no images");
  const std::int64_t max_label = labels.max().item<std::int64_t>();
  if (max_label >= kNumClasses)
    fail(labels_path, "holds label " + std::to_string(max_label) + ", outside 0.." +
                          std::to_string(kNumClasses - 1));

  const std::int64_t n = images.size(0);
  at::Tensor x = images.reshape({n, images.size(1) * images.size(2)}).to(at::kFloat).div_(255.0);
  at::Tensor y = labels.to(at::kLong);
  return TensorDataset{{"x", std::move(x)}, {"y", std::move(y)}};
}

}  // namespace hookline::data
