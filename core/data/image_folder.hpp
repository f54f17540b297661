// hookline: a dataset of image files laid out one folder per class, and image file I/O.
//
// Contract:
// - `ImageFolder(root)` finds `root/<class>/**/<file>` for the files whose extension is .png,
//   .jpg or .jpeg (any case), as torchvision's ImageFolder does: the classes are the
//   sub-directories of root sorted by name, class i has label i, and the samples are ordered by
//   class, then by directory, then by file name. A root that does not exist, has no class folder,
//   or no image throws std::invalid_argument naming it.
// - `get(i)` decodes file i (PNG with libpng, JPEG with libjpeg-turbo; the format is read from
//   the file's first bytes, not its name) to a uint8 [C, H, W] image, applies the transform, and
//   returns {"x": image, "y": int64 label (0-D)}. C is 1 or 3 as the options say (alpha dropped).
//   A file that cannot be read or decoded throws std::runtime_error naming the file. get() is
//   safe to call from several threads at once (the DataLoader's workers).
// - `read_image` / `write_png` / `write_jpeg` decode and encode single files the same way.
#pragma once

#include <hookline/core/data/sample.hpp>
#include <hookline/core/data/transforms.hpp>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hookline::data {

/// Channels of decoded images.
enum class ImageMode {
  kAsStored,  ///< 1 for grey images, 3 otherwise.
  kGray,      ///< 1 channel.
  kRgb,       ///< 3 channels (torchvision's default loader).
};

/// Decodes a PNG or JPEG file to a uint8 [C, H, W] tensor; throws std::runtime_error naming the
/// file when it cannot be read or decoded.
at::Tensor read_image(const std::filesystem::path& path, ImageMode mode = ImageMode::kAsStored);
/// Writes a uint8 [C, H, W] image (C = 1 or 3) as PNG; throws std::runtime_error on failure.
void write_png(const std::filesystem::path& path, const at::Tensor& image);
/// Writes a uint8 [C, H, W] image (C = 1 or 3) as JPEG of the given quality (1..100).
void write_jpeg(const std::filesystem::path& path, const at::Tensor& image, int quality = 95);

/// Images in `root/<class>/...`; see the contract at the top of this file.
class ImageFolder final : public MapDataset {
 public:
  explicit ImageFolder(const std::filesystem::path& root, Transform transform = nullptr,
                       ImageMode mode = ImageMode::kRgb);

  std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }
  Batch get(std::int64_t index, SampleGenerator& rng) const override;

  /// The class names, sorted; label i is classes()[i].
  const std::vector<std::string>& classes() const { return classes_; }
  /// File and label of sample i.
  const std::filesystem::path& file(std::int64_t i) const {
    return files_.at(static_cast<std::size_t>(i));
  }
  std::int64_t label(std::int64_t i) const { return labels_.at(static_cast<std::size_t>(i)); }

 private:
  std::vector<std::string> classes_;
  std::vector<std::filesystem::path> files_;
  std::vector<std::int64_t> labels_;
  Transform transform_;
  ImageMode mode_;
};

}  // namespace hookline::data
