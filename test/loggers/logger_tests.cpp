// The loggers' files: CSVLogger's read back with read_csv, TensorBoardLogger's TFRecords checked
// with an independent CRC-32C and decoded by protoc.
#include <boost/test/unit_test.hpp>

#include "logging_model.hpp"
#include "recording_logger.hpp"
#include "temp_dir.hpp"
#include "trace_recorder.hpp"

#include <hookline/loggers/csv_logger.hpp>
#include <hookline/loggers/tensorboard_logger.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hookline_test_logger_tests {

using namespace hookline;
using namespace test_support;
namespace fs = std::filesystem;

namespace {

using Logging = test_support::LoggingModel;
using test_support::read_text;

std::uint32_t reference_crc32c(const unsigned char* p, std::size_t n) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}
std::uint32_t reference_mask(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::uint64_t le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint32_t le32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

// Every TFRecord of `path`, with both CRCs checked; each payload decoded by protoc --decode_raw.
std::vector<std::string> decode_records(const fs::path& path) {
  const std::string bytes = read_text(path);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::vector<std::string> decoded;
  std::size_t at = 0;
  int index = 0;
  while (at < bytes.size()) {
    BOOST_REQUIRE(at + 12 <= bytes.size());
    const std::uint64_t length = le64(p + at);
    BOOST_REQUIRE_EQUAL(le32(p + at + 8), reference_mask(reference_crc32c(p + at, 8)));
    BOOST_REQUIRE(at + 12 + length + 4 <= bytes.size());
    const unsigned char* data = p + at + 12;
    BOOST_REQUIRE_EQUAL(le32(data + length), reference_mask(reference_crc32c(data, length)));
    const fs::path payload =
        fs::temp_directory_path() /
        ("hookline_tb_" + std::to_string(::getpid()) + "_" + std::to_string(index++));
    {
      std::ofstream out(payload, std::ios::binary);
      out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(length));
    }
    const std::string command = "protoc --decode_raw < '" + payload.string() + "'";
    std::FILE* pipe = ::popen(command.c_str(), "r");
    BOOST_REQUIRE(pipe != nullptr);
    std::string text;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) text.append(buf, n);
    BOOST_REQUIRE_EQUAL(::pclose(pipe), 0);
    fs::remove(payload);
    decoded.push_back(text);
    at += 12 + length + 4;
  }
  return decoded;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(csv_logger)

BOOST_AUTO_TEST_CASE(layout_versions_columns_and_hparams) {
  const fs::path save = fs::absolute("csv_layout");
  Logging model([](Module& m, std::int64_t i) { m.log("loss", 0.5 * static_cast<double>(i + 1)); },
                [](Module& m, std::int64_t) { m.log("val, \"quoted\"", 2.0); });
  model.hparams().set("lr", 0.001);
  model.hparams().set("layers", c10::IValue(std::vector<std::int64_t>{64, 32}));
  model.hparams().set("name", std::string("mlp"));
  for (int run = 0; run < 2; ++run) {
    auto csv = std::make_shared<CSVLogger>(save.string());
    Trainer trainer(logging_options()
                        .max_epochs(2)
                        .limit_train_batches(2)
                        .limit_val_batches(1)
                        .log_every_n_steps(1)
                        .logger(csv));
    trainer.fit(model);
    BOOST_TEST(std::get<std::int64_t>(csv->version()) == run);
    BOOST_TEST(trainer.log_dir() ==
               (save / "lightning_logs" / ("version_" + std::to_string(run))).string());
  }
  const fs::path dir = save / "lightning_logs" / "version_1";
  const std::string text = read_text(dir / "metrics.csv");
  BOOST_TEST(contains(text, "\r\n"));
  const auto rows = read_csv(text);
  // Columns: the sorted union; the validation key came after the first rows (file rewritten).
  BOOST_REQUIRE(!rows.empty());
  BOOST_TEST(rows[0] == (std::vector<std::string>{"epoch", "loss", "step", "val, \"quoted\""}),
             boost::test_tools::per_element());
  // 2 epochs x (2 training steps + 1 validation end); "loss" has no epoch value.
  BOOST_REQUIRE_EQUAL(rows.size(), 7u);
  const std::vector<std::vector<std::string>> expected{
      {"0", "0.5", "0", ""}, {"0", "1.0", "1", ""}, {"0", "", "1", "2.0"},
      {"1", "0.5", "2", ""}, {"1", "1.0", "3", ""}, {"1", "", "3", "2.0"}};
  for (std::size_t i = 0; i < expected.size(); ++i)
    BOOST_TEST(rows[i + 1] == expected[i], boost::test_tools::per_element());
  BOOST_TEST(read_text(dir / "hparams.yaml") == "layers:\n- 64\n- 32\nlr: 0.001\nname: mlp\n");
}

BOOST_AUTO_TEST_CASE(options_name_version_prefix_and_flushing) {
  const fs::path save = fs::absolute("csv_options");
  CSVLogger named(save.string(), CSVLoggerOptions().name("").version(std::string("run_a")));
  BOOST_TEST(named.log_dir() == (save / "run_a").string());
  CSVLogger logger(save.string(),
                   CSVLoggerOptions().name("exp").prefix("p").flush_logs_every_n_steps(3));
  logger.log_metrics({{"a", 1.0}}, 0);
  logger.log_metrics({{"a", 2.0}}, 1);
  const fs::path file = save / "exp" / "version_0" / "metrics.csv";
  BOOST_TEST(!fs::exists(file));  // buffered until (step + 1) % 3 == 0
  logger.log_metrics({{"b", 1e-5}}, 2);
  BOOST_REQUIRE(fs::exists(file));
  const auto rows = read_csv(read_text(file));
  BOOST_TEST(rows[0] == (std::vector<std::string>{"p-a", "p-b", "step"}),
             boost::test_tools::per_element());
  BOOST_TEST(rows[3] == (std::vector<std::string>{"", "1e-05", "2"}),
             boost::test_tools::per_element());
  BOOST_CHECK_THROW(CSVLogger(save.string(), CSVLoggerOptions().flush_logs_every_n_steps(0)),
                    std::invalid_argument);
  // A version directory that holds files: metrics.csv starts afresh.
  CSVLogger again(save.string(), CSVLoggerOptions().name("exp").version(std::int64_t{0}));
  again.init_experiment();
  BOOST_TEST(!fs::exists(file));
}

BOOST_AUTO_TEST_CASE(python_float_spelling) {
  BOOST_TEST(python_float(0.1) == "0.1");
  BOOST_TEST(python_float(1.0) == "1.0");
  BOOST_TEST(python_float(1e-4) == "0.0001");
  BOOST_TEST(python_float(1e-5) == "1e-05");
  BOOST_TEST(python_float(1e16) == "1e+16");
  BOOST_TEST(python_float(123456.0) == "123456.0");
  BOOST_TEST(python_float(-2.5) == "-2.5");
  BOOST_TEST(python_float(static_cast<double>(0.1f)) == "0.10000000149011612");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tensorboard_logger)

BOOST_AUTO_TEST_CASE(event_files_have_valid_records_tensorboard_can_read) {
  const fs::path save = fs::absolute("tb_records");
  Logging model([](Module& m, std::int64_t) { m.log("loss", 1.0); });
  model.hparams().set("lr", 0.25);
  model.hparams().set("optimizer", std::string("sgd"));
  auto tb = std::make_shared<TensorBoardLogger>(save.string());
  Trainer trainer(
      logging_options().max_epochs(1).limit_train_batches(2).log_every_n_steps(1).logger(tb));
  trainer.fit(model);
  const std::string file = tb->event_file();
  // After finalize a new run writes a new file, as SummaryWriter does after close().
  tb->log_text("notes", "hello tensorboard", 5);
  tb->finalize("success");
  BOOST_TEST(tb->event_file() != file);
  const auto text = decode_records(tb->event_file());
  BOOST_REQUIRE_EQUAL(text.size(), 2u);
  BOOST_TEST(contains(text[1], "1: \"notes/text_summary\""));
  BOOST_TEST(contains(text[1], "\"hello tensorboard\""));
  BOOST_TEST(contains(text[1], "1: \"text\""));
  const fs::path dir = save / "lightning_logs" / "version_0";
  BOOST_TEST(fs::exists(dir / "hparams.yaml"));
  BOOST_TEST(fs::path(file).parent_path() == dir);
  BOOST_TEST(contains(fs::path(file).filename().string(), "events.out.tfevents."));
  const auto records = decode_records(file);
  // file version, hp_metric, 3 hparams summaries, 2 x (loss, epoch)
  BOOST_REQUIRE_EQUAL(records.size(), 9u);
  BOOST_TEST(contains(records[0], "3: \"brain.Event:2\""));
  BOOST_TEST(contains(records[1], "1: \"hp_metric\""));
  BOOST_TEST(contains(records[1], "2: 0xbf800000"));  // -1.0f
  BOOST_TEST(contains(records[2], "1: \"_hparams_/experiment\""));
  BOOST_TEST(contains(records[2], "1: \"hparams\""));
  BOOST_TEST(contains(records[3], "1: \"_hparams_/session_start_info\""));
  BOOST_TEST(contains(records[3], "1: \"lr\""));
  BOOST_TEST(contains(records[3], "1: \"optimizer\""));
  BOOST_TEST(contains(records[3], "3: \"sgd\""));  // string_value
  BOOST_TEST(contains(records[4], "1: \"_hparams_/session_end_info\""));
  // scalars: Event{step=2: 1, summary=5 {value=1 {tag=1, simple_value=2}}}
  bool found_loss_step1 = false;
  for (std::size_t i = 5; i < 9; ++i)
    if (contains(records[i], "1: \"loss\"") && contains(records[i], "2: 0x3f800000") &&
        contains(records[i], "\n2: 1\n"))
      found_loss_step1 = true;
  BOOST_TEST(found_loss_step1);
}

BOOST_AUTO_TEST_CASE(options_and_crc) {
  const unsigned char check[] = "123456789";
  BOOST_TEST(crc32c(check, 9) == 0xE3069283u);  // the CRC-32C check value
  const fs::path save = fs::absolute("tb_options");
  TensorBoardLogger tb(save.string(), TensorBoardLoggerOptions()
                                          .name("exp")
                                          .version(std::int64_t{3})
                                          .sub_dir("sub")
                                          .prefix("p")
                                          .default_hp_metric(false));
  BOOST_TEST(tb.log_dir() == (save / "exp" / "version_3" / "sub").string());
  tb.log_hyperparams(Checkpoint());
  tb.log_metrics({{"m", 2.0}}, 4);
  tb.finalize("success");
  const auto records = decode_records(tb.event_file());
  BOOST_REQUIRE_EQUAL(records.size(), 2u);  // no hp_metric, no hparams summaries
  BOOST_TEST(contains(records[1], "1: \"p-m\""));
  BOOST_TEST(read_text(save / "exp" / "version_3" / "sub" / "hparams.yaml") == "{}\n");
}

// loggers/tfrecord: our reader gets back what the logger wrote (as many records as the
// independent reader above) and what tfrecord_frame framed; damage is an error naming the offset.
BOOST_AUTO_TEST_CASE(tfrecord_reader_round_trip_and_errors) {
  const fs::path save = fs::absolute("tb_reader");
  TensorBoardLogger tb(save.string());
  tb.log_metrics({{"a", 1.0}, {"b", 2.0}}, 1);
  tb.finalize("success");
  const std::string bytes = read_text(tb.event_file());
  BOOST_TEST(tfrecord_read(bytes).size() == decode_records(tb.event_file()).size());

  // Built apart: GCC 12's -Warray-bounds misreads a temporary's + inside the list (at -O1).
  std::string long_payload(300, '\0');
  long_payload += "tail";
  const std::vector<std::string> payloads = {"", "x", long_payload};
  std::string framed;
  for (const auto& p : payloads) framed += tfrecord_frame(p);
  BOOST_TEST((tfrecord_read(framed) == payloads));

  const std::size_t second = 12 + 0 + 4;  // where the second record starts
  auto offset_of = [](const std::string& damaged) -> std::int64_t {
    try {
      tfrecord_read(damaged);
    } catch (const TFRecordError& e) {
      return static_cast<std::int64_t>(e.offset());
    }
    return -1;
  };
  std::string flipped = framed;
  flipped[second + 12] ^= 0x01;  // the payload "x"
  BOOST_TEST(offset_of(flipped) == static_cast<std::int64_t>(second));
  std::string bad_length = framed;
  bad_length[second] ^= 0x40;  // the second record's length
  BOOST_TEST(offset_of(bad_length) == static_cast<std::int64_t>(second));
  BOOST_TEST(offset_of(framed.substr(0, framed.size() - 1)) > 0);  // truncated checksum
  BOOST_TEST(offset_of(framed.substr(0, 5)) == 0);                 // truncated header
  // A length that passes its checksum but asks for more than allowed.
  BOOST_CHECK_EXCEPTION(tfrecord_read(tfrecord_frame(std::string(64, 'y')), 63), TFRecordError,
                        [](const TFRecordError& e) {
                          return std::string(e.what()).find("more than the 63 allowed") !=
                                 std::string::npos;
                        });
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace hookline_test_logger_tests
