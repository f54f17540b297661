// ModelSummary: Lightning 2.2's table (layers by depth, counts, size), and its default.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/model_summary.hpp>

namespace hookline_test_model_summary_tests {

using namespace hookline;
using namespace test_support;

namespace {

// Lightning's docstring example: Sequential(Linear(256, 512), BatchNorm1d(512)) as "net".
struct Net : torch::nn::Module {
  Net() {
    net = register_module(
        "net", torch::nn::Sequential(torch::nn::Linear(256, 512), torch::nn::BatchNorm1d(512)));
  }
  torch::nn::Sequential net{nullptr};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(model_summary)

BOOST_AUTO_TEST_CASE(counts_as_lightning_abbreviates_them) {
  BOOST_TEST(human_readable_count(0) == "0  ");
  BOOST_TEST(human_readable_count(123) == "123  ");
  BOOST_TEST(human_readable_count(1234) == "1.2 K");
  BOOST_TEST(human_readable_count(2'000'000) == "2.0 M");
  BOOST_TEST(human_readable_count(3'000'000'000) == "3.0 B");
  BOOST_TEST(human_readable_count(400'000'000'000'000) == "400 T");
  BOOST_TEST(human_readable_count(5'000'000'000'000'000) == "5,000 T");
  BOOST_TEST(human_readable_count(132'608) == "132 K");
}

BOOST_AUTO_TEST_CASE(depth_one_is_the_children) {
  Net model;
  const std::string expected =
      "  | Name | Type       | Params\n"
      "------------------------------------\n"
      "0 | net  | Sequential | 132 K \n"
      "------------------------------------\n"
      "132 K     Trainable params\n"
      "0         Non-trainable params\n"
      "132 K     Total params\n"
      "0.530     Total estimated model params size (MB)";
  BOOST_TEST(summarize(model, 1).format() == expected);
}

BOOST_AUTO_TEST_CASE(deeper_levels_and_all) {
  Net model;
  const std::string all =
      "  | Name  | Type        | Params\n"
      "--------------------------------------\n"
      "0 | net   | Sequential  | 132 K \n"
      "1 | net.0 | Linear      | 131 K \n"
      "2 | net.1 | BatchNorm1d | 1.0 K \n"
      "--------------------------------------\n"
      "132 K     Trainable params\n"
      "0         Non-trainable params\n"
      "132 K     Total params\n"
      "0.530     Total estimated model params size (MB)";
  BOOST_TEST(summarize(model, -1).format() == all);
  BOOST_TEST(summarize(model, 2).format() == all);  // net.0 is level 2
  const auto none = summarize(model, 0);
  BOOST_TEST(none.layers.empty());
  BOOST_TEST(none.total_params == 132'608);
  BOOST_CHECK_THROW(summarize(model, -2), std::invalid_argument);
  BOOST_CHECK_THROW(ModelSummary(-2), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(frozen_and_other_params) {
  Net model;
  model.net[0]->as<torch::nn::Linear>()->weight.set_requires_grad(false);
  model.register_parameter("scale", torch::ones({10}));
  const auto t = summarize(model, 1);
  BOOST_TEST(t.trainable_params == 132'618 - 131'072);
  BOOST_TEST(t.other_params == 10);
  const std::string text = t.format();
  BOOST_TEST(text.find("  | other params | n/a        | 10    \n") != std::string::npos, text);
  BOOST_TEST(
      text.find("1.5 K     Trainable params\n131 K     Non-trainable params") != std::string::npos,
      text);
}

BOOST_AUTO_TEST_CASE(on_by_default_printed_at_fit_start) {
  auto options = [] {
    return TrainerOptions()
        .max_epochs(1)
        .limit_train_batches(1)
        .limit_val_batches(0)
        .enable_progress_bar(false)
        .enable_checkpointing(false)
        .logger(false);
  };
  auto summaries = [](const Trainer& t) {
    std::vector<std::shared_ptr<ModelSummary>> out;
    for (const auto& c : t.callbacks())
      if (auto s = std::dynamic_pointer_cast<ModelSummary>(c)) out.push_back(s);
    return out;
  };
  BoringModel model;
  Trainer trainer(options());
  BOOST_REQUIRE_EQUAL(summaries(trainer).size(), 1u);
  BOOST_TEST(summaries(trainer)[0]->max_depth() == 1);
  trainer.fit(model);
  BOOST_TEST(
      summaries(trainer)[0]->last_table().find("0 | layer | Linear | 66    ") != std::string::npos,
      summaries(trainer)[0]->last_table());
  BOOST_TEST(summaries(Trainer(options().enable_model_summary(false))).empty());
  auto mine = std::make_shared<ModelSummary>(0);
  Trainer given(options(), {mine});
  BOOST_REQUIRE_EQUAL(summaries(given).size(), 1u);  // the user's, no second one
  given.fit(model);
  BOOST_TEST(mine->last_table().empty());  // max_depth 0 prints nothing
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_model_summary_tests
