// hookline::Cli and recipe layers (recipe/cli.hpp): a recipe's model: and data: sections go to
// the registered factories with their unknown keys refused; overrides on top of a recipe
// (trainer keys, model keys, callbacks += and -=) with errors naming the file, line and column or
// the argument; --print-config's YAML loads back to the same recipe; --help lists the options.
#include <boost/test/unit_test.hpp>

#include "trace_recorder.hpp"

#include <hookline/callbacks/early_stopping.hpp>
#include <hookline/core/data_module.hpp>
#include <hookline/core/trainer.hpp>
#include <hookline/recipe/cli.hpp>
#include <hookline/recipe/recipe.hpp>
#include <hookline/recipe/registry.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

namespace hookline_test_cli_tests {

using namespace hookline;
using namespace test_support;

namespace {

// A model with two options: width (integer, > 0) and lr (number).
class CliModel : public BoringModel {
 public:
  explicit CliModel(RecipeOptions& o)
      : width(o.get_or<std::int64_t>("width", 4)), lr(o.get_or<double>("lr", 0.1)) {
    if (width < 1) o.fail("width", "expected a positive integer");
  }
  std::int64_t width;
  double lr;
};

// Another model, without options.
class OtherModel : public BoringModel {
 public:
  explicit OtherModel(RecipeOptions&) {}
};

class CliData : public DataModule {
 public:
  explicit CliData(RecipeOptions& o)
      : DataModule("cli_data"), rows(o.require<std::int64_t>("rows")) {}
  std::int64_t rows;
};

const bool registered = [] {
  registry().add_model<CliModel>("CliModel");
  registry().add_model<OtherModel>("OtherModel");
  registry().add_data<CliData>("CliData");
  return true;
}();

const char* const kBase = R"(trainer:
  max_epochs: 2
  limit_val_batches: 0.5
model:
  class: CliModel
  width: 8
data:
  class: CliData
  rows: 16
callbacks:
  - EarlyStopping: {monitor: val_loss, patience: 3}
  - Timer: {duration: "00:00:30:00"}
)";

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The RecipeError `f` throws (the test fails when it throws none).
RecipeError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const RecipeError& e) {
    return e;
  }
  BOOST_FAIL("no RecipeError");
  throw std::logic_error("unreachable");
}

Recipe layered(const std::vector<std::string>& overrides) {
  RecipeLayers layers;
  layers.add_text(kBase, "base.yaml");
  for (const auto& o : overrides) layers.add_override(o);
  return layers.build();
}

// Cli::parse on `args` (after the program name).
std::optional<int> parse(Cli& cli, std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return cli.parse(static_cast<int>(argv.size()), argv.data());
}

std::vector<std::string> callback_names(const Recipe& recipe) {
  std::vector<std::string> names;
  for (const auto& c : recipe.build().callbacks) names.push_back(c->checkpoint_key());
  return names;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

BOOST_AUTO_TEST_CASE(model_and_data_sections_reach_their_factories) {
  BOOST_REQUIRE(registered);
  const Recipe recipe = Recipe::parse(kBase, "base.yaml");
  BOOST_TEST(recipe.model_class() == "CliModel");
  auto model = std::dynamic_pointer_cast<CliModel>(recipe.make_model());
  BOOST_REQUIRE(model);
  BOOST_TEST(model->width == 8);
  BOOST_TEST(model->lr == 0.1);
  auto data = std::dynamic_pointer_cast<CliData>(recipe.make_data());
  BOOST_REQUIRE(data);
  BOOST_TEST(data->rows == 16);
  // The model trains with the recipe's trainer.
  Trainer trainer(recipe.trainer_options()
                      .max_epochs(1)
                      .limit_train_batches(2)
                      .enable_progress_bar(false)
                      .enable_model_summary(false)
                      .enable_checkpointing(false)
                      .logger(false));
  trainer.fit(*model);
  BOOST_TEST(trainer.global_step() == 2);
}

BOOST_AUTO_TEST_CASE(bad_model_and_data_options_name_the_place) {
  // An unknown key: file, line, column, the key and the known ones.
  const Recipe typo = Recipe::parse("model:\n  class: CliModel\n  widht: 3\n", "m.yaml");
  const RecipeError unknown = error_of([&] { (void)typo.make_model(); });
  BOOST_TEST(unknown.file() == "m.yaml");
  BOOST_TEST(unknown.line() == 3);
  BOOST_TEST(unknown.column() == 3);
  BOOST_TEST(unknown.key() == "model.widht");
  BOOST_TEST(contains(unknown.problem(), "unknown option 'widht' for 'CliModel'"));
  BOOST_TEST(contains(unknown.problem(), "its options are: class, lr, width"));
  // A mistyped value, a value the factory refuses, a missing required option.
  const Recipe mistyped = Recipe::parse("model: {class: CliModel, lr: fast}\n", "m.yaml");
  BOOST_TEST(contains(error_of([&] { (void)mistyped.make_model(); }).what(),
                      "m.yaml:1:30: model.lr: expected a number, got 'fast'"));
  const Recipe refused = Recipe::parse("model: {class: CliModel, width: 0}\n", "m.yaml");
  BOOST_TEST(error_of([&] { (void)refused.make_model(); }).key() == "model.width");
  const Recipe missing = Recipe::parse("data: {class: CliData}\n", "d.yaml");
  BOOST_TEST(contains(error_of([&] { (void)missing.make_data(); }).problem(),
                      "missing required option 'rows'"));
  // An unknown class is refused when the recipe loads, with a suggestion.
  const RecipeError unknown_class =
      error_of([] { (void)Recipe::parse("trainer: {}\nmodel:\n  class: CliModle\n", "c.yaml"); });
  BOOST_TEST(unknown_class.line() == 3);
  BOOST_TEST(contains(unknown_class.problem(), "did you mean 'CliModel'?"));
  // Two models registered: the section must say which.
  BOOST_TEST(contains(error_of([] { (void)Recipe::parse("model: {lr: 0.5}\n", "c.yaml"); }).what(),
                      "name the model with 'class:'"));
}

BOOST_AUTO_TEST_CASE(overrides_go_on_top_of_the_recipe) {
  const Recipe recipe =
      layered({"trainer.max_epochs=5", "model.lr=0.01", "data.rows=32",
               "callbacks+=LearningRateMonitor:{logging_interval: epoch}", "callbacks-=Timer"});
  BOOST_TEST(recipe.trainer_options().max_epochs().value() == 5);
  BOOST_TEST(recipe.trainer_options().limit_val_batches().fraction() == 0.5);  // kept
  auto model = std::dynamic_pointer_cast<CliModel>(recipe.make_model());
  BOOST_REQUIRE(model);
  BOOST_TEST(model->lr == 0.01);
  BOOST_TEST(model->width == 8);  // kept
  BOOST_TEST(std::dynamic_pointer_cast<CliData>(recipe.make_data())->rows == 32);
  const auto names = callback_names(recipe);
  BOOST_TEST(names.size() == 2u);
  BOOST_TEST(contains(names.at(0), "EarlyStopping"));
  BOOST_TEST(contains(names.at(1), "LearningRateMonitor"));
  // The spaced YAML form and a whole mapping work too; an empty value unsets a key.
  const Recipe spaced =
      layered({"callbacks+={ModelSummary: {max_depth: 2}}",
               "callbacks+=EarlyStopping: {monitor: train_loss}", "trainer.max_epochs="});
  BOOST_TEST(callback_names(spaced).size() == 4u);
  BOOST_TEST(!spaced.trainer_options().max_epochs().has_value());
  // Another model class drops the options given for the first one.
  const Recipe other = layered({"model.class=OtherModel"});
  BOOST_TEST(other.model_class() == "OtherModel");
  BOOST_TEST(std::dynamic_pointer_cast<OtherModel>(other.make_model()) != nullptr);
}

BOOST_AUTO_TEST_CASE(a_bad_override_names_the_argument_and_a_bad_file_its_place) {
  const RecipeError typed = error_of([] { (void)layered({"trainer.max_epochs=abc"}); });
  BOOST_TEST(typed.file() == "--trainer.max_epochs=abc");
  BOOST_TEST(typed.line() == 0);
  BOOST_TEST(std::string(typed.what()) ==
             "--trainer.max_epochs=abc: trainer.max_epochs: expected an integer, got 'abc'");
  // A value TrainerOptions refuses is put on its option.
  const RecipeError invalid = error_of([] { (void)layered({"trainer.max_steps=-5"}); });
  BOOST_TEST(invalid.file() == "--trainer.max_steps=-5");
  BOOST_TEST(invalid.key() == "trainer.max_steps");
  BOOST_TEST(contains(invalid.problem(), "max_steps(-5) is invalid"));
  // A model option from the command line, checked by the factory.
  const Recipe model_typo = layered({"model.lrr=3"});
  const RecipeError factory = error_of([&] { (void)model_typo.make_model(); });
  BOOST_TEST(factory.file() == "--model.lrr=3");
  BOOST_TEST(contains(factory.problem(), "unknown option 'lrr'"));
  // An added callback's bad option, a removal of what is not there, an unknown section.
  BOOST_TEST(contains(
      error_of([] {
        (void)layered({"callbacks+=EarlyStopping:{monitor: x, patience: soon}"});
      }).what(),
      "--callbacks+=EarlyStopping:{monitor: x, patience: soon}: callbacks[2].EarlyStopping."
      "patience: expected an integer"));
  BOOST_TEST(contains(error_of([] { (void)layered({"callbacks-=Timr"}); }).problem(),
                      "its callbacks are: EarlyStopping, Timer"));
  BOOST_TEST(contains(error_of([] { (void)layered({"trainr.max_epochs=1"}); }).problem(),
                      "unknown section 'trainr'"));
  // An error in a file keeps the file's line and column after merging.
  RecipeLayers layers;
  layers.add_text("trainer:\n  max_epochs: 2\n  limit_val_batchs: 3\n", "one.yaml");
  layers.add_text("trainer:\n  max_epochs: 4\n", "two.yaml");
  layers.add_override("trainer.max_steps=10");
  const RecipeError from_file = error_of([&] { (void)layers.build(); });
  BOOST_TEST(from_file.file() == "one.yaml");
  BOOST_TEST(from_file.line() == 3);
  BOOST_TEST(from_file.column() == 3);
  BOOST_TEST(contains(from_file.problem(), "unknown option 'limit_val_batchs'"));
}

BOOST_AUTO_TEST_CASE(the_printed_recipe_loads_back_to_the_same_run) {
  const Recipe recipe =
      layered({"trainer.precision=\"32\"", "model.lr=0.5",
               "callbacks+=LearningRateMonitor:{logging_interval: epoch}", "trace=ring:100"});
  const std::string text = recipe.to_yaml();
  BOOST_TEST_MESSAGE(text);
  const Recipe again = Recipe::parse(text, "printed.yaml");
  BOOST_TEST(again.to_yaml() == text);
  for (const char* section : {"trainer", "model", "data", "callbacks", "trace"})
    BOOST_TEST(again.section(section) == recipe.section(section), section);
  BOOST_TEST(again.trace() == "ring:100");
  BOOST_TEST(std::dynamic_pointer_cast<CliModel>(again.make_model())->lr == 0.5);
  BOOST_TEST(callback_names(again) == callback_names(recipe), boost::test_tools::per_element());
  // Quoted strings stay strings: "00:00:30:00" would otherwise be read as a sexagesimal number
  // by other YAML readers, "32" as an integer.
  BOOST_TEST(contains(text, "\"00:00:30:00\""));
  BOOST_TEST(contains(text, "precision: \"32\""));
}

BOOST_AUTO_TEST_CASE(the_cli_reads_overrides_aliases_and_refuses_mistakes) {
  {
    Cli cli("prog", "A test program.");
    bool flag = false;
    cli.defaults(kBase).alias("--epochs", "trainer.max_epochs").flag("--resume", flag, "resume");
    BOOST_TEST(!parse(cli, {"--epochs", "7", "--model.lr", "0.25", "--resume",
                            "--callbacks+=ModelSummary", "--data.rows=3"})
                    .has_value());
    BOOST_TEST(flag);
    BOOST_TEST(cli.recipe().trainer_options().max_epochs().value() == 7);
    BOOST_TEST(std::dynamic_pointer_cast<CliModel>(cli.model())->lr == 0.25);
    BOOST_TEST(std::dynamic_pointer_cast<CliData>(cli.data())->rows == 3);
    BOOST_TEST(callback_names(cli.recipe()).size() == 3u);
  }
  // Usage errors and bad values: status 2, before anything is returned to train.
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--bogus"},
                                              {"--bogus=3"},
                                              {"--epochs"},
                                              {"--epochs", "x"},
                                              {"--trainer.max_epochs"},
                                              {"--model.width=0"},
                                              {"--callbacks-=Nope"},
                                              {"stray"},
                                              {"--resume=yes"},
                                              {"--config"},
                                              {"--config", "/nonexistent.yaml"}}) {
    Cli cli("prog", "A test program.");
    bool flag = false;
    cli.defaults(kBase).alias("--epochs", "trainer.max_epochs").flag("--resume", flag, "resume");
    BOOST_TEST(parse(cli, bad).value_or(-1) == Cli::kUsageError, bad.front());
  }
  // --help, --version and --print-config: status 0, no run.
  for (const char* done : {"--help", "-h", "--version", "--print-config"}) {
    Cli cli("prog", "A test program.");
    cli.defaults(kBase);
    BOOST_TEST(parse(cli, {done}).value_or(-1) == 0, done);
  }
  // --help lists every trainer option with its type and the value in effect, the model's and
  // the data's options, and the override syntax.
  Cli cli("prog", "A test program.");
  cli.defaults(kBase);
  BOOST_TEST(!parse(cli, {"--trainer.max_epochs=9"}).has_value());
  const std::string help = cli.help();
  BOOST_TEST_MESSAGE(help);
  BOOST_TEST(contains(help, "Usage: prog [OPTIONS]"));
  for (const char* line :
       {"--trainer.max_epochs", "--trainer.fast_dev_run", "--trainer.precision",
        "--trainer.limit_train_batches", "--trainer.devices", "--trainer.logger", "--model.width",
        "--model.lr", "--data.rows", "--callbacks+=NAME", "--print-config"})
    BOOST_TEST(contains(help, line), line);
  const auto line_of = [&](const std::string& key) {
    const std::size_t at = help.find("--" + key + " ");
    return at == std::string::npos ? std::string() : help.substr(at, help.find('\n', at) - at);
  };
  BOOST_TEST(contains(line_of("trainer.max_epochs"), "integer"));
  BOOST_TEST(contains(line_of("trainer.max_epochs"), "9"));
  BOOST_TEST(contains(line_of("trainer.max_steps"), "-1"));
  BOOST_TEST(contains(line_of("model.lr"), "number"));
  BOOST_TEST(contains(line_of("model.lr"), "0.1"));
  BOOST_TEST(contains(line_of("model.width"), "8"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_cli_tests
