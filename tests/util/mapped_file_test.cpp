// Tests for util/mapped_file: contents, empty files, error messages and move semantics.
// The last case shows why util/atomic_file renames instead of rewriting in place: an existing
// mapping keeps seeing the old, complete file.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace {

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mcd_mapped_file_XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

void write_raw(const std::string& path, const std::string& contents) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(contents.data(), 1, contents.size(), f), contents.size());
  std::fclose(f);
}

std::string as_string(const mcd::MappedFile& m) {
  return std::string(reinterpret_cast<const char*>(m.data()), m.size());
}

::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << haystack << "' does not contain '" << needle << "'";
}

class MappedFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(MappedFileTest, ReadsWholeFile) {
  std::string contents(10000, '\0');
  for (size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<char>(i * 7);
  write_raw(dir_ + "/f.bin", contents);
  const mcd::MappedFile m = mcd::MappedFile::open(dir_ + "/f.bin");
  EXPECT_EQ(m.size(), contents.size());
  EXPECT_EQ(as_string(m), contents);
  EXPECT_EQ(m.path(), dir_ + "/f.bin");
}

TEST_F(MappedFileTest, EmptyFileHasSizeZeroAndNonNullData) {
  write_raw(dir_ + "/empty", "");
  const mcd::MappedFile m = mcd::MappedFile::open(dir_ + "/empty");
  EXPECT_EQ(m.size(), 0u);
  EXPECT_NE(m.data(), nullptr);
}

TEST_F(MappedFileTest, MissingFileErrorNamesPathAndErrno) {
  const std::string path = dir_ + "/does_not_exist.safetensors";
  try {
    mcd::MappedFile::open(path);
    FAIL() << "expected mcd::Error";
  } catch (const mcd::Error& e) {
    EXPECT_TRUE(contains(e.what(), path));
    EXPECT_TRUE(contains(e.what(), std::strerror(ENOENT)));
  }
}

TEST_F(MappedFileTest, DirectoryIsRejected) {
  try {
    mcd::MappedFile::open(dir_);
    FAIL() << "expected mcd::Error";
  } catch (const mcd::Error& e) {
    EXPECT_TRUE(contains(e.what(), dir_));
    EXPECT_TRUE(contains(e.what(), "not a regular file"));
  }
}

TEST_F(MappedFileTest, UnreadableFileErrorNamesPath) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: permission bits are not enforced";
  write_raw(dir_ + "/secret", "x");
  ::chmod((dir_ + "/secret").c_str(), 0);
  EXPECT_THROW(mcd::MappedFile::open(dir_ + "/secret"), mcd::Error);
}

TEST_F(MappedFileTest, MoveTransfersTheMapping) {
  write_raw(dir_ + "/a", "alpha");
  write_raw(dir_ + "/b", "bravo!");
  mcd::MappedFile a = mcd::MappedFile::open(dir_ + "/a");
  const uint8_t* pa = a.data();
  mcd::MappedFile moved(std::move(a));
  EXPECT_EQ(moved.data(), pa);
  EXPECT_EQ(as_string(moved), "alpha");
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract

  mcd::MappedFile b = mcd::MappedFile::open(dir_ + "/b");
  moved = std::move(b);
  EXPECT_EQ(as_string(moved), "bravo!");
  EXPECT_EQ(moved.path(), dir_ + "/b");

  const mcd::MappedFile none;
  EXPECT_EQ(none.size(), 0u);
  EXPECT_NE(none.data(), nullptr);
}

TEST_F(MappedFileTest, MappingSurvivesAtomicReplacement) {
  const std::string path = dir_ + "/model.bin";
  write_raw(path, "old contents");
  const mcd::MappedFile m = mcd::MappedFile::open(path);
  mcd::write_text_atomic(path, "new, longer contents");
  EXPECT_EQ(as_string(m), "old contents");
  EXPECT_EQ(as_string(mcd::MappedFile::open(path)), "new, longer contents");
}

}  // namespace
