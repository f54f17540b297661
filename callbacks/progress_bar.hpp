// hookline: TQDMProgressBar, Lightning's default progress bar.
//
// On a terminal it draws tqdm's bars, redrawn in place: the training bar ("Epoch 3:  40%|████
// | 40/100 [00:03<00:05, 10.84it/s, v_num=0, train_loss=0.123]", one line reused by every
// epoch), a validation bar below it while validation runs, and bars for the sanity check, test
// and predict. The postfix holds "v_num" (the first logger's version) and every metric logged
// with prog_bar=true, numbers formatted as Lightning's Tqdm does (3 significant digits, padded).
// Bars advance every refresh_rate batches (and at a loader's last batch); refresh_rate 0 hides
// them.
//
// On a terminal every line fits the terminal's width, read again at each redraw (TIOCGWINSZ), as
// tqdm does: the bar shrinks first (down to 10 cells), then postfix items are dropped from the
// end, then the bar goes; a line never runs past the last column, so a redraw never wraps. While
// a bar is shown, the console's lines and write() (tqdm's write) print above it.
//
// When the stream is not a terminal (a pipe, a file, CI logs) nothing is redrawn: one plain line
// is printed when a bar finishes (every training epoch, every validation, test and predict run)
// and, with plain_refresh_rate(N), every N batches.
//
// A Trainer adds one unless enable_progress_bar(false) or the callbacks already hold a
// TQDMProgressBar.
#pragma once

#include "hookline/core/callback.hpp"
#include "hookline/core/console.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hookline {

class TQDMProgressBar : public Callback, private LineOwner {
 public:
  /// `refresh_rate`: update the bars every this many batches (0: disabled). The environment
  /// variable TQDM_MINITERS raises it, as in Lightning.
  explicit TQDMProgressBar(std::int64_t refresh_rate = 1);
  ~TQDMProgressBar() override;
  TQDMProgressBar(const TQDMProgressBar&) = delete;
  TQDMProgressBar& operator=(const TQDMProgressBar&) = delete;

  /// tqdm's `write`: prints `text` and a newline to `stream` above the bar (the bar is cleared,
  /// the line printed, the bar redrawn below it). Same as hookline::write_line.
  static void write(std::string_view text, std::FILE* stream = stdout) { write_line(text, stream); }

  /// Where the bars go (default stdout); a terminal gets redrawn bars, anything else lines.
  TQDMProgressBar& stream(std::FILE* stream) {
    stream_ = stream;
    return *this;
  }
  /// Not a terminal: also print a line every n batches (0: only when a bar finishes).
  TQDMProgressBar& plain_refresh_rate(std::int64_t n);
  /// Width when the terminal's cannot be read (default 100 columns).
  TQDMProgressBar& ncols(int n) {
    ncols_ = n;
    return *this;
  }

  std::int64_t refresh_rate() const { return refresh_rate_; }
  bool is_enabled() const { return enabled_ && refresh_rate_ > 0; }
  bool is_disabled() const { return !is_enabled(); }
  void disable() { enabled_ = false; }
  void enable() { enabled_ = true; }
  /// What the bars show after the counters: v_num and the progress bar metrics.
  virtual std::vector<std::pair<std::string, std::string>> get_metrics(Trainer& trainer);

  /// Off on every DDP rank but 0 (Lightning's rank_zero behaviour). On a terminal the bar
  /// takes the console's line printer (lines go above the bar) until teardown.
  void setup(Trainer& trainer, Module&, Stage) override;
  void teardown(Trainer& trainer, Module&, Stage) override;
  void on_sanity_check_start(Trainer&, Module&) override;
  void on_sanity_check_end(Trainer&, Module&) override;
  void on_train_start(Trainer&, Module&) override;
  void on_train_epoch_start(Trainer&, Module&) override;
  void on_train_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                          std::int64_t batch_idx) override;
  void on_train_epoch_end(Trainer&, Module&) override;
  void on_train_end(Trainer&, Module&) override;
  void on_validation_start(Trainer&, Module&) override;
  void on_validation_batch_start(Trainer&, Module&, const Batch&, std::int64_t batch_idx,
                                 std::int64_t dataloader_idx) override;
  void on_validation_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                               std::int64_t batch_idx, std::int64_t dataloader_idx) override;
  void on_validation_end(Trainer&, Module&) override;
  void on_test_start(Trainer&, Module&) override;
  void on_test_batch_start(Trainer&, Module&, const Batch&, std::int64_t batch_idx,
                           std::int64_t dataloader_idx) override;
  void on_test_batch_end(Trainer&, Module&, const StepOutput&, const Batch&, std::int64_t batch_idx,
                         std::int64_t dataloader_idx) override;
  void on_test_end(Trainer&, Module&) override;
  void on_predict_start(Trainer&, Module&) override;
  void on_predict_batch_start(Trainer&, Module&, const Batch&, std::int64_t batch_idx,
                              std::int64_t dataloader_idx) override;
  void on_predict_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                            std::int64_t batch_idx, std::int64_t dataloader_idx) override;
  void on_predict_end(Trainer&, Module&) override;

  /// Lightning's Tqdm.format_num: "0.123", "2.000", "1e-5".
  static std::string format_num(double value);
  /// One rendered bar line (no control characters), as tqdm's BAR_FORMAT; `width` <= 0 leaves
  /// the bar glyphs out (plain lines).
  static std::string render(const std::string& desc, std::int64_t n,
                            std::optional<std::int64_t> total, double elapsed_seconds,
                            const std::string& postfix, int width);
  /// The same with the postfix as items ("key=value"); with `width` > 0 the line fits in
  /// `width` columns: the bar shrinks to 10 cells, then items go from the end, then the bar.
  static std::string render(const std::string& desc, std::int64_t n,
                            std::optional<std::int64_t> total, double elapsed_seconds,
                            const std::vector<std::string>& postfix, int width);
  /// Columns `text` takes on a terminal (UTF-8 code points).
  static std::size_t display_width(std::string_view text);

 private:
  struct Bar {
    bool open = false;
    std::string desc;
    std::int64_t n = 0;
    std::optional<std::int64_t> total;
    std::chrono::steady_clock::time_point start;
    std::vector<std::string> postfix;  // "key=value" items
    int position = 0;                  // 0: the first line; 1: the line below the training bar
    bool leave = true;
    std::size_t last_len = 0;
    std::int64_t last_plain = 0;
  };
  void open(Bar& bar, std::string desc, int position, bool leave);
  void reset(Bar& bar, std::optional<std::int64_t> total, std::string desc);
  void update(Bar& bar, std::int64_t n);
  void draw(Bar& bar);
  void close(Bar& bar);
  void plain_line(Bar& bar);  // not a terminal: the bar as one line, unless just printed
  void set_postfix(Bar& bar, Trainer& trainer);
  bool should_update(std::int64_t current, std::optional<std::int64_t> total) const;
  bool dataloader_changed(std::int64_t dataloader_idx);
  // What the validation, test and predict bars do alike: at a new dataloader, reset to
  // "<stage> DataLoader <i>" with its batch count from `counts`; after a batch, update; at the end
  // of the stage, print and close.
  void start_dataloader(Bar& bar, const std::vector<std::int64_t>& counts, const std::string& stage,
                        std::int64_t dataloader_idx);
  void end_eval_batch(Bar& bar, std::int64_t batch_idx);
  void end_eval(Bar& bar);
  bool tty();
  int columns();
  void emit(const std::string& text);
  // LineOwner: what the console calls around a line it prints.
  void clear_lines() override;
  void restore_lines() override;

  std::int64_t refresh_rate_;
  std::int64_t plain_refresh_rate_ = 0;
  bool enabled_ = true;
  std::FILE* stream_ = stdout;
  int ncols_ = 100;
  std::optional<bool> tty_;
  Bar train_, val_, test_, predict_;
  std::int64_t current_dataloader_ = -1;
  bool fitting_ = false;
  bool owns_lines_ = false;
  // Hooks run on the training thread; the console may print from any thread.
  std::recursive_mutex mutex_;
};

}  // namespace hookline
