// hookline examples: the command line they share (CLI11).
//
// Each example makes a CLI::App, calls setup_cli() on it, adds the shared options it takes
// (below) and its own, and calls parse_cli(). Then:
//   --help, -h     prints the usage and exits 0 without training
//   --version      prints "<example> (hookline X.Y.Z)" and exits 0
//   a usage error  (an unknown option, a missing value, a value of the wrong kind or out of
//                  range) prints CLI11's message, which names the option, and exits 2
// "--opt value" and "--opt=value" both work.
#pragma once

#include <hookline/core/data/fashion_mnist.hpp>
#include <hookline/core/trainer_options.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "example_version.hpp"  // HOOKLINE_EXAMPLE_VERSION: the hookline version of this build

namespace hookline_examples {

/// The exit status of a usage error (as getopt-style programs and hookline-trace use).
inline constexpr int kUsageError = 2;

/// --version and the exit statuses in the help's footer.
inline void setup_cli(CLI::App& app) {
  app.set_version_flag("--version", app.get_name() + " (hookline " HOOKLINE_EXAMPLE_VERSION ")");
  app.footer("Exit status: 0 done, 1 the run failed, 2 a usage error.\n");
}

/// A whole number above zero, said plainly when it is not ("expected a positive integer, got
/// '0.5'"; CLI::PositiveNumber's message prints the range of a double).
inline CLI::Validator positive_integer(const std::string& what = "") {
  return CLI::Validator(
      [what](std::string& text) -> std::string {
        std::size_t used = 0;
        try {
          if (!text.empty() && text[0] != '+' && text[0] != '-' && std::stoll(text, &used) > 0 &&
              used == text.size())
            return {};
        } catch (const std::exception&) {
        }
        return "expected a positive integer" + (what.empty() ? "" : " (" + what + ")") + ", got '" +
               text + "'";
      },
      "N>0");
}

/// Parses argv; --help and --version exit 0, a usage error exits kUsageError (both after
/// printing what CLI11 says).
inline void parse_cli(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    std::exit(code == 0 ? 0 : kUsageError);
  }
}

/// --epochs N (N > 0).
inline CLI::Option* add_epochs(CLI::App& app, std::int64_t& epochs) {
  return app.add_option("--epochs", epochs, "epochs to train")
      ->check(positive_integer())
      ->capture_default_str();
}

/// --data-dir DIR: where the Fashion-MNIST files are (kept as a string: a std::filesystem::path
/// looks like a container to CLI11's type traits).
inline CLI::Option* add_data_dir(CLI::App& app, std::string& dir) {
  dir = hookline::data::kFashionMnistDir;
  return app.add_option("--data-dir", dir, "the Fashion-MNIST files")->capture_default_str();
}

/// --limit-train-batches N: a number of batches (N > 0).
inline CLI::Option* add_limit_train_batches(CLI::App& app, std::int64_t& count) {
  return app.add_option("--limit-train-batches", count, "training batches per epoch")
      ->check(positive_integer("a number of batches"))
      ->capture_default_str();
}

/// --limit-train-batches N|FRACTION: a number of batches (N > 0) or a fraction of the epoch in
/// (0, 1] (a value with '.', 'e' or 'E' is a fraction, as in Lightning).
inline CLI::Option* add_limit_train_batches(CLI::App& app, hookline::BatchAmount& amount) {
  const CLI::Validator count_or_fraction(
      [](std::string& text) -> std::string {
        std::size_t used = 0;
        try {
          if (text.find_first_of(".eE") != std::string::npos) {
            const double x = std::stod(text, &used);
            if (used == text.size() && x > 0 && x <= 1) return {};
          } else if (std::stoll(text, &used) > 0 && used == text.size()) {
            return {};
          }
        } catch (const std::exception&) {
        }
        return "expected a number of batches > 0 or a fraction in (0, 1], got '" + text + "'";
      },
      "N|FRACTION");
  return app
      .add_option_function<std::string>(
          "--limit-train-batches",
          [&amount](const std::string& text) {
            if (text.find_first_of(".eE") != std::string::npos)
              amount = std::stod(text);
            else
              amount = static_cast<std::int64_t>(std::stoll(text));
          },
          "training batches per epoch: a count, or a fraction of the epoch (default: all)")
      ->check(count_or_fraction);
}

}  // namespace hookline_examples
