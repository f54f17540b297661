// hookline examples: the command line they share.
//
// fashion_mnist, recipe and ddp read their command lines with hookline::Cli (recipe/cli.hpp):
// every recipe key is an option (--trainer.max_epochs=5, --model.lr=0.01, --data.batch_size 128,
// --callbacks+=EarlyStopping:{monitor: val_loss}, --trace=t.jsonl), --config FILE layers a recipe
// file, --print-config prints the recipe in effect, --help lists every option with the value in
// effect. The short spellings below (--epochs, --limit-train-batches, ...) are aliases of keys.
//   --help, -h         prints the usage and exits 0 without training
//   --version          prints "<example> (hookline X.Y.Z)" and exits 0
//   a usage error      (an unknown option, a missing value, a value of the wrong kind or out of
//                      range) names the option and exits 2 before anything trains
// readme_example, the README's few lines, takes only --help and --version (CLI11).
#pragma once

#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/recipe/cli.hpp>
#include <hookline/recipe/recipe_options.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "example_version.hpp"  // HOOKLINE_EXAMPLE_VERSION: the hookline version of this build

namespace hookline_examples {

/// The exit status of a usage error (as getopt-style programs and hookline-trace use).
inline constexpr int kUsageError = hookline::Cli::kUsageError;

/// --version, and the aliases the examples share: --epochs, --limit-train-batches, --threads,
/// --root-dir, --data-dir, --batch-size and --trace.
inline void setup_cli(hookline::Cli& cli, const std::string& name) {
  cli.version(name + " (hookline " HOOKLINE_EXAMPLE_VERSION ")")
      .alias("--epochs", "trainer.max_epochs")
      .alias("--limit-train-batches", "trainer.limit_train_batches")
      .alias("--threads", "trainer.num_threads")
      .alias("--root-dir", "trainer.default_root_dir")
      .alias("--data-dir", "data.data_dir")
      .alias("--batch-size", "data.batch_size")
      .alias("--trace", "trace");
}

/// The data options the examples' data modules share: data_dir and batch_size (> 0).
struct DataOptions {
  std::string dir;
  std::int64_t batch_size;
};
inline DataOptions data_options(hookline::RecipeOptions& o) {
  DataOptions d{o.get_or<std::string>("data_dir", std::string(hookline::data::kFashionMnistDir)),
                o.get_or<std::int64_t>("batch_size", 64)};
  if (d.batch_size < 1)
    o.fail("batch_size", "expected a positive integer, got " + std::to_string(d.batch_size));
  return d;
}

/// readme_example's CLI11 command line: --version and the exit statuses in the help's footer.
inline void setup_cli(CLI::App& app) {
  app.set_version_flag("--version", app.get_name() + " (hookline " HOOKLINE_EXAMPLE_VERSION ")");
  app.footer("Exit status: 0 done, 1 the run failed, 2 a usage error.\n");
}

/// Parses argv; --help and --version exit 0, a usage error exits kUsageError.
inline void parse_cli(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    std::exit(code == 0 ? 0 : kUsageError);
  }
}

}  // namespace hookline_examples
