// Tests for the torch-free safetensors core (io/safetensors): every malformed-header case is
// built byte by byte here, the writer's exact layout, a HuggingFace-written file (read, and
// rewritten byte-identically), and, when installed, Python's reference reader on our output.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "io/safetensors.h"
#include "io/safetensors_test_util.h"
#include "util/mapped_file.h"

namespace mcd::io {
namespace {

using testing::contains;
using testing::file_bytes;
using testing::throws_error;

const char* const kLabel = "unit/test.safetensors";

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

SafetensorsFile parse(const std::vector<uint8_t>& bytes) {
  return SafetensorsFile::from_bytes(bytes, kLabel);
}

// ---------------------------------------------------------------------------------------------
// Valid files.

TEST(SafetensorsReader, MinimalFile) {
  const auto f = parse(file_bytes("{" + entry("a", "F32", "[2]", 0, 8) + "}", 8));
  ASSERT_EQ(f.tensors().size(), 1u);
  const TensorInfo& t = f.at("a");
  EXPECT_EQ(t.dtype, DType::F32);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(t.numel(), 2);
  EXPECT_EQ(t.nbytes(), 8u);
  EXPECT_EQ(f.data(t)[0], 1);
  EXPECT_EQ(f.data(t)[7], 8);
  EXPECT_EQ(f.label(), kLabel);
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_EQ(f.data_size(), 8u);
}

TEST(SafetensorsReader, EmptyHeaderObjectIsAnEmptyFile) {
  const auto f = parse(file_bytes("{}      ", 0));
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.find("x"), nullptr);
}

TEST(SafetensorsReader, TensorsAreOrderedByOffsetNotHeaderOrder) {
  const std::string h = "{" + entry("z_first", "U8", "[3]", 0, 3) + "," +
                        entry("a_last", "I16", "[2]", 7, 11) + "," +
                        entry("m_mid", "I32", "[]", 3, 7) + "}";
  const auto f = parse(file_bytes(h, 11));
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.tensors()[0].name, "z_first");
  EXPECT_EQ(f.tensors()[1].name, "m_mid");
  EXPECT_EQ(f.tensors()[2].name, "a_last");
  EXPECT_EQ(f.at("m_mid").numel(), 1);  // 0-d scalar
  EXPECT_TRUE(f.at("m_mid").shape.empty());
}

TEST(SafetensorsReader, ZeroSizeTensorsAndMetadata) {
  const std::string h = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"h\\u00e9llo\"}," +
                        entry("empty", "F64", "[0,3]", 0, 0) + "," +
                        entry("b", "BF16", "[2]", 0, 4) + "," + entry("end", "I8", "[4,0]", 4, 4) +
                        "}    ";  // trailing spaces are the reference writer's padding
  const auto f = parse(file_bytes(h, 4));
  EXPECT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.at("empty").numel(), 0);
  EXPECT_EQ(f.at("end").nbytes(), 0u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "h\xc3\xa9llo");
  EXPECT_EQ(f.metadata().size(), 2u);
}

TEST(SafetensorsReader, AtNamesFileAndTensor) {
  const auto f = parse(file_bytes("{" + entry("a", "U8", "[1]", 0, 1) + "}", 1));
  EXPECT_NE(f.find("a"), nullptr);
  EXPECT_EQ(f.find("b"), nullptr);
  EXPECT_TRUE(throws_error([&] { f.at("backbone.missing"); }, {kLabel, "'backbone.missing'"}));
}

TEST(SafetensorsReader, DataRejectsForeignTensorInfo) {
  const auto f = parse(file_bytes("{" + entry("a", "U8", "[1]", 0, 1) + "}", 1));
  TensorInfo forged = f.at("a");
  forged.end = 1000;
  EXPECT_TRUE(throws_error([&] { f.data(forged); }, {kLabel, "outside"}));
}

TEST(SafetensorsReader, EveryDtypeNameAndSize) {
  const std::pair<DType, size_t> all[] = {
      {DType::F64, 8}, {DType::F32, 4}, {DType::F16, 2}, {DType::BF16, 2}, {DType::I64, 8},
      {DType::I32, 4}, {DType::I16, 2}, {DType::I8, 1},  {DType::U8, 1},   {DType::BOOL, 1}};
  for (const auto& [d, size] : all) {
    EXPECT_EQ(dtype_size(d), size);
    EXPECT_EQ(dtype_from_name(dtype_name(d)), d);
  }
  EXPECT_FALSE(dtype_from_name("f32").has_value());
  EXPECT_FALSE(dtype_from_name("U16").has_value());
}

TEST(SafetensorsReader, MovePreservesDataPointers) {
  auto f = parse(file_bytes("{" + entry("a", "U8", "[4]", 0, 4) + "}", 4));
  const uint8_t* before = f.data(f.at("a"));
  SafetensorsFile moved = std::move(f);
  EXPECT_EQ(moved.data(moved.at("a")), before);
}

// ---------------------------------------------------------------------------------------------
// Malformed files: each case must raise mcd::Error naming the file and the problem.

struct BadCase {
  std::string name;
  std::vector<uint8_t> bytes;
  std::vector<std::string> needles;
};

std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.name; }

std::vector<uint8_t> raw_prefix(uint64_t header_len, const std::string& rest) {
  std::vector<uint8_t> out;
  testing::append_u64_le(out, header_len);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

std::vector<BadCase> bad_cases() {
  const std::string ok = entry("a", "F32", "[2]", 0, 8);
  auto one = [](const std::string& body) { return "{" + body + "}"; };
  auto tensor = [](const std::string& fields) { return "{\"t\":{" + fields + "}}"; };
  const std::string shape = "\"shape\":[2]", offsets = "\"data_offsets\":[0,8]",
                    dtype = "\"dtype\":\"F32\"";
  return {
      // Size and prefix.
      {"Empty", {}, {"0 bytes", "too short"}},
      {"SevenBytes", {1, 2, 3, 4, 5, 6, 7}, {"7 bytes", "too short"}},
      {"HeaderLengthPastEnd", raw_prefix(64, "{}"), {"header length 64", "past the end"}},
      {"HeaderLengthAbsurd", raw_prefix(std::numeric_limits<uint64_t>::max(), "{}"),
       {"exceeds the 100000000-byte limit"}},
      {"HeaderLengthJustOverLimit", raw_prefix(100'000'001, "{}"), {"exceeds"}},
      {"HeaderLengthZero", file_bytes("", 0), {"does not start with '{'"}},
      // Header text.
      {"NotJson", file_bytes("{not json}", 0), {"not valid JSON"}},
      {"TruncatedJson", file_bytes("{\"a\":{\"dtype\"", 0), {"not valid JSON"}},
      {"TrailingGarbage", file_bytes("{} x", 0), {"not valid JSON"}},
      {"NulPadding", file_bytes(std::string("{}\0\0", 4), 0), {"not valid JSON"}},
      {"TopLevelArray", file_bytes("[1,2]", 0), {"does not start with '{'"}},
      {"LeadingSpace", file_bytes(" {}", 0), {"does not start with '{'"}},
      {"InvalidUtf8Byte", file_bytes("{\"\xff\":1}", 0), {"not valid UTF-8", "offset 2"}},
      {"OverlongUtf8", file_bytes("{\"\xc0\xaf\":1}", 0), {"not valid UTF-8"}},
      {"SurrogateUtf8", file_bytes("{\"\xed\xa0\x80\":1}", 0), {"not valid UTF-8"}},
      {"TruncatedUtf8", file_bytes("{\"\xe2\x82", 0), {"not valid UTF-8"}},
      {"LoneSurrogateEscape", file_bytes("{\"\\ud800\":1}", 0), {"not valid JSON"}},
      {"TooDeep", file_bytes(tensor(dtype + ",\"shape\":[[2]]," + offsets), 8), {"nested"}},
      // Entries.
      {"EntryNotObject", file_bytes("{\"t\":5}", 0), {"tensor 't'", "must be an object"}},
      {"MissingDtype", file_bytes(tensor(shape + "," + offsets), 8), {"missing \"dtype\""}},
      {"MissingShape", file_bytes(tensor(dtype + "," + offsets), 8), {"missing \"shape\""}},
      {"MissingOffsets", file_bytes(tensor(dtype + "," + shape), 8),
       {"missing \"data_offsets\""}},
      {"UnexpectedKey", file_bytes(tensor(dtype + "," + shape + "," + offsets + ",\"x\":1"), 8),
       {"unexpected key 'x'"}},
      {"DtypeNotString", file_bytes(tensor("\"dtype\":4," + shape + "," + offsets), 8),
       {"\"dtype\" must be a string"}},
      {"UnknownDtype", file_bytes(tensor("\"dtype\":\"F8_E4M3\"," + shape + "," + offsets), 8),
       {"tensor 't'", "unsupported dtype 'F8_E4M3'", "BF16"}},
      {"LowercaseDtype", file_bytes(tensor("\"dtype\":\"f32\"," + shape + "," + offsets), 8),
       {"unsupported dtype 'f32'"}},
      {"ShapeNotArray", file_bytes(tensor(dtype + ",\"shape\":2," + offsets), 8),
       {"\"shape\" must be an array of non-negative integers", "got 2"}},
      {"ShapeNegative", file_bytes(tensor(dtype + ",\"shape\":[-2]," + offsets), 8),
       {"non-negative integers", "[-2]"}},
      {"ShapeFloat", file_bytes(tensor(dtype + ",\"shape\":[2.0]," + offsets), 8),
       {"non-negative integers"}},
      {"ShapeString", file_bytes(tensor(dtype + ",\"shape\":[\"2\"]," + offsets), 8),
       {"non-negative integers"}},
      {"ShapeAboveInt64", file_bytes(tensor(dtype + ",\"shape\":[9223372036854775808]," + offsets), 8),
       {"non-negative integers"}},
      {"ShapeOverflowsElements",
       file_bytes(tensor(dtype + ",\"shape\":[4294967296,4294967296,2]," + offsets), 8),
       {"more elements than fit in 64 bits"}},
      {"ShapeOverflowsBytes",
       file_bytes(tensor(dtype + ",\"shape\":[4611686018427387904]," + offsets), 8),
       {"needs more bytes than fit in 64 bits"}},
      {"OffsetsNotArray", file_bytes(tensor(dtype + "," + shape + ",\"data_offsets\":8"), 8),
       {"\"data_offsets\" must be [begin, end]"}},
      {"OffsetsOneElement", file_bytes(tensor(dtype + "," + shape + ",\"data_offsets\":[8]"), 8),
       {"\"data_offsets\" must be [begin, end]"}},
      {"OffsetsThreeElements",
       file_bytes(tensor(dtype + "," + shape + ",\"data_offsets\":[0,4,8]"), 8),
       {"\"data_offsets\" must be [begin, end]"}},
      {"OffsetsNegative", file_bytes(tensor(dtype + "," + shape + ",\"data_offsets\":[-8,0]"), 8),
       {"\"data_offsets\" must be [begin, end]"}},
      {"OffsetsString", file_bytes(tensor(dtype + "," + shape + ",\"data_offsets\":[0,\"8\"]"), 8),
       {"\"data_offsets\" must be [begin, end]"}},
      {"OffsetsHuge",
       file_bytes(tensor(dtype + "," + shape + ",\"data_offsets\":[0,18446744073709551616]"), 8),
       {"\"data_offsets\" must be [begin, end]"}},
      {"BeginAfterEnd", file_bytes(tensor(dtype + "," + shape + ",\"data_offsets\":[8,0]"), 8),
       {"begin > end"}},
      {"EndPastData", file_bytes(one(entry("a", "F32", "[4]", 0, 16)), 8),
       {"tensor 'a'", "run past the end of the data section (8 bytes)"}},
      {"EndPastDataHuge",
       file_bytes(one(entry("a", "U8", "[8]", 0, 18446744073709551615ull)), 8),
       {"run past the end"}},
      {"SizeMismatch", file_bytes(one(entry("a", "F32", "[3]", 0, 8)), 8),
       {"tensor 'a'", "cover 8 bytes", "shape [3] of F32 needs 12 bytes"}},
      {"SizeMismatchDtype", file_bytes(one(entry("a", "F64", "[2]", 0, 8)), 8),
       {"needs 16 bytes"}},
      // Layout of the data section.
      {"Overlap",
       file_bytes(one(entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12)), 12),
       {"'a' [0, 8)", "'b' [4, 12)", "overlap"}},
      {"SameRange",
       file_bytes(one(entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "I32", "[2]", 0, 8)), 8),
       {"overlap"}},
      {"ZeroSizeInsideTensor",
       file_bytes(one(entry("a", "F32", "[2]", 0, 8) + "," + entry("z", "F32", "[0]", 4, 4)), 8),
       {"overlap"}},
      {"Hole",
       file_bytes(one(entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 8, 12)), 12),
       {"bytes [4, 8) belong to no tensor", "'b'"}},
      {"HoleAtStart", file_bytes(one(entry("a", "F32", "[1]", 4, 8)), 8),
       {"bytes [0, 4) belong to no tensor"}},
      {"TrailingBytes", file_bytes(one(ok), 12), {"cover 8 bytes", "4 trailing bytes"}},
      {"DataWithoutTensors", file_bytes("{}", 3), {"3 trailing bytes"}},
      // Names and metadata.
      {"DuplicateTensorName", file_bytes(one(ok + "," + entry("a", "F32", "[2]", 0, 8)), 8),
       {"duplicate key 'a'"}},
      {"DuplicateFieldInEntry",
       file_bytes(tensor(dtype + "," + dtype + "," + shape + "," + offsets), 8),
       {"duplicate key 'dtype'"}},
      {"DuplicateMetadataKey",
       file_bytes("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0), {"duplicate key 'k'"}},
      {"MetadataNotObject", file_bytes("{\"__metadata__\":\"pt\"}", 0),
       {"\"__metadata__\" must be an object of strings"}},
      {"MetadataValueNumber", file_bytes("{\"__metadata__\":{\"format\":1}}", 0),
       {"value for key 'format' must be a string", "got 1"}},
      {"MetadataValueNull", file_bytes("{\"__metadata__\":{\"format\":null}}", 0),
       {"must be a string"}},
      {"ControlCharactersInNameAreEscaped",
       file_bytes("{\"a\\u0001b\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,0]}}", 0),
       {"tensor 'a\\x01b'", "unsupported dtype 'X'"}},
  };
}

class SafetensorsMalformed : public ::testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsMalformed, IsRejectedWithAClearError) {
  const BadCase& c = GetParam();
  std::vector<std::string> needles = c.needles;
  needles.push_back(std::string("safetensors file '") + kLabel + "'");
  EXPECT_TRUE(throws_error([&] { parse(c.bytes); }, needles));
}

INSTANTIATE_TEST_SUITE_P(Safetensors, SafetensorsMalformed, ::testing::ValuesIn(bad_cases()),
                         [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(SafetensorsReader, MissingFileNamesPath) {
  EXPECT_TRUE(throws_error([] { SafetensorsFile::open("/nonexistent/dir/model.safetensors"); },
                           {"/nonexistent/dir/model.safetensors"}));
}

TEST(SafetensorsReader, TruncatedFileOnDiskNamesPath) {
  const std::string dir = testing::make_temp_dir();
  const std::string path = dir + "/cut.safetensors";
  std::vector<uint8_t> bytes = file_bytes("{" + entry("a", "F32", "[4]", 0, 16) + "}", 16);
  bytes.resize(bytes.size() - 5);  // as if a copy stopped early
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  EXPECT_TRUE(throws_error([&] { SafetensorsFile::open(path); },
                           {path, "run past the end of the data section (11 bytes)"}));
  testing::remove_tree(dir);
}

// ---------------------------------------------------------------------------------------------
// Writer.

TEST(SafetensorsWriter, ExactBytesOfASmallFile) {
  const float values[6] = {0, 1, 2, 3, 4, 5};
  const auto bytes = serialize_safetensors({{"w", DType::F32, {2, 3}, values, sizeof values}});
  const std::string json = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(json.size(), 57u);
  const std::string header = json + std::string(7, ' ');  // padded to 64
  std::vector<uint8_t> expected = {64, 0, 0, 0, 0, 0, 0, 0};
  expected.insert(expected.end(), header.begin(), header.end());
  const auto* raw = reinterpret_cast<const uint8_t*>(values);
  expected.insert(expected.end(), raw, raw + sizeof values);
  EXPECT_EQ(bytes, expected);
}

TEST(SafetensorsWriter, EmptyFileAndMetadataOnly) {
  const auto empty = serialize_safetensors({});
  EXPECT_EQ(std::string(empty.begin() + 8, empty.end()), "{}      ");
  EXPECT_EQ(empty[0], 8);
  const auto meta = serialize_safetensors({}, {{"format", "pt"}});
  EXPECT_EQ(std::string(meta.begin() + 8, meta.end()), R"({"__metadata__":{"format":"pt"}})");
  EXPECT_EQ(parse(meta).metadata().at("format"), "pt");
}

TEST(SafetensorsWriter, LayoutSortsByAlignmentThenName) {
  const uint8_t u8[3] = {1, 2, 3};
  const int64_t i64[1] = {-7};
  const float f32[2] = {1.5f, -2.f};
  const uint16_t bf16[1] = {0x3f80};
  const auto bytes = serialize_safetensors({{"b.u8", DType::U8, {3}, u8, 3},
                                            {"z.f32", DType::F32, {2}, f32, 8},
                                            {"a.f32", DType::F32, {2}, f32, 8},
                                            {"bf", DType::BF16, {}, bf16, 2},
                                            {"y.i64", DType::I64, {1}, i64, 8}});
  const auto f = parse(bytes);
  std::vector<std::string> order;
  for (const TensorInfo& t : f.tensors()) order.push_back(t.name);
  EXPECT_EQ(order, (std::vector<std::string>{"y.i64", "a.f32", "z.f32", "bf", "b.u8"}));
  // Every tensor is naturally aligned relative to the file start.
  for (const TensorInfo& t : f.tensors())
    EXPECT_EQ((8 + f.header_size() + t.begin) % dtype_size(t.dtype), 0u) << t.name;
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + f.header_size());
  EXPECT_LT(header.find("\"y.i64\""), header.find("\"a.f32\""));
  EXPECT_EQ(std::memcmp(f.data(f.at("bf")), bf16, 2), 0);
  EXPECT_EQ(std::memcmp(f.data(f.at("b.u8")), u8, 3), 0);
}

TEST(SafetensorsWriter, NamesAreJsonEscaped) {
  const uint8_t b = 1;
  const std::string name = "we\"ird\\name\n\x01/\xc3\xa9";
  const auto f = parse(serialize_safetensors({{name, DType::U8, {1}, &b, 1}}, {{"k\"", "v\n"}}));
  EXPECT_NE(f.find(name), nullptr);
  EXPECT_EQ(f.metadata().at("k\""), "v\n");
}

TEST(SafetensorsWriter, RejectsBadInput) {
  const float x[2] = {1, 2};
  EXPECT_TRUE(throws_error([&] {
    serialize_safetensors({{"a", DType::F32, {2}, x, 8}, {"a", DType::F32, {2}, x, 8}});
  }, {"duplicate tensor name 'a'"}));
  EXPECT_TRUE(throws_error([&] { serialize_safetensors({{"__metadata__", DType::F32, {2}, x, 8}}); },
                           {"reserved"}));
  EXPECT_TRUE(throws_error([&] { serialize_safetensors({{"a", DType::F32, {3}, x, 8}}); },
                           {"tensor 'a'", "8 bytes given", "needs 12"}));
  EXPECT_TRUE(throws_error([&] { serialize_safetensors({{"a", DType::F32, {-2}, x, 8}}); },
                           {"negative dimension"}));
  EXPECT_TRUE(throws_error([&] { serialize_safetensors({{"a", DType::F32, {2}, nullptr, 8}}); },
                           {"null data"}));
  EXPECT_TRUE(throws_error([&] { serialize_safetensors({{"bad\xff", DType::F32, {2}, x, 8}}); },
                           {"not valid UTF-8"}));
  EXPECT_TRUE(throws_error([&] { serialize_safetensors({}, {{"k", "\xc3"}}); },
                           {"metadata value", "not valid UTF-8"}));
  EXPECT_TRUE(throws_error([&] { serialize_safetensors({{"a", static_cast<DType>(99), {2}, x, 8}}); },
                           {"invalid DType"}));
}

TEST(SafetensorsWriter, WriteThenOpenMapped) {
  const std::string dir = testing::make_temp_dir();
  const std::string path = dir + "/out.safetensors";
  const double d[3] = {1.0 / 3, -0.0, 1e300};
  const int8_t i8[4] = {-128, -1, 0, 127};
  write_safetensors(path, {{"d", DType::F64, {3}, d, sizeof d}, {"i", DType::I8, {2, 2}, i8, 4},
                           {"nothing", DType::F32, {0}, nullptr, 0}},
                    {{"format", "pt"}});
  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.label(), path);
  EXPECT_EQ(std::memcmp(f.data(f.at("d")), d, sizeof d), 0);
  EXPECT_EQ(std::memcmp(f.data(f.at("i")), i8, 4), 0);
  EXPECT_EQ(f.at("i").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(f.at("nothing").nbytes(), 0u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  // A failed write (invalid input) leaves the previous file and nothing else.
  EXPECT_THROW(write_safetensors(path, {{"x", DType::F32, {5}, d, 8}}), Error);
  EXPECT_EQ(SafetensorsFile::open(path).tensors().size(), 3u);
  EXPECT_TRUE(throws_error([&] { write_safetensors(dir + "/missing/x.safetensors", {}); },
                           {dir + "/missing/x.safetensors"}));
  testing::remove_tree(dir);
}

TEST(SafetensorsWriter, RoundTripsAnythingTheReaderAccepts) {
  // Reader -> writer -> reader gives the same tensors, whatever the input's header order.
  const std::string h = "{" + entry("b", "I16", "[2]", 0, 4) + ",\"__metadata__\":{\"x\":\"y\"}," +
                        entry("a", "BOOL", "[3,1]", 4, 7) + "}";
  const auto first = parse(file_bytes(h, 7));
  std::vector<TensorBytes> items;
  for (const TensorInfo& t : first.tensors())
    items.push_back({t.name, t.dtype, t.shape, first.data(t), t.nbytes()});
  const auto second = parse(serialize_safetensors(items, first.metadata()));
  ASSERT_EQ(second.tensors().size(), 2u);
  for (const TensorInfo& t : first.tensors()) {
    const TensorInfo& u = second.at(t.name);
    EXPECT_EQ(u.dtype, t.dtype);
    EXPECT_EQ(u.shape, t.shape);
    ASSERT_EQ(u.nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(second.data(u), first.data(t), t.nbytes()), 0);
  }
  EXPECT_EQ(second.metadata(), first.metadata());
}

// ---------------------------------------------------------------------------------------------
// Interoperability with files written by HuggingFace (Rust safetensors via transformers).

TEST(SafetensorsHuggingFace, ReadsModelFile) {
  const std::string path = testing::shared_fixture_dir() + "/model.safetensors";
  if (!testing::file_exists(path)) GTEST_SKIP() << "fixture not found: " << path;
  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.tensors().size(), 22u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.dtype, DType::F32) << t.name;
  EXPECT_EQ(f.at("backbone.embeddings.weight").shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(f.at("backbone.layers.0.mixer.A_log").shape, (std::vector<int64_t>{128, 8}));
  EXPECT_EQ(f.at("backbone.layers.0.mixer.D").shape, (std::vector<int64_t>{128}));
  EXPECT_EQ(f.at("backbone.layers.1.mixer.conv1d.weight").shape,
            (std::vector<int64_t>{128, 1, 4}));
  EXPECT_EQ(f.at("backbone.layers.0.mixer.x_proj.weight").shape,
            (std::vector<int64_t>{4 + 2 * 8, 128}));
  EXPECT_EQ(f.at("backbone.layers.1.mixer.in_proj.weight").shape,
            (std::vector<int64_t>{256, 64}));
  EXPECT_EQ(f.at("backbone.norm_f.weight").shape, (std::vector<int64_t>{64}));
}

// Writing what we read reproduces HuggingFace's file exactly: same layout, header and padding.
void expect_identical_rewrite(const std::string& path) {
  if (!testing::file_exists(path)) GTEST_SKIP() << "fixture not found: " << path;
  const auto f = SafetensorsFile::open(path);
  std::vector<TensorBytes> items;
  for (const TensorInfo& t : f.tensors())
    items.push_back({t.name, t.dtype, t.shape, f.data(t), t.nbytes()});
  const std::vector<uint8_t> ours = serialize_safetensors(items, f.metadata());
  const MappedFile original = MappedFile::open(path);
  ASSERT_EQ(ours.size(), original.size());
  EXPECT_EQ(std::memcmp(ours.data(), original.data(), ours.size()), 0)
      << "first 200 header bytes differ:\n"
      << std::string(ours.begin() + 8, ours.begin() + 208) << "\nvs\n"
      << std::string(reinterpret_cast<const char*>(original.data()) + 8, 200);
}

TEST(SafetensorsHuggingFace, RewriteOfModelFileIsByteIdentical) {
  expect_identical_rewrite(testing::shared_fixture_dir() + "/model.safetensors");
}

TEST(SafetensorsHuggingFace, RewriteOfMixedDtypeFileIsByteIdentical) {
  expect_identical_rewrite(testing::shared_fixture_dir() + "/reference.safetensors");
}

// ---------------------------------------------------------------------------------------------
// Python's reference reader, when installed (it usually is not; then the test skips).

TEST(SafetensorsPython, ReferenceReaderParsesOurFile) {
  if (std::system("python3 -c 'import safetensors' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3 module 'safetensors' is not installed";
  const std::string dir = testing::make_temp_dir();
  const std::string path = dir + "/ours.safetensors";
  const double f64[2] = {1.5, -2};
  const uint16_t half[3] = {0x3c00, 0xc000, 0x7bff};
  const int64_t i64[1] = {1234567890123};
  const uint8_t flags[3] = {1, 0, 1};
  const int32_t i32 = -5;
  write_safetensors(path,
                    {{"layer.0.f64", DType::F64, {2}, f64, 16},
                     {"h", DType::F16, {3}, half, 6},
                     {"bf", DType::BF16, {1, 3}, half, 6},
                     {"ids", DType::I64, {1, 1}, i64, 8},
                     {"mask", DType::BOOL, {3}, flags, 3},
                     {"scalar", DType::I32, {}, &i32, 4},
                     {"empty", DType::F32, {0, 4}, nullptr, 0}},
                    {{"format", "pt"}});
  const std::string script =
      "import sys, safetensors\n"
      "items = safetensors.deserialize(open(sys.argv[1], 'rb').read())\n"
      "for name, t in sorted(items):\n"
      "    print(name, t['dtype'], list(t['shape']), bytes(t['data']).hex())\n";
  const std::string script_path = dir + "/check.py";
  { std::ofstream(script_path) << script; }
  std::FILE* pipe = ::popen(("python3 '" + script_path + "' '" + path + "' 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_EQ(out,
            "bf BF16 [1, 3] 003c00c0ff7b\n"
            "empty F32 [0, 4] \n"
            "h F16 [3] 003c00c0ff7b\n"
            "ids I64 [1, 1] cb04fb711f010000\n"
            "layer.0.f64 F64 [2] 000000000000f83f00000000000000c0\n"
            "mask BOOL [3] 010001\n"
            "scalar I32 [] fbffffff\n");
  testing::remove_tree(dir);
}

}  // namespace
}  // namespace mcd::io
