// Tests of the DataLoader's workers: the same batches whatever the worker count (augmentation
// included), exact resume with workers running, failures (a throwing dataset, a blocking one),
// no thread left behind, samplers and collate. Linked into the test_core runner.
#include <boost/test/unit_test.hpp>

#include "checkpoint_helpers.hpp"
#include "child_process.hpp"
#include "trace_recorder.hpp"
#include "trainer_options.hpp"

#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/data/sample.hpp>

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hookline_test_data_worker_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

// Threads of this process now.
int thread_count() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// Samples {"x": [8] float, "y": [2] float} with a random augmentation drawn from the sample's
// generator: noise from a torch generator, a random shift and a random sign flip.
class NoisyDataset final : public data::MapDataset {
 public:
  explicit NoisyDataset(std::int64_t n, std::int64_t throw_at = -1, std::int64_t block_at = -1,
                        std::chrono::milliseconds block_for = std::chrono::milliseconds(0))
      : n_(n), throw_at_(throw_at), block_at_(block_at), block_for_(block_for) {
    auto g = at::make_generator<at::CPUGeneratorImpl>(3);
    x_ = at::randn({n, 8}, g);
    y_ = at::randn({n, 2}, g);
  }
  std::int64_t size() const override { return n_; }
  Batch get(std::int64_t index, data::SampleGenerator& rng) const override {
    if (index == throw_at_) throw std::out_of_range("sample " + std::to_string(index) + " is bad");
    if (index == block_at_) std::this_thread::sleep_for(block_for_);
    auto gen = rng.torch_generator();
    at::Tensor x = x_[index] + 0.1 * at::randn({8}, gen);
    x = at::roll(x, {rng.integer(0, 7)}, {0});
    if (rng.bernoulli(0.5)) x = -x;
    return Batch{{"x", x}, {"y", y_[index].clone()}};
  }

 private:
  std::int64_t n_, throw_at_, block_at_;
  std::chrono::milliseconds block_for_;
  at::Tensor x_, y_;
};

std::vector<Batch> all_batches(data::DataLoader& loader, int epochs) {
  std::vector<Batch> out;
  for (int e = 0; e < epochs; ++e)
    for (auto it = loader.begin(); it != loader.end(); ++it) out.push_back(it.take());
  return out;
}

bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].names() != b[i].names()) return false;
    for (std::size_t f = 0; f < a[i].num_fields(); ++f)
      if (a[i].at(f).sizes() != b[i].at(f).sizes() || !at::equal(a[i].at(f), b[i].at(f)))
        return false;
  }
  return true;
}

data::DataLoaderOptions options(int workers) {
  return data::DataLoaderOptions().batch_size(5).shuffle(true).seed(11).num_workers(workers);
}

// A small model trained on NoisyDataset through a loader with workers.
class WorkerNet : public Module {
 public:
  explicit WorkerNet(int workers, std::shared_ptr<const data::Dataset> dataset = nullptr)
      : Module("worker_net"),
        workers_(workers),
        dataset_(dataset ? std::move(dataset) : std::make_shared<NoisyDataset>(46)) {
    l1 = register_module("l1", torch::nn::Linear(8, 16));
    l2 = register_module("l2", torch::nn::Linear(16, 2));
  }
  StepOutput training_step(const Batch& b, std::int64_t) override {
    auto loss = torch::mse_loss(l2(torch::relu(l1(b["x"]))), b["y"]);
    return {{"loss", loss}};
  }
  OptimizerConfig configure_optimizers() override {
    OptimizerConfig config;
    config.add(std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(0.01)));
    return config;
  }
  DataLoaders train_dataloader() override {
    loader = std::make_shared<data::DataLoader>(
        dataset_, options(workers_).prefetch_factor(3).persistent_workers(persistent));
    return {loader};
  }
  torch::nn::Linear l1{nullptr}, l2{nullptr};
  std::shared_ptr<data::DataLoader> loader;
  bool persistent = false;

 private:
  int workers_;
  std::shared_ptr<const data::Dataset> dataset_;
};

TrainerOptions quiet(const test_support::TempDir& dir) {
  return test_support::silent_options(dir.path).max_epochs(2).seed(5);
}

class SaveAndCrash final : public Callback {
 public:
  SaveAndCrash(std::string path, std::int64_t at)
      : Callback("save_and_crash"), path_(path), at_(at) {}
  void on_train_batch_end(Trainer& t, Module&, const StepOutput&, const Batch&,
                          std::int64_t) override {
    if (t.global_step() != at_) return;
    t.save_checkpoint(path_);
    throw std::runtime_error("simulated crash");
  }

 private:
  std::string path_;
  std::int64_t at_;
};

class SeesException final : public Callback {
 public:
  SeesException() : Callback("sees_exception") {}
  void on_exception(Trainer&, Module&, const std::exception_ptr& error) override {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    }
  }
  std::string what;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(data_workers)

BOOST_AUTO_TEST_CASE(same_batches_with_0_1_2_8_workers_augmentation_included) {
  auto dataset = std::make_shared<NoisyDataset>(47);
  data::DataLoader reference_loader(dataset, options(0));
  const auto reference = all_batches(reference_loader, 2);
  BOOST_TEST(reference.size() == 20u);
  BOOST_TEST(!at::equal(reference[0]["x"], reference[10]["x"]));  // epochs differ
  for (int workers : {1, 2, 8}) {
    for (bool persistent : {false, true}) {
      data::DataLoader loader(dataset, options(workers).persistent_workers(persistent));
      BOOST_TEST(same_batches(all_batches(loader, 2), reference),
                 workers << " workers, persistent " << persistent);
    }
  }
  // A batch-level dataset (TensorDataset) gives the same batches with workers as without.
  auto tensors = random_dataset(23, 4, 2, 9);
  data::DataLoader plain(tensors, options(0));
  data::DataLoader threaded(tensors, options(2));
  BOOST_TEST(same_batches(all_batches(plain, 2), all_batches(threaded, 2)));
}

BOOST_AUTO_TEST_CASE(the_augmentation_depends_on_seed_epoch_and_index_only) {
  data::SampleGenerator a(1, 2, 3), b(1, 2, 3), c(1, 2, 4), d(1, 3, 3), e(2, 2, 3);
  const auto first = a.next();
  BOOST_TEST(first == b.next());
  BOOST_TEST(first != c.next());
  BOOST_TEST(first != d.next());
  BOOST_TEST(first != e.next());
  data::SampleGenerator r(7);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto v = r.integer(-2, 2);
    BOOST_TEST((v >= -2 && v <= 2));
    seen.insert(v);
  }
  BOOST_TEST(seen.size() == 5u);
}

BOOST_AUTO_TEST_CASE(mid_epoch_state_with_workers_running_resumes_exactly) {
  auto dataset = std::make_shared<NoisyDataset>(60);
  data::DataLoader straight(dataset, options(0));
  const auto reference = all_batches(straight, 2);  // 12 batches per epoch
  for (int workers : {1, 2, 8}) {
    data::DataLoader first(dataset, options(workers).prefetch_factor(4));
    std::vector<Batch> seen;
    data::DataLoaderState saved;
    {
      auto it = first.begin();
      for (int i = 0; i < 4; ++i) {
        seen.push_back(it.take());
        if (i < 3) ++it;  // the iterator stays on batch 3: it counts as yielded
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the workers run ahead
      saved = first.state();
    }
    BOOST_TEST(saved.batches_yielded == 4);
    data::DataLoader second(dataset, options(workers));
    second.load_state(saved);
    for (auto& b : all_batches(second, 1)) seen.push_back(std::move(b));  // rest of epoch 0
    BOOST_TEST(seen.size() == 12u);
    BOOST_TEST(second.epoch() == 1);
    for (auto& b : all_batches(second, 1)) seen.push_back(std::move(b));  // epoch 1
    // None lost, none repeated, none changed.
    BOOST_TEST(same_batches(seen, reference), workers << " workers");
  }
}

BOOST_AUTO_TEST_CASE(trainer_resume_mid_epoch_with_workers_is_bitwise_an_uninterrupted_run) {
  test_support::TempDir dir("hookline_workers_");
  const std::string path = (dir.path / "crash.ckpt").string();
  std::vector<at::Tensor> straight;
  {
    torch::manual_seed(1);
    WorkerNet model(0);
    Trainer trainer(quiet(dir));
    trainer.fit(model);
    straight = weights_of(model);
  }
  for (int workers : {2, 8}) {
    {
      torch::manual_seed(1);
      WorkerNet model(workers);
      Trainer trainer(quiet(dir), {std::make_shared<SaveAndCrash>(path, 13)});
      BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
    }
    torch::manual_seed(42);
    WorkerNet model(workers);
    Trainer trainer(quiet(dir));
    trainer.fit(model, nullptr, path);
    BOOST_TEST(bitwise_equal(weights_of(model), straight), workers << " workers");
  }
}

BOOST_AUTO_TEST_CASE(a_throwing_sample_reaches_the_caller_with_type_message_and_index) {
  auto dataset = std::make_shared<NoisyDataset>(40, 17);
  for (int workers : {0, 2}) {
    data::DataLoader loader(dataset, data::DataLoaderOptions().batch_size(4).num_workers(workers));
    bool caught = false;
    try {
      all_batches(loader, 1);
    } catch (const data::DataLoaderError& e) {
      caught = true;
      const std::string what = e.what();
      BOOST_TEST(e.sample_index() == 17);
      BOOST_TEST(e.batch_index() == 4);
      BOOST_TEST(e.original_type() == "std::out_of_range");
      BOOST_TEST(contains(what, "sample 17 is bad"), what);
      BOOST_TEST(contains(what, "std::out_of_range"), what);
      // With workers, the batch is made by a worker, or by the loader's thread while the
      // workers were busy (worker -1).
      BOOST_TEST(contains(what, e.worker() >= 0 ? "worker " : "DataLoader failed"), what);
      if (workers == 0) BOOST_TEST(e.worker() == -1);
      BOOST_CHECK_THROW(e.rethrow_nested(), std::out_of_range);
    }
    BOOST_TEST(caught);
    BOOST_TEST(loader.running_workers() == 0);
  }
}

BOOST_AUTO_TEST_CASE(a_worker_failure_runs_on_exception_and_leaves_no_thread) {
  test_support::TempDir dir("hookline_workers_");
  {  // warm up: torch's own thread pools start on first use
    WorkerNet model(0);
    Trainer(quiet(dir).max_epochs(1)).fit(model);
  }
  const int before = thread_count();
  WorkerNet model(2, std::make_shared<NoisyDataset>(46, 31));
  auto sees = std::make_shared<SeesException>();
  Trainer trainer(quiet(dir), {sees});
  BOOST_CHECK_THROW(trainer.fit(model), data::DataLoaderError);
  BOOST_TEST(contains(sees->what, "sample 31"), sees->what);
  BOOST_TEST(model.loader->running_workers() == 0);
  BOOST_TEST(thread_count() == before);
}

BOOST_AUTO_TEST_CASE(no_thread_left_after_fit_persistent_workers_included) {
  test_support::TempDir dir("hookline_workers_");
  {
    WorkerNet model(0);
    Trainer(quiet(dir).max_epochs(1)).fit(model);
  }
  const int before = thread_count();
  for (bool persistent : {false, true}) {
    WorkerNet model(2);
    model.persistent = persistent;
    Trainer(quiet(dir).limit_train_batches(3)).fit(model);
    BOOST_TEST(model.loader->running_workers() == 0);
    BOOST_TEST(thread_count() == before, "persistent " << persistent);
  }
}

BOOST_AUTO_TEST_CASE(a_blocking_dataset_is_reported_after_the_timeout) {
  const int before = thread_count();
  auto dataset = std::make_shared<NoisyDataset>(40, -1, 9, std::chrono::milliseconds(1500));
  data::DataLoader loader(dataset, data::DataLoaderOptions().batch_size(4).num_workers(2).timeout(
                                       std::chrono::milliseconds(200)));
  const auto start = std::chrono::steady_clock::now();
  std::string what;
  try {
    all_batches(loader, 1);
  } catch (const data::DataLoaderTimeout& e) {
    what = e.what();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST(contains(what, "timed out after 0.2 s waiting for batch 2"), what);
  BOOST_TEST(seconds < 5.0);
  BOOST_TEST(loader.running_workers() == 0);
  BOOST_TEST(thread_count() <= before);
}

BOOST_AUTO_TEST_CASE(abandoned_passes_stop_their_workers) {
  auto dataset = std::make_shared<NoisyDataset>(40);
  data::DataLoader loader(dataset, options(2));
  {
    auto it = loader.begin();
    BOOST_TEST(loader.running_workers() == 2);
    ++it;
  }
  BOOST_TEST(loader.running_workers() == 0);
  data::DataLoader persistent(dataset, options(2).persistent_workers(true));
  { auto it = persistent.begin(); }
  BOOST_TEST(persistent.running_workers() == 2);
  persistent.shutdown_workers();
  BOOST_TEST(persistent.running_workers() == 0);
  // The abandoned epoch 0 is followed by epoch 1, as without workers.
  data::DataLoader plain(dataset, options(0));
  { auto it = plain.begin(); }
  auto expected = all_batches(plain, 1);
  BOOST_TEST(same_batches(all_batches(loader, 1), expected));
}

BOOST_AUTO_TEST_CASE(worker_init_fn_runs_once_on_each_worker) {
  std::mutex mutex;
  std::multiset<int> ids;
  std::set<std::thread::id> threads;
  auto dataset = std::make_shared<NoisyDataset>(40);
  data::DataLoader loader(dataset, options(3).worker_init_fn([&](int id) {
    std::lock_guard lock(mutex);
    ids.insert(id);
    threads.insert(std::this_thread::get_id());
  }));
  all_batches(loader, 1);
  BOOST_TEST((ids == std::multiset<int>{0, 1, 2}));
  BOOST_TEST(threads.size() == 3u);
  BOOST_TEST(threads.count(std::this_thread::get_id()) == 0u);
  data::DataLoader failing(
      dataset, options(2).worker_init_fn([](int) { throw std::runtime_error("no file"); }));
  BOOST_CHECK_THROW(all_batches(failing, 1), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(the_loaders_thread_helps_unless_a_timeout_or_worker_init_fn_is_set) {
  // Samples that take a while, recording the threads that made them.
  class Slow final : public data::MapDataset {
   public:
    std::int64_t size() const override { return 24; }
    Batch get(std::int64_t index, data::SampleGenerator& rng) const override {
      {
        std::lock_guard lock(mutex);
        threads.insert(std::this_thread::get_id());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      return Batch{{"x", at::full({2}, static_cast<double>(index) + rng.uniform())}};
    }
    mutable std::mutex mutex;
    mutable std::set<std::thread::id> threads;
  };
  const auto made_here = [](data::DataLoaderOptions o) {
    auto slow = std::make_shared<Slow>();
    data::DataLoader loader(slow, o.batch_size(4).num_workers(1));
    const auto batches = all_batches(loader, 1);
    bool here = false;
    {
      std::lock_guard lock(slow->mutex);
      here = slow->threads.count(std::this_thread::get_id()) != 0;
    }
    data::DataLoader plain(slow, o.num_workers(0));
    BOOST_TEST(same_batches(batches, all_batches(plain, 1)));  // made anywhere, the same batches
    return here;
  };
  // At take(0) the worker runs batch 0 or has not claimed it yet: either way this thread finds
  // an unclaimed batch in the window and makes it.
  BOOST_TEST(made_here(data::DataLoaderOptions()));
  BOOST_TEST(!made_here(data::DataLoaderOptions().timeout(std::chrono::seconds(30))));
  BOOST_TEST(!made_here(data::DataLoaderOptions().worker_init_fn([](int) {})));
}

BOOST_AUTO_TEST_CASE(samplers_batch_samplers_and_collate) {
  struct Reverse final : data::Sampler {
    std::int64_t size() const override { return 10; }
    at::Tensor indices(std::int64_t) const override { return at::arange(9, -1, -1, at::kLong); }
  };
  struct Uneven final : data::BatchSampler {
    std::int64_t size() const override { return 2; }
    std::vector<at::Tensor> batches(std::int64_t epoch) const override {
      return {at::arange(0, 3 + epoch, at::kLong), at::arange(5, 6, at::kLong)};
    }
  };
  auto tensors = random_dataset(20, 4, 2, 9);
  for (int workers : {0, 2}) {
    data::DataLoader reversed(tensors,
                              data::DataLoaderOptions().batch_size(4).num_workers(workers).sampler(
                                  std::make_shared<Reverse>()));
    BOOST_TEST(reversed.size() == 3);
    auto batches = all_batches(reversed, 1);
    BOOST_TEST(at::equal(batches[0]["x"],
                         tensors->tensors()["x"].index_select(0, at::arange(9, 5, -1, at::kLong))));
    data::DataLoader uneven(tensors, data::DataLoaderOptions().num_workers(workers).batch_sampler(
                                         std::make_shared<Uneven>()));
    auto b = all_batches(uneven, 2);
    BOOST_TEST(b.size() == 4u);
    BOOST_TEST(b[0].batch_size() == 3);
    BOOST_TEST(b[1].batch_size() == 1);
    BOOST_TEST(b[2].batch_size() == 4);
  }
  // A collate for samples of different shapes: pads to the longest.
  struct Ragged final : data::MapDataset {
    std::int64_t size() const override { return 6; }
    Batch get(std::int64_t i, data::SampleGenerator&) const override {
      return Batch{{"x", at::ones({i + 1})}};
    }
  };
  auto ragged = std::make_shared<Ragged>();
  data::DataLoader stacked(ragged, data::DataLoaderOptions().batch_size(3).num_workers(2));
  BOOST_CHECK_THROW(all_batches(stacked, 1), data::DataLoaderError);
  data::DataLoader padded(
      ragged, data::DataLoaderOptions().batch_size(3).num_workers(2).collate(
                  [](std::vector<Batch>& samples) {
                    std::int64_t longest = 0;
                    for (const auto& s : samples) longest = std::max(longest, s["x"].size(0));
                    auto x = at::zeros({static_cast<std::int64_t>(samples.size()), longest});
                    for (std::size_t i = 0; i < samples.size(); ++i)
                      x[static_cast<std::int64_t>(i)]
                          .narrow(0, 0, samples[i]["x"].size(0))
                          .copy_(samples[i]["x"]);
                    return Batch{{"x", x}};
                  }));
  auto b = all_batches(padded, 1);
  BOOST_TEST(b.size() == 2u);
  BOOST_TEST(b[1]["x"].sizes() == at::IntArrayRef({3, 6}));
  BOOST_TEST(b[1]["x"].sum().item<float>() == 15.0f);
}

BOOST_AUTO_TEST_CASE(bad_worker_options_are_refused) {
  auto tensors = random_dataset(20, 4, 2, 9);
  using O = data::DataLoaderOptions;
  BOOST_CHECK_THROW(data::DataLoader(tensors, O().num_workers(-1)), std::invalid_argument);
  BOOST_CHECK_THROW(data::DataLoader(tensors, O().num_workers(2).prefetch_factor(0)),
                    std::invalid_argument);
  BOOST_CHECK_THROW(data::DataLoader(tensors, O().timeout(std::chrono::seconds(-1))),
                    std::invalid_argument);
  struct All final : data::Sampler {
    std::int64_t size() const override { return 20; }
    at::Tensor indices(std::int64_t) const override { return at::arange(20); }
  };
  BOOST_CHECK_THROW(data::DataLoader(tensors, O().shuffle(true).sampler(std::make_shared<All>())),
                    std::invalid_argument);
  data::DataLoader pinned(tensors, O().batch_size(4).num_workers(1).pin_memory(true));
  BOOST_TEST(all_batches(pinned, 1).size() == 5u);
}

namespace {

// Sample p is {"x": [p]}: a stream reads the positions of its shard, p = worker, worker + W, ...
class Counting final : public data::IterableDataset {
 public:
  explicit Counting(std::int64_t n, std::int64_t real = -1) : n_(n), real_(real < 0 ? n : real) {}
  std::int64_t size() const override { return n_; }
  std::unique_ptr<data::SampleStream> open(const data::StreamInfo& info) const override {
    struct Stream final : data::SampleStream {
      std::int64_t next_, step_, end_;
      Stream(std::int64_t first, std::int64_t step, std::int64_t end)
          : next_(first), step_(step), end_(end) {}
      std::optional<Batch> next() override {
        if (next_ >= end_) return std::nullopt;
        const auto p = next_;
        next_ += step_;
        return Batch{{"x", at::full({1}, static_cast<float>(p))}};
      }
    };
    ++opened;
    return std::make_unique<Stream>(info.worker, info.num_workers, real_);
  }
  mutable std::atomic<int> opened{0};

 private:
  std::int64_t n_, real_;
};

std::vector<std::vector<int>> positions(const std::vector<Batch>& batches) {
  std::vector<std::vector<int>> out;
  for (const auto& b : batches) {
    auto x = b["x"].flatten();
    std::vector<int> ids;
    for (std::int64_t i = 0; i < x.numel(); ++i) ids.push_back(x[i].item<int>());
    out.push_back(ids);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(iterable_datasets_read_one_shard_per_worker_round_robin) {
  auto dataset = std::make_shared<Counting>(11);
  data::DataLoader single(dataset, data::DataLoaderOptions().batch_size(4));
  BOOST_TEST(single.size() == 3);
  BOOST_TEST((positions(all_batches(single, 1)) ==
              std::vector<std::vector<int>>{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10}}));
  // Two workers: shards {0, 2, 4, ...} and {1, 3, 5, ...}, batched per worker, round-robin.
  data::DataLoader two(dataset, data::DataLoaderOptions().batch_size(4).num_workers(2));
  BOOST_TEST(two.size() == 4);
  const auto expected = std::vector<std::vector<int>>{{0, 2, 4, 6}, {1, 3, 5, 7}, {8, 10}, {9}};
  BOOST_TEST((positions(all_batches(two, 1)) == expected));
  data::DataLoader dropped(dataset,
                           data::DataLoaderOptions().batch_size(4).num_workers(2).drop_last(true));
  BOOST_TEST(dropped.size() == 2);
  // Resume after batch 1 with workers: the rest, each stream skipping what it already gave.
  data::DataLoader first(dataset, data::DataLoaderOptions().batch_size(4).num_workers(2));
  data::DataLoaderState saved;
  {
    auto it = first.begin();
    ++it;
    saved = first.state();
  }
  data::DataLoader second(dataset, data::DataLoaderOptions().batch_size(4).num_workers(2));
  second.load_state(saved);
  BOOST_TEST((positions(all_batches(second, 1)) ==
              std::vector<std::vector<int>>(expected.begin() + 2, expected.end())));
  // A stream shorter than size() promises is an error naming the worker.
  auto short_one = std::make_shared<Counting>(11, 9);
  data::DataLoader broken(short_one, data::DataLoaderOptions().batch_size(4).num_workers(2));
  try {
    all_batches(broken, 1);
    BOOST_TEST(false);
  } catch (const data::DataLoaderError& e) {
    BOOST_TEST(contains(e.what(), "ended after"), e.what());
  }
  BOOST_CHECK_THROW(data::DataLoader(dataset, data::DataLoaderOptions().shuffle(true)),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_data_worker_tests
