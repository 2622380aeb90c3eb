// Test helper: writes a state dict the way `torch.save(state_dict, path)` does, for tests of the PyTorch
// checkpoint reader on a machine without Python. The zip archive comes from LibTorch's own writer (the one
// torch.save uses); data.pkl is the byte stream Python's pickler emits for an OrderedDict of tensors
// (protocol 2, torch.save's default, or 4): GLOBAL collections.OrderedDict, REDUCE, SETITEMS, each tensor
// as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict()) with the
// storage as a persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel), and the dict's
// `_metadata` attribute set by BUILD. Tensors sharing a storage (a tied head, a view) share one record, as
// in torch.save. The real thing is checked on a machine with PyTorch (docs/safetensors.md).
#pragma once

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mcd::test {

class PickleWriter {
 public:
  explicit PickleWriter(int protocol) : protocol_(protocol) {
    op(0x80);
    out_.push_back(char(protocol));
  }
  void op(int code) { out_.push_back(char(code)); }
  void mark() { op('('); }
  void memoize() {  // BINPUT / LONG_BINPUT (protocol 2) or MEMOIZE (4), as Python does after each object
    if (protocol_ >= 4) {
      op(0x94);
    } else if (next_memo_ < 256) {
      op('q');
      out_.push_back(char(next_memo_));
    } else {
      op('r');
      le(next_memo_, 4);
    }
    ++next_memo_;
  }
  void get(uint32_t index) {
    if (index < 256) {
      op('h');
      out_.push_back(char(index));
    } else {
      op('j');
      le(index, 4);
    }
  }
  void string(const std::string& s) {
    if (protocol_ >= 4 && s.size() < 256) {
      op(0x8c);
      out_.push_back(char(s.size()));
    } else {
      op('X');
      le(s.size(), 4);
    }
    out_ += s;
    memoize();
  }
  // A string Python would memoize once and fetch again (the same object each time: 'storage', 'cpu').
  void shared_string(const std::string& s) {
    const auto it = memo_of_.find("s:" + s);
    if (it != memo_of_.end()) return get(it->second);
    memo_of_["s:" + s] = next_memo_;
    string(s);
  }
  void integer(int64_t v) {
    if (v >= 0 && v <= 0xff) {
      op('K');
      out_.push_back(char(v));
    } else if (v >= 0 && v <= 0xffff) {
      op('M');
      le(uint64_t(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      le(uint32_t(int32_t(v)), 4);
    } else {  // LONG1: the fewest two's-complement bytes
      std::string bytes;
      uint64_t u = uint64_t(v);
      for (int k = 0; k < 8; ++k) bytes.push_back(char((u >> (8 * k)) & 0xff));
      while (bytes.size() > 1 && ((bytes.back() == 0 && !(bytes[bytes.size() - 2] & 0x80)) ||
                                  (char(bytes.back()) == char(0xff) && (bytes[bytes.size() - 2] & 0x80))))
        bytes.pop_back();
      op(0x8a);
      out_.push_back(char(bytes.size()));
      out_ += bytes;
    }
  }
  void global(const std::string& module, const std::string& name) {
    const auto it = memo_of_.find("g:" + module + "." + name);
    if (it != memo_of_.end()) return get(it->second);
    if (protocol_ >= 4) {
      string(module);
      string(name);
      op(0x93);
    } else {
      op('c');
      out_ += module + "\n" + name + "\n";
    }
    memo_of_["g:" + module + "." + name] = next_memo_;
    memoize();
  }
  void int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) return op(')');
    if (v.size() > 3) mark();
    for (int64_t x : v) integer(x);
    op(v.size() > 3 ? 't' : 0x84 + int(v.size()));
    memoize();
  }
  std::string finish() {
    op('.');
    return out_;
  }

 private:
  void le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out_.push_back(char((v >> (8 * k)) & 0xff));
  }
  int protocol_;
  uint32_t next_memo_ = 0;
  std::map<std::string, uint32_t> memo_of_;
  std::string out_;
};

inline const char* storage_class_name(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return "DoubleStorage";
    case at::kFloat: return "FloatStorage";
    case at::kHalf: return "HalfStorage";
    case at::kBFloat16: return "BFloat16Storage";
    case at::kLong: return "LongStorage";
    case at::kInt: return "IntStorage";
    case at::kBool: return "BoolStorage";
    default: return "UnknownStorage";
  }
}

// A zip archive laid out as torch.save lays it out: data.pkl, byteorder, data/<key> for each record.
inline void write_torch_zip(const std::string& path, const std::string& pickle,
                            const std::vector<std::pair<std::string, std::string>>& records,
                            const std::string& byteorder = "little") {
  caffe2::serialize::PyTorchStreamWriter writer(path);
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  if (!byteorder.empty()) writer.writeRecord("byteorder", byteorder.data(), byteorder.size());
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

// torch.save(OrderedDict(dict), path) with a state dict's `_metadata`. CPU tensors of the types above.
inline void torch_save_state_dict(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& dict,
                                  int protocol = 2) {
  PickleWriter p(protocol);
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.memoize();
  std::map<const void*, std::string> keys;  // storage -> record key, in first-use order
  std::vector<std::pair<std::string, std::string>> records;
  // Items in batches of up to 1,000 (MARK ... SETITEMS), a lone item with SETITEM, as Python's pickler does.
  for (size_t i = 0; i < dict.size(); ++i) {
    const size_t batch_start = i - i % 1000, batch_size = std::min<size_t>(1000, dict.size() - batch_start);
    if (i == batch_start && batch_size > 1) p.mark();
    const auto& [name, t] = dict[i];
    p.string(name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.mark();
    // The storage, as a persistent id.
    const void* data = t.storage().data();
    if (!keys.count(data)) {
      keys[data] = std::to_string(keys.size());
      records.emplace_back("data/" + keys[data],
                           std::string(static_cast<const char*>(data), t.storage().nbytes()));
    }
    p.mark();
    p.shared_string("storage");
    p.global("torch", storage_class_name(t.scalar_type()));
    p.string(keys[data]);
    p.shared_string("cpu");
    p.integer(int64_t(t.storage().nbytes() / t.element_size()));
    p.op('t');
    p.memoize();
    p.op('Q');
    p.integer(t.storage_offset());
    p.int_tuple(t.sizes().vec());
    p.int_tuple(t.strides().vec());
    p.op(0x89);  // requires_grad False
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');
    p.memoize();
    p.op('t');
    p.memoize();
    p.op('R');
    p.memoize();
    if (i + 1 == batch_start + batch_size) p.op(batch_size > 1 ? 'u' : 's');
  }
  // state: {'_metadata': OrderedDict({'': {'version': 1}})}, then BUILD.
  p.op('}');
  p.memoize();
  p.string("_metadata");
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.memoize();
  p.string("");
  p.op('}');
  p.memoize();
  p.string("version");
  p.integer(1);
  p.op('s');
  p.op('s');
  p.op('s');
  p.op('b');
  write_torch_zip(path, p.finish(), records);
}

}  // namespace mcd::test
