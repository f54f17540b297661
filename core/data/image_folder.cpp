#include <hookline/core/data/image_folder.hpp>

#include <ATen/ops/empty.h>
#include <ATen/ops/scalar_tensor.h>

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace hookline::data {

namespace fs = std::filesystem;

namespace {

std::vector<unsigned char> read_image_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open image file '" + path.string() + "'");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("cannot read image file '" + path.string() + "'");
  return bytes;
}

[[noreturn]] void image_error(const fs::path& path, const std::string& why) {
  throw std::runtime_error("cannot decode image file '" + path.string() + "': " + why);
}

// Interleaved [H, W, C] pixels to a [C, H, W] tensor.
at::Tensor planar(const unsigned char* hwc, std::int64_t h, std::int64_t w, std::int64_t c) {
  at::Tensor out = at::empty({c, h, w}, at::kByte);
  std::uint8_t* dst = out.data_ptr<std::uint8_t>();
  if (c == 1) {
    std::copy(hwc, hwc + h * w, dst);
    return out;
  }
  const std::int64_t plane = h * w;
  for (std::int64_t i = 0; i < plane; ++i)
    for (std::int64_t k = 0; k < c; ++k) dst[k * plane + i] = hwc[i * c + k];
  return out;
}

at::Tensor decode_png(const fs::path& path, const std::vector<unsigned char>& bytes,
                      ImageMode mode) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
    image_error(path, std::string("libpng: ") + image.message);
  const bool gray = (image.format & PNG_FORMAT_FLAG_COLOR) == 0;
  const bool one = mode == ImageMode::kGray || (mode == ImageMode::kAsStored && gray);
  image.format = one ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const std::int64_t c = one ? 1 : 3;
  std::vector<unsigned char> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    image_error(path, "libpng: " + why);
  }
  return planar(pixels.data(), image.height, image.width, c);
}

struct TjDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};

at::Tensor decode_jpeg(const fs::path& path, const std::vector<unsigned char>& bytes,
                       ImageMode mode) {
  thread_local std::unique_ptr<void, TjDeleter> handle(tjInitDecompress());
  if (!handle) image_error(path, "libjpeg-turbo could not start");
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle.get(), bytes.data(), static_cast<unsigned long>(bytes.size()),
                          &width, &height, &subsampling, &colorspace) != 0)
    image_error(path, std::string("libjpeg-turbo: ") + tjGetErrorStr2(handle.get()));
  const bool gray = colorspace == TJCS_GRAY;
  const bool one = mode == ImageMode::kGray || (mode == ImageMode::kAsStored && gray);
  const std::int64_t c = one ? 1 : 3;
  std::vector<unsigned char> pixels(static_cast<std::size_t>(width) * height * c);
  if (tjDecompress2(handle.get(), bytes.data(), static_cast<unsigned long>(bytes.size()),
                    pixels.data(), width, 0, height, one ? TJPF_GRAY : TJPF_RGB, 0) != 0)
    image_error(path, std::string("libjpeg-turbo: ") + tjGetErrorStr2(handle.get()));
  return planar(pixels.data(), height, width, c);
}

// The [H, W, C] bytes of a uint8 [C, H, W] image with C = 1 or 3.
std::vector<unsigned char> interleaved(const at::Tensor& image, const char* who) {
  if (!image.defined() || image.dim() != 3 || image.scalar_type() != at::kByte ||
      (image.size(0) != 1 && image.size(0) != 3))
    throw std::invalid_argument(std::string(who) +
                                ": expects a uint8 [C, H, W] image with C = 1 "
                                "or 3");
  const at::Tensor in = image.contiguous().cpu();
  const std::int64_t c = in.size(0), plane = in.size(1) * in.size(2);
  const std::uint8_t* src = in.data_ptr<std::uint8_t>();
  std::vector<unsigned char> out(static_cast<std::size_t>(c * plane));
  for (std::int64_t i = 0; i < plane; ++i)
    for (std::int64_t k = 0; k < c; ++k) out[i * c + k] = src[k * plane + i];
  return out;
}

bool is_image(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

}  // namespace

at::Tensor read_image(const fs::path& path, ImageMode mode) {
  const std::vector<unsigned char> bytes = read_image_bytes(path);
  static constexpr unsigned char kPng[] = {0x89, 'P', 'N', 'G'};
  if (bytes.size() >= 4 && std::equal(kPng, kPng + 4, bytes.begin()))
    return decode_png(path, bytes, mode);
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
    return decode_jpeg(path, bytes, mode);
  image_error(path, bytes.empty() ? "the file is empty" : "neither a PNG nor a JPEG file");
}

void write_png(const fs::path& path, const at::Tensor& image) {
  const std::vector<unsigned char> pixels = interleaved(image, "write_png");
  png_image out{};
  out.version = PNG_IMAGE_VERSION;
  out.width = static_cast<png_uint_32>(image.size(2));
  out.height = static_cast<png_uint_32>(image.size(1));
  out.format = image.size(0) == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&out, path.c_str(), 0, pixels.data(), 0, nullptr))
    throw std::runtime_error("cannot write PNG file '" + path.string() + "': " + out.message);
}

void write_jpeg(const fs::path& path, const at::Tensor& image, int quality) {
  const std::vector<unsigned char> pixels = interleaved(image, "write_jpeg");
  std::unique_ptr<void, TjDeleter> handle(tjInitCompress());
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const bool gray = image.size(0) == 1;
  if (!handle ||
      tjCompress2(handle.get(), pixels.data(), static_cast<int>(image.size(2)), 0,
                  static_cast<int>(image.size(1)), gray ? TJPF_GRAY : TJPF_RGB, &jpeg, &size,
                  gray ? TJSAMP_GRAY : TJSAMP_444, std::clamp(quality, 1, 100), 0) != 0)
    throw std::runtime_error("cannot encode JPEG file '" + path.string() + "'");
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(jpeg, tjFree);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(jpeg), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error("cannot write JPEG file '" + path.string() + "'");
}

ImageFolder::ImageFolder(const fs::path& root, Transform transform, ImageMode mode)
    : transform_(std::move(transform)), mode_(mode) {
  if (!fs::is_directory(root))
    throw std::invalid_argument("ImageFolder: '" + root.string() +
                                "' is not a directory; expected root/<class>/<image files>");
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
  std::sort(classes_.begin(), classes_.end());
  if (classes_.empty())
    throw std::invalid_argument("ImageFolder: '" + root.string() +
                                "' has no class folder; expected root/<class>/<image files>");
  for (std::size_t label = 0; label < classes_.size(); ++label) {
    std::vector<std::pair<std::string, std::string>> found;  // (directory, file name)
    const auto options = fs::directory_options::follow_directory_symlink;
    for (const auto& entry : fs::recursive_directory_iterator(root / classes_[label], options))
      if (entry.is_regular_file() && is_image(entry.path()))
        found.emplace_back(entry.path().parent_path().string(), entry.path().filename().string());
    std::sort(found.begin(), found.end());
    for (auto& [dir, name] : found) {
      files_.push_back(fs::path(dir) / name);
      labels_.push_back(static_cast<std::int64_t>(label));
    }
  }
  if (files_.empty())
    throw std::invalid_argument("ImageFolder: no .png, .jpg or .jpeg file under '" + root.string() +
                                "'");
}

Batch ImageFolder::get(std::int64_t index, SampleGenerator& rng) const {
  const auto i = static_cast<std::size_t>(index);
  at::Tensor image = read_image(files_.at(i), mode_);
  if (transform_) image = transform_(image, rng);
  return Batch{{"x", std::move(image)}, {"y", at::scalar_tensor(labels_[i], at::kLong)}};
}

}  // namespace hookline::data
