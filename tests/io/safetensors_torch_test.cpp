// Tests for io/safetensors_torch: round trips of every supported dtype (with exact bf16/f16 bit
// patterns, 0-d scalars and zero-size tensors), non-contiguous inputs, unaligned data, bool
// normalisation, error cases, and loading the HuggingFace fixture as at::Tensor.
#include "util/torch_pch.h"

#include <gtest/gtest.h>

#include <cstring>

#include "io/safetensors.h"
#include "io/safetensors_test_util.h"
#include "io/safetensors_torch.h"

namespace mcd::io {
namespace {

using testing::throws_error;

class SafetensorsTorch : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_temp_dir(); }
  void TearDown() override { testing::remove_tree(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// Bitwise equality (so -0.0, NaN payloads and inf all count), plus dtype and shape.
::testing::AssertionResult same_tensor(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type())
    return ::testing::AssertionFailure() << a.scalar_type() << " vs " << b.scalar_type();
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << a.sizes() << " vs " << b.sizes();
  const at::Tensor ca = a.contiguous(), cb = b.contiguous();
  if (ca.nbytes() != cb.nbytes()) return ::testing::AssertionFailure() << "nbytes differ";
  if (ca.nbytes() && std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) != 0)
    return ::testing::AssertionFailure() << "bytes differ:\n" << a << "\nvs\n" << b;
  return ::testing::AssertionSuccess();
}

std::vector<std::pair<std::string, at::Tensor>> one_of_each_dtype() {
  const double inf = std::numeric_limits<double>::infinity();
  auto floats = at::tensor({0.0, -0.0, 1.0, -2.5, 3.140625, 1e-3, 65504.0, inf, -inf},
                           at::kDouble);
  return {
      {"f64", at::tensor({1.0 / 3, -1e300, 4.9e-324, inf}, at::kDouble).reshape({2, 2})},
      {"f32", at::randn({3, 4, 5}, at::kFloat)},
      {"f16", floats.to(at::kHalf)},
      {"bf16", floats.to(at::kBFloat16).reshape({3, 3})},
      {"i64", at::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                          std::numeric_limits<int64_t>::max()}, at::kLong)},
      {"i32", at::arange(-6, 6, at::kInt).reshape({2, 3, 2})},
      {"i16", at::tensor({-32768, -1, 0, 32767}, at::kShort)},
      {"i8", at::tensor({-128, -1, 0, 127}, at::kChar)},
      {"u8", at::tensor({0, 1, 128, 255}, at::kByte)},
      {"bool", at::tensor({1, 0, 1}).to(at::kBool)},
  };
}

TEST_F(SafetensorsTorch, RoundTripEveryDtype) {
  const auto tensors = one_of_each_dtype();
  save_safetensors(path("all.safetensors"), tensors, {{"format", "pt"}});
  const auto loaded = load_safetensors(path("all.safetensors"));
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(loaded.count(name)) << name;
    EXPECT_TRUE(same_tensor(loaded.at(name), t)) << name;
  }
  const auto f = SafetensorsFile::open(path("all.safetensors"));
  EXPECT_EQ(f.at("bf16").dtype, DType::BF16);
  EXPECT_EQ(f.at("f16").dtype, DType::F16);
  EXPECT_EQ(f.at("bool").dtype, DType::BOOL);
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST_F(SafetensorsTorch, HalfAndBfloat16BitPatterns) {
  const at::Tensor src = at::tensor({1.0, -2.0, 0.5}, at::kDouble);
  save_safetensors(path("h.safetensors"),
                   {{"h", src.to(at::kHalf)}, {"b", src.to(at::kBFloat16)}});
  const auto f = SafetensorsFile::open(path("h.safetensors"));
  const uint8_t half_bits[] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38};   // 1, -2, 0.5 in IEEE f16
  const uint8_t bf16_bits[] = {0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f};   // the same in bfloat16
  ASSERT_EQ(f.at("h").nbytes(), 6u);
  EXPECT_EQ(std::memcmp(f.data(f.at("h")), half_bits, 6), 0);
  EXPECT_EQ(std::memcmp(f.data(f.at("b")), bf16_bits, 6), 0);
  const at::Tensor h = read_tensor(f, f.at("h")), b = read_tensor(f, f.at("b"));
  EXPECT_EQ(h.scalar_type(), at::kHalf);
  EXPECT_EQ(b.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(h.to(at::kDouble), src));
  EXPECT_TRUE(at::equal(b.to(at::kDouble), src));
}

TEST_F(SafetensorsTorch, ScalarsAndZeroSizeTensors) {
  const std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"scalar_f32", at::scalar_tensor(2.5, at::kFloat)},
      {"scalar_i64", at::scalar_tensor(-3, at::kLong)},
      {"scalar_bool", at::scalar_tensor(true, at::kBool)},
      {"empty_f32", at::empty({0}, at::kFloat)},
      {"empty_bf16", at::empty({3, 0, 2}, at::kBFloat16)},
      {"empty_u8", at::empty({0, 7}, at::kByte)},
  };
  save_safetensors(path("edge.safetensors"), tensors);
  const auto loaded = load_safetensors(path("edge.safetensors"));
  for (const auto& [name, t] : tensors) EXPECT_TRUE(same_tensor(loaded.at(name), t)) << name;
  EXPECT_EQ(loaded.at("scalar_f32").dim(), 0);
  EXPECT_EQ(loaded.at("scalar_f32").item<float>(), 2.5f);
  EXPECT_EQ(loaded.at("empty_bf16").sizes(), (std::vector<int64_t>{3, 0, 2}));
}

TEST_F(SafetensorsTorch, AcceptsNonContiguousViewsAndGradTensors) {
  const at::Tensor base = at::arange(24, at::kFloat).reshape({4, 6});
  const at::Tensor transposed = base.t();                        // strides (1, 6)
  const at::Tensor sliced = base.slice(1, 1, 5, 2);              // storage offset + gaps
  const at::Tensor expanded = at::tensor({1.f, 2.f}).expand({3, 2});  // stride 0
  const at::Tensor param = at::ones({2, 2}, at::kDouble).set_requires_grad(true);
  save_safetensors(path("views.safetensors"), {{"t", transposed}, {"s", sliced}, {"e", expanded},
                                               {"p", param}});
  const auto loaded = load_safetensors(path("views.safetensors"));
  EXPECT_TRUE(same_tensor(loaded.at("t"), transposed.contiguous()));
  EXPECT_TRUE(same_tensor(loaded.at("s"), sliced.contiguous()));
  EXPECT_TRUE(same_tensor(loaded.at("e"), expanded.contiguous()));
  EXPECT_TRUE(same_tensor(loaded.at("p"), param.detach()));
  EXPECT_FALSE(loaded.at("p").requires_grad());
  EXPECT_TRUE(loaded.at("t").is_contiguous());
}

TEST_F(SafetensorsTorch, ReadsUnalignedData) {
  // One U8 byte first puts the F32 and I64 data at odd addresses.
  const float floats[2] = {1.25f, -3.5f};
  const int64_t longs[1] = {-42};
  std::vector<uint8_t> data = {7};
  data.insert(data.end(), reinterpret_cast<const uint8_t*>(floats),
              reinterpret_cast<const uint8_t*>(floats) + 8);
  data.insert(data.end(), reinterpret_cast<const uint8_t*>(longs),
              reinterpret_cast<const uint8_t*>(longs) + 8);
  std::string h =
      R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
      R"("f":{"dtype":"F32","shape":[2],"data_offsets":[1,9]},)"
      R"("l":{"dtype":"I64","shape":[],"data_offsets":[9,17]}})";
  h.append((8 - h.size() % 8) % 8, ' ');  // data section 8-aligned, so "f" starts at an odd address
  const auto f = SafetensorsFile::from_bytes(testing::file_bytes(h, data), "unaligned");
  ASSERT_NE(reinterpret_cast<uintptr_t>(f.data(f.at("f"))) % 4, 0u);
  const at::Tensor t = read_tensor(f, f.at("f"));
  EXPECT_EQ(t[0].item<float>(), 1.25f);
  EXPECT_EQ(t[1].item<float>(), -3.5f);
  EXPECT_EQ(read_tensor(f, f.at("l")).item<int64_t>(), -42);
  EXPECT_EQ(read_tensor(f, f.at("b")).item<uint8_t>(), 7);
}

TEST_F(SafetensorsTorch, BoolBytesAreNormalised) {
  const std::string h = R"({"m":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})";
  const auto f = SafetensorsFile::from_bytes(testing::file_bytes(h, {0, 1, 2, 255}), "bools");
  const at::Tensor m = read_tensor(f, f.at("m"));
  const auto* raw = static_cast<const uint8_t*>(m.data_ptr());
  EXPECT_EQ(std::vector<uint8_t>(raw, raw + 4), (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(m.sum().item<int64_t>(), 3);
}

TEST_F(SafetensorsTorch, HugeZeroSizeShapeDoesNotCrash) {
  // Valid per the format (numel 0); LibTorch may accept it or refuse it, but only via mcd::Error.
  const std::string h =
      R"({"z":{"dtype":"F32","shape":[9223372036854775807,0],"data_offsets":[0,0]}})";
  const auto f = SafetensorsFile::from_bytes(testing::file_bytes(h, 0), "huge");
  try {
    EXPECT_EQ(read_tensor(f, f.at("z")).numel(), 0);
  } catch (const Error& e) {
    EXPECT_TRUE(testing::contains(e.what(), "'z'"));
  }
}

TEST_F(SafetensorsTorch, ReadTensorOwnsItsMemory) {
  at::Tensor kept;
  {
    const auto f = SafetensorsFile::from_bytes(
        testing::file_bytes(R"({"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})",
                            std::vector<uint8_t>{9, 0, 0, 0}),
        "owned");
    kept = read_tensor(f, f.at("x"));
  }
  EXPECT_EQ(kept.item<int32_t>(), 9);
}

TEST_F(SafetensorsTorch, ScalarTypeMapping) {
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32,
                  DType::I16, DType::I8, DType::U8, DType::BOOL}) {
    EXPECT_EQ(from_scalar_type(to_scalar_type(d)), d);
    EXPECT_EQ(c10::elementSize(to_scalar_type(d)), dtype_size(d));
  }
  EXPECT_TRUE(throws_error([] { from_scalar_type(at::kComplexFloat); }, {"ComplexFloat"}));
}

TEST_F(SafetensorsTorch, SaveRejectsBadInputWithoutWriting) {
  const std::string p = path("bad.safetensors");
  const at::Tensor x = at::ones({2});
  EXPECT_TRUE(throws_error([&] { save_safetensors(p, {{"a", x}, {"a", x}}); },
                           {p, "duplicate tensor name 'a'"}));
  EXPECT_TRUE(throws_error([&] { save_safetensors(p, {{"c", at::ones({2}, at::kComplexFloat)}}); },
                           {p, "tensor 'c'", "ComplexFloat"}));
  EXPECT_TRUE(throws_error([&] { save_safetensors(p, {{"u", at::Tensor()}}); },
                           {p, "'u' is undefined"}));
  EXPECT_TRUE(throws_error([&] { save_safetensors(p, {{"s", at::ones({2, 2}).to_sparse()}}); },
                           {p, "'s' is not dense"}));
  EXPECT_TRUE(throws_error([&] { save_safetensors(p, {{"__metadata__", x}}); }, {p, "reserved"}));
  EXPECT_FALSE(testing::file_exists(p));
}

TEST_F(SafetensorsTorch, OverwriteKeepsOldFileOnFailure) {
  const std::string p = path("ckpt.safetensors");
  save_safetensors(p, {{"w", at::full({3}, 7.0)}});
  EXPECT_THROW(save_safetensors(p, {{"w", at::ones({1})}, {"w", at::ones({1})}}), Error);
  EXPECT_TRUE(at::equal(load_safetensors(p).at("w"), at::full({3}, 7.0)));
}

TEST_F(SafetensorsTorch, LoadsHuggingFaceModel) {
  const std::string p = testing::shared_fixture_dir() + "/model.safetensors";
  if (!testing::file_exists(p)) GTEST_SKIP() << "fixture not found: " << p;
  const auto weights = load_safetensors(p);
  ASSERT_EQ(weights.size(), 22u);
  const at::Tensor& a_log = weights.at("backbone.layers.0.mixer.A_log");
  EXPECT_EQ(a_log.scalar_type(), at::kFloat);
  EXPECT_EQ(a_log.sizes(), (std::vector<int64_t>{128, 8}));
  EXPECT_TRUE(at::isfinite(a_log).all().item<bool>());
  EXPECT_EQ(weights.at("backbone.embeddings.weight").sizes(), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(weights.at("backbone.layers.1.mixer.conv1d.weight").sizes(),
            (std::vector<int64_t>{128, 1, 4}));
  // Random non-trivial weights: not all zero, and saving + reloading keeps them bit-exact.
  EXPECT_GT(weights.at("backbone.layers.0.mixer.in_proj.weight").abs().sum().item<float>(), 0.f);
  std::vector<std::pair<std::string, at::Tensor>> items(weights.begin(), weights.end());
  save_safetensors(path("copy.safetensors"), items, {{"format", "pt"}});
  for (const auto& [name, t] : load_safetensors(path("copy.safetensors")))
    EXPECT_TRUE(same_tensor(t, weights.at(name))) << name;
}

TEST_F(SafetensorsTorch, LoadsReferenceTensorsWithInt64) {
  const std::string p = testing::shared_fixture_dir() + "/reference.safetensors";
  if (!testing::file_exists(p)) GTEST_SKIP() << "fixture not found: " << p;
  const auto f = SafetensorsFile::open(p);
  const at::Tensor ids = read_tensor(f, f.at("input_ids"));
  EXPECT_EQ(ids.scalar_type(), at::kLong);
  EXPECT_EQ(ids.sizes(), (std::vector<int64_t>{2, 37}));
  EXPECT_GE(ids.min().item<int64_t>(), 0);
  EXPECT_LT(ids.max().item<int64_t>(), 512);
  EXPECT_EQ(read_tensor(f, f.at("logits")).sizes(), (std::vector<int64_t>{2, 37, 512}));
}

}  // namespace
}  // namespace mcd::io
