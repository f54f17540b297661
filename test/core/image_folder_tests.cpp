// Tests of the image side of hookline::data: PNG/JPEG files, ImageFolder (torchvision's layout
// and order, a corrupt file named in the error) and the uint8 image transforms. Linked into the
// test_core runner.
#include <boost/test/unit_test.hpp>

#include "child_process.hpp"

#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/image_folder.hpp>
#include <hookline/core/data/transforms.hpp>

#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace hookline_test_image_folder_tests {

using namespace hookline;
namespace fs = std::filesystem;

namespace {

at::Tensor image(std::int64_t c, std::int64_t h, std::int64_t w, std::uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(0, 256, {c, h, w}, g, at::kByte);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(image_folder)

BOOST_AUTO_TEST_CASE(png_round_trips_and_jpeg_decodes_close) {
  test_support::TempDir dir("hookline_images_");
  for (std::int64_t c : {1, 3}) {
    const auto original = image(c, 7, 5, 1);
    data::write_png(dir.path / "a.png", original);
    BOOST_TEST(at::equal(data::read_image(dir.path / "a.png"), original));
    // A smooth image survives JPEG almost unchanged.
    const auto smooth =
        at::arange(0, 64, at::kFloat).mul(3).view({1, 8, 8}).expand({c, 8, 8}).to(at::kByte);
    data::write_jpeg(dir.path / "a.jpg", smooth, 100);
    const auto decoded = data::read_image(dir.path / "a.jpg");
    BOOST_TEST(decoded.sizes() == smooth.sizes());
    BOOST_TEST((decoded.to(at::kInt) - smooth.to(at::kInt)).abs().max().item<int>() <= 8);
  }
  // Modes: grey to RGB and back.
  data::write_png(dir.path / "g.png", image(1, 4, 4, 2));
  BOOST_TEST(data::read_image(dir.path / "g.png", data::ImageMode::kRgb).size(0) == 3);
  data::write_png(dir.path / "c.png", image(3, 4, 4, 2));
  BOOST_TEST(data::read_image(dir.path / "c.png", data::ImageMode::kGray).size(0) == 1);
}

BOOST_AUTO_TEST_CASE(classes_sorted_and_samples_ordered_as_torchvision) {
  test_support::TempDir dir("hookline_images_");
  for (const char* cls : {"shirt", "bag", "coat"}) fs::create_directories(dir.path / cls / "sub");
  data::write_png(dir.path / "shirt" / "b.png", image(3, 4, 4, 1));
  data::write_png(dir.path / "shirt" / "a.PNG", image(3, 4, 4, 2));
  data::write_jpeg(dir.path / "bag" / "z.jpg", image(3, 4, 4, 3));
  data::write_png(dir.path / "bag" / "sub" / "y.png", image(3, 4, 4, 4));
  data::write_png(dir.path / "coat" / "x.png", image(3, 4, 4, 5));
  std::ofstream(dir.path / "coat" / "notes.txt") << "not an image";
  data::ImageFolder folder(dir.path);
  BOOST_TEST((folder.classes() == std::vector<std::string>{"bag", "coat", "shirt"}));
  BOOST_REQUIRE(folder.size() == 5);
  BOOST_TEST(folder.file(0).filename() == "z.jpg");  // bag/ before bag/sub/
  BOOST_TEST(folder.file(1).filename() == "y.png");
  BOOST_TEST(folder.file(2).filename() == "x.png");
  BOOST_TEST(folder.file(3).filename() == "a.PNG");
  BOOST_TEST(folder.file(4).filename() == "b.png");
  data::SampleGenerator rng(0);
  const Batch sample = folder.get(3, rng);
  BOOST_TEST(at::equal(sample["x"], image(3, 4, 4, 2)));
  BOOST_TEST(sample["y"].item<std::int64_t>() == 2);
  BOOST_CHECK_THROW(data::ImageFolder(dir.path / "missing"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_corrupt_file_is_named_in_the_error) {
  test_support::TempDir dir("hookline_images_");
  fs::create_directories(dir.path / "a");
  for (int i = 0; i < 8; ++i)
    data::write_png(dir.path / "a" / ("img" + std::to_string(i) + ".png"), image(1, 6, 6, i));
  {  // a truncated PNG and a file that is no image at all
    auto bytes = std::ifstream(dir.path / "a" / "img5.png", std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(bytes)), std::istreambuf_iterator<char>());
    std::ofstream(dir.path / "a" / "img5.png", std::ios::binary | std::ios::trunc)
        << content.substr(0, content.size() / 2);
  }
  std::ofstream(dir.path / "a" / "img6.jpg") << "garbage";
  auto folder = std::make_shared<data::ImageFolder>(dir.path);
  for (int workers : {0, 2}) {
    data::DataLoader loader(folder, data::DataLoaderOptions().batch_size(2).num_workers(workers));
    std::string what;
    std::int64_t index = -2;
    try {
      for (auto it = loader.begin(); it != loader.end(); ++it) {
      }
    } catch (const data::DataLoaderError& e) {
      what = e.what();
      index = e.sample_index();
    }
    BOOST_TEST(index == 5);
    BOOST_TEST(contains(what, "img5.png"), what);
  }
  data::SampleGenerator rng(0);
  try {
    folder->get(6, rng);
    BOOST_TEST(false);
  } catch (const std::runtime_error& e) {
    BOOST_TEST(contains(e.what(), "img6.jpg"), e.what());
  }
}

BOOST_AUTO_TEST_CASE(transforms_crop_flip_normalize_compose) {
  const auto img = image(3, 6, 5, 7);
  data::SampleGenerator rng(1);
  // No padding and the full size: the image itself.
  BOOST_TEST(at::equal(data::random_crop(5, 0)(img.narrow(1, 0, 5), rng), img.narrow(1, 0, 5)));
  // With padding: every crop is a window of the zero-padded image.
  const auto padded = at::constant_pad_nd(img, {2, 2, 2, 2}, 0);
  for (int i = 0; i < 20; ++i) {
    data::SampleGenerator a(3, 0, i), b(3, 0, i);
    const auto out = data::random_crop(4, 2)(img, a);
    const auto top = b.integer(0, 6), left = b.integer(0, 5);
    BOOST_TEST(at::equal(out, padded.narrow(1, top, 4).narrow(2, left, 4)));
  }
  // Flip with p = 1 mirrors, p = 0 keeps; floats too.
  BOOST_TEST(at::equal(data::random_horizontal_flip(1.0)(img, rng), img.flip({2})));
  BOOST_TEST(at::equal(data::random_horizontal_flip(0.0)(img, rng), img));
  const auto f = img.to(at::kFloat);
  BOOST_TEST(at::equal(data::random_horizontal_flip(1.0)(f, rng), f.flip({2})));
  // to_float and normalize match the tensor arithmetic.
  const auto as_float = data::to_float()(img, rng);
  BOOST_TEST(at::allclose(as_float, f / 255.0));
  const auto norm = data::normalize({0.5, 0.4, 0.3}, {0.2, 0.25, 0.3})(as_float, rng);
  const auto mean = at::tensor({0.5, 0.4, 0.3}, at::kFloat).view({3, 1, 1});
  const auto stdv = at::tensor({0.2, 0.25, 0.3}, at::kFloat).view({3, 1, 1});
  BOOST_TEST(at::allclose(norm, (f / 255.0 - mean) / stdv, 1e-5, 1e-5));
  BOOST_TEST(
      at::allclose(data::normalize({0.5}, {0.5})(img, rng), (f / 255.0 - 0.5) / 0.5, 1e-5, 1e-5));
  const auto pipeline =
      data::compose({data::random_crop(6, 1), data::random_horizontal_flip(), data::to_float()});
  data::SampleGenerator x(9, 1, 2), y(9, 1, 2);
  BOOST_TEST(at::equal(pipeline(img, x), pipeline(img, y)));
  BOOST_TEST(pipeline(img, x).scalar_type() == at::kFloat);
  BOOST_CHECK_THROW(data::to_float()(img[0], rng), std::invalid_argument);
  BOOST_CHECK_THROW(data::random_crop(20, 2)(img, rng), std::invalid_argument);
}

// docs/data.md's and README's snippet (batches of 4 here), on a small folder of grey images.
BOOST_AUTO_TEST_CASE(docs_data_md_snippet_loads_an_augmented_image_folder_with_workers) {
  test_support::TempDir dir("hookline_images_");
  const fs::path root = dir.path / "fashion" / "train";
  for (int c = 0; c < 3; ++c) {
    fs::create_directories(root / ("class" + std::to_string(c)));
    for (int i = 0; i < 5; ++i)
      data::write_png(root / ("class" + std::to_string(c)) / (std::to_string(i) + ".png"),
                      image(1, 28, 28, static_cast<std::uint64_t>(c * 10 + i)));
  }
  auto images = std::make_shared<data::ImageFolder>(
      root.string(),
      data::compose({data::random_crop(28, 4), data::random_horizontal_flip(),
                     data::normalize({0.286}, {0.353})}),
      data::ImageMode::kGray);
  auto loader = std::make_shared<data::DataLoader>(
      images, data::DataLoaderOptions().batch_size(4).shuffle(true).seed(42).num_workers(2));
  std::int64_t seen = 0;
  for (auto it = loader->begin(); it != loader->end(); ++it) {
    BOOST_TEST((*it)["x"].sizes()[1] == 1);
    BOOST_TEST((*it)["x"].scalar_type() == at::kFloat);
    BOOST_TEST((*it)["y"].max().item<std::int64_t>() <= 2);
    seen += it->batch_size();
  }
  BOOST_TEST(seen == 15);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_image_folder_tests
