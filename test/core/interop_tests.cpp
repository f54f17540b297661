// Interop with Python (issue 30): the format-3 container, format-2 files, Lightning's checkpoint
// layout both ways, and TorchScript models trained by the Trainer.
//
// Suite checkpoint_interop runs everywhere (no Python): it reads committed fixtures (a format-2
// file written by hookline before format 3; a Lightning-layout file written by
// test/interop/interop.py) and scripts built in C++. Suite interop is disabled unless named: the
// `interop` CTest test (test/interop/run.cmake) runs it between the two halves of interop.py, with
// --interop-dir=DIR, on files Python has just written and for Python to check.
#include "checkpoint_helpers.hpp"
#include "child_process.hpp"

#include <hookline/callbacks/early_stopping.hpp>
#include <hookline/callbacks/lambda_callback.hpp>
#include <hookline/callbacks/model_checkpoint.hpp>
#include <hookline/core/checkpoint_io.hpp>
#include <hookline/core/console.hpp>
#include <hookline/core/data/dataloader.hpp>
#include <hookline/core/script_module.hpp>
#include <hookline/core/trainer.hpp>

#include <spdlog/sinks/ostream_sink.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using namespace hookline;
using test_support::checkpoint_error_of;
using test_support::contains;
using test_support::read_bytes;
using test_support::write_bytes;

fs::path fixtures() {
  return fs::path(__FILE__).parent_path() / "fixtures";
}

std::shared_ptr<data::DataLoader> interop_loader(std::uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  Batch all{{"x", torch::randn({16, 4}, gen)}, {"y", torch::randn({16, 2}, gen)}};
  return std::make_shared<data::DataLoader>(std::make_shared<data::TensorDataset>(all),
                                            data::DataLoaderOptions().batch_size(4));
}

// interop.py's Net: the same parameter names and shapes, Adam and a StepLR.
class InteropNet : public Module {
 public:
  InteropNet() : Module("interop_net") {
    l1 = register_module("l1", torch::nn::Linear(4, 8));
    l2 = register_module("l2", torch::nn::Linear(8, 2));
  }
  at::Tensor forward(const at::Tensor& x) { return l2(torch::tanh(l1(x))); }
  StepOutput training_step(const Batch& b, std::int64_t) override {
    return {{"loss", torch::mse_loss(forward(b["x"]), b["y"])}};
  }
  StepOutput validation_step(const Batch& b, std::int64_t, std::int64_t) override {
    auto loss = torch::mse_loss(forward(b["x"]), b["y"]);
    log("val_loss", loss);
    return {{"val_loss", loss}};
  }
  OptimizerConfig configure_optimizers() override {
    adam = std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(0.01));
    scheduler = std::make_shared<torch::optim::StepLR>(*adam, 1, 0.5);
    scheduler->step();  // PyTorch's constructor step
    OptimizerConfig config;
    config.add(adam);
    config.schedulers.push_back(SchedulerConfig::from(scheduler));
    return config;
  }
  DataLoaders train_dataloader() override { return {interop_loader(3)}; }
  DataLoaders val_dataloader() override { return {interop_loader(4)}; }
  torch::nn::Linear l1{nullptr}, l2{nullptr};
  std::shared_ptr<torch::optim::Adam> adam;
  std::shared_ptr<torch::optim::StepLR> scheduler;
};

TrainerOptions quiet(const fs::path& dir, std::int64_t epochs) {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .num_sanity_val_steps(0)
      .max_epochs(epochs)
      .default_root_dir(dir.string());
}

std::shared_ptr<ModelCheckpoint> model_checkpoint(const fs::path& dir) {
  return std::make_shared<ModelCheckpoint>(
      ModelCheckpointOptions().dirpath(dir.string()).monitor("val_loss"));
}
std::shared_ptr<EarlyStopping> early_stopping() {
  return std::make_shared<EarlyStopping>(EarlyStoppingOptions().monitor("val_loss").patience(9));
}

const at::Tensor& adam_state(torch::optim::Adam& adam, const at::Tensor& p, bool squared) {
  auto& state = static_cast<torch::optim::AdamParamState&>(
      *adam.state().at(c10::guts::to_string(p.unsafeGetTensorImpl())));
  return squared ? state.exp_avg_sq() : state.exp_avg();
}

// The console's lines while it lives.
struct ConsoleCapture {
  std::ostringstream text;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink =
      std::make_shared<spdlog::sinks::ostream_sink_mt>(text);
  ConsoleCapture() { console().sinks().push_back(sink); }
  ~ConsoleCapture() {
    auto& sinks = console().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  }
};

// Resumes `ckpt` (Lightning's layout, from interop.py) and checks, at on_train_start, what
// `expect` (.bin: weights, exp_avg, exp_avg_sq as float32; .txt: epoch, step and the scheduler's
// last_epoch) says, then that training goes on to the end of the third epoch.
void check_lightning_resume(const fs::path& ckpt, const fs::path& expect) {
  test_support::TempDir dir("hookline-lightning-");
  std::ifstream text(expect.string() + ".txt");
  std::int64_t epoch = -1, step = -1, scheduler_steps = -1;
  text >> epoch >> step >> scheduler_steps;
  BOOST_REQUIRE(step > 0);
  const std::vector<char> bytes = read_bytes(expect.string() + ".bin");
  InteropNet model;
  auto es = early_stopping();
  auto mc = model_checkpoint(dir.path / "ckpts");
  bool checked = false;
  LambdaHooks hooks;
  hooks.on_train_start = [&](Trainer& t, Module&) {
    checked = true;
    BOOST_TEST(t.current_epoch() == epoch + 1);  // saved at its end: the next one starts
    BOOST_TEST(t.global_step() == step);
    std::vector<at::Tensor> expected_tensors;
    std::size_t at = 0;
    std::vector<at::Tensor> live;
    for (const auto& p : model.named_parameters()) live.push_back(p.value().detach());
    for (const auto& p : model.parameters()) live.push_back(adam_state(*model.adam, p, false));
    for (const auto& p : model.parameters()) live.push_back(adam_state(*model.adam, p, true));
    for (const at::Tensor& t : live) {
      const std::size_t n = static_cast<std::size_t>(t.numel()) * sizeof(float);
      BOOST_REQUIRE(at + n <= bytes.size());
      BOOST_TEST(std::memcmp(t.contiguous().data_ptr<float>(), bytes.data() + at, n) == 0);
      at += n;
    }
    BOOST_TEST(at == bytes.size());
    const auto& options =
        static_cast<torch::optim::AdamOptions&>(model.adam->param_groups().front().options());
    BOOST_TEST(options.lr() == 0.005);  // one StepLR step of gamma 0.5 before the save
    // PyTorch's last_epoch, plus LibTorch's step for PyTorch's constructor step.
    BOOST_TEST(SchedulerConfig::lr_scheduler_step_count(*model.scheduler) == scheduler_steps + 1);
    BOOST_TEST(es->wait_count() == 1);
    BOOST_TEST(es->patience() == 3);
    BOOST_TEST(es->best_score() == 0.25f);
    BOOST_TEST(mc->best_model_path() == "/elsewhere/epoch=0-step=4.ckpt");
  };
  ConsoleCapture capture;
  Trainer trainer(quiet(dir.path, 3), {es, mc, std::make_shared<LambdaCallback>(hooks)});
  trainer.fit(model, nullptr, ckpt.string());
  BOOST_TEST(checked);
  BOOST_TEST(trainer.global_step() == step + 4);
  const std::string log = capture.text.str();
  BOOST_TEST(contains(log,
                      "hyper_parameters.loss_fn: a Python object "
                      "'torch.nn.modules.loss.MSELoss'"),
             log);
  BOOST_TEST(contains(log,
                      "hyper_parameters.data: a Python "
                      "'lightning.fabric.utilities.data.AttributeDict' (read as a plain dict)"),
             log);
  BOOST_TEST(contains(log, "'PythonOnlyCallback'"), log);
}

// A TorchScript model built in C++ (what torch.jit.script makes of interop.py's Net).
void write_script(const fs::path& path) {
  torch::manual_seed(5);
  torch::jit::Module model("Net");
  for (const char* name : {"l1", "l2"}) {
    torch::jit::Module layer(std::string("Linear_") + name);
    const std::int64_t in = name[1] == '1' ? 4 : 8, out = name[1] == '1' ? 8 : 2;
    // (is_buffer false: parameters; they need requires_grad, as nn.Parameter has)
    layer.register_parameter("weight", (torch::randn({out, in}) * 0.3).requires_grad_(), false);
    layer.register_parameter("bias", torch::zeros({out}).requires_grad_(), false);
    model.register_module(name, layer);
  }
  model.register_buffer("shift", torch::full({2}, 0.25));  // a buffer: checkpointed, not trained
  model.define(R"(
def forward(self, x: Tensor) -> Tensor:
    h = torch.tanh(torch.matmul(x, self.l1.weight.t()) + self.l1.bias)
    return torch.matmul(h, self.l2.weight.t()) + self.l2.bias + self.shift

def training_step(self, batch: Dict[str, Tensor], batch_idx: int) -> Dict[str, Tensor]:
    diff = self.forward(batch["x"]) - batch["y"]
    return {"loss": (diff * diff).mean()}

def configure_optimizers(self) -> Tuple[str, Dict[str, float]]:
    return ("SGD", {"lr": 0.1, "momentum": 0.5})
)");
  model.save(path.string());
}

// Trains the script at `script` for 2 epochs with checkpoints, resumes a third epoch from the last
// one, saves the result to `trained` and returns the outputs on interop.py's probe input.
at::Tensor train_script(const fs::path& script, const fs::path& trained, const fs::path& dir,
                        const fs::path& checkpoint_copy = {}) {
  const at::Tensor probe = (torch::arange(40, torch::kFloat32) / 8 - 2.5).reshape({10, 4});
  ScriptModuleOptions options;
  options.validation_step = [](ScriptModule& m, const Batch& b, std::int64_t) {
    auto loss = torch::mse_loss(m.forward(b["x"]), b["y"]);
    m.log("val_loss", loss);
    return StepOutput{{"val_loss", loss}};
  };
  auto fit = [&](ScriptModule& model, std::int64_t epochs, const std::string& ckpt) {
    auto mc = std::make_shared<ModelCheckpoint>(ModelCheckpointOptions()
                                                    .dirpath((dir / "ckpts").string())
                                                    .monitor("val_loss")
                                                    .save_last(SaveLast::yes));
    Trainer trainer(quiet(dir, epochs), {mc, early_stopping()});
    class Data : public DataModule {
     public:
      DataLoaders train_dataloader() override { return {interop_loader(3)}; }
      DataLoaders val_dataloader() override { return {interop_loader(4)}; }
    } data;
    trainer.fit(model, &data, ckpt);
    return trainer.global_step();
  };
  ScriptModule first(script.string(), options);
  const at::Tensor before = first.forward(probe).detach().clone();
  BOOST_TEST(fit(first, 2, "") == 8);
  BOOST_TEST(!at::equal(first.forward(probe), before));  // the script's own tensors trained
  ScriptModule second(script.string(), options);
  BOOST_TEST(fit(second, 3, (dir / "ckpts" / "last.ckpt").string()) == 12);
  // The script's names are the module's: parameters, and buffers when the script has them.
  const auto saved =
      read_checkpoint_file(dir / "ckpts" / "last.ckpt").toGenericDict().at("state_dict");
  for (const auto& item : second.named_parameters())
    BOOST_TEST(saved.toGenericDict().contains(item.key()), item.key());
  for (const auto& item : second.named_buffers())
    BOOST_TEST(saved.toGenericDict().contains(item.key()), item.key());
  BOOST_TEST(second.named_buffers().size() == second.script().named_buffers().size());
  BOOST_TEST(second.named_parameters().size() == second.script().named_parameters().size());
  if (!checkpoint_copy.empty()) fs::copy_file(dir / "ckpts" / "last.ckpt", checkpoint_copy);
  second.save_script(trained.string());
  second.eval();
  torch::NoGradGuard no_grad;
  const at::Tensor out = second.forward(probe).detach().clone();
  torch::jit::Module reloaded = torch::jit::load(trained.string());
  reloaded.eval();
  BOOST_TEST(at::equal(reloaded.forward({probe}).toTensor(), out));
  return out;
}

// Trains InteropNet for 3 epochs and writes, at on_train_end, `ckpt` and `reference` (its
// tensors and counters, plain torch::pickle_save, for interop.py to compare).
void write_hookline_checkpoint(const fs::path& ckpt, const fs::path& reference) {
  test_support::TempDir dir("hookline-interop-");
  torch::manual_seed(2);
  InteropNet model;
  model.hparams().set("hidden", std::int64_t{8});
  LambdaHooks hooks;
  hooks.on_train_end = [&](Trainer& t, Module&) {
    t.save_checkpoint(ckpt.string());
    c10::impl::GenericDict ref(c10::StringType::get(), c10::AnyType::get());
    c10::impl::GenericDict weights(c10::StringType::get(), c10::TensorType::get());
    for (const auto& p : model.state_dict()) weights.insert(p.key(), p.value().detach().clone());
    ref.insert("state_dict", weights);
    ref.insert("epoch", t.current_epoch());
    ref.insert("global_step", t.global_step());
    const std::int64_t steps = SchedulerConfig::lr_scheduler_step_count(*model.scheduler);
    ref.insert("scheduler_last_epoch", steps - 1);
    ref.insert("exp_avg", adam_state(*model.adam, model.l1->weight, false).clone());
    const std::vector<char> bytes = torch::jit::pickle_save(ref);
    write_bytes(reference, bytes);
  };
  Trainer trainer(quiet(dir.path, 3), {early_stopping(), model_checkpoint(dir.path / "ckpts"),
                                       std::make_shared<LambdaCallback>(hooks)});
  trainer.fit(model);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint_interop)

BOOST_AUTO_TEST_CASE(a_checkpoint_is_a_sealed_torch_archive) {
  test_support::TempDir dir("hookline-format-");
  c10::impl::GenericDict state(c10::StringType::get(), c10::AnyType::get());
  state.insert("w", torch::arange(6, torch::kFloat32).reshape({2, 3}));
  const fs::path file = dir.path / "a.ckpt";
  write_checkpoint_file(file, state);
  const std::vector<char> bytes = read_bytes(file);
  BOOST_TEST(std::memcmp(bytes.data(), "PK\x03\x04", 4) == 0);
  const std::string seal(bytes.end() - 31, bytes.end());
  BOOST_TEST(seal.rfind("HKLNCKPT 0003 ", 0) == 0, seal);
  BOOST_TEST(frame_checkpoint_payload(checkpoint_payload(bytes)) == bytes);
  BOOST_TEST(at::equal(read_checkpoint_file(file).toGenericDict().at("w").toTensor(),
                       state.at("w").toTensor()));
  // Without its seal it is an ordinary torch.save archive, read as Python's would be.
  write_bytes(file, torch::jit::pickle_save(state));
  BOOST_TEST(at::equal(read_checkpoint_file(file).toGenericDict().at("w").toTensor(),
                       state.at("w").toTensor()));
  // A seal that is damaged, or cut: corrupted or truncated, never read as unsealed.
  std::vector<char> damaged = bytes;
  damaged[damaged.size() - 31] ^= 0x10;
  write_bytes(file, damaged);
  BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(file); }), "corrupted"));
  write_bytes(file, std::vector<char>(bytes.begin(), bytes.end() - 5));
  BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(file); }), "truncated"));
}

BOOST_AUTO_TEST_CASE(format_2_files_still_load) {
  const fs::path fixture = fixtures() / "format2_last.ckpt";
  const auto top = read_checkpoint_file(fixture).toGenericDict();
  BOOST_TEST(top.at("format_version").toInt() == 2);
  BOOST_TEST(top.at("global_step").toInt() == 24);
  BOOST_TEST(top.at("state_dict").toGenericDict().size() == 4u);
  // Its header's checks still hold.
  test_support::TempDir dir("hookline-format2-");
  const std::vector<char> bytes = read_bytes(fixture);
  const fs::path bad = dir.path / "bad.ckpt";
  std::vector<char> flipped = bytes;
  flipped[20] ^= 1;
  write_bytes(bad, flipped);
  BOOST_TEST(
      contains(checkpoint_error_of([&] { read_checkpoint_file(bad); }), "header is corrupted"));
  flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  write_bytes(bad, flipped);
  BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(bad); }), "corrupted"));
  write_bytes(bad, std::vector<char>(bytes.begin(), bytes.end() - 1));
  BOOST_TEST(contains(checkpoint_error_of([&] { read_checkpoint_file(bad); }), "truncated"));
}

BOOST_AUTO_TEST_CASE(a_format_2_checkpoint_resumes) {
  // fault_child's Net, resumed from the last.ckpt it wrote at step 24 (epoch 2, batch 8 of 8).
  class Net : public Module {
   public:
    Net() : Module("net") {
      l1 = register_module("l1", torch::nn::Linear(16, 32));
      drop = register_module("drop", torch::nn::Dropout(0.2));
      l2 = register_module("l2", torch::nn::Linear(32, 2));
    }
    StepOutput training_step(const Batch& b, std::int64_t) override {
      return {{"loss", torch::mse_loss(l2(drop(torch::relu(l1(b["x"])))), b["y"])}};
    }
    OptimizerConfig configure_optimizers() override {
      return OptimizerConfig().add(
          std::make_shared<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(0.01)));
    }
    DataLoaders train_dataloader() override {
      at::Generator gen = at::detail::createCPUGenerator(3);
      Batch all{{"x", torch::randn({64, 16}, gen)}, {"y", torch::randn({64, 2}, gen)}};
      return {std::make_shared<data::DataLoader>(
          std::make_shared<data::TensorDataset>(all),
          data::DataLoaderOptions().batch_size(8).shuffle(true).seed(3))};
    }
    torch::nn::Linear l1{nullptr}, l2{nullptr};
    torch::nn::Dropout drop{nullptr};
  } model;
  const fs::path fixture = fixtures() / "format2_last.ckpt";
  const auto saved = read_checkpoint_file(fixture).toGenericDict().at("state_dict").toGenericDict();
  test_support::TempDir dir("hookline-format2-resume-");
  bool checked = false;
  LambdaHooks hooks;
  hooks.on_train_start = [&](Trainer& t, Module&) {
    checked = true;
    BOOST_TEST(t.global_step() == 24);
    BOOST_TEST(t.current_epoch() == 2);
    for (const auto& p : model.named_parameters())
      BOOST_TEST(at::equal(p.value(), saved.at(p.key()).toTensor()), p.key());
  };
  Trainer trainer(quiet(dir.path, 4).enable_checkpointing(false),
                  {std::make_shared<LambdaCallback>(hooks)});
  trainer.fit(model, nullptr, fixture.string());
  BOOST_TEST(checked);
  BOOST_TEST(trainer.global_step() == 32);
}

BOOST_AUTO_TEST_CASE(a_checkpoint_has_lightnings_keys_and_layouts) {
  test_support::TempDir dir("hookline-layout-");
  const fs::path ckpt = dir.path / "hookline.ckpt", reference = dir.path / "reference.pt";
  write_hookline_checkpoint(ckpt, reference);
  const auto top = read_checkpoint_file(ckpt).toGenericDict();
  BOOST_TEST(top.at("pytorch-lightning_version").toStringRef() == "2.2.0");
  BOOST_TEST(top.at("format_version").toInt() == 3);
  const auto fit = top.at("loops").toGenericDict().at("fit_loop").toGenericDict();
  const auto epochs = fit.at("epoch_progress").toGenericDict().at("current").toGenericDict();
  BOOST_TEST(epochs.at("completed").toInt() == top.at("epoch").toInt());
  const auto steps = fit.at("epoch_loop.automatic_optimization.optim_progress")
                         .toGenericDict()
                         .at("optimizer")
                         .toGenericDict()
                         .at("step")
                         .toGenericDict()
                         .at("total")
                         .toGenericDict();
  BOOST_TEST(steps.at("completed").toInt() == top.at("global_step").toInt());
  BOOST_TEST(fit.contains("hookline"));
  const auto callbacks = top.at("callbacks").toGenericDict();
  const auto es =
      callbacks.at("EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}").toGenericDict();
  BOOST_TEST(es.at("best_score").isTensor());
  const auto scheduler = top.at("lr_schedulers").toListRef().at(0).toGenericDict();
  BOOST_TEST(scheduler.at("last_epoch").toInt() == 3);
  BOOST_TEST(scheduler.at("_step_count").toInt() == 4);
  // And hookline resumes its own file (the loop state under "hookline", scores as tensors).
  InteropNet model;
  auto es_cb = early_stopping();
  Trainer trainer(quiet(dir.path, 4), {es_cb, model_checkpoint(dir.path / "ckpts")});
  trainer.fit(model, nullptr, ckpt.string());
  BOOST_TEST(trainer.global_step() == 16);
}

BOOST_AUTO_TEST_CASE(a_lightning_checkpoint_resumes) {
  check_lightning_resume(fixtures() / "lightning_2_2.ckpt", fixtures() / "lightning_2_2.expect");
}

BOOST_AUTO_TEST_CASE(a_lightning_checkpoint_from_mid_epoch_goes_on_after_its_batches) {
  // The fixture's counters as Lightning saves them after batch 2 of epoch 1 (global step 6).
  auto top = read_checkpoint_file(fixtures() / "lightning_2_2.ckpt").toGenericDict();
  const auto fit = top.at("loops").toGenericDict().at("fit_loop").toGenericDict();
  auto set = [](const c10::IValue& record, std::int64_t value,
                std::initializer_list<const char*> counters) {
    for (const char* part : {"total", "current"})
      for (const char* counter : counters)
        record.toGenericDict().at(part).toGenericDict().insert_or_assign(counter, value);
  };
  set(fit.at("epoch_progress"), 1, {"processed"});
  set(fit.at("epoch_loop.batch_progress"), 2, {"ready", "started", "processed", "completed"});
  fit.at("epoch_loop.batch_progress").toGenericDict().insert_or_assign("is_last_batch", false);
  set(fit.at("epoch_loop.automatic_optimization.optim_progress")
          .toGenericDict()
          .at("optimizer")
          .toGenericDict()
          .at("step"),
      6, {"ready", "completed"});
  top.insert_or_assign("global_step", std::int64_t{6});
  test_support::TempDir dir("hookline-lightning-mid-");
  const fs::path file = dir.path / "mid.ckpt";
  write_bytes(file, torch::jit::pickle_save(top));  // no seal: read as Python's
  InteropNet model;
  std::vector<std::int64_t> batches;
  LambdaHooks hooks;
  hooks.on_train_start = [&](Trainer& t, Module&) {
    BOOST_TEST(t.current_epoch() == 1);
    BOOST_TEST(t.global_step() == 6);
  };
  hooks.on_train_batch_end = [&](Trainer& t, Module&, const StepOutput&, const Batch&,
                                 std::int64_t batch_idx) {
    if (t.current_epoch() == 1) batches.push_back(batch_idx);
  };
  Trainer trainer(quiet(dir.path, 3), {std::make_shared<LambdaCallback>(hooks)});
  trainer.fit(model, nullptr, file.string());
  BOOST_TEST(batches == (std::vector<std::int64_t>{2, 3}));
  BOOST_TEST(trainer.global_step() == 12);
}

BOOST_AUTO_TEST_CASE(a_lightning_checkpoint_for_another_model_is_refused) {
  class Other : public InteropNet {
   public:
    Other() { l3 = register_module("l3", torch::nn::Linear(2, 2)); }
    torch::nn::Linear l3{nullptr};
  } model;
  test_support::TempDir dir("hookline-lightning-bad-");
  Trainer trainer(quiet(dir.path, 3), {});
  const std::string message = checkpoint_error_of(
      [&] { trainer.fit(model, nullptr, (fixtures() / "lightning_2_2.ckpt").string()); });
  BOOST_TEST(contains(message, "l3.weight"), message);
}

BOOST_AUTO_TEST_CASE(a_script_trains_checkpoints_and_saves_back) {
  test_support::TempDir dir("hookline-script-");
  write_script(dir.path / "model.pt");
  train_script(dir.path / "model.pt", dir.path / "trained.pt", dir.path);
  // A file that is not there: a clear error naming it.
  BOOST_CHECK_THROW(ScriptModule(dir.path / "missing.pt"), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// Run by test/interop/run.cmake only: test_core --run_test=interop -- --interop-dir=DIR.
BOOST_AUTO_TEST_SUITE(interop, *boost::unit_test::disabled())

BOOST_AUTO_TEST_CASE(with_python) {
  const std::string arg = test_support::framework_argument("--interop-dir=");
  BOOST_REQUIRE_MESSAGE(!arg.empty(), "run test_core with -- --interop-dir=DIR");
  const fs::path dir(arg);
  // Python -> hookline: the Lightning-layout file interop.py has just written.
  check_lightning_resume(dir / "lightning.ckpt", dir / "lightning.expect");
  // hookline -> Python: a checkpoint, and a script trained here.
  write_hookline_checkpoint(dir / "hookline.ckpt", dir / "hookline.reference.pt");
  test_support::TempDir work("hookline-interop-script-");
  const at::Tensor out =
      train_script(dir / "model.pt", dir / "trained.pt", work.path, dir / "script.ckpt");
  c10::impl::GenericDict outputs(c10::StringType::get(), c10::TensorType::get());
  outputs.insert("out", out);
  write_bytes(dir / "cpp_out.pt", torch::jit::pickle_save(outputs));
}

BOOST_AUTO_TEST_SUITE_END()
