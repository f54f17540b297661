// hookline::Cli: the command line read into recipe layers (recipe/cli.hpp), and --help.
#include "hookline/core/data_module.hpp"
#include "hookline/core/module.hpp"
#include "hookline/recipe/cli.hpp"
#include "hookline/recipe/registry.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace hookline {

namespace cli_detail {
// One argument the program declared: a flag, an option with a value, or an alias of a key.
struct CliDeclared {
  std::string name;
  std::string help;
  bool* flag = nullptr;
  std::string* option = nullptr;
  std::string key;  // an alias: the recipe key it sets
};
}  // namespace cli_detail

namespace {

// A usage error (said as "<program>: <message>").
struct CliUsageError {
  std::string message;
};

std::string cli_pad(const std::string& text, std::size_t width) {
  return text.size() >= width ? text + "  " : text + std::string(width - text.size(), ' ');
}

bool cli_starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// The recipe section an override names: "--trainer.max_epochs" -> "trainer".
std::string cli_section_of(const std::string& name) {
  const std::size_t end = name.find_first_of(".+-=", 2);
  return name.substr(2, end == std::string::npos ? std::string::npos : end - 2);
}

}  // namespace

struct Cli::Impl {
  std::string program;
  std::string description;
  std::string version;
  std::string defaults;
  std::string default_config;
  std::string positional_help;
  std::vector<cli_detail::CliDeclared> declared;
  std::optional<Recipe> recipe;
  std::shared_ptr<Module> model;
  std::shared_ptr<DataModule> data;

  const cli_detail::CliDeclared* find(const std::string& name) const {
    for (const auto& d : declared)
      if (d.name == name) return &d;
    return nullptr;
  }

  RecipeLayers base_layers(const std::optional<std::string>& positional,
                           const std::vector<std::string>& configs) const {
    RecipeLayers layers;
    if (!defaults.empty()) layers.add_text(defaults, program + " defaults");
    if (positional)
      layers.add_file(*positional);
    else if (!default_config.empty())
      layers.add_file(default_config);
    for (const auto& config : configs) layers.add_file(config);
    return layers;
  }

  std::string usage_line() const {
    return "Usage: " + program + " [OPTIONS]" +
           (positional_help.empty() ? std::string() : " [RECIPE]") + "\n";
  }

  std::string help(const Recipe* in_effect) const {
    std::ostringstream out;
    out << usage_line() << "\n" << description << "\n\n";
    out << "Options:\n";
    const auto line = [&](const std::string& name, const std::string& text) {
      out << "  " << cli_pad(name, 34) << text << "\n";
    };
    if (!positional_help.empty()) line("RECIPE", positional_help);
    line("-h, --help", "this help, with the values in effect");
    line("--version", "the version");
    line("--print-config", "print the recipe in effect (YAML) and exit; run it with --config");
    line("-c, --config FILE", "a recipe file over the defaults (repeatable; later ones win)");
    for (const auto& d : declared)
      line(d.name + (d.option || !d.key.empty() ? " VALUE" : ""),
           d.key.empty() ? d.help : "the same as --" + d.key + "=VALUE");
    out << "\nRecipe overrides (over the defaults and the recipe files; a VALUE is YAML):\n";
    line("--trainer.NAME=VALUE", "a trainer option (below)");
    line("--model.NAME=VALUE", "a model option (below); --model.class=NAME another model");
    line("--data.NAME=VALUE", "a data module option (below); --data.class=NAME another one");
    line("--callbacks+=NAME[:{OPTIONS}]", "add a callback or pack, e.g.");
    line("", "--callbacks+=EarlyStopping:{monitor: val_loss, patience: 3}");
    line("--callbacks-=NAME", "remove the callbacks or packs of that name");
    line("--callbacks=[...]", "the whole list");
    line("--trace=SPEC, --reload=BOOL", "tracing (as HOOKLINE_TRACE), live reload of the recipe");
    line("--NAME.KEY= (empty)", "unset the key (its default applies)");
    if (in_effect) {
      const auto section = [&](const std::string& name, const std::string& title) {
        std::vector<RecipeOptions::Asked> asked;
        try {
          asked = in_effect->describe(name);
        } catch (const std::exception& e) {
          out << "\n" << title << ": cannot list them: " << e.what() << "\n";
          return;
        }
        if (asked.empty()) return;
        out << "\n" << title << " (TYPE: value in effect):\n";
        std::size_t width = 32;
        for (const auto& a : asked) width = std::max(width, name.size() + 1 + a.key.size() + 2);
        for (const auto& a : asked)
          out << "  --" << cli_pad(name + "." + a.key, width) << cli_pad(a.type, 22)
              << (a.value.empty() ? "(none)" : a.value) << "\n";
      };
      section("trainer", "Trainer options");
      if (in_effect->has_model()) section("model", "Model '" + in_effect->model_class() + "'");
      if (in_effect->has_data()) section("data", "Data module '" + in_effect->data_class() + "'");
      const std::string text = in_effect->section("callbacks");
      if (!text.empty()) out << "\nCallbacks in effect:\n" << text << "\n";
    }
    const Registry& r = registry();
    out << "\nRegistered models: " << cli_names(r.model_names())
        << "\nRegistered data modules: " << cli_names(r.data_names())
        << "\nRegistered callbacks: " << cli_names(r.callback_names())
        << "\nRegistered packs: " << cli_names(r.pack_names()) << "\n";
    out << "\nExit status: 0 done, 1 the run failed, 2 a usage error or a bad recipe.\n";
    return out.str();
  }

  static std::string cli_names(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out.empty() ? "(none)" : out;
  }

  // The command line's overrides (text without "--", and the argument as typed) and the rest.
  std::optional<int> parse(const std::vector<std::string>& args) {
    bool want_help = false, print = false;
    std::optional<std::string> positional;
    std::vector<std::string> configs;
    std::vector<std::pair<std::string, std::string>> overrides;
    // The value of option `name`: after '=', else the next argument (not one starting "--").
    const auto value_of = [&](std::size_t& i, const std::string& name,
                              const std::optional<std::string>& inline_value) {
      if (inline_value) return std::make_pair(*inline_value, args[i]);
      if (i + 1 >= args.size() || cli_starts_with(args[i + 1], "--"))
        throw CliUsageError{name + " needs a value"};
      ++i;
      return std::make_pair(args[i], args[i - 1] + " " + args[i]);
    };
    try {
      for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--help" || a == "-h") {
          want_help = true;
          continue;
        }
        if (a == "--version") {
          std::printf("%s\n", version.empty() ? program.c_str() : version.c_str());
          return 0;
        }
        if (a == "--print-config" || a == "--print_config") {
          print = true;
          continue;
        }
        if (a.empty() || a[0] != '-' || a == "-") {
          if (positional_help.empty() || positional)
            throw CliUsageError{"unexpected argument '" + a + "'" +
                                (positional ? " (the recipe is '" + *positional + "')" : "")};
          positional = a;
          continue;
        }
        const std::size_t eq = a.find('=');
        const std::string name = eq == std::string::npos ? a : a.substr(0, eq);
        const std::optional<std::string> inline_value =
            eq == std::string::npos ? std::nullopt : std::optional(a.substr(eq + 1));
        if (name == "--config" || name == "-c") {
          configs.push_back(value_of(i, name, inline_value).first);
        } else if (const cli_detail::CliDeclared* d = find(name)) {
          if (d->flag) {
            if (inline_value) throw CliUsageError{name + " takes no value"};
            *d->flag = true;
          } else if (d->option) {
            *d->option = value_of(i, name, inline_value).first;
          } else {
            auto [value, typed] = value_of(i, name, inline_value);
            overrides.emplace_back(d->key + "=" + value, typed);
          }
        } else if (cli_starts_with(a, "--") && a.size() > 2 && cli_is_known(cli_section_of(name))) {
          const char last = name.back();
          if (last == '+' || last == '-') {
            if (!inline_value) throw CliUsageError{name + "=NAME needs its '=' and a value"};
            overrides.emplace_back(a.substr(2), a);
          } else {
            auto [value, typed] = value_of(i, name, inline_value);
            overrides.emplace_back(name.substr(2) + "=" + value, typed);
          }
        } else {
          throw CliUsageError{"unknown option '" + name + "'"};
        }
      }
    } catch (const CliUsageError& e) {
      std::fprintf(stderr, "%s: %s\nRun '%s --help' for the options.\n", program.c_str(),
                   e.message.c_str(), program.c_str());
      return kUsageError;
    }
    // --model.class / --data.class first: they decide which options the others are.
    std::stable_partition(overrides.begin(), overrides.end(), [](const auto& o) {
      return cli_starts_with(o.first, "model.class=") || cli_starts_with(o.first, "data.class=");
    });
    try {
      RecipeLayers layers = base_layers(positional, configs);
      for (const auto& [text, typed] : overrides) layers.add_override(text, typed);
      recipe.emplace(layers.build());
      if (!want_help) {
        if (const auto seed = recipe->trainer_options().seed()) torch::manual_seed(*seed);
        model = recipe->make_model();
        data = recipe->make_data();
      }
    } catch (const RecipeError& e) {
      if (want_help) {
        std::printf("%s", help(nullptr).c_str());
        std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
        return 0;
      }
      std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
      return kUsageError;
    }
    if (want_help) {
      std::printf("%s", help(&*recipe).c_str());
      return 0;
    }
    if (print) {
      std::printf("%s", recipe->to_yaml().c_str());
      return 0;
    }
    return std::nullopt;
  }

  static bool cli_is_known(const std::string& section) {
    for (const char* name : {"trainer", "model", "data", "trace", "reload", "packs", "callbacks"})
      if (section == name) return true;
    return false;
  }
};

Cli::Cli(std::string program, std::string description) : impl_(std::make_unique<Impl>()) {
  impl_->program = std::move(program);
  impl_->description = std::move(description);
}
Cli::~Cli() = default;

Cli& Cli::version(std::string text) {
  impl_->version = std::move(text);
  return *this;
}
Cli& Cli::defaults(std::string recipe_text) {
  impl_->defaults = std::move(recipe_text);
  return *this;
}
Cli& Cli::default_config(std::string path) {
  impl_->default_config = std::move(path);
  return *this;
}
Cli& Cli::positional_config(std::string help) {
  impl_->positional_help = std::move(help);
  return *this;
}
Cli& Cli::alias(std::string name, std::string key) {
  impl_->declared.push_back(
      cli_detail::CliDeclared{std::move(name), "", nullptr, nullptr, std::move(key)});
  return *this;
}
Cli& Cli::flag(std::string name, bool& target, std::string help) {
  impl_->declared.push_back(
      cli_detail::CliDeclared{std::move(name), std::move(help), &target, nullptr, ""});
  return *this;
}
Cli& Cli::option(std::string name, std::string& target, std::string help) {
  impl_->declared.push_back(
      cli_detail::CliDeclared{std::move(name), std::move(help), nullptr, &target, ""});
  return *this;
}

std::optional<int> Cli::parse(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return impl_->parse(args);
}

const Recipe& Cli::recipe() const {
  if (!impl_->recipe) throw std::logic_error("Cli::recipe(): parse() has not read a recipe");
  return *impl_->recipe;
}
std::shared_ptr<Module> Cli::model() const {
  return impl_->model;
}
std::shared_ptr<DataModule> Cli::data() const {
  return impl_->data;
}

std::string Cli::help() const {
  if (impl_->recipe) return impl_->help(&*impl_->recipe);
  try {
    const Recipe defaults = impl_->base_layers(std::nullopt, {}).build();
    return impl_->help(&defaults);
  } catch (const RecipeError&) {
    return impl_->help(nullptr);
  }
}

}  // namespace hookline
