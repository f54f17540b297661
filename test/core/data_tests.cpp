// Tests of hookline::data: datasets, the resumable DataLoader, the IDX reader and Fashion-MNIST.
// Linked into the test_core runner (which defines BOOST_TEST_MODULE).
#include <boost/test/unit_test.hpp>

#include "temp_dir.hpp"

#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/dataset.hpp>
#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/data/idx.hpp>
#include <hookline/core/data/torch_dataset_adapter.hpp>

#include <torch/torch.h>
#include <zlib.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace hookline_test_data_tests {

namespace fs = std::filesystem;
using hookline::Batch;
using namespace hookline::data;

namespace {

// N samples: x[i] = {i, i + 0.5}, y[i] = 10 * i, so every row says which sample it is.
std::shared_ptr<TensorDataset> numbered(std::int64_t n) {
  auto idx = torch::arange(n, torch::kLong);
  auto x = torch::stack({idx.to(torch::kFloat), idx.to(torch::kFloat) + 0.5}, 1);
  return std::make_shared<TensorDataset>(
      std::initializer_list<Batch::Field>{{"x", x}, {"y", idx * 10}});
}

// Sample ids of a batch from `numbered`.
std::vector<std::int64_t> ids(const Batch& batch) {
  auto y = batch["y"].div(10, "floor").contiguous();
  return {y.data_ptr<std::int64_t>(), y.data_ptr<std::int64_t>() + y.numel()};
}

// Every batch of one pass, as sample ids.
std::vector<std::vector<std::int64_t>> pass(DataLoader& loader) {
  std::vector<std::vector<std::int64_t>> out;
  for (const Batch& batch : loader) out.push_back(ids(batch));
  return out;
}

std::vector<std::int64_t> flatten(const std::vector<std::vector<std::int64_t>>& batches) {
  std::vector<std::int64_t> out;
  for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
  return out;
}

bool is_permutation_of_range(std::vector<std::int64_t> v, std::int64_t n) {
  std::sort(v.begin(), v.end());
  if (static_cast<std::int64_t>(v.size()) != n) return false;
  for (std::int64_t i = 0; i < n; ++i)
    if (v[i] != i) return false;
  return true;
}

// Checks that `f` throws E whose message contains `needle`.
template <typename E, typename F>
void check_throws(F&& f, const std::string& needle) {
  try {
    f();
  } catch (const E& e) {
    BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos,
               "message '" << e.what() << "' should mention '" << needle << "'");
    return;
  }
  BOOST_ERROR("expected an exception mentioning '" << needle << "'");
}

using test_support::TempDir;

// IDX bytes: magic, big-endian dims, then `body` (already big-endian).
std::string idx_bytes(unsigned char type, const std::vector<std::uint32_t>& dims,
                      const std::string& body) {
  std::string out{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (auto d : dims)
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((d >> shift) & 0xFF));
  return out + body;
}

void write_plain(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  BOOST_REQUIRE(f != nullptr);
  BOOST_REQUIRE_EQUAL(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
                      static_cast<int>(bytes.size()));
  gzclose(f);
}

// A torch::data dataset equivalent to `numbered(n)`.
struct NumberedTorchDataset : torch::data::datasets::Dataset<NumberedTorchDataset> {
  std::int64_t n;
  explicit NumberedTorchDataset(std::int64_t count) : n(count) {}
  torch::data::Example<> get(size_t index) override {
    const auto i = static_cast<double>(index);
    return {torch::tensor({i, i + 0.5}, torch::kFloat),
            torch::tensor(static_cast<std::int64_t>(index) * 10, torch::kLong)};
  }
  torch::optional<size_t> size() const override { return static_cast<size_t>(n); }
};

const fs::path kRealFashionMnist{kFashionMnistDir};

// Walks one pass of `ours` and `reference` side by side, checking that their batches are equal and
// that both end together; returns the number of batches.
int compare_pass(DataLoader& ours, DataLoader& reference) {
  auto a = ours.begin();
  auto b = reference.begin();
  int n = 0;
  for (; a != ours.end() && b != reference.end(); ++a, ++b, ++n) {
    BOOST_TEST(torch::equal((*a)["x"], (*b)["x"]));
    BOOST_TEST(torch::equal((*a)["y"], (*b)["y"]));
  }
  BOOST_TEST((a == ours.end() && b == reference.end()));
  return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(data)

// ---- datasets ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(tensor_dataset_gathers_rows_in_index_order) {
  auto dataset = numbered(10);
  BOOST_TEST(dataset->size() == 10);
  Batch batch = dataset->get_batch(std::vector<std::int64_t>{3, 0, 7, 3});
  BOOST_TEST(batch.names() == (std::vector<std::string>{"x", "y"}));
  BOOST_TEST(batch.batch_size() == 4);
  BOOST_TEST(torch::equal(batch["x"],
                          torch::tensor({{3.0f, 3.5f}, {0.0f, 0.5f}, {7.0f, 7.5f}, {3.0f, 3.5f}})));
  BOOST_TEST(torch::equal(batch["y"], torch::tensor({30, 0, 70, 30}, torch::kLong)));
  // Same through a tensor of another integer type.
  Batch same = dataset->get_batch(torch::tensor({3, 0, 7, 3}, torch::kInt));
  BOOST_TEST(torch::equal(same["x"], batch["x"]));
  // The batch is a copy: writing into it leaves the dataset alone.
  batch["x"].fill_(-1);
  BOOST_TEST(dataset->tensors()["x"][3][0].item<float>() == 3.0f);
}

BOOST_AUTO_TEST_CASE(get_batch_rejects_bad_indices) {
  auto dataset = numbered(5);
  check_throws<std::out_of_range>(
      [&] {
        dataset->get_batch(std::vector<std::int64_t>{0, 5});
      },
      "index 5");
  check_throws<std::out_of_range>([&] { dataset->get_batch(std::vector<std::int64_t>{-1}); },
                                  "index -1");
  check_throws<std::invalid_argument>([&] { dataset->get_batch(torch::zeros({2}, torch::kFloat)); },
                                      "integer");
  check_throws<std::invalid_argument>(
      [&] {
        dataset->get_batch(torch::zeros({2, 2}, torch::kLong));
      },
      "1-D");
}

BOOST_AUTO_TEST_CASE(tensor_dataset_rejects_inconsistent_fields) {
  check_throws<std::invalid_argument>([] { TensorDataset(Batch{}); }, "no fields");
  check_throws<std::invalid_argument>(
      [] {
        TensorDataset({{"x", torch::zeros({4, 2})}, {"y", torch::zeros({3})}});
      },
      "'y'");
  check_throws<std::invalid_argument>([] { TensorDataset({{"x", torch::tensor(1.0)}}); }, "'x'");
}

BOOST_AUTO_TEST_CASE(torch_dataset_adapter_matches_tensor_dataset) {
  auto adapted = adapt(NumberedTorchDataset(11));
  BOOST_TEST(adapted->size() == 11);
  DataLoader ours(adapted, DataLoaderOptions().batch_size(4).shuffle(true).seed(5));
  DataLoader reference(numbered(11), DataLoaderOptions().batch_size(4).shuffle(true).seed(5));
  BOOST_TEST(compare_pass(ours, reference) == 3);
}

// TensorDataset gathers rows, so its loader gathers several batches at once and hands out slices;
// a dataset that does not (the same rows behind a plain gather) must see exactly the same batches,
// across chunk boundaries, epochs, shuffling, drop_last and a resume; and a batch is a copy.
BOOST_AUTO_TEST_CASE(chunked_loading_yields_the_same_batches_as_batch_by_batch) {
  class PlainGather final : public Dataset {
   public:
    explicit PlainGather(std::shared_ptr<TensorDataset> rows) : rows_(std::move(rows)) {}
    std::int64_t size() const override { return rows_->size(); }

   protected:
    hookline::Batch gather(const at::Tensor& indices) const override {
      return rows_->get_batch(indices);
    }

   private:
    std::shared_ptr<TensorDataset> rows_;
  };
  auto rows = numbered(1000);
  BOOST_TEST(rows->gathers_rows());
  auto plain = std::make_shared<PlainGather>(rows);
  BOOST_TEST(!plain->gathers_rows());
  for (bool drop_last : {false, true}) {
    const auto options =
        DataLoaderOptions().batch_size(7).shuffle(true).seed(3).drop_last(drop_last);
    DataLoader chunked(rows, options), reference(plain, options);
    BOOST_TEST(compare_pass(chunked, reference) == (drop_last ? 142 : 143));
    BOOST_TEST(compare_pass(chunked, reference) ==
               (drop_last ? 142 : 143));  // next epoch, new permutation
    DataLoaderState mid{1, 70, 3};
    chunked.load_state(mid);
    reference.load_state(mid);
    BOOST_TEST(compare_pass(chunked, reference) == (drop_last ? 72 : 73));
  }
  // Writing into a batch leaves the dataset alone.
  DataLoader loader(rows, DataLoaderOptions().batch_size(10));
  const at::Tensor before = rows->tensors()["x"].clone();
  for (const hookline::Batch& batch : loader) batch["x"].add_(1);
  BOOST_TEST(torch::equal(rows->tensors()["x"], before));
}

// A loader refills its chunk's buffers for the next chunk only when no batch of the old chunk is
// alive: batches a caller keeps (taken or copied) keep their values through later chunks, passes
// and epochs, sequential or shuffled; and a run of indices gathers what index_select would.
BOOST_AUTO_TEST_CASE(kept_batches_survive_chunk_refills) {
  auto rows = numbered(1000);
  for (bool shuffle : {false, true}) {
    DataLoader loader(rows, DataLoaderOptions().batch_size(16).shuffle(shuffle).seed(5));
    std::vector<hookline::Batch> kept, expected;
    for (int epoch = 0; epoch < 2; ++epoch) {
      int i = 0;
      for (auto it = loader.begin(); it != loader.end(); ++it, ++i) {
        if (i % 9 != 0) continue;  // keep some batches of every chunk, drop the others
        hookline::Batch batch = i % 2 == 0 ? it.take() : *it;
        expected.push_back(hookline::Batch{{"x", batch["x"].clone()}, {"y", batch["y"].clone()}});
        kept.push_back(std::move(batch));
      }
    }
    BOOST_REQUIRE(kept.size() == expected.size());
    for (std::size_t k = 0; k < kept.size(); ++k) {
      BOOST_TEST(torch::equal(kept[k]["x"], expected[k]["x"]));
      BOOST_TEST(torch::equal(kept[k]["y"], expected[k]["y"]));
    }
    // Every row of a kept batch is the dataset's row its label names.
    for (const hookline::Batch& batch : kept)
      BOOST_TEST(torch::equal(batch["x"],
                              rows->tensors()["x"].index_select(0, batch["y"].div(10, "floor"))));
  }
  const auto run = at::arange(100, 164, at::kLong);
  const auto with_gaps = at::arange(100, 228, 2, at::kLong);
  for (const at::Tensor& idx : {run, with_gaps}) {
    hookline::Batch into;
    rows->get_batch_into(idx, into);
    rows->get_batch_into(idx, into);  // refilled in place the second time
    BOOST_TEST(torch::equal(into["x"], rows->tensors()["x"].index_select(0, idx)));
    BOOST_TEST(torch::equal(rows->get_batch(idx)["y"], idx * 10));
  }
}

// ---- DataLoader: order and batch sizes ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(unshuffled_loader_keeps_order_and_yields_partial_last_batch) {
  DataLoader loader(numbered(10), DataLoaderOptions().batch_size(4));
  BOOST_TEST(loader.size() == 3);
  auto batches = pass(loader);
  BOOST_TEST_REQUIRE(batches.size() == 3u);
  BOOST_TEST(batches[0].size() == 4u);
  BOOST_TEST(batches[1].size() == 4u);
  BOOST_TEST(batches[2].size() == 2u);
  std::vector<std::int64_t> expected(10);
  std::iota(expected.begin(), expected.end(), 0);
  BOOST_TEST(flatten(batches) == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(drop_last_drops_only_a_partial_batch) {
  DataLoader dropping(numbered(10), DataLoaderOptions().batch_size(4).drop_last(true));
  BOOST_TEST(dropping.size() == 2);
  auto batches = pass(dropping);
  BOOST_TEST_REQUIRE(batches.size() == 2u);
  for (const auto& b : batches) BOOST_TEST(b.size() == 4u);

  DataLoader exact(numbered(12), DataLoaderOptions().batch_size(4).drop_last(true));
  BOOST_TEST(exact.size() == 3);
  BOOST_TEST(pass(exact).size() == 3u);

  DataLoader shuffled(numbered(10),
                      DataLoaderOptions().batch_size(3).drop_last(true).shuffle(true).seed(1));
  auto sb = pass(shuffled);
  BOOST_TEST(sb.size() == 3u);
  BOOST_TEST(flatten(sb).size() == 9u);
}

BOOST_AUTO_TEST_CASE(shuffle_is_seeded_per_epoch_and_independent_of_global_rng) {
  const auto options = DataLoaderOptions().batch_size(8).shuffle(true).seed(42);
  DataLoader a(numbered(50), options);
  DataLoader b(numbered(50), options);

  torch::manual_seed(1);
  auto a0 = flatten(pass(a));
  torch::manual_seed(999);  // the global RNG must not matter...
  auto b0 = flatten(pass(b));
  BOOST_TEST(a0 == b0, boost::test_tools::per_element());
  BOOST_TEST(is_permutation_of_range(a0, 50));
  std::vector<std::int64_t> identity(50);
  std::iota(identity.begin(), identity.end(), 0);
  BOOST_TEST(a0 != identity);

  // ...and iterating must not consume it.
  torch::manual_seed(7);
  auto r1 = torch::rand({4});
  torch::manual_seed(7);
  pass(a);
  auto r2 = torch::rand({4});
  BOOST_TEST(torch::equal(r1, r2));

  // Epochs differ from each other; each is reproducible through set_epoch.
  DataLoader c(numbered(50), options);
  c.set_epoch(1);
  auto c1 = flatten(pass(c));
  BOOST_TEST(is_permutation_of_range(c1, 50));
  BOOST_TEST(c1 != a0);
  c.set_epoch(0);
  BOOST_TEST(flatten(pass(c)) == a0, boost::test_tools::per_element());

  // Another seed, another order.
  DataLoader d(numbered(50), DataLoaderOptions().batch_size(8).shuffle(true).seed(43));
  BOOST_TEST(flatten(pass(d)) != a0);
}

BOOST_AUTO_TEST_CASE(completed_passes_advance_the_epoch) {
  const auto options = DataLoaderOptions().batch_size(4).shuffle(true).seed(3);
  DataLoader loop(numbered(10), options);
  for (std::int64_t e = 0; e < 3; ++e) {
    BOOST_TEST(loop.epoch() == e);
    auto got = flatten(pass(loop));
    DataLoader fresh(numbered(10), options);
    fresh.set_epoch(e);
    BOOST_TEST(got == flatten(pass(fresh)), boost::test_tools::per_element());
  }
  BOOST_TEST(loop.epoch() == 3);
  BOOST_TEST((loop.state() == DataLoaderState{3, 0, 3}));
}

BOOST_AUTO_TEST_CASE(abandoned_pass_makes_the_next_pass_start_the_next_epoch) {
  const auto options = DataLoaderOptions().batch_size(4).shuffle(true).seed(8);
  DataLoader loader(numbered(10), options);
  for (const Batch& batch : loader) {
    (void)batch;
    break;
  }
  BOOST_TEST((loader.state() == DataLoaderState{0, 1, 8}));
  auto next = pass(loader);
  BOOST_TEST(next.size() == 3u);
  DataLoader fresh(numbered(10), options);
  fresh.set_epoch(1);
  BOOST_TEST(flatten(next) == flatten(pass(fresh)), boost::test_tools::per_element());

  // set_epoch after an abandoned pass restarts that epoch from batch 0.
  for (const Batch& batch : loader) {
    (void)batch;
    break;
  }
  loader.set_epoch(loader.epoch());
  BOOST_TEST(pass(loader).size() == 3u);
}

BOOST_AUTO_TEST_CASE(superseded_iterator_throws) {
  DataLoader loader(numbered(10), DataLoaderOptions().batch_size(2));
  auto first = loader.begin();
  auto second = loader.begin();
  (void)second;
  check_throws<std::logic_error>([&] { ++first; }, "superseded");
}

// ---- DataLoader: resumable position ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(state_restored_mid_epoch_yields_exactly_the_remaining_batches) {
  const auto options = DataLoaderOptions().batch_size(4).shuffle(true).seed(11);
  DataLoader original(numbered(23), options);  // 6 batches, the last of 3
  original.set_epoch(2);
  DataLoaderState saved;
  std::vector<std::vector<std::int64_t>> all;
  std::int64_t index = 0;
  for (const Batch& batch : original) {
    all.push_back(ids(batch));
    if (index++ == 2) saved = original.state();  // checkpoint while processing batch 2
  }
  BOOST_TEST((saved == DataLoaderState{2, 3, 11}));
  BOOST_TEST_REQUIRE(all.size() == 6u);
  const std::vector<std::vector<std::int64_t>> remaining(all.begin() + 3, all.end());

  // A new process: other seed option, a trainer that calls set_epoch(2) after restoring.
  DataLoader resumed(numbered(23), DataLoaderOptions().batch_size(4).shuffle(true).seed(0));
  resumed.load_state(saved);
  BOOST_TEST((resumed.state() == saved));
  resumed.set_epoch(2);  // same epoch: keeps the pending resume
  auto got = pass(resumed);
  BOOST_TEST_REQUIRE(got.size() == remaining.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    BOOST_TEST(got[i] == remaining[i], boost::test_tools::per_element());
  BOOST_TEST(resumed.epoch() == 3);

  // The following epoch matches the original run's following epoch.
  BOOST_TEST(flatten(pass(resumed)) == flatten(pass(original)), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(state_saved_at_the_last_batch_resumes_to_an_empty_pass) {
  DataLoader loader(numbered(8), DataLoaderOptions().batch_size(4));
  loader.load_state({0, 2, 0});
  BOOST_TEST(pass(loader).empty());
  BOOST_TEST(loader.epoch() == 1);
  BOOST_TEST(pass(loader).size() == 2u);
}

BOOST_AUTO_TEST_CASE(bad_options_and_states_throw_naming_the_option) {
  check_throws<std::invalid_argument>(
      [] { DataLoader(numbered(4), DataLoaderOptions().batch_size(0)); }, "batch_size");
  check_throws<std::invalid_argument>(
      [] { DataLoader(numbered(4), DataLoaderOptions().batch_size(-3)); }, "batch_size");
  check_throws<std::invalid_argument>(
      [] { DataLoader(numbered(4), DataLoaderOptions().batch_size(5).drop_last(true)); },
      "drop_last");
  check_throws<std::invalid_argument>([] { DataLoader(nullptr); }, "null");
  auto empty = std::make_shared<TensorDataset>(
      std::initializer_list<Batch::Field>{{"x", torch::zeros({0, 3})}});
  check_throws<std::invalid_argument>([&] { DataLoader{empty}; }, "empty");

  DataLoader loader(numbered(10), DataLoaderOptions().batch_size(4));
  check_throws<std::invalid_argument>([&] { loader.load_state({0, 4, 0}); }, "batches_yielded");
  check_throws<std::invalid_argument>([&] { loader.load_state({-1, 0, 0}); }, "epoch");
  check_throws<std::invalid_argument>([&] { loader.set_epoch(-1); }, "epoch");
  // batch_size larger than the dataset is fine without drop_last: one short batch.
  DataLoader big(numbered(3), DataLoaderOptions().batch_size(8));
  BOOST_TEST(big.size() == 1);
  BOOST_TEST(pass(big).front().size() == 3u);
}

// ---- IDX ---------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(idx_reads_plain_and_gzip_files) {
  TempDir dir;
  // uint8 [2, 2, 3]
  std::string body;
  for (int i = 0; i < 12; ++i) body.push_back(static_cast<char>(i * 20));
  const auto bytes = idx_bytes(0x08, {2, 2, 3}, body);
  write_plain(dir.path / "u8.idx", bytes);
  write_gzip(dir.path / "u8.idx.gz", bytes);
  const auto expected = (torch::arange(12, torch::kLong) * 20).to(torch::kByte).view({2, 2, 3});
  for (const char* name : {"u8.idx", "u8.idx.gz"}) {
    auto t = read_idx(dir.path / name);
    BOOST_TEST(t.scalar_type() == torch::kByte);
    BOOST_TEST(t.sizes().vec() == (std::vector<std::int64_t>{2, 2, 3}),
               boost::test_tools::per_element());
    BOOST_TEST(torch::equal(t, expected), name);
  }

  // Multi-byte types are big-endian on disk: int32 {1, -2, 65536}, float32 {1.5}.
  const std::string ints("\x00\x00\x00\x01\xff\xff\xff\xfe\x00\x01\x00\x00", 12);
  write_gzip(dir.path / "i32.idx.gz", idx_bytes(0x0C, {3}, ints));
  BOOST_TEST(
      torch::equal(read_idx(dir.path / "i32.idx.gz"), torch::tensor({1, -2, 65536}, torch::kInt)));
  write_plain(dir.path / "f32.idx", idx_bytes(0x0D, {1, 1}, std::string("\x3f\xc0\x00\x00", 4)));
  auto f = read_idx(dir.path / "f32.idx");
  BOOST_TEST(f.scalar_type() == torch::kFloat);
  BOOST_TEST(f.item<float>() == 1.5f);
}

BOOST_AUTO_TEST_CASE(idx_rejects_bad_files_naming_them) {
  TempDir dir;
  check_throws<std::runtime_error>([&] { read_idx(dir.path / "absent.idx"); }, "not found");
  write_plain(dir.path / "magic.idx", std::string("\x01\x02\x08\x01\x00\x00\x00\x01\x05", 9));
  check_throws<std::runtime_error>([&] { read_idx(dir.path / "magic.idx"); }, "bad magic");
  write_gzip(dir.path / "type.idx.gz", idx_bytes(0x07, {1}, "\x05"));
  check_throws<std::runtime_error>([&] { read_idx(dir.path / "type.idx.gz"); }, "type.idx.gz");
  write_gzip(dir.path / "short.idx.gz", idx_bytes(0x08, {10}, "abc"));
  check_throws<std::runtime_error>([&] { read_idx(dir.path / "short.idx.gz"); }, "truncated");
  write_plain(dir.path / "long.idx", idx_bytes(0x08, {2}, "abc"));
  check_throws<std::runtime_error>([&] { read_idx(dir.path / "long.idx"); }, "bytes after");
  write_plain(dir.path / "tiny.idx", std::string("\x00\x00", 2));
  check_throws<std::runtime_error>([&] { read_idx(dir.path / "tiny.idx"); }, "tiny.idx");
}

// ---- Fashion-MNIST -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(fashion_mnist_loads_a_small_synthetic_copy) {
  TempDir dir;
  std::string pixels;
  for (int i = 0; i < 3 * 2 * 2; ++i) pixels.push_back(static_cast<char>(i == 0 ? 255 : i));
  write_gzip(dir.path / "t10k-images-idx3-ubyte.gz", idx_bytes(0x08, {3, 2, 2}, pixels));
  write_plain(dir.path / "t10k-labels-idx1-ubyte",
              idx_bytes(0x08, {3}, std::string("\x09\x00\x04", 3)));
  TensorDataset test = load_fashion_mnist(dir.path, Split::kTest);
  BOOST_TEST(test.size() == 3);
  const auto& x = test.tensors()["x"];
  BOOST_TEST(x.scalar_type() == torch::kFloat);
  BOOST_TEST(x.sizes().vec() == (std::vector<std::int64_t>{3, 4}),
             boost::test_tools::per_element());
  BOOST_TEST(x[0][0].item<float>() == 1.0f);
  BOOST_TEST(x[0][1].item<float>() == 1.0f / 255.0f);
  BOOST_TEST(torch::equal(test.tensors()["y"], torch::tensor({9, 0, 4}, torch::kLong)));
}

BOOST_AUTO_TEST_CASE(fashion_mnist_errors_say_what_to_do) {
  TempDir dir;
  check_throws<std::runtime_error>([&] { load_fashion_mnist(dir.path, Split::kTrain); },
                                   "apt-get install dataset-fashion-mnist");
  write_gzip(dir.path / "train-images-idx3-ubyte.gz",
             idx_bytes(0x08, {3, 2, 2}, std::string(12, '\x01')));
  write_gzip(dir.path / "train-labels-idx1-ubyte.gz", idx_bytes(0x08, {2}, "\x01\x02"));
  check_throws<std::runtime_error>([&] { load_fashion_mnist(dir.path, Split::kTrain); },
                                   "2 labels");
  write_gzip(dir.path / "train-labels-idx1-ubyte.gz", idx_bytes(0x08, {3}, "\x01\x0a\x02"));
  check_throws<std::runtime_error>([&] { load_fashion_mnist(dir.path, Split::kTrain); },
                                   "label 10");
}

BOOST_AUTO_TEST_CASE(real_fashion_mnist_has_the_published_shape,
                     *boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
                       boost::test_tools::assertion_result present =
                           fs::is_directory(kRealFashionMnist);
                       present.message() << "skipped: " << kRealFashionMnist
                                         << " is absent (apt-get install dataset-fashion-mnist)";
                       return present;
                     })) {
  for (auto [split, n] : {std::pair{Split::kTrain, 60000}, std::pair{Split::kTest, 10000}}) {
    TensorDataset dataset = load_fashion_mnist(split);
    BOOST_TEST(dataset.size() == n);
    const auto& x = dataset.tensors()["x"];
    const auto& y = dataset.tensors()["y"];
    BOOST_TEST(x.sizes().vec() == (std::vector<std::int64_t>{n, 784}),
               boost::test_tools::per_element());
    BOOST_TEST(x.scalar_type() == torch::kFloat);
    BOOST_TEST(x.min().item<float>() >= 0.0f);
    BOOST_TEST(x.max().item<float>() <= 1.0f);
    BOOST_TEST(y.scalar_type() == torch::kLong);
    BOOST_TEST(y.min().item<std::int64_t>() == 0);
    BOOST_TEST(y.max().item<std::int64_t>() == 9);
    // Fashion-MNIST is balanced: n / 10 samples per class.
    BOOST_TEST(torch::equal(torch::bincount(y), torch::full({10}, n / 10, torch::kLong)));
  }
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_data_tests
