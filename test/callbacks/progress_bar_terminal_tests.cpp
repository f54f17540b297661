// The progress bar on terminals of 80 and 60 columns (issue 29 item 1): every redraw fits the
// width, so after hundreds of redraws the screen holds one line per finished bar and no wrapped
// pieces; the console's lines and TQDMProgressBar::write land above the bar, on lines of their own.
// The pty's output is played on a small terminal model (printable characters wrap at the last
// column as xterm and tmux do, \r, \n, ESC[A; other escape sequences are ignored).
#include <boost/test/unit_test.hpp>

#include "child_process.hpp"
#include "trace_recorder.hpp"

#include <hookline/callbacks/progress_bar.hpp>
#include <hookline/core/console.hpp>
#include <hookline/loggers/csv_logger.hpp>

#include <pty.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace hookline_test_progress_bar_terminal {

using namespace hookline;
using namespace test_support;

namespace {

// What a terminal `width` columns wide shows after `out`, one string per line (trailing blanks
// trimmed), and how often a character ran past the last column onto the next line: in all, and
// in a line that a bar started (a long console line may wrap; a bar line must not).
struct Screen {
  int width;
  std::vector<std::vector<std::string>> cells{{}};
  std::size_t row = 0;
  int col = 0;
  int wraps = 0;
  int bar_wraps = 0;

  void feed(const std::string& out) {
    for (std::size_t i = 0; i < out.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(out[i]);
      if (c == '\r') {
        col = 0;
      } else if (c == '\n') {  // the pty's ONLCR makes it \r\n
        down();
      } else if (c == 0x1b && i + 1 < out.size() && out[i + 1] == '[') {
        std::size_t j = i + 2;
        int n = 0;
        bool given = false;
        while (j < out.size() && ((out[j] >= '0' && out[j] <= '9') || out[j] == ';')) {
          if (out[j] != ';') {
            n = n * 10 + (out[j] - '0');
            given = true;
          }
          ++j;
        }
        if (j < out.size() && out[j] == 'A') row -= std::min<std::size_t>(row, given ? n : 1);
        if (j < out.size() && out[j] == 'K')
          line().resize(std::min<std::size_t>(line().size(), col));
        i = j;
      } else if (c >= 0x20) {
        std::size_t len = 1;
        while (i + len < out.size() && (static_cast<unsigned char>(out[i + len]) & 0xC0) == 0x80)
          ++len;
        if (col == width) {  // deferred wrap: only a character past the last column wraps
          ++wraps;
          const std::string text = row_text(row);
          for (const char* bar : {"Epoch ", "Validation", "Sanity", "Testing", "Predicting"})
            bar_wraps += text.rfind(bar, 0) == 0;
          down();
        }
        auto& l = line();
        if (l.size() <= static_cast<std::size_t>(col)) l.resize(col + 1, " ");
        l[col++] = out.substr(i, len);
        i += len - 1;
      }
    }
  }
  std::string row_text(std::size_t r) const {
    std::string text;
    for (const auto& cell : cells[r]) text += cell;
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text;
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (std::size_t r = 0; r < cells.size(); ++r) out.push_back(row_text(r));
    while (!out.empty() && out.back().empty()) out.pop_back();
    return out;
  }

 private:
  std::vector<std::string>& line() { return cells[row]; }
  void down() {
    ++row;
    col = 0;
    if (cells.size() <= row) cells.resize(row + 1);
  }
};

// 300 training batches an epoch and metrics with long names on the bar.
class LongMetrics final : public BoringModel {
 public:
  StepOutput training_step(const Batch& b, std::int64_t i) override {
    auto out = BoringModel::training_step(b, i);
    log("train_loss", 0.5, LogOptions().prog_bar(true));
    log("a_rather_long_metric_name", 0.25, LogOptions().prog_bar(true));
    log("another_long_metric_name", 0.125, LogOptions().prog_bar(true));
    return out;
  }
  DataLoaders train_dataloader() override { return {loader(300, 1)}; }
};

// Prints a console line and a user line while the training bar is shown.
class Talker final : public Callback {
 public:
  explicit Talker(std::FILE* stream) : Callback("talker"), stream_(stream) {}
  void on_train_batch_end(Trainer& trainer, Module&, const StepOutput&, const Batch&,
                          std::int64_t batch_idx) override {
    if (trainer.current_epoch() != 0) return;
    if (batch_idx == 100) console().info("a line from the library");
    if (batch_idx == 200) TQDMProgressBar::write("a line from the user", stream_);
  }

 private:
  std::FILE* stream_;
};

struct Run {
  std::string raw;
  std::vector<std::string> lines;
  int bar_wraps = 0;
};

// Fits 2 epochs of 300 batches with the bar (and stderr) on a pty `columns` wide.
Run run_on_terminal(int columns, const std::string& dir) {
  int master = -1, slave = -1;
  winsize ws{};
  ws.ws_col = static_cast<unsigned short>(columns);
  ws.ws_row = 24;
  BOOST_REQUIRE_EQUAL(::openpty(&master, &slave, nullptr, nullptr, &ws), 0);
  Run run;
  std::thread reader([&] {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;
      run.raw.append(buf, static_cast<std::size_t>(n));
    }
  });
  std::FILE* stream = ::fdopen(slave, "w");
  std::fflush(stderr);
  const int saved_stderr = ::dup(2);
  ::dup2(slave, 2);     // the console's lines go to the same terminal
  std::string failure;  // cleaned up either way: the reader ends only when every slave is closed
  try {
    auto bar = std::make_shared<TQDMProgressBar>();
    bar->stream(stream);
    LongMetrics model;
    Trainer trainer(TrainerOptions()
                        .max_epochs(2)
                        .limit_val_batches(2)
                        .num_sanity_val_steps(1)
                        .enable_checkpointing(false)
                        .enable_model_summary(false)
                        .logger(std::make_shared<CSVLogger>(dir)),
                    {bar, std::make_shared<Talker>(stream)});
    trainer.fit(model);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  std::fflush(stderr);
  ::dup2(saved_stderr, 2);
  ::close(saved_stderr);
  std::fclose(stream);  // the last slave: the master reads EIO
  reader.join();
  ::close(master);
  BOOST_TEST(failure.empty(), "fit failed: " << failure);
  Screen screen{columns};
  screen.feed(run.raw);
  run.lines = screen.lines();
  run.bar_wraps = screen.bar_wraps;
  return run;
}

std::size_t count_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& l : lines) n += l.rfind(prefix, 0) == 0;
  return n;
}

void check_screen(int columns) {
  TempDir dir("hookline_bar_terminal_");
  const Run run = run_on_terminal(columns, dir.file("logs"));
  std::string screen;
  for (const auto& l : run.lines) screen += "  |" + l + "\n";
  BOOST_TEST_MESSAGE("screen at " << columns << " columns:\n" << screen);
  // Hundreds of redraws of the training bar ...
  std::size_t redraws = 0;
  for (std::size_t at = run.raw.find("\rEpoch "); at != std::string::npos;
       at = run.raw.find("\rEpoch ", at + 1))
    ++redraws;
  BOOST_TEST(redraws >= 600u);
  // ... none ran past the last column (console lines longer than the terminal do wrap), and one
  // line is left for the one training bar (reused by both epochs); the validation and sanity
  // bars are gone, and no piece of a bar line is left anywhere.
  BOOST_TEST(run.bar_wraps == 0);
  std::size_t bar_pieces = 0;
  for (const auto& l : run.lines)
    bar_pieces += l.find("it/s") != std::string::npos || l.find("\u2588") != std::string::npos;
  BOOST_TEST(bar_pieces == 1u);
  BOOST_TEST(count_prefix(run.lines, "Epoch ") == 1u);
  BOOST_TEST(count_prefix(run.lines, "Epoch 1: 100%") == 1u);
  BOOST_TEST(count_prefix(run.lines, "Validation") == 0u);
  BOOST_TEST(count_prefix(run.lines, "Sanity") == 0u);
  // The console's line and the user's are whole lines of their own, above the bar.
  std::size_t library = run.lines.size(), user = run.lines.size(), bar = run.lines.size();
  for (std::size_t i = 0; i < run.lines.size(); ++i) {
    const std::string& l = run.lines[i];
    if (l.find("a line from the library") != std::string::npos) {
      BOOST_TEST(l.find("hookline info: a line from the library") == 0u);
      BOOST_TEST(library == run.lines.size());
      library = i;
    }
    if (l.find("a line from the user") != std::string::npos) {
      BOOST_TEST(l == "a line from the user");
      BOOST_TEST(user == run.lines.size());
      user = i;
    }
    if (l.rfind("Epoch ", 0) == 0) bar = i;
  }
  BOOST_TEST(library < user);
  BOOST_TEST(user < bar);
  BOOST_TEST(bar < run.lines.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(progress_bar_terminal)

BOOST_AUTO_TEST_CASE(lines_fit_80_columns) {
  check_screen(80);
}

BOOST_AUTO_TEST_CASE(lines_fit_60_columns) {
  check_screen(60);
}

// Fitting a line: the bar shrinks to 10 cells, then postfix items go from the end, then the bar.
BOOST_AUTO_TEST_CASE(render_fits_the_width) {
  const std::vector<std::string> items = {"v_num=0", "train_loss=0.500", "val_acc=0.750"};
  const auto line = [&](int width) {
    return TQDMProgressBar::render("Epoch 1", 40, 100, 4.0, items, width);
  };
  const std::string wide = line(200);
  BOOST_TEST(TQDMProgressBar::display_width(wide) == 200u);
  BOOST_TEST(wide.find("v_num=0, train_loss=0.500, val_acc=0.750]") != std::string::npos);
  for (int width : {100, 90, 80, 70, 60, 50, 40, 30, 20, 5}) {
    const std::string l = line(width);
    BOOST_TEST(TQDMProgressBar::display_width(l) <= static_cast<std::size_t>(width),
               width << ": " << l);
  }
  // 100 columns: the bar shrinks (to 11 cells), every item stays.
  BOOST_TEST(line(100).find("| 40/100") != std::string::npos);
  BOOST_TEST(line(100).find("val_acc=0.750]") != std::string::npos);
  // 90: the last item goes before the bar does; 60: every item goes, the bar stays.
  BOOST_TEST(line(90).find("val_acc") == std::string::npos);
  BOOST_TEST(line(90).find("train_loss=0.500]") != std::string::npos);
  BOOST_TEST(line(90).find("| 40/100") != std::string::npos);
  BOOST_TEST(line(60).find("| 40/100 [00:04<00:06, 10.00it/s]") != std::string::npos);
  // 50: no room for a bar of 10 cells even without items: the counters alone.
  BOOST_TEST(line(50) == "Epoch 1:  40% 40/100 [00:04<00:06, 10.00it/s]");
  BOOST_TEST(line(20) == "Epoch 1:  40% 40/100");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_progress_bar_terminal
