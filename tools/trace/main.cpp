// hookline-trace: read, check and compare hookline traces (JSON lines), convert them to Chrome
// traces, and follow a live run. Exit codes: 0 success, 1 the check/diff/tail found a problem,
// 2 bad usage or bad input.
#include "check.hpp"
#include "diff.hpp"
#include "trace_file.hpp"

#include <hookline/tracing/trace_sinks.hpp>

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <fnmatch.h>
#include <poll.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

namespace {

using namespace hookline;
using namespace hookline::trace_tool;

constexpr int kOk = 0, kFound = 1, kBadInput = 2;

// Options that select records, shared by filter, summary, diff and tail.
struct SelectionOptions {
  Selection selection;
  std::string epoch, step, batch;
  std::int64_t rank = -1;

  void add(CLI::App* app) {
    app->add_option("--event,-e", selection.events,
                    "only these hooks (repeat or comma-separate; wildcards: 'on_train_*')")
        ->delimiter(',');
    app->add_option("--subscriber,-s", selection.subscribers,
                    "only calls of these subscribers (module, data module, callback names)")
        ->delimiter(',');
    app->add_option("--stage", selection.stages, "only these stages: fit, validate, test, predict")
        ->delimiter(',');
    app->add_option("--kind", selection.kinds, "only records of this kind: emit or call")
        ->delimiter(',');
    app->add_option("--lane", selection.lanes, "only calls on this lane: sync or async")
        ->delimiter(',');
    app->add_option("--epoch", epoch, "only these epochs: N, A..B, A.. or ..B");
    app->add_option("--step", step, "only these global steps: N, A..B, A.. or ..B");
    app->add_option("--batch", batch, "only these batch indices: N, A..B, A.. or ..B");
    app->add_option("--rank", rank, "only this rank");
  }
  const Selection& resolve() {
    known("--stage", selection.stages, {"fit", "validate", "test", "predict"});
    known("--kind", selection.kinds, {"emit", "call"});
    known("--lane", selection.lanes, {"sync", "async"});
    if (!epoch.empty()) selection.epoch = Range::parse(epoch, "--epoch");
    if (!step.empty()) selection.step = Range::parse(step, "--step");
    if (!batch.empty()) selection.batch = Range::parse(batch, "--batch");
    if (rank >= 0) selection.rank = rank;
    return selection;
  }

  // Each value (a name or a wildcard pattern) must match one of `allowed`: a typo ("fitt") would
  // select nothing and look like an empty trace.
  static void known(const char* option, const std::vector<std::string>& values,
                    std::initializer_list<const char*> allowed) {
    for (const auto& v : values) {
      const bool ok = std::any_of(allowed.begin(), allowed.end(),
                                  [&](const char* a) { return ::fnmatch(v.c_str(), a, 0) == 0; });
      if (ok) continue;
      std::string names;
      for (const char* a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
      throw InputError(std::string(option) + " '" + v + "': unknown; expected one of " + names);
    }
  }
};

std::vector<const Record*> select(const std::vector<Record>& records, const Selection& s) {
  std::vector<const Record*> out;
  for (const auto& r : records)
    if (s.matches(r)) out.push_back(&r);
  return out;
}

// An output file, or standard output for "" and "-".
class Output {
 public:
  explicit Output(const std::string& path) {
    if (path.empty() || path == "-") return;
    file_.open(path, std::ios::trunc | std::ios::binary);
    if (!file_) throw InputError(path + ": cannot open the file for writing");
  }
  std::ostream& stream() { return file_.is_open() ? file_ : std::cout; }

 private:
  std::ofstream file_;
};

int run_summary(const std::string& file, SelectionOptions& sel, const std::string& by,
                std::size_t top) {
  const auto records = load_trace(file);
  const auto chosen = select(records, sel.resolve());
  TraceSummary summary;
  for (const Record* r : chosen) summary.add(r->view());
  std::vector<TraceSummary::Table> tables;
  for (std::size_t pos = 0; pos <= by.size();) {
    const std::size_t comma = std::min(by.find(',', pos), by.size());
    const std::string t = by.substr(pos, comma - pos);
    pos = comma + 1;
    if (t == "hook")
      tables.push_back(TraceSummary::Table::hooks);
    else if (t == "subscriber")
      tables.push_back(TraceSummary::Table::subscribers);
    else if (t == "call")
      tables.push_back(TraceSummary::Table::calls);
    else
      throw InputError("--by '" + t + "': expected hook, subscriber or call");
  }
  std::cout << file << ": " << chosen.size() << " records\n";
  summary.print(std::cout, tables, top);
  return kOk;
}

int run_filter(const std::string& file, SelectionOptions& sel, bool text,
               const std::string& output) {
  const auto records = load_trace(file);
  Output out(output);
  for (const Record* r : select(records, sel.resolve()))
    out.stream() << (text ? format_text(*r) : r->text) << '\n';
  return kOk;
}

// Several files (the ranks of a DDP run) make one trace: a process per rank.
int run_chrome(const std::vector<std::string>& files, const std::string& output) {
  std::vector<Record> records;
  for (const auto& file : files) {
    auto more = load_trace(file);
    records.insert(records.end(), std::make_move_iterator(more.begin()),
                   std::make_move_iterator(more.end()));
  }
  std::vector<TraceRecord> views;
  views.reserve(records.size());
  for (const auto& r : records) views.push_back(r.view());
  Output out(output);
  write_chrome_trace(out.stream(), views);
  if (!output.empty() && output != "-")
    std::cerr << "wrote " << output << " (" << records.size()
              << " records): open it in https://ui.perfetto.dev or chrome://tracing\n";
  return kOk;
}

int run_check(const std::string& file, bool quiet) {
  const auto records = load_trace(file);
  if (records.empty())
    throw InputError(file +
                     ": no trace records (an empty file?); expected JSON lines as "
                     "HOOKLINE_TRACE=run.jsonl writes them");
  const CheckResult result = check_trace(records, file);
  if (!result.ok) {
    std::cout << result.message;
    if (result.message.empty() || result.message.back() != '\n') std::cout << '\n';
    return kFound;
  }
  if (!quiet) {
    std::cout << file << ": ok: " << result.runs << " run(s)";
    std::string stages;
    for (const auto& s : result.stages) stages += (stages.empty() ? "" : ", ") + s;
    if (!stages.empty()) std::cout << " (" << stages << ")";
    std::cout << ", " << result.emissions << " emissions follow the hook grammar\n";
  }
  return kOk;
}

int run_diff(const std::string& a, const std::string& b, SelectionOptions& sel,
             const std::vector<std::string>& ignore, const std::vector<std::string>& compare,
             std::size_t context, bool async) {
  const auto ra = load_trace(a), rb = load_trace(b);
  const Selection& s = sel.resolve();
  DiffOptions options;
  for (const auto& f : ignore) options.ignore.insert(f);
  for (const auto& f : compare) options.ignore.erase(f);
  options.context = context;
  options.async = async;
  const DiffResult result = diff_traces(select(ra, s), a, select(rb, s), b, options);
  std::cout << result.report;
  return result.same ? kOk : kFound;
}

// The "lost" count of the stream's notice line ("?" if it has none).
std::string notice_lost(const std::string& line) {
  try {
    const auto notice = nlohmann::json::parse(line);
    if (notice.contains("lost") && notice["lost"].is_number_integer())
      return std::to_string(notice["lost"].get<std::int64_t>());
  } catch (const nlohmann::json::exception&) {
  }
  return "?";
}

int run_tail(const std::string& address, SelectionOptions& sel, bool text, std::size_t count,
             double timeout, double wait) {
  const Selection& s = sel.resolve();
  std::string host = "127.0.0.1", port = address;
  if (const auto colon = address.rfind(':'); colon != std::string::npos) {
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  unsigned number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535)
    throw InputError("tail '" + address + "': the port '" + port +
                     "' is not a number from 1 to 65535");
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait);
  for (;;) {
    boost::system::error_code ec;
    asio::ip::tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(host, port, ec);
    if (!ec) asio::connect(socket, endpoints, ec);
    if (!ec) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "hookline-trace tail: cannot connect to " << host << ":" << port << ": "
                << ec.message() << "\n";
      return kBadInput;
    }
    socket = asio::ip::tcp::socket(io);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string buffer;
  std::size_t shown = 0, shown_all = 0, line_number = 0;
  char chunk[65536];
  for (;;) {
    pollfd fd{socket.native_handle(), POLLIN, 0};
    const int ready = ::poll(&fd, 1, timeout > 0 ? static_cast<int>(timeout * 1000) : -1);
    if (ready == 0) {
      std::cerr << "hookline-trace tail: no record for " << timeout << " s; giving up\n";
      return kFound;
    }
    boost::system::error_code ec;
    const std::size_t n = socket.read_some(asio::buffer(chunk), ec);
    if (ec) break;  // the run ended (or the server went away)
    buffer.append(chunk, n);
    std::size_t start = 0;
    for (std::size_t nl; (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
      const std::string line = buffer.substr(start, nl - start);
      ++line_number;
      const std::string where = host + ":" + port + " line " + std::to_string(line_number);
      if (line.find("\"kind\":\"notice\"") != std::string::npos) {
        std::cout.flush();
        std::cerr << "hookline-trace tail: the server dropped this client: " << notice_lost(line)
                  << " records lost (" << shown_all
                  << " received); read faster, or use a file trace (HOOKLINE_TRACE=run.jsonl)\n"
                  << "  " << line << "\n";
        return kFound;
      }
      auto r = parse_record(line, line_number, where);
      if (r) ++shown_all;
      if (!r || !s.matches(*r)) continue;
      std::cout << (text ? format_text(*r) : r->text) << '\n';
      if (count > 0 && ++shown >= count) {
        std::cout.flush();
        return kOk;
      }
    }
    buffer.erase(0, start);
    std::cout.flush();
  }
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "hookline-trace: read, check and compare hookline traces (JSON lines, as written by\n"
      "HOOKLINE_TRACE=run.jsonl), convert them for Perfetto, and follow a live run.\n"
      "Exit codes: 0 ok, 1 a violation / a difference / a dropped stream, 2 bad usage or input.",
      "hookline-trace"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hookline-trace " HOOKLINE_TRACE_VERSION);
  app.set_help_all_flag("--help-all", "help for every subcommand");

  std::string file, file_b, output, by = "hook,subscriber", address;
  std::size_t top = 0, context = 3, count = 0;
  bool text = false, quiet = false, async = false;
  double timeout = 0, wait = 5;
  std::vector<std::string> ignore, compare, files;
  SelectionOptions sel;
  // The one trace a subcommand reads.
  auto trace_argument = [&file](CLI::App* command) {
    command->add_option("trace", file, "JSON-lines trace ('-': standard input)")->required();
  };

  auto* summary = app.add_subcommand(
      "summary", "time per hook (emissions) and per subscriber: count, total, mean, p50, p99, max");
  trace_argument(summary);
  summary->add_option("--by", by, "tables: hook, subscriber, call (subscriber.hook); comma list")
      ->capture_default_str();
  summary->add_option("--top", top, "keep the N slowest rows of each table");
  sel.add(summary);

  auto* filter = app.add_subcommand("filter", "print the records that match (JSON lines)");
  trace_argument(filter);
  filter->add_option("-o,--output", output, "write here instead of standard output");
  filter->add_flag("--text", text, "one readable line per record instead of JSON");
  sel.add(filter);

  auto* diff = app.add_subcommand(
      "diff",
      "the first record where two traces differ, with context, ignoring timing fields\n"
      "(start_ns, duration_ns, thread, bus) and async-lane calls unless told otherwise");
  diff->add_option("a", file, "first trace")->required();
  diff->add_option("b", file_b, "second trace")->required();
  diff->add_option("--ignore,-i", ignore, "also ignore these fields (e.g. args,global_step)")
      ->delimiter(',');
  diff->add_option("--compare", compare, "compare these normally ignored fields after all")
      ->delimiter(',');
  diff->add_option("--context,-C", context, "records of context to show")->capture_default_str();
  diff->add_flag("--async", async, "compare async-lane calls too");
  sel.add(diff);

  auto* check = app.add_subcommand(
      "check",
      "verify a trace against the hook grammar of fit / validate / test / predict (order,\n"
      "start/end pairing, nesting, verdicts); report the first violation");
  trace_argument(check);
  check->add_flag("-q,--quiet", quiet, "print nothing when the trace is valid");

  auto* chrome = app.add_subcommand(
      "chrome", "convert to Chrome trace-event JSON (Perfetto, chrome://tracing)");
  chrome
      ->add_option("traces", files,
                   "JSON-lines traces ('-': standard input); several (the ranks of a DDP run: "
                   "run.jsonl run.rank1.jsonl) merge into one trace, a process per rank")
      ->required();
  chrome->add_option("-o,--output", output, "the .json file to write (default: standard output)");

  auto* tail = app.add_subcommand(
      "tail", "follow a live run (HOOKLINE_TRACE=tcp:PORT) and print its records as they come");
  tail->add_option("address", address, "[HOST:]PORT (HOST defaults to 127.0.0.1)")->required();
  tail->add_flag("--text", text, "one readable line per record instead of JSON");
  tail->add_option("-n,--count", count, "stop after N matching records");
  tail->add_option("--timeout", timeout, "give up after this many seconds without data (exit 1)");
  tail->add_option("--wait", wait, "keep trying to connect for this many seconds")
      ->capture_default_str();
  sel.add(tail);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kOk : kBadInput;
  }
  try {
    if (*summary) return run_summary(file, sel, by, top);
    if (*filter) return run_filter(file, sel, text, output);
    if (*diff) return run_diff(file, file_b, sel, ignore, compare, context, async);
    if (*check) return run_check(file, quiet);
    if (*chrome) return run_chrome(files, output);
    if (*tail) return run_tail(address, sel, text, count, timeout, wait);
  } catch (const InputError& e) {
    std::cerr << "hookline-trace: " << e.what() << "\n";
    return kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "hookline-trace: " << e.what() << "\n";
    return kBadInput;
  }
  return kBadInput;
}
