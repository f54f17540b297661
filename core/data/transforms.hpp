// hookline: image transforms for MapDatasets, on [C, H, W] images (torchvision's v1 semantics).
//
// Contract: a Transform maps one image to another, drawing any randomness from the sample's
// SampleGenerator (so it is reproducible and independent of the worker that runs it). The
// geometric ones (random_crop, random_horizontal_flip) take uint8 or float32 images and keep the
// dtype; to_float turns uint8 into float32 in [0, 1]; normalize takes float32 (or uint8, which it
// first scales to [0, 1]) and returns (x - mean[c]) / std[c]. compose applies them in order. Each
// is a plain loop over the pixels (no operator dispatch per call): a few microseconds for a 28x28
// image. A tensor that is not 3-D, or of another dtype, throws std::invalid_argument.
#pragma once

#include <hookline/core/data/sample.hpp>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace hookline::data {

using Transform = std::function<at::Tensor(const at::Tensor& image, SampleGenerator& rng)>;

/// Pads every side by `padding` (with zeros), then crops a random size x size window
/// (torchvision's RandomCrop(size, padding)). Throws std::invalid_argument if the padded image is
/// smaller than the window.
Transform random_crop(std::int64_t size, std::int64_t padding = 0);
/// Mirrors the image left-right with probability p (torchvision's RandomHorizontalFlip).
Transform random_horizontal_flip(double p = 0.5);
/// uint8 [0, 255] to float32 [0, 1] (the scaling of torchvision's ToTensor).
Transform to_float();
/// (x - mean[c]) / std[c] per channel; one value applies to every channel.
Transform normalize(std::vector<double> mean, std::vector<double> std);
/// The transforms in order.
Transform compose(std::vector<Transform> transforms);

}  // namespace hookline::data
