// Tests for src/data/tokenizer/sha256.{h,cpp} against the FIPS 180-4 / NIST example vectors,
// plus streaming in odd-sized chunks and the file helper the GPT-2 loader relies on.
#include <gtest/gtest.h>

#include <string>

#include "data/tokenizer/sha256.h"
#include "tokenizer_test_util.h"
#include "util/error.h"

namespace mcd::data {
namespace {

TEST(TokenizerSha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(TokenizerSha256, StreamingMatchesOneShotAtEveryBoundary) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(char(i * 37 + 11));
  for (size_t len : {0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 300}) {
    const std::string part = data.substr(0, len);
    for (size_t chunk : {1, 3, 63, 64, 100}) {
      Sha256 h;
      for (size_t i = 0; i < part.size(); i += chunk) h.update(part.substr(i, chunk));
      EXPECT_EQ(to_hex(h.finish()), sha256_hex(part)) << "len " << len << " chunk " << chunk;
    }
  }
}

TEST(TokenizerSha256, FileHashAndMissingFile) {
  const std::string path = test::temp_path("hash.txt");
  test::write_file(path, "abc");
  EXPECT_EQ(sha256_file_hex(path), sha256_hex("abc"));
  EXPECT_THROW(sha256_file_hex(path + ".missing"), mcd::Error);
}

}  // namespace
}  // namespace mcd::data
