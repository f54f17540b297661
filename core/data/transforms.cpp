#include <hookline/core/data/transforms.hpp>

#include <ATen/EmptyTensor.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

namespace hookline::data {

namespace {

at::Tensor checked_image(const at::Tensor& image, const char* who, bool float_only = false) {
  if (!image.defined() || image.dim() != 3)
    throw std::invalid_argument(std::string(who) + ": expects a [C, H, W] image (got " +
                                (image.defined() ? std::to_string(image.dim()) + "-D"
                                                 : std::string("an undefined tensor")) +
                                ")");
  const bool ok =
      image.scalar_type() == at::kFloat || (!float_only && image.scalar_type() == at::kByte);
  if (!ok || !image.device().is_cpu())
    throw std::invalid_argument(std::string(who) + ": expects a CPU " +
                                (float_only ? "float32" : "uint8 or float32") + " image (got " +
                                std::string(c10::toString(image.scalar_type())) + ")");
  return image.contiguous();
}

// A new CPU image: at::detail::empty_cpu skips the operator dispatcher that at::empty goes
// through (a sizeable part of a transform's cost on a 28x28 image).
at::Tensor new_image(c10::IntArrayRef sizes, at::ScalarType dtype) {
  return at::Tensor(at::detail::empty_cpu(sizes, dtype));
}

template <class T>
void crop(const T* in, T* out, std::int64_t channels, std::int64_t h, std::int64_t w,
          std::int64_t size, std::int64_t top, std::int64_t left) {
  // Output pixel (y, x) reads input pixel (y + top, x + left) when inside, zero otherwise.
  const std::int64_t x0 = std::max<std::int64_t>(0, -left);
  const std::int64_t x1 = std::min<std::int64_t>(size, w - left);
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::int64_t y = 0; y < size; ++y) {
      T* row = out + (c * size + y) * size;
      const std::int64_t sy = y + top;
      if (sy < 0 || sy >= h || x1 <= x0) {
        std::fill(row, row + size, T(0));
        continue;
      }
      std::fill(row, row + x0, T(0));
      std::memcpy(row + x0, in + (c * h + sy) * w + x0 + left,
                  static_cast<std::size_t>(x1 - x0) * sizeof(T));
      std::fill(row + x1, row + size, T(0));
    }
}

template <class T>
void mirror(const T* in, T* out, std::int64_t rows, std::int64_t w) {
  for (std::int64_t r = 0; r < rows; ++r)
    std::reverse_copy(in + r * w, in + (r + 1) * w, out + r * w);
}

}  // namespace

Transform random_crop(std::int64_t size, std::int64_t padding) {
  if (size <= 0 || padding < 0)
    throw std::invalid_argument("random_crop: size must be > 0 and padding >= 0 (got " +
                                std::to_string(size) + ", " + std::to_string(padding) + ")");
  return [size, padding](const at::Tensor& image, SampleGenerator& rng) {
    const at::Tensor in = checked_image(image, "random_crop");
    const std::int64_t c = in.size(0), h = in.size(1), w = in.size(2);
    if (h + 2 * padding < size || w + 2 * padding < size)
      throw std::invalid_argument("random_crop: the padded image (" +
                                  std::to_string(h + 2 * padding) + "x" +
                                  std::to_string(w + 2 * padding) + ") is smaller than the " +
                                  std::to_string(size) + "x" + std::to_string(size) + " window");
    const std::int64_t top = rng.integer(0, h + 2 * padding - size) - padding;
    const std::int64_t left = rng.integer(0, w + 2 * padding - size) - padding;
    at::Tensor out = new_image({c, size, size}, in.scalar_type());
    if (in.scalar_type() == at::kByte)
      crop(in.data_ptr<std::uint8_t>(), out.data_ptr<std::uint8_t>(), c, h, w, size, top, left);
    else
      crop(in.data_ptr<float>(), out.data_ptr<float>(), c, h, w, size, top, left);
    return out;
  };
}

Transform random_horizontal_flip(double p) {
  return [p](const at::Tensor& image, SampleGenerator& rng) {
    const at::Tensor in = checked_image(image, "random_horizontal_flip");
    if (!rng.bernoulli(p)) return in;
    at::Tensor out = new_image(in.sizes(), in.scalar_type());
    const std::int64_t rows = in.size(0) * in.size(1);
    if (in.scalar_type() == at::kByte)
      mirror(in.data_ptr<std::uint8_t>(), out.data_ptr<std::uint8_t>(), rows, in.size(2));
    else
      mirror(in.data_ptr<float>(), out.data_ptr<float>(), rows, in.size(2));
    return out;
  };
}

Transform to_float() {
  return [](const at::Tensor& image, SampleGenerator&) {
    const at::Tensor in = checked_image(image, "to_float");
    if (in.scalar_type() == at::kFloat) return in;
    at::Tensor out = new_image(in.sizes(), at::kFloat);
    const std::uint8_t* src = in.data_ptr<std::uint8_t>();
    float* dst = out.data_ptr<float>();
    for (std::int64_t i = 0, n = in.numel(); i < n; ++i)
      dst[i] = static_cast<float>(src[i]) * (1.0f / 255.0f);
    return out;
  };
}

Transform normalize(std::vector<double> mean, std::vector<double> std) {
  if (mean.empty() || mean.size() != std.size())
    throw std::invalid_argument("normalize: mean and std need the same, non-zero number of values");
  for (double s : std)
    if (!(s > 0)) throw std::invalid_argument("normalize: every std must be > 0");
  return [mean = std::move(mean), std = std::move(std)](const at::Tensor& image, SampleGenerator&) {
    const at::Tensor in = checked_image(image, "normalize");
    const std::int64_t c = in.size(0), plane = in.size(1) * in.size(2);
    if (mean.size() != 1 && static_cast<std::int64_t>(mean.size()) != c)
      throw std::invalid_argument("normalize: " + std::to_string(mean.size()) +
                                  " means for an image of " + std::to_string(c) + " channels");
    at::Tensor out = new_image(in.sizes(), at::kFloat);
    float* dst = out.data_ptr<float>();
    const bool bytes = in.scalar_type() == at::kByte;
    for (std::int64_t k = 0; k < c; ++k) {
      const std::size_t m = mean.size() == 1 ? 0 : static_cast<std::size_t>(k);
      const float scale = static_cast<float>(1.0 / std[m]) * (bytes ? 1.0f / 255.0f : 1.0f);
      const float shift = static_cast<float>(-mean[m] / std[m]);
      float* row = dst + k * plane;
      if (bytes) {
        const std::uint8_t* src = in.data_ptr<std::uint8_t>() + k * plane;
        for (std::int64_t i = 0; i < plane; ++i)
          row[i] = static_cast<float>(src[i]) * scale + shift;
      } else {
        const float* src = in.data_ptr<float>() + k * plane;
        for (std::int64_t i = 0; i < plane; ++i) row[i] = src[i] * scale + shift;
      }
    }
    return out;
  };
}

Transform compose(std::vector<Transform> transforms) {
  return [transforms = std::move(transforms)](const at::Tensor& image, SampleGenerator& rng) {
    at::Tensor out = image;
    for (const auto& t : transforms) out = t(out, rng);
    return out;
  };
}

}  // namespace hookline::data
