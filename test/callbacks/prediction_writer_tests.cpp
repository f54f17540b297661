// BasePredictionWriter: write intervals, what each write receives, and the refused interval.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/prediction_writer.hpp>

namespace hookline_test_prediction_writer_tests {

using namespace hookline;
using namespace test_support;

namespace {

struct BatchWrite {
  at::Tensor prediction;
  std::vector<std::int64_t> indices;
  std::int64_t batch_rows;
  std::int64_t batch_idx;
  std::int64_t dataloader_idx;
};

class RecordingWriter : public BasePredictionWriter {
 public:
  using BasePredictionWriter::BasePredictionWriter;
  void write_on_batch_end(Trainer&, Module&, const StepOutput& prediction,
                          const std::vector<std::int64_t>& batch_indices, const Batch& batch,
                          std::int64_t batch_idx, std::int64_t dataloader_idx) override {
    batches.push_back(
        {prediction["prediction"], batch_indices, batch.batch_size(), batch_idx, dataloader_idx});
  }
  void write_on_epoch_end(
      Trainer&, Module&, const std::vector<std::vector<StepOutput>>& predictions,
      const std::vector<std::vector<std::vector<std::int64_t>>>& batch_indices) override {
    ++epoch_writes;
    epoch_predictions = predictions;
    epoch_indices = batch_indices;
  }
  std::vector<BatchWrite> batches;
  int epoch_writes = 0;
  std::vector<std::vector<StepOutput>> epoch_predictions;
  std::vector<std::vector<std::vector<std::int64_t>>> epoch_indices;
};

// Two predict loaders: 64 samples in batches of 4 (16 batches) and 10 in batches of 4 (3).
class TwoLoaders : public BoringModel {
 public:
  DataLoaders predict_dataloader() override { return {loader(64, 4), loader(10, 4, 9)}; }
};

TrainerOptions quiet() {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .enable_checkpointing(false)
      .logger(false);
}

std::vector<std::int64_t> range(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = from; i < to; ++i) out.push_back(i);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(prediction_writer)

BOOST_AUTO_TEST_CASE(an_unknown_interval_is_refused_naming_the_valid_ones) {
  BOOST_CHECK_EXCEPTION(RecordingWriter("step"), std::invalid_argument, [](const auto& e) {
    const std::string what = e.what();
    return what.find("'batch', 'epoch', 'batch_and_epoch'") != std::string::npos &&
           what.find("step") != std::string::npos;
  });
  BOOST_TEST(RecordingWriter().write_interval() == "batch");  // Lightning's default
  // The state key is the writer's class name, as Lightning's __qualname__.
  BOOST_TEST(RecordingWriter().state_key() == "RecordingWriter");
  BOOST_TEST(BasePredictionWriter().state_key() == "BasePredictionWriter");
  Trainer trainer(quiet(), {std::make_shared<RecordingWriter>(),
                            std::make_shared<BasePredictionWriter>("epoch")});
  BOOST_TEST(trainer.callbacks().size() >= 2u);
}

BOOST_AUTO_TEST_CASE(batch_interval_writes_each_batch_with_its_indices) {
  auto writer = std::make_shared<RecordingWriter>("batch");
  TwoLoaders model;
  Trainer trainer(quiet(), {writer});
  const std::vector<StepOutput> predictions = trainer.predict(model);
  BOOST_REQUIRE_EQUAL(writer->batches.size(), 19u);
  BOOST_TEST(writer->epoch_writes == 0);
  for (std::size_t i = 0; i < 19; ++i) {
    const BatchWrite& w = writer->batches[i];
    const bool second = i >= 16;
    const std::int64_t idx =
        second ? static_cast<std::int64_t>(i) - 16 : static_cast<std::int64_t>(i);
    BOOST_TEST(w.dataloader_idx == (second ? 1 : 0));
    BOOST_TEST(w.batch_idx == idx);
    BOOST_TEST(
        (w.indices == range(idx * 4, std::min<std::int64_t>(idx * 4 + 4, second ? 10 : 64))));
    BOOST_TEST(static_cast<std::int64_t>(w.indices.size()) == w.batch_rows);
    // The prediction handed over is predict_step's output, the one predict() returns.
    BOOST_TEST(w.prediction.is_same(predictions[i]["prediction"]));
  }
}

BOOST_AUTO_TEST_CASE(epoch_interval_writes_everything_once_per_dataloader) {
  auto writer = std::make_shared<RecordingWriter>("epoch");
  TwoLoaders model;
  Trainer trainer(quiet(), {writer});
  const std::vector<StepOutput> predictions = trainer.predict(model);
  BOOST_TEST(writer->batches.empty());
  BOOST_TEST(writer->epoch_writes == 1);
  BOOST_REQUIRE_EQUAL(writer->epoch_predictions.size(), 2u);
  BOOST_REQUIRE_EQUAL(writer->epoch_predictions[0].size(), 16u);
  BOOST_REQUIRE_EQUAL(writer->epoch_predictions[1].size(), 3u);
  BOOST_TEST(writer->epoch_predictions[1][2]["prediction"].is_same(predictions[18]["prediction"]));
  BOOST_TEST((writer->epoch_indices[0][15] == range(60, 64)));
  BOOST_TEST((writer->epoch_indices[1][2] == range(8, 10)));
  // A second run starts afresh.
  trainer.predict(model);
  BOOST_TEST(writer->epoch_writes == 2);
  BOOST_TEST(writer->epoch_predictions[0].size() == 16u);
  BOOST_TEST((writer->epoch_indices[0][0] == range(0, 4)));
}

BOOST_AUTO_TEST_CASE(batch_and_epoch_does_both_and_a_missing_override_throws) {
  auto writer = std::make_shared<RecordingWriter>("batch_and_epoch");
  BoringModel model;
  Trainer(quiet(), {writer}).predict(model);
  BOOST_TEST(writer->batches.size() == 16u);
  BOOST_TEST(writer->epoch_writes == 1);

  // Lightning raises NotImplementedError from the base class's write hooks.
  BoringModel other;
  Trainer trainer(quiet(), {std::make_shared<BasePredictionWriter>("epoch")});
  BOOST_CHECK_THROW(trainer.predict(other), std::logic_error);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_prediction_writer_tests
