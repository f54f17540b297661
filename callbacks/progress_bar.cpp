#include "hookline/callbacks/progress_bar.hpp"

#include "hookline/core/trainer.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace hookline {

namespace {

std::string format_interval(double seconds) {
  const long long t = static_cast<long long>(seconds);
  const long long mins = t / 60, s = t % 60, h = mins / 60, m = mins % 60;
  char buf[48];
  if (h)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", m, s);
  return buf;
}

// tqdm's format_num: 3 significant digits unless str() is not longer.
std::string tqdm_format_num(double value, bool integer) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", value);
  std::string f = buf;
  for (const char* from : {"+0", "-0"}) {
    const std::size_t at = f.find(from);
    if (at != std::string::npos && at > 0 && f[at - 1] == 'e') f.erase(at + 1, 1);
  }
  const std::string s =
      integer ? std::to_string(static_cast<long long>(value)) : python_float(value);
  return f.size() < s.size() ? f : s;
}

}  // namespace

TQDMProgressBar::TQDMProgressBar(std::int64_t refresh_rate)
    : Callback("TQDMProgressBar"), refresh_rate_(refresh_rate) {
  if (refresh_rate < 0)
    throw std::invalid_argument("TQDMProgressBar: refresh_rate(" + std::to_string(refresh_rate) +
                                ") must be >= 0 (0 hides the bars)");
  if (const char* miniters = std::getenv("TQDM_MINITERS"))
    refresh_rate_ = std::max<std::int64_t>(std::atoll(miniters), refresh_rate_);
}

TQDMProgressBar::~TQDMProgressBar() {
  if (owns_lines_) uninstall_line_owner(this);
}

TQDMProgressBar& TQDMProgressBar::plain_refresh_rate(std::int64_t n) {
  if (n < 0)
    throw std::invalid_argument("TQDMProgressBar::plain_refresh_rate(" + std::to_string(n) +
                                ") must be >= 0 (0: a line when a bar finishes)");
  plain_refresh_rate_ = n;
  return *this;
}

std::string TQDMProgressBar::format_num(double value) {
  std::string n = tqdm_format_num(value, false);
  if (n.find('e') == std::string::npos) {
    if (n.find('.') == std::string::npos && n.size() < 5) n += ".";
    if (n.size() < 5) n += std::string(5 - n.size(), '0');
  }
  return n;
}

std::size_t TQDMProgressBar::display_width(std::string_view text) {
  std::size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

std::string TQDMProgressBar::render(const std::string& desc, std::int64_t n,
                                    std::optional<std::int64_t> total, double elapsed,
                                    const std::string& postfix, int width) {
  std::vector<std::string> items;
  if (!postfix.empty()) items.push_back(postfix);
  return render(desc, n, total, elapsed, items, width);
}

std::string TQDMProgressBar::render(const std::string& desc, std::int64_t n,
                                    std::optional<std::int64_t> total, double elapsed,
                                    const std::vector<std::string>& postfix, int width) {
  const double rate = elapsed > 0 && n > 0 ? static_cast<double>(n) / elapsed : 0;
  char buf[64];
  std::string l_bar = desc.empty() ? "" : desc + ": ";
  double frac = 0;
  if (total && *total > 0) {
    frac = std::min(1.0, static_cast<double>(n) / static_cast<double>(*total));
    std::snprintf(buf, sizeof buf, "%3.0f%%", frac * 100);
    l_bar += buf;
  }
  std::string remaining = "?";
  if (rate > 0 && total) remaining = format_interval(static_cast<double>(*total - n) / rate);
  std::string rate_fmt = "?it/s";
  if (rate > 0) {
    std::snprintf(buf, sizeof buf, "%5.2fit/s", rate);
    rate_fmt = buf;
  }
  std::string counters = " ";
  counters += std::to_string(n);
  counters += '/';
  counters += total ? std::to_string(*total) : std::string("?");
  counters += " [";
  counters += format_interval(elapsed);
  counters += '<';
  counters += remaining;
  counters += ", ";
  counters += rate_fmt;
  // The right part with the first `k` postfix items.
  const auto r_bar = [&](std::size_t k) {
    std::string r = counters;
    for (std::size_t i = 0; i < k; ++i) r += ", " + postfix[i];
    return r + ']';
  };
  if (width <= 0) return l_bar + r_bar(postfix.size());
  // tqdm's unicode bar: full blocks and one partial block in what the line leaves. The bar
  // shrinks to kMinBar cells, then postfix items go from the end; then the bar goes too.
  constexpr int kMinBar = 10;
  const auto used = [&](const std::string& right) {
    return static_cast<int>(display_width(l_bar) + display_width(right)) + 2;  // the two '|'
  };
  for (std::size_t k = postfix.size() + 1; k-- > 0;) {
    const std::string right = r_bar(k);
    const int bar_width = width - used(right);
    if (bar_width < kMinBar) continue;
    static const char* const partial[] = {"",       "\u258f", "\u258e", "\u258d",
                                          "\u258c", "\u258b", "\u258a", "\u2589"};
    const int eighths = static_cast<int>(frac * bar_width * 8);
    std::string bar;
    const int full = eighths / 8;
    for (int i = 0; i < full; ++i) bar += "\u2588";
    int drawn = full;
    if (full < bar_width && eighths % 8) {
      bar += partial[eighths % 8];
      ++drawn;
    }
    bar += std::string(static_cast<std::size_t>(bar_width - drawn), ' ');
    return l_bar + "|" + bar + "|" + right;
  }
  // No room for a bar: the counters alone, cut at the last column if even they do not fit.
  std::string line = l_bar + r_bar(0);
  const auto columns = static_cast<std::size_t>(width);
  if (display_width(line) <= columns) return line;
  std::size_t points = 0, at = 0;
  for (; at < line.size(); ++at)
    if ((static_cast<unsigned char>(line[at]) & 0xC0) != 0x80 && points++ == columns) break;
  line.resize(at);
  return line;
}

std::vector<std::pair<std::string, std::string>> TQDMProgressBar::get_metrics(Trainer& trainer) {
  std::vector<std::pair<std::string, std::string>> out;
  if (Logger* logger = trainer.logger()) {
    const LoggerVersion version = logger->version();
    if (const auto* n = std::get_if<std::int64_t>(&version))
      out.emplace_back("v_num", tqdm_format_num(static_cast<double>(*n), true));
    else
      out.emplace_back("v_num", std::get<std::string>(version));
  }
  for (const auto& [key, value] : trainer.progress_bar_metrics()) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& kv) { return kv.first == key; });
    if (it != out.end())
      it->second = format_num(value);
    else
      out.emplace_back(key, format_num(value));
  }
  return out;
}

bool TQDMProgressBar::tty() {
  if (!tty_) tty_ = stream_ != nullptr && ::isatty(::fileno(stream_)) == 1;
  return *tty_;
}

int TQDMProgressBar::columns() {
  winsize ws{};
  if (::ioctl(::fileno(stream_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return ncols_;
}

void TQDMProgressBar::emit(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stream_);
  std::fflush(stream_);
}

bool TQDMProgressBar::should_update(std::int64_t current, std::optional<std::int64_t> total) const {
  return is_enabled() && (current % refresh_rate_ == 0 || (total && current == *total));
}

bool TQDMProgressBar::dataloader_changed(std::int64_t dataloader_idx) {
  const bool changed = current_dataloader_ != dataloader_idx;
  current_dataloader_ = dataloader_idx;
  return changed;
}

void TQDMProgressBar::start_dataloader(Bar& bar, const std::vector<std::int64_t>& counts,
                                       const std::string& stage, std::int64_t dataloader_idx) {
  if (!dataloader_changed(dataloader_idx)) return;
  std::optional<std::int64_t> total;
  if (dataloader_idx >= 0 && static_cast<std::size_t>(dataloader_idx) < counts.size())
    total = counts[static_cast<std::size_t>(dataloader_idx)];
  reset(bar, total, stage + " DataLoader " + std::to_string(dataloader_idx));
}

void TQDMProgressBar::end_eval_batch(Bar& bar, std::int64_t batch_idx) {
  const std::int64_t n = batch_idx + 1;
  if (should_update(n, bar.total)) update(bar, n);
}

void TQDMProgressBar::end_eval(Bar& bar) {
  plain_line(bar);
  close(bar);
  current_dataloader_ = -1;
}

void TQDMProgressBar::open(Bar& bar, std::string desc, int position, bool leave) {
  std::lock_guard lock(mutex_);
  bar = Bar{};
  bar.open = is_enabled();
  bar.desc = std::move(desc);
  bar.position = position;
  bar.leave = leave;
  bar.start = std::chrono::steady_clock::now();
}

void TQDMProgressBar::reset(Bar& bar, std::optional<std::int64_t> total, std::string desc) {
  std::lock_guard lock(mutex_);
  bar.n = 0;
  bar.total = total;
  bar.desc = std::move(desc);
  bar.start = std::chrono::steady_clock::now();
  bar.last_plain = 0;
  if (bar.open && tty()) draw(bar);
}

void TQDMProgressBar::draw(Bar& bar) {
  std::lock_guard lock(mutex_);
  if (!bar.open || !tty()) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - bar.start).count();
  const int width = columns();  // read at every redraw: the terminal may have been resized
  const std::string line = render(bar.desc, bar.n, bar.total, elapsed, bar.postfix, width);
  std::string out;
  if (bar.position > 0) out += "\n";
  out += "\r" + line;
  // tqdm pads with spaces over what the previous, longer line left (up to the last column).
  const std::size_t len = display_width(line);
  const std::size_t limit = static_cast<std::size_t>(std::max(width, 1));
  if (bar.last_len > len) out += std::string(std::min(bar.last_len, limit) - len, ' ');
  bar.last_len = len;
  if (bar.position > 0) out += "\x1b[A\r";
  emit(out);
}

void TQDMProgressBar::update(Bar& bar, std::int64_t n) {
  std::lock_guard lock(mutex_);
  if (!bar.open) return;
  bar.n = n;
  if (tty()) {
    draw(bar);
  } else if (plain_refresh_rate_ > 0 && n - bar.last_plain >= plain_refresh_rate_) {
    bar.last_plain = n;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - bar.start).count();
    emit(render(bar.desc, bar.n, bar.total, elapsed, bar.postfix, 0) + "\n");
  }
}

void TQDMProgressBar::plain_line(Bar& bar) {
  std::lock_guard lock(mutex_);
  if (!bar.open || tty() || (bar.last_plain == bar.n && bar.n > 0)) return;
  bar.last_plain = bar.n;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - bar.start).count();
  emit(render(bar.desc, bar.n, bar.total, elapsed, bar.postfix, 0) + "\n");
}

void TQDMProgressBar::close(Bar& bar) {
  std::lock_guard lock(mutex_);
  if (!bar.open) return;
  bar.open = false;
  if (tty()) {
    if (bar.leave) {
      bar.open = true;
      draw(bar);
      bar.open = false;
      emit("\n");
    } else {
      std::string out = bar.position > 0 ? "\n\r" : "\r";
      out.append(std::min(bar.last_len, static_cast<std::size_t>(std::max(columns(), 1))), ' ');
      out += '\r';
      if (bar.position > 0) out += "\x1b[A";
      emit(out);
    }
  }
  bar.last_len = 0;
}

void TQDMProgressBar::clear_lines() {
  std::lock_guard lock(mutex_);
  if (!tty()) return;
  const std::size_t limit = static_cast<std::size_t>(std::max(columns(), 1));
  std::string out;
  for (const Bar* bar : {&train_, &val_, &test_, &predict_}) {
    if (!bar->open || bar->last_len == 0) continue;
    out += bar->position > 0 ? "\n\r" : "\r";
    out.append(std::min(bar->last_len, limit), ' ');
    out += '\r';
    if (bar->position > 0) out += "\x1b[A";
  }
  if (!out.empty()) emit(out);
}

void TQDMProgressBar::restore_lines() {
  std::lock_guard lock(mutex_);
  if (!tty()) return;
  // The lines are blank now: draw the bars again, the first line's first.
  for (int position : {0, 1})
    for (Bar* bar : {&train_, &val_, &test_, &predict_})
      if (bar->open && bar->last_len > 0 && bar->position == position) {
        bar->last_len = 0;
        draw(*bar);
      }
}

void TQDMProgressBar::set_postfix(Bar& bar, Trainer& trainer) {
  std::vector<std::string> postfix;
  for (const auto& [key, value] : get_metrics(trainer)) postfix.push_back(key + "=" + value);
  std::lock_guard lock(mutex_);
  bar.postfix = std::move(postfix);
}

// ---- hooks ----------------------------------------------------------------------------------

void TQDMProgressBar::setup(Trainer& trainer, Module&, Stage) {
  if (!trainer.is_global_zero()) disable();
  if (is_enabled() && tty() && !owns_lines_) {
    install_line_owner(this);
    owns_lines_ = true;
  }
}

void TQDMProgressBar::teardown(Trainer&, Module&, Stage) {
  if (!owns_lines_) return;
  uninstall_line_owner(this);
  owns_lines_ = false;
}

void TQDMProgressBar::on_sanity_check_start(Trainer&, Module&) {
  open(val_, "Sanity Checking", 0, false);
  current_dataloader_ = -1;
}

void TQDMProgressBar::on_sanity_check_end(Trainer&, Module&) {
  close(val_);
  current_dataloader_ = -1;
}

void TQDMProgressBar::on_train_start(Trainer&, Module&) {
  open(train_, "Training", 0, true);
  fitting_ = true;
}

void TQDMProgressBar::on_train_epoch_start(Trainer& trainer, Module&) {
  if (!train_.open) return;
  reset(train_, trainer.num_training_batches(), "Epoch " + std::to_string(trainer.current_epoch()));
}

void TQDMProgressBar::on_train_batch_end(Trainer& trainer, Module&, const StepOutput&, const Batch&,
                                         std::int64_t batch_idx) {
  const std::int64_t n = batch_idx + 1;
  if (!should_update(n, train_.total)) return;
  set_postfix(train_, trainer);
  update(train_, n);
}

void TQDMProgressBar::on_train_epoch_end(Trainer& trainer, Module&) {
  if (!train_.open) return;
  set_postfix(train_, trainer);
  if (tty()) {
    draw(train_);
  } else {
    plain_line(train_);
  }
}

void TQDMProgressBar::on_train_end(Trainer&, Module&) {
  close(train_);
  fitting_ = false;
}

void TQDMProgressBar::on_validation_start(Trainer& trainer, Module&) {
  if (trainer.sanity_checking()) return;
  const bool has_main_bar = trainer.stage() != Stage::validate;
  open(val_, "Validation", has_main_bar && train_.open ? 1 : 0, !has_main_bar);
  current_dataloader_ = -1;
}

void TQDMProgressBar::on_validation_batch_start(Trainer& trainer, Module&, const Batch&,
                                                std::int64_t, std::int64_t dataloader_idx) {
  if (trainer.sanity_checking())
    start_dataloader(val_, trainer.num_sanity_val_batches(), "Sanity Checking", dataloader_idx);
  else
    start_dataloader(val_, trainer.num_val_batches(), "Validation", dataloader_idx);
}

void TQDMProgressBar::on_validation_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                                              std::int64_t batch_idx, std::int64_t) {
  end_eval_batch(val_, batch_idx);
}

void TQDMProgressBar::on_validation_end(Trainer& trainer, Module&) {
  if (trainer.sanity_checking()) return;
  end_eval(val_);
  if (fitting_ && train_.open) {
    set_postfix(train_, trainer);
    draw(train_);
  }
}

void TQDMProgressBar::on_test_start(Trainer&, Module&) {
  open(test_, "Testing", 0, true);
  current_dataloader_ = -1;
}

void TQDMProgressBar::on_test_batch_start(Trainer& trainer, Module&, const Batch&, std::int64_t,
                                          std::int64_t dataloader_idx) {
  start_dataloader(test_, trainer.num_test_batches(), "Testing", dataloader_idx);
}

void TQDMProgressBar::on_test_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                                        std::int64_t batch_idx, std::int64_t) {
  end_eval_batch(test_, batch_idx);
}

void TQDMProgressBar::on_test_end(Trainer&, Module&) {
  end_eval(test_);
}

void TQDMProgressBar::on_predict_start(Trainer&, Module&) {
  open(predict_, "Predicting", 0, true);
  current_dataloader_ = -1;
}

void TQDMProgressBar::on_predict_batch_start(Trainer& trainer, Module&, const Batch&, std::int64_t,
                                             std::int64_t dataloader_idx) {
  start_dataloader(predict_, trainer.num_predict_batches(), "Predicting", dataloader_idx);
}

void TQDMProgressBar::on_predict_batch_end(Trainer&, Module&, const StepOutput&, const Batch&,
                                           std::int64_t batch_idx, std::int64_t) {
  end_eval_batch(predict_, batch_idx);
}

void TQDMProgressBar::on_predict_end(Trainer&, Module&) {
  end_eval(predict_);
}

}  // namespace hookline
