// The progress bar (TQDMProgressBar) on a pseudo-terminal and on a pipe.
#include <boost/test/unit_test.hpp>

#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/progress_bar.hpp>
#include <hookline/loggers/csv_logger.hpp>

#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

namespace hookline_test_progress_bar_tests {

using namespace hookline;
using namespace test_support;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(progress_bar)

namespace {

class BarModel final : public BoringModel {
 public:
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    auto out = BoringModel::training_step(b, i);
    log("train_loss", 0.5, LogOptions().prog_bar(true));
    return out;
  }
};

// Runs `fit` with a bar writing to `write_fd`; returns what came out of `read_fd`.
std::string capture(int read_fd, int write_fd, std::shared_ptr<TQDMProgressBar> bar,
                    const TrainerOptions& options) {
  std::string out;
  std::thread reader([&] {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(read_fd, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  });
  std::FILE* stream = ::fdopen(write_fd, "w");
  bar->stream(stream);
  {
    BarModel model;
    Trainer trainer(options, {bar});
    trainer.fit(model);
  }
  std::fclose(stream);  // EOF for the reader (a pty master reads EIO)
  reader.join();
  return out;
}

TrainerOptions bar_options(const std::string& dir) {
  return TrainerOptions()
      .max_epochs(2)
      .limit_train_batches(5)
      .limit_val_batches(2)
      .num_sanity_val_steps(1)
      .enable_checkpointing(false)
      .logger(std::make_shared<CSVLogger>(dir));
}

}  // namespace

BOOST_AUTO_TEST_CASE(on_a_terminal_bars_are_redrawn_in_place) {
  int master = -1, slave = -1;
  winsize ws{};
  ws.ws_col = 120;
  ws.ws_row = 40;
  BOOST_REQUIRE_EQUAL(::openpty(&master, &slave, nullptr, nullptr, &ws), 0);
  const std::string out =
      capture(master, slave, std::make_shared<TQDMProgressBar>(), bar_options("bar_tty"));
  ::close(master);
  // The training bar: one line redrawn with \r for every batch of every epoch.
  std::size_t redraws = 0;
  for (std::size_t at = out.find("\rEpoch 0: "); at != std::string::npos;
       at = out.find("\rEpoch 0: ", at + 1))
    ++redraws;
  BOOST_TEST(redraws >= 5u);
  BOOST_TEST(contains(out, "\rEpoch 1: 100%|"));
  BOOST_TEST(contains(out, "| 5/5 ["));
  BOOST_TEST(contains(out, "it/s, v_num=0, train_loss=0.500]"));
  BOOST_TEST(contains(out, "\u2588"));  // bar glyphs
  // The validation bar is drawn on the line below and the cursor moved back up.
  BOOST_TEST(contains(out, "Validation DataLoader 0: 100%|"));
  BOOST_TEST(contains(out, "\x1b[A"));
  BOOST_TEST(contains(out, "Sanity Checking DataLoader 0:"));
  // Redraws never start a new line between two batches of one epoch.
  const std::size_t first = out.find("\rEpoch 0: ");
  const std::size_t second = out.find("\rEpoch 0: ", first + 1);
  BOOST_TEST(out.substr(first, second - first).find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(on_a_pipe_plain_lines) {
  int fds[2];
  BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
  auto bar = std::make_shared<TQDMProgressBar>();
  bar->plain_refresh_rate(2);
  const std::string out = capture(fds[0], fds[1], bar, bar_options("bar_pipe"));
  ::close(fds[0]);
  BOOST_TEST(out.find('\r') == std::string::npos);
  BOOST_TEST(out.find("\x1b[") == std::string::npos);
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  // Per epoch: batches 2 and 4, then the epoch line; the validation line at its end.
  std::vector<std::string> epoch0;
  for (const auto& l : lines)
    if (l.rfind("Epoch 0: ", 0) == 0) epoch0.push_back(l.substr(0, 20));
  BOOST_TEST(epoch0 == (std::vector<std::string>{"Epoch 0:  40% 2/5 [0", "Epoch 0:  80% 4/5 [0",
                                                 "Epoch 0: 100% 5/5 [0"}),
             boost::test_tools::per_element());
  std::size_t validations = 0;
  for (const auto& l : lines) validations += l.rfind("Validation DataLoader 0: 100% 2/2", 0) == 0;
  BOOST_TEST(validations == 2u);
  BOOST_TEST(contains(out, "v_num=0, train_loss=0.500]\n"));
}

BOOST_AUTO_TEST_CASE(options_and_formatting) {
  BOOST_TEST(TQDMProgressBar::format_num(0.123456) == "0.123");
  BOOST_TEST(TQDMProgressBar::format_num(0.5) == "0.500");
  BOOST_TEST(TQDMProgressBar::format_num(2.0) == "2.000");
  BOOST_TEST(TQDMProgressBar::format_num(1234.5) == "1234.5");
  BOOST_TEST(TQDMProgressBar::format_num(1e-5) == "1e-5");
  BOOST_CHECK_THROW(TQDMProgressBar(-1), std::invalid_argument);
  BOOST_TEST(TQDMProgressBar(0).is_disabled());
  // On by default, off with enable_progress_bar(false), which a given bar contradicts.
  auto has_bar = [](const Trainer& t) {
    for (const auto& c : t.callbacks())
      if (dynamic_cast<const TQDMProgressBar*>(c.get())) return true;
    return false;
  };
  BOOST_TEST(has_bar(Trainer()));
  BOOST_TEST(
      !has_bar(Trainer(TrainerOptions().enable_progress_bar(false).enable_model_summary(false))));
  BOOST_CHECK_THROW(Trainer(TrainerOptions().enable_progress_bar(false).enable_model_summary(false),
                            {std::make_shared<TQDMProgressBar>()}),
                    std::invalid_argument);
  // refresh_rate(2): the pipe gets nothing mid-epoch from the bar unless plain_refresh_rate.
  const std::string line = TQDMProgressBar::render("Epoch 1", 40, 100, 4.0, "v_num=0", 0);
  BOOST_TEST(line == "Epoch 1:  40% 40/100 [00:04<00:06, 10.00it/s, v_num=0]");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_progress_bar_tests
