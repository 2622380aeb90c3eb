// Tests for util/atomic_file: replacement, and that every failure (a throwing writer, a missing
// directory, a directory in the way, a crash mid-write) leaves the old file intact and removes
// the temporary file (a crash may leave a stale temp, but never a partial target).
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"

namespace {

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mcd_atomic_file_XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  return names;
}

::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << haystack << "' does not contain '" << needle << "'";
}

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(AtomicFileTest, WritesNewFile) {
  const std::string path = dir_ + "/config.json";
  mcd::write_text_atomic(path, "{\"a\": 1}\n");
  EXPECT_EQ(read_all(path), "{\"a\": 1}\n");
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"config.json"});
}

TEST_F(AtomicFileTest, ReplacesExistingFile) {
  const std::string path = dir_ + "/f.txt";
  mcd::write_text_atomic(path, "first version, quite long");
  mcd::write_text_atomic(path, "second");
  EXPECT_EQ(read_all(path), "second");
  EXPECT_EQ(list_dir(dir_).size(), 1u);
}

TEST_F(AtomicFileTest, WriterStreamWritesBinaryData) {
  const std::string path = dir_ + "/bin";
  const std::string payload("\0\1\2\xff", 4);
  mcd::write_file_atomic(path, [&](std::FILE* f) {
    mcd::write_bytes(f, payload.data(), payload.size());
    mcd::write_bytes(f, nullptr, 0);
  });
  EXPECT_EQ(read_all(path), payload);
}

TEST_F(AtomicFileTest, TempFileLivesBesideTargetWhileWriting) {
  const std::string path = dir_ + "/model.safetensors";
  mcd::write_text_atomic(path, "old");
  mcd::write_file_atomic(path, [&](std::FILE* f) {
    mcd::write_bytes(f, "new", 3);
    EXPECT_EQ(read_all(path), "old");  // the target is untouched until the rename
    const std::vector<std::string> names = list_dir(dir_);
    ASSERT_EQ(names.size(), 2u);
    const std::string prefix = "model.safetensors.tmp." + std::to_string(::getpid());
    bool found = false;
    for (const std::string& n : names) found |= n.rfind(prefix, 0) == 0;
    EXPECT_TRUE(found) << "no '" << prefix << "*' among the directory's files";
  });
  EXPECT_EQ(read_all(path), "new");
  EXPECT_EQ(list_dir(dir_).size(), 1u);
}

TEST_F(AtomicFileTest, FailedWriterLeavesOldFileAndNoTemp) {
  const std::string path = dir_ + "/ckpt.bin";
  mcd::write_text_atomic(path, "the old, complete file");
  try {
    mcd::write_file_atomic(path, [](std::FILE* f) {
      mcd::write_bytes(f, "partial", 7);
      throw std::runtime_error("simulated failure in the middle");
    });
    FAIL() << "expected mcd::Error";
  } catch (const mcd::Error& e) {
    EXPECT_TRUE(contains(e.what(), path));
    EXPECT_TRUE(contains(e.what(), "simulated failure in the middle"));
  }
  EXPECT_EQ(read_all(path), "the old, complete file");
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"ckpt.bin"});
}

TEST_F(AtomicFileTest, FailedWriterWithNoOldFileLeavesNothing) {
  const std::string path = dir_ + "/new.bin";
  EXPECT_THROW(mcd::write_file_atomic(path, [](std::FILE*) { mcd::fail("nope"); }), mcd::Error);
  EXPECT_TRUE(list_dir(dir_).empty());
}

TEST_F(AtomicFileTest, MissingDirectoryErrorNamesPath) {
  const std::string path = dir_ + "/no/such/dir/file.txt";
  try {
    mcd::write_text_atomic(path, "x");
    FAIL() << "expected mcd::Error";
  } catch (const mcd::Error& e) {
    EXPECT_TRUE(contains(e.what(), path));
    EXPECT_TRUE(contains(e.what(), std::strerror(ENOENT)));
  }
  EXPECT_TRUE(list_dir(dir_).empty());
}

TEST_F(AtomicFileTest, DirectoryInTheWayFailsCleanly) {
  const std::string path = dir_ + "/occupied";
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  try {
    mcd::write_text_atomic(path, "x");
    FAIL() << "expected mcd::Error";
  } catch (const mcd::Error& e) {
    EXPECT_TRUE(contains(e.what(), path));
  }
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{"occupied"});
}

TEST_F(AtomicFileTest, CrashMidWriteLeavesOldFile) {
  const std::string path = dir_ + "/weights.bin";
  mcd::write_text_atomic(path, "complete old weights");
  // A forked child dies in the middle of writing; the parent then inspects the directory.
  EXPECT_EXIT(
      {
        mcd::write_file_atomic(path, [](std::FILE* f) {
          mcd::write_bytes(f, "half of the new", 15);
          std::fflush(f);
          std::_Exit(3);
        });
      },
      ::testing::ExitedWithCode(3), "");
  EXPECT_EQ(read_all(path), "complete old weights");
  // The crash may leave a stale temp beside it, never a partial target.
  for (const std::string& n : list_dir(dir_))
    EXPECT_TRUE(n == "weights.bin" || n.rfind("weights.bin.tmp.", 0) == 0) << n;
}

TEST_F(AtomicFileTest, WriteBytesReportsStreamErrors) {
  std::FILE* f = std::fopen((dir_ + "/ro").c_str(), "w+");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  f = std::fopen((dir_ + "/ro").c_str(), "rb");  // a read-only stream: fwrite fails
  ASSERT_NE(f, nullptr);
  EXPECT_THROW(mcd::write_bytes(f, "abc", 3), mcd::Error);
  std::fclose(f);
}

}  // namespace
