// Tracing a Trainer: a traced fit runs the same hooks as an untraced one; records carry the run's
// context; the ring buffer is dumped on an exception and on SIGTERM (HOOKLINE_TRACE in a child
// process); `hookline-trace check` accepts real traces of every loop variation and rejects one
// with a hook out of order; `diff` finds a planted reordering; `tail` follows a live run over
// loopback. Runs `hookline-trace` given as -- --trace-tool=PATH (and fault_child as
// --fault-child=PATH).
//
// With HOOKLINE_TRACE_FIXTURES=DIR set, the scenario traces are also copied to DIR (that is how
// test/tools/trace/*.jsonl were made).
#include <boost/test/unit_test.hpp>

#include "jsonl.hpp"
#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/recipe/tracing.hpp>
#include <hookline/tracing/trace_sinks.hpp>
#include <hookline/tracing/trace_stream.hpp>

#include <nlohmann/json.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace hookline_test_trace_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string suite_arg(const std::string& prefix) {
  const auto& suite = boost::unit_test::framework::master_test_suite();
  for (int i = 1; i < suite.argc; ++i) {
    const std::string a = suite.argv[i];
    if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
  }
  return {};
}
std::string tool() {
  return suite_arg("--trace-tool=");
}

using test_support::read_text;
using test_support::TempDir;

// The records of the JSON-lines file `path`.
std::vector<json> read_jsonl(const std::string& path) {
  return test_support::parse_jsonl(read_text(path));
}

void write_lines(const std::string& path, const std::vector<json>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l.dump() << '\n';
}

// Runs a command through the shell; returns its exit code and what it printed.
struct Ran {
  int code = -1;
  std::string output;
};
Ran run(const std::string& command, const TempDir& dir) {
  const std::string out = dir.file("command-output.txt");
  const int status = std::system((command + " > " + out + " 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(out)};
}

// Copies a scenario trace to HOOKLINE_TRACE_FIXTURES, when set.
void keep_fixture(const std::string& path, const std::string& name) {
  if (const char* dir = std::getenv("HOOKLINE_TRACE_FIXTURES"))
    fs::copy_file(path, fs::path(dir) / name, fs::copy_options::overwrite_existing);
}

// Records the name of every hook emitted, first in line (before every band), without a tracer.
template <class... E>
void observe(Bus& bus, std::vector<std::string>& seen) {
  (bus.on<E>([&seen](const E&) { seen.emplace_back(E::name); },
             SubscribeOptions().named("observer").priority(-1000)),
   ...);
}
void observe_all(Bus& bus, std::vector<std::string>& seen) {
  observe<PrepareData, ConfigureModel, ConfigureShardedModel, FitStart, FitEnd, SanityCheckStart,
          SanityCheckEnd, TrainStart, TrainEnd, ValidationStart, ValidationEnd, TestStart, TestEnd,
          PredictStart, PredictEnd, Setup, Teardown, ConfigureCallbacks, ConfigureOptimizers,
          ExceptionRaised, TrainEpochStart, TrainEpochEnd, ValidationEpochStart, ValidationEpochEnd,
          TestEpochStart, TestEpochEnd, PredictEpochStart, PredictEpochEnd, ValidationModelZeroGrad,
          ValidationModelEval, ValidationModelTrain, TestModelEval, TestModelTrain,
          PredictModelEval, TrainDataloader, ValDataloader, TestDataloader, PredictDataloader,
          BeforeBatchTransfer, TransferBatchToDevice, AfterBatchTransfer, TrainBatchStart,
          TrainBatchEnd, ValidationBatchStart, ValidationBatchEnd, TestBatchStart, TestBatchEnd,
          PredictBatchStart, PredictBatchEnd, TrainingStep, ValidationStep, TestStep, PredictStep,
          BeforeZeroGrad, OptimizerZeroGrad, BeforeBackward, Backward, AfterBackward,
          BeforeOptimizerStep, ConfigureGradientClipping, OptimizerStep, LrSchedulerStep, StateDict,
          LoadStateDict, SaveCheckpoint, LoadCheckpoint>(bus, seen);
}

TrainerOptions small() {
  return TrainerOptions()
      .enable_progress_bar(false)
      .enable_model_summary(false)
      .max_epochs(2)
      .limit_train_batches(3)
      .limit_val_batches(2)
      .enable_checkpointing(false)
      .num_threads(1)
      .seed(3);
}

class SkipBatchModel : public BoringModel {
 public:
  Verdict on_train_batch_start(const Batch&, std::int64_t batch_idx) override {
    if (batch_idx == 1) return Verdict::skip_batch("skip batch 1");
    return {};
  }
};

class ThrowingModel : public BoringModel {
 public:
  StepOutput training_step(const Batch& batch, std::int64_t batch_idx) override {
    if (trainer().current_epoch() == 1 && batch_idx == 1) throw std::runtime_error("boom");
    return BoringModel::training_step(batch, batch_idx);
  }
};

// Saves a checkpoint from on_train_epoch_end (nested state_dict / on_save_checkpoint).
class SaveAtEpochEnd : public Callback {
 public:
  explicit SaveAtEpochEnd(std::string path) : Callback("saver"), path_(std::move(path)) {}
  void on_train_epoch_end(Trainer& trainer, Module&) override { trainer.save_checkpoint(path_); }

 private:
  std::string path_;
};

// Runs `body` on a trainer traced into DIR/NAME.jsonl; returns the path.
std::string traced(const TempDir& dir, const std::string& name, TrainerOptions options,
                   const std::function<void(Trainer&)>& body,
                   std::vector<std::shared_ptr<Callback>> callbacks = {}) {
  const std::string path = dir.file(name + ".jsonl");
  {
    Trainer trainer(std::move(options), std::move(callbacks));
    enable_tracing(trainer, path);
    body(trainer);
  }
  keep_fixture(path, name + ".jsonl");
  return path;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tracing)

BOOST_AUTO_TEST_CASE(a_traced_fit_runs_the_same_hooks_as_an_untraced_one) {
  TempDir dir;
  auto fit = [&](bool trace, std::vector<std::string>& seen) {
    BoringModel model;
    torch::manual_seed(0);
    model.layer->reset_parameters();
    Trainer trainer(small(), {std::make_shared<NamedCallback>("cb")});
    observe_all(trainer.bus(), seen);
    std::shared_ptr<TraceRecorder> recorder;
    if (trace)
      recorder = enable_tracing(trainer, dir.file("fit.jsonl") +
                                             ",ring:100000,summary:" + dir.file("summary.txt") +
                                             ",chrome:" + dir.file("fit.json"));
    trainer.fit(model);
    if (trace) BOOST_TEST(recorder->sink<RingBufferSink>()->written() > 100u);
    return model.layer->weight.clone();
  };
  std::vector<std::string> plain, traced_seen;
  const auto w1 = fit(false, plain);
  const auto w2 = fit(true, traced_seen);
  BOOST_TEST(plain.size() > 100u);
  BOOST_TEST(plain == traced_seen, boost::test_tools::per_element());
  BOOST_TEST(at::equal(w1, w2));  // tracing changes nothing

  // The trace's emissions, in seq (start) order, are those same hooks.
  const auto lines = read_jsonl(dir.file("fit.jsonl"));
  std::map<std::int64_t, std::string> emitted;
  for (const auto& l : lines)
    if (l["kind"] == "emit") emitted[l["seq"].get<std::int64_t>()] = l["event"];
  std::vector<std::string> from_trace;
  for (const auto& [seq, name] : emitted) from_trace.push_back(name);
  BOOST_TEST(from_trace == plain, boost::test_tools::per_element());
  BOOST_TEST(fs::file_size(dir.file("fit.json")) > 1000u);
  BOOST_TEST(read_text(dir.file("summary.txt")).find("optimizer_step") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(records_carry_the_run_context) {
  TempDir dir;
  BoringModel model;
  const auto path = traced(dir, "context", small(), [&](Trainer& t) { t.fit(model); },
                           {std::make_shared<NamedCallback>("cb")});
  const auto lines = read_jsonl(path);
  bool saw_batch = false, saw_val = false;
  for (const auto& l : lines) {
    BOOST_TEST(l["stage"] == "fit");
    BOOST_TEST(l["rank"] == 0);
    if (l["event"] == "on_train_batch_end" && l["kind"] == "call" && l["subscriber"] == "cb" &&
        l["epoch"] == 1 && l["batch_idx"] == 2) {
      saw_batch = true;
      BOOST_TEST(l["global_step"] == 6);  // on_train_batch_end comes after the step
      BOOST_TEST(l["lane"] == "sync");
    }
    if (l["event"] == "on_validation_batch_start" && l["kind"] == "emit" &&
        l["dataloader_idx"] == 0 && l["batch_idx"] == 1)
      saw_val = true;
    if (l["event"] == "training_step" && l["kind"] == "emit") {
      BOOST_TEST(l["depth"] == 1);  // inside optimizer_step
      BOOST_TEST(l["parent"] != 0);
    }
  }
  BOOST_TEST(saw_batch);
  BOOST_TEST(saw_val);
}

BOOST_AUTO_TEST_CASE(the_ring_buffer_is_dumped_when_a_run_throws) {
  TempDir dir;
  ThrowingModel model;
  Trainer trainer(small());
  auto recorder = enable_tracing(trainer, "ring:40:" + dir.file("ring.jsonl"));
  BOOST_CHECK_THROW(trainer.fit(model), std::runtime_error);
  BOOST_TEST(recorder->sink<RingBufferSink>()->dumps() == 1u);
  const auto lines = read_jsonl(dir.file("ring.jsonl"));
  BOOST_REQUIRE(lines.size() == 40u);
  BOOST_TEST(lines.back()["event"] == "on_exception");
  BOOST_TEST(lines.back()["kind"] == "emit");
  // The emissions the exception unwound are there, marked aborted.
  std::vector<std::string> aborted;
  for (const auto& l : lines)
    if (l.value("aborted", false)) aborted.push_back(l["event"]);
  BOOST_TEST(aborted == (std::vector<std::string>{"training_step", "optimizer_step"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(hookline_trace_env_in_a_child_dumps_the_ring_on_sigterm) {
  const std::string child = suite_arg("--fault-child=");
  BOOST_REQUIRE_MESSAGE(!child.empty(), "run test_core with -- --fault-child=PATH");
  TempDir dir;
  // fault_child is an ordinary training program: tracing comes from the environment alone.
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("HOOKLINE_TRACE=", 0) != 0) env_storage.emplace_back(*e);
  env_storage.push_back("HOOKLINE_TRACE=ring:300:" + dir.file("ring.jsonl") + "," +
                        dir.file("full.jsonl"));
  std::vector<char*> envp;
  for (auto& s : env_storage) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args{child, dir.path.string(), "--sigterm-at-step", "6"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  BOOST_REQUIRE(::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data()) == 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM));
  const auto ring = read_jsonl(dir.file("ring.jsonl"));
  BOOST_REQUIRE(ring.size() == 300u);
  BOOST_TEST(ring.back()["event"] == "on_exception");
  // The full trace ends the same way, and is a valid (interrupted) fit.
  const auto full = read_jsonl(dir.file("full.jsonl"));
  BOOST_REQUIRE(full.size() > 300u);
  BOOST_TEST(full.back()["event"] == "on_exception");
  keep_fixture(dir.file("full.jsonl"), "sigterm.jsonl");
  if (!tool().empty()) {
    const Ran r = run(tool() + " check " + dir.file("full.jsonl"), dir);
    BOOST_TEST(r.code == 0, r.output);
  }
}

BOOST_AUTO_TEST_CASE(check_accepts_real_traces_of_every_loop_variation) {
  BOOST_REQUIRE_MESSAGE(!tool().empty(), "run test_core with -- --trace-tool=PATH");
  TempDir dir;
  std::vector<std::string> paths;
  {
    BoringModel m;
    paths.push_back(traced(dir, "fit", small(), [&](Trainer& t) { t.fit(m); },
                           {std::make_shared<NamedCallback>("cb")}));
  }
  {
    BoringModel m;
    paths.push_back(traced(dir, "validate", small(), [&](Trainer& t) { t.validate(m); }));
  }
  {
    BoringModel m;
    paths.push_back(traced(dir, "test", small(), [&](Trainer& t) { t.test(m); }));
  }
  {
    BoringModel m;
    paths.push_back(traced(dir, "predict", small(), [&](Trainer& t) { t.predict(m); }));
  }
  {
    BoringModel m;
    paths.push_back(
        traced(dir, "accumulate",
               small().limit_train_batches(5).accumulate_grad_batches(2).gradient_clip_val(0.5),
               [&](Trainer& t) { t.fit(m); }));
  }
  {
    SkipRestOfEpochModel m;
    paths.push_back(traced(dir, "skip_rest_of_epoch", small(), [&](Trainer& t) { t.fit(m); }));
  }
  {
    SkipBatchModel m;
    paths.push_back(traced(dir, "skip_batch", small(), [&](Trainer& t) { t.fit(m); }));
  }
  {
    BoringModel m;
    paths.push_back(traced(dir, "mid_epoch_validation",
                           small().limit_train_batches(4).val_check_interval(0.5),
                           [&](Trainer& t) { t.fit(m); }));
  }
  {
    ThrowingModel m;
    paths.push_back(traced(dir, "exception", small(),
                           [&](Trainer& t) { BOOST_CHECK_THROW(t.fit(m), std::runtime_error); }));
  }
  {
    ManualModel m;
    paths.push_back(traced(dir, "manual", small(), [&](Trainer& t) { t.fit(m); }));
  }
  {
    BoringModel m;
    m.num_val_loaders = 2;
    paths.push_back(traced(dir, "two_val_loaders", small(), [&](Trainer& t) { t.fit(m); }));
  }
  {
    BoringModel m;
    const std::string ckpt = dir.file("epoch.ckpt");
    paths.push_back(traced(dir, "fit_save_then_resume_then_test", small(),
                           [&](Trainer& t) {
                             t.fit(m);
                             BoringModel again;
                             t.fit(again, nullptr,
                                   ckpt);  // resumes after epoch 1's end: nothing left to train
                             t.test(m);
                           },
                           {std::make_shared<SaveAtEpochEnd>(ckpt)}));
  }
  for (const auto& path : paths) {
    const Ran r = run(tool() + " check " + path, dir);
    BOOST_TEST(r.code == 0, path << ": " << r.output);
    BOOST_TEST(r.output.find(": ok:") != std::string::npos, r.output);
  }
}

BOOST_AUTO_TEST_CASE(check_rejects_a_hook_out_of_order_and_diff_finds_a_reordering) {
  BOOST_REQUIRE_MESSAGE(!tool().empty(), "run test_core with -- --trace-tool=PATH");
  TempDir dir;
  BoringModel m;
  const auto path = traced(dir, "good", small(), [&](Trainer& t) { t.fit(m); });
  auto lines = read_jsonl(path);

  // Out of order: on_after_batch_transfer and on_train_batch_start of one batch swap places.
  auto bad = lines;
  json* after = nullptr;
  int line_of_after = 0;
  for (std::size_t i = 0; i < bad.size(); ++i) {
    json& l = bad[i];
    if (l["kind"] != "emit") continue;
    if (l["event"] == "on_after_batch_transfer" && l["stage"] == "fit" && l["epoch"] == 1) {
      after = &l;
      line_of_after = static_cast<int>(i + 1);
    } else if (after && l["event"] == "on_train_batch_start") {
      std::swap((*after)["event"], l["event"]);
      break;
    }
  }
  BOOST_REQUIRE(after != nullptr);
  write_lines(dir.file("out_of_order.jsonl"), bad);
  keep_fixture(dir.file("out_of_order.jsonl"), "out_of_order.jsonl");
  const Ran c = run(tool() + " check " + dir.file("out_of_order.jsonl"), dir);
  BOOST_TEST(c.code == 1, c.output);
  BOOST_TEST(c.output.find(dir.file("out_of_order.jsonl") + ":" + std::to_string(line_of_after) +
                           ": hook out of order: expected 'on_after_batch_transfer'") == 0u,
             c.output);

  // A planted reordering: two adjacent records of epoch 1 swapped.
  auto moved = lines;
  std::size_t at = 0;
  for (std::size_t i = 0; i + 1 < moved.size(); ++i)
    if (moved[i]["event"] == "on_train_epoch_start" && moved[i]["kind"] == "emit" &&
        moved[i]["epoch"] == 1) {
      at = i + 1;  // the record after it (0-based), swapped with the next one
      break;
    }
  BOOST_REQUIRE(at > 0);
  std::swap(moved[at], moved[at + 1]);
  write_lines(dir.file("reordered.jsonl"), moved);
  keep_fixture(dir.file("reordered.jsonl"), "reordered.jsonl");
  const Ran d = run(tool() + " diff " + path + " " + dir.file("reordered.jsonl"), dir);
  BOOST_TEST(d.code == 1, d.output);
  BOOST_TEST(d.output.find("traces differ at record " + std::to_string(at + 1)) == 0u, d.output);
  BOOST_TEST(d.output.find("reordered") != std::string::npos, d.output);
  const Ran same = run(tool() + " diff " + path + " " + path, dir);
  BOOST_TEST(same.code == 0, same.output);
}

BOOST_AUTO_TEST_CASE(tail_follows_a_live_run_over_loopback) {
  BOOST_REQUIRE_MESSAGE(!tool().empty(), "run test_core with -- --trace-tool=PATH");
  TempDir dir;
  BoringModel model;
  Trainer trainer(small().max_epochs(1));
  auto recorder = enable_tracing(trainer, "tcp:0");
  auto server = recorder->sink<TraceStreamServer>();
  BOOST_REQUIRE(server);
  // tail, in the background, keeps the first 5 on_train_batch_end calls of the module.
  const std::string out = dir.file("tail.txt");
  auto tail = std::async(std::launch::async, [&] {
    return std::system((tool() + " tail 127.0.0.1:" + std::to_string(server->port()) +
                        " --event on_train_batch_end --kind call --subscriber lm -n 3 "
                        "--timeout 60 > " +
                        out + " 2>&1")
                           .c_str());
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (server->clients() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  BOOST_REQUIRE(server->clients() == 1u);
  trainer.fit(model);
  const int status = tail.get();
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), read_text(out));
  std::vector<json> got = read_jsonl(out);
  BOOST_REQUIRE(got.size() == 3u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST(got[i]["event"] == "on_train_batch_end");
    BOOST_TEST(got[i]["batch_idx"] == static_cast<int>(i));
  }
}

BOOST_AUTO_TEST_CASE(a_bad_environment_spec_is_named) {
  ::setenv(kTraceEnvironmentVariable, "ring:lots", 1);
  BOOST_CHECK_EXCEPTION(
      Trainer{TrainerOptions().enable_progress_bar(false).enable_model_summary(false)},
      std::invalid_argument, [](const std::invalid_argument& e) {
        return std::string(e.what()).find("HOOKLINE_TRACE='ring:lots'") == 0;
      });
  ::unsetenv(kTraceEnvironmentVariable);
  BOOST_CHECK_NO_THROW(
      Trainer{TrainerOptions().enable_progress_bar(false).enable_model_summary(false)});
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_trace_tests
