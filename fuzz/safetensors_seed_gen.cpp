// Writes a small seed corpus of valid safetensors files (with our own writer, so no binary files
// are committed) for fuzz/safetensors_fuzz.cpp. Usage: safetensors_seed_gen <output-dir>.
// Also writes a few hand-made headers the writer would never produce (other key orders, spacing).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "util/atomic_file.h"
#include "util/error.h"

using mcd::io::DType;
using mcd::io::TensorBytes;

namespace {

void raw(const std::string& path, const std::string& header, const std::string& data) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  mcd::write_text_atomic(path, bytes + header + data);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output-dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    const float f32[6] = {0.f, 1.f, -2.f, 3.5f, 1e-8f, 65504.f};
    const double f64[2] = {1.0 / 3, -1e300};
    const uint16_t half[4] = {0x3c00, 0xc000, 0x7c00, 0x0001};
    const int64_t i64[2] = {-1, 1234567890123};
    const int32_t i32[3] = {-5, 0, 7};
    const int16_t i16[2] = {-32768, 32767};
    const int8_t i8[3] = {-128, 0, 127};
    const uint8_t u8[4] = {0, 1, 128, 255};
    const uint8_t flags[3] = {1, 0, 1};

    mcd::io::write_safetensors(dir + "/empty.safetensors", {});
    mcd::io::write_safetensors(dir + "/metadata_only.safetensors", {}, {{"format", "pt"}});
    mcd::io::write_safetensors(dir + "/one_f32.safetensors",
                               {{"weight", DType::F32, {2, 3}, f32, sizeof f32}});
    mcd::io::write_safetensors(
        dir + "/every_dtype.safetensors",
        {{"f64", DType::F64, {2}, f64, sizeof f64},
         {"f32", DType::F32, {3, 2}, f32, sizeof f32},
         {"f16", DType::F16, {4}, half, sizeof half},
         {"bf16", DType::BF16, {2, 2}, half, sizeof half},
         {"i64", DType::I64, {2}, i64, sizeof i64},
         {"i32", DType::I32, {3}, i32, sizeof i32},
         {"i16", DType::I16, {2}, i16, sizeof i16},
         {"i8", DType::I8, {3}, i8, sizeof i8},
         {"u8", DType::U8, {2, 2}, u8, sizeof u8},
         {"bool", DType::BOOL, {3}, flags, sizeof flags},
         {"scalar", DType::I32, {}, i32, 4},
         {"empty", DType::F32, {0, 3}, nullptr, 0}},
        {{"format", "pt"}, {"note", "seed"}});
    mcd::io::write_safetensors(
        dir + "/mamba_like.safetensors",
        {{"backbone.layers.0.mixer.A_log", DType::F32, {3, 2}, f32, sizeof f32},
         {"backbone.layers.0.mixer.D", DType::F32, {2}, f32, 8},
         {"backbone.norm_f.weight", DType::BF16, {4}, half, sizeof half}},
        {{"format", "pt"}});
    mcd::io::write_safetensors(dir + "/escaped_names.safetensors",
                               {{"quote\"back\\slash\nnewline\x01", DType::U8, {1}, u8, 1},
                                {"caf\xc3\xa9/\xe2\x82\xac", DType::I8, {1}, i8, 1}});
    // Hand-made: header order differs from data order, spaces inside the JSON, unpadded header.
    raw(dir + "/unsorted.safetensors",
        "{ \"b\" : {\"data_offsets\":[4,6], \"shape\":[1], \"dtype\":\"I16\"},\n"
        "  \"a\" : {\"shape\":[], \"dtype\":\"F32\", \"data_offsets\":[0,4]}, "
        "\"__metadata__\": {} }",
        std::string("\x00\x00\x80\x3f\xff\x7f", 6));
  } catch (const mcd::Error& e) {
    std::fprintf(stderr, "safetensors_seed_gen: %s\n", e.what());
    return 1;
  }
  return 0;
}
