// The PyTorch checkpoint reader (io/pytorch_pickle, io/pytorch_checkpoint_torch): state dicts as torch.save
// writes them (tests/torch_save_writer.h emulates it; docs/safetensors.md records the check against real
// torch.save files), and every refusal a bad or hostile file must get.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/pytorch_checkpoint_torch.h"
#include "io/pytorch_pickle.h"
#include "test_support.h"
#include "torch_save_writer.h"
#include "util/fs.h"

namespace mcd {
namespace {

// Several dtypes, a 0-d tensor, an empty one, a transposed view and two views of one storage (a tied
// head and an offset slice): what a state dict may hold.
std::vector<std::pair<std::string, at::Tensor>> varied_state_dict() {
  torch::manual_seed(3);
  const at::Tensor base = torch::randn({6, 5});
  return {
      {"a.weight", torch::randn({4, 3})},
      {"b.bf16", torch::randn({7}).to(torch::kBFloat16)},
      {"c.f16", torch::randn({2, 3}).to(torch::kHalf)},
      {"d.f64", torch::randn({3}, torch::kDouble)},
      {"e.scalar", torch::tensor(2.5f)},
      {"f.empty", torch::zeros({0, 4})},
      {"g.transposed", torch::randn({3, 5}).t()},
      {"h.tied_a", base},
      {"h.tied_b", base},
      {"i.slice", base.narrow(0, 2, 3)},
      {"j.int64", torch::arange(300, torch::kLong) * 100000000},
  };
}

void expect_reads_back(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& dict) {
  const io::PytorchCheckpoint c = io::PytorchCheckpoint::open_file(path);
  ASSERT_EQ(c.entries().size(), dict.size());
  for (size_t i = 0; i < dict.size(); ++i) {
    const auto& [name, expected] = dict[i];
    EXPECT_EQ(c.entries()[i].tensor->name, name);  // file order
    const io::PytorchCheckpoint::Entry* e = c.find(name);
    ASSERT_NE(e, nullptr) << name;
    const at::Tensor got = c.read(*e);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(got.is_contiguous()) << name;
    EXPECT_TRUE(torch::equal(got, expected)) << name;  // bytes copied, never converted
  }
}

TEST(PytorchCheckpoint, ReadsAStateDictAsTorchSaveWritesItWithPickleProtocols2And4) {
  test::TempDir dir;
  const auto dict = varied_state_dict();
  for (int protocol : {2, 4}) {
    SCOPED_TRACE(protocol);
    const std::string path = dir.file("p" + std::to_string(protocol) + ".bin");
    test::torch_save_state_dict(path, dict, protocol);
    expect_reads_back(path, dict);
  }
  // The tied pair and the slice share one storage record, as torch.save stores them.
  const io::PytorchCheckpoint c = io::PytorchCheckpoint::open_file(dir.file("p2.bin"));
  EXPECT_EQ(c.find("h.tied_a")->tensor->storage_key, c.find("h.tied_b")->tensor->storage_key);
  EXPECT_EQ(c.find("i.slice")->tensor->storage_key, c.find("h.tied_a")->tensor->storage_key);
  EXPECT_EQ(c.find("i.slice")->tensor->storage_offset, 10);
}

// Python's own pickler (protocols 2 and 4), driven as torch.save drives it, through a stand-in `torch`
// module (tests/io/python_pickler_state_dict.py): the machine reads the byte stream Python really emits.
TEST(PytorchCheckpoint, ReadsWhatPythonsOwnPicklerWritesForAStateDict) {
  if (std::system("python3 -c 'import zipfile' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 is not installed";
  test::TempDir dir;
  const at::Tensor weights = torch::arange(12, torch::kFloat) / 8;
  for (int protocol : {2, 4, 5}) {
    SCOPED_TRACE(protocol);
    const std::string path = dir.file("p.bin");
    ASSERT_EQ(std::system(("python3 '" + test::source_dir() + "/tests/io/python_pickler_state_dict.py' '" + path +
                           "' " + std::to_string(protocol))
                              .c_str()),
              0);
    const io::PytorchCheckpoint c = io::PytorchCheckpoint::open_file(path);
    ASSERT_EQ(c.entries().size(), 5u);
    EXPECT_TRUE(torch::equal(c.read(*c.find("a.weight")), weights.reshape({3, 4})));
    EXPECT_TRUE(torch::equal(c.read(*c.find("a.weight_t")), weights.reshape({3, 4}).t()));
    EXPECT_TRUE(torch::equal(c.read(*c.find("a.tail")), weights.narrow(0, 8, 4)));
    EXPECT_TRUE(torch::equal(c.read(*c.find("b.bf16")), torch::tensor({1.5f, -2.0f, 0.25f}).to(torch::kBFloat16)));
    const at::Tensor scalar = c.read(*c.find("c.scalar"));
    EXPECT_EQ(scalar.dim(), 0);
    EXPECT_EQ(scalar.item<int64_t>(), -7);
  }
}

// What save_pytorch_checkpoint writes reads back through our reader, and through Python's own unpickler
// (torch.load itself runs only where PyTorch is: docs/results/2026-12-08a_pytorch_checkpoints)
// (tests/io/python_unpickle_state_dict.py: the same names in order, shapes and values); a tensor given
// under two names is stored once.
TEST(PytorchCheckpoint, WritesWhatPythonsUnpicklerReadsBack) {
  test::TempDir dir;
  const auto dict = varied_state_dict();
  const std::string path = dir.file("w.bin");
  io::save_pytorch_checkpoint(path, dict);
  expect_reads_back(path, dict);
  const io::PytorchCheckpoint c = io::PytorchCheckpoint::open_file(path);
  EXPECT_EQ(c.find("h.tied_a")->tensor->storage_key, c.find("h.tied_b")->tensor->storage_key);
  EXPECT_NE(c.find("a.weight")->tensor->storage_key, c.find("h.tied_a")->tensor->storage_key);
  if (std::system("python3 -c 'import zipfile' >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 is not installed";
  std::FILE* pipe = ::popen(("python3 '" + test::source_dir() + "/tests/io/python_unpickle_state_dict.py' '" + path +
                             "' 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) output.append(buf, n);
  ASSERT_EQ(::pclose(pipe), 0) << output;
  const nlohmann::json j = nlohmann::json::parse(output);
  ASSERT_EQ(j["names"].size(), dict.size());
  for (size_t i = 0; i < dict.size(); ++i) {
    const auto& [name, t] = dict[i];
    EXPECT_EQ(j["names"][i], name);
    const nlohmann::json& got = j["tensors"][name];
    EXPECT_EQ(got["shape"].get<std::vector<int64_t>>(), t.sizes().vec()) << name;
    // Every value in C order; float16/bfloat16/float32 values are exact in double, as JSON carries them.
    const at::Tensor expected = t.to(torch::kDouble).contiguous().reshape({-1});
    ASSERT_EQ(got["values"].size(), size_t(expected.numel())) << name;
    for (int64_t k = 0; k < expected.numel(); ++k)
      EXPECT_EQ(got["values"][k].get<double>(), expected[k].item<double>()) << name << "[" << k << "]";
  }
}

TEST(PytorchCheckpoint, ReadsMoreThanAThousandTensorsAndMemoIndicesPast255) {
  // 1,001 tensors: two SETITEMS batches and LONG_BINPUT / LONG_BINGET memo entries.
  test::TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> dict;
  for (int i = 0; i < 1001; ++i) dict.emplace_back("t" + std::to_string(i), torch::full({2}, float(i)));
  test::torch_save_state_dict(dir.file("m.bin"), dict);
  expect_reads_back(dir.file("m.bin"), dict);
}

TEST(PytorchCheckpoint, FolderShardsFollowTheirIndex) {
  test::TempDir dir;
  const auto dict = varied_state_dict();
  const std::vector<std::pair<std::string, at::Tensor>> first(dict.begin(), dict.begin() + 4),
      second(dict.begin() + 4, dict.end());
  test::torch_save_state_dict(dir.file("pytorch_model-00001-of-00002.bin"), first);
  test::torch_save_state_dict(dir.file("pytorch_model-00002-of-00002.bin"), second);
  nlohmann::json index;
  for (const auto& [name, t] : first) index["weight_map"][name] = "pytorch_model-00001-of-00002.bin";
  for (const auto& [name, t] : second) index["weight_map"][name] = "pytorch_model-00002-of-00002.bin";
  std::ofstream(dir.file("pytorch_model.bin.index.json")) << index.dump();
  EXPECT_TRUE(io::PytorchCheckpoint::folder_has_one(dir.path));
  const io::PytorchCheckpoint c = io::PytorchCheckpoint::open_folder(dir.path);
  ASSERT_EQ(c.entries().size(), dict.size());
  for (const auto& [name, t] : dict) EXPECT_TRUE(torch::equal(c.read(*c.find(name)), t)) << name;
  EXPECT_EQ(c.file_label(*c.find("a.weight")), dir.file("pytorch_model-00001-of-00002.bin"));
  // A tensor the index puts in the other shard.
  index["weight_map"]["a.weight"] = "pytorch_model-00002-of-00002.bin";
  std::ofstream(dir.file("pytorch_model.bin.index.json")) << index.dump();
  test::expect_error([&] { io::PytorchCheckpoint::open_folder(dir.path); }, "maps tensor 'a.weight' to '" + dir.file("pytorch_model-00002-of-00002.bin") + "', which does not hold it");
}

// A zip archive whose data.pkl is `pickle`, with one float storage record "data/0" of `floats` elements.
void write_raw(const std::string& path, const std::string& pickle, size_t floats = 4) {
  test::write_torch_zip(path, pickle, {{"data/0", std::string(floats * 4, '\0')}});
}

// data.pkl for {"w": tensor(size, stride, offset)} over storage '0' of `numel` floats, protocol 2.
std::string one_tensor_pickle(int64_t numel, std::vector<int64_t> size, std::vector<int64_t> stride,
                              int64_t offset = 0, const std::string& storage_class = "FloatStorage") {
  test::PickleWriter p(2);
  p.op('}');
  p.string("w");
  p.global("torch._utils", "_rebuild_tensor_v2");
  p.mark();
  p.mark();
  p.string("storage");
  p.global("torch", storage_class);
  p.string("0");
  p.string("cpu");
  p.integer(numel);
  p.op('t');
  p.op('Q');
  p.integer(offset);
  p.int_tuple(size);
  p.int_tuple(stride);
  p.op(0x89);
  p.op('N');
  p.op('t');
  p.op('R');
  p.op('s');
  return p.finish();
}

TEST(PytorchCheckpoint, AHandWrittenPlainDictReadsLikeAnOrderedDict) {
  test::TempDir dir;
  write_raw(dir.file("ok.bin"), one_tensor_pickle(4, {2, 2}, {2, 1}));
  const io::PytorchCheckpoint c = io::PytorchCheckpoint::open_file(dir.file("ok.bin"));
  EXPECT_TRUE(torch::equal(c.read(*c.find("w")), torch::zeros({2, 2})));
}

TEST(PytorchCheckpoint, RefusesWhatIsNotAStateDictNamingTheFile) {
  test::TempDir dir;
  const std::string f = dir.file("bad.bin");
  auto refuses = [&](const std::string& fragment) {
    test::expect_error([&] { io::PytorchCheckpoint::open_file(f); }, f);
    test::expect_error([&] { io::PytorchCheckpoint::open_file(f); }, fragment);
  };
  // A callable outside the state-dict vocabulary is refused, never called.
  {
    test::PickleWriter p(2);
    p.global("os", "system");
    p.string("echo pwned");
    p.op(0x85);
    p.op('R');
    write_raw(f, p.finish());
    refuses("refuses to call os.system");
  }
  // A training checkpoint that wraps the state dict.
  {
    test::PickleWriter p(2);
    p.op('}');
    p.string("model");
    p.op('}');
    p.op('s');
    write_raw(f, p.finish());
    refuses("'model' holds a dict, not a tensor");
  }
  // A view past its storage's end; sizes and strides that disagree; an unknown storage type.
  write_raw(f, one_tensor_pickle(4, {2, 3}, {3, 1}));
  refuses("reaches element 5 of storage '0', which has 4");
  write_raw(f, one_tensor_pickle(4, {2, 2}, {2}));
  refuses("has 2 sizes but 1 strides");
  write_raw(f, one_tensor_pickle(4, {1000000000}, {0}));  // a broadcast view: 4 GB from 16 bytes
  refuses("a tensor of 1000000000 elements overlaps itself in storage '0' of 4");
  write_raw(f, one_tensor_pickle(4, {4}, {1}, 0, "ComplexFloatStorage"));
  refuses("storage class torch.ComplexFloatStorage");
  // The storage record holds fewer bytes than the persistent id promises: found when the tensor is read.
  write_raw(f, one_tensor_pickle(8, {8}, {1}), 4);
  {
    const io::PytorchCheckpoint c = io::PytorchCheckpoint::open_file(f);
    test::expect_error([&] { c.read(*c.find("w")); }, "storage '0' of tensor 'w' has 16 bytes, but holds 8 F32 elements by its id");
  }
  // data.pkl cut short; an opcode torch.save never writes (INST); big-endian storages.
  const std::string whole = one_tensor_pickle(4, {4}, {1});
  write_raw(f, whole.substr(0, whole.size() / 2));
  refuses("data.pkl: truncated");
  write_raw(f, std::string("\x80\x02i", 3));
  refuses("pickle opcode 0x69");
  test::write_torch_zip(f, whole, {{"data/0", std::string(16, '\0')}}, "big");
  refuses("big-endian");
  // A top-level list; a file that is not a zip archive; the legacy format; a truncated archive.
  write_raw(f, std::string("\x80\x02]q\x00.", 6));
  refuses("holds a list, not a state dict");
  std::ofstream(f, std::ios::binary) << "not a checkpoint";
  refuses("not a PyTorch checkpoint");
  std::ofstream(f, std::ios::binary) << std::string("\x80\x02\x8a\x0a", 4) << "legacy....";
  refuses("legacy format");
  test::torch_save_state_dict(f, varied_state_dict());
  const std::string bytes = fs::read_file(f);
  std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 100);
  refuses("cannot read it as a PyTorch zip archive");
}

}  // namespace
}  // namespace mcd
