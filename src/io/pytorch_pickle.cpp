// A restricted pickle machine for torch.save'd state dicts (see pytorch_pickle.h). Opcode meanings follow
// Python's pickletools documentation; only those Python's pickler emits for dicts, tuples, lists,
// strings, numbers and persistent ids are known.
#include "io/pytorch_pickle.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "util/error.h"

namespace mcd::io {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;  // shared: the memo and the stack may hold one object twice

struct Value {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };
  Kind kind = Kind::None;
  int64_t i = 0;                                   // Int, Bool
  double f = 0;                                    // Float
  std::string s;                                   // String (also bytes); Global: "module.name"
  std::vector<ValuePtr> items;                     // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // Dict, in insertion order
  PickledTensor tensor;                            // Storage (key, dtype, numel), Tensor
};

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return "a bool";
    case Value::Kind::Int: return "an int";
    case Value::Kind::Float: return "a float";
    case Value::Kind::String: return "a string";
    case Value::Kind::Tuple: return "a tuple";
    case Value::Kind::List: return "a list";
    case Value::Kind::Dict: return "a dict";
    case Value::Kind::Global: return "a class or function";
    case Value::Kind::Storage: return "a storage";
    case Value::Kind::Tensor: return "a tensor";
  }
  return "?";
}

ValuePtr make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

bool is_container(Value::Kind k) {
  return k == Value::Kind::Tuple || k == Value::Kind::List || k == Value::Kind::Dict;
}

struct StorageClass {
  const char* name;
  DType dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"DoubleStorage", DType::F64}, {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16},
    {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
    {"ShortStorage", DType::I16}, {"CharStorage", DType::I8}, {"ByteStorage", DType::U8},
    {"BoolStorage", DType::BOOL},
};

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const std::string& label) : p_(data), end_(data + size), begin_(data), label_(label) {}
  // A pickle can make a container hold itself (a list appended to itself through the memo): the shared
  // pointers would then never be freed, so every container is emptied when the machine goes.
  ~Machine() {
    for (const ValuePtr& c : containers_) {
      c->items.clear();
      c->dict.clear();
    }
  }
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  ValuePtr run() {
    for (;;) {
      const size_t at = offset();
      const uint8_t op = u8();
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t v = u8();
          check(v >= 2 && v <= 5, at, cat("pickle protocol ", int(v), " (torch.save writes 2 to 5)"));
          break;
        }
        case 0x95: take(8); break;  // FRAME: a length hint only
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case ')': push(fresh(Value::Kind::Tuple)); break;   // EMPTY_TUPLE
        case ']': push(fresh(Value::Kind::List)); break;    // EMPTY_LIST
        case '}': push(fresh(Value::Kind::Dict)); break;    // EMPTY_DICT
        case 't': {  // TUPLE
          auto t = fresh(Value::Kind::Tuple);
          t->items = pop_to_mark(at);
          push(t);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          auto t = fresh(Value::Kind::Tuple);
          const size_t n = op - 0x84;
          check(stack_.size() >= n + floor(), at, "TUPLE with too few items on the stack");
          t->items.assign(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          push(t);
          break;
        }
        case 'l': {  // LIST
          auto l = fresh(Value::Kind::List);
          l->items = pop_to_mark(at);
          push(l);
          break;
        }
        case 'd': {  // DICT
          auto d = fresh(Value::Kind::Dict);
          set_items(*d, pop_to_mark(at), at);
          push(d);
          break;
        }
        case 'a': {  // APPEND
          ValuePtr v = pop(at);
          expect(top(at), Value::Kind::List, at, "APPEND")->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          std::vector<ValuePtr> vs = pop_to_mark(at);
          Value* l = expect(top(at), Value::Kind::List, at, "APPENDS");
          l->items.insert(l->items.end(), vs.begin(), vs.end());
          break;
        }
        case 's': {  // SETITEM
          ValuePtr v = pop(at), k = pop(at);
          set_items(*expect(top(at), Value::Kind::Dict, at, "SETITEM"), {k, v}, at);
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<ValuePtr> kvs = pop_to_mark(at);
          set_items(*expect(top(at), Value::Kind::Dict, at, "SETITEMS"), kvs, at);
          break;
        }
        case 'X': push_string(u32(), at); break;   // BINUNICODE
        case 0x8c: push_string(u8(), at); break;   // SHORT_BINUNICODE
        case 0x8d: push_string(u64(), at); break;  // BINUNICODE8
        case 'C': push_string(u8(), at); break;    // SHORT_BINBYTES
        case 'B': push_string(u32(), at); break;   // BINBYTES
        case 0x8e: push_string(u64(), at); break;  // BINBYTES8
        case 'K': push_int(u8()); break;           // BININT1
        case 'M': push_int(u16()); break;          // BININT2
        case 'J': push_int(int32_t(u32())); break;  // BININT
        case 0x8a: {  // LONG1: n little-endian two's-complement bytes
          const uint8_t n = u8();
          check(n <= 8, at, cat("an integer of ", int(n), " bytes (at most 8 are read)"));
          const uint8_t* b = take(n);
          uint64_t v = 0;
          for (int k = 0; k < n; ++k) v |= uint64_t(b[k]) << (8 * k);
          if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);  // sign-extend
          push_int(int64_t(v));
          break;
        }
        case 'N': push(make(Value::Kind::None)); break;  // NONE
        case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
          auto b = make(Value::Kind::Bool);
          b->i = op == 0x88;
          push(b);
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          const uint8_t* b = take(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
          auto f = make(Value::Kind::Float);
          std::memcpy(&f->f, &bits, 8);
          push(f);
          break;
        }
        case 'q': memo_[u8()] = top(at); break;   // BINPUT
        case 'r': memo_[u32()] = top(at); break;  // LONG_BINPUT
        case 0x94: {  // MEMOIZE
          const size_t index = memo_.size();
          memo_[index] = top(at);
          break;
        }
        case 'h': push(memo_get(u8(), at)); break;   // BINGET
        case 'j': push(memo_get(u32(), at)); break;  // LONG_BINGET
        case 'c': {  // GLOBAL: "module\nname\n"
          const std::string module = line(at), name = line(at);
          push_global(module, name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ValuePtr name = pop(at), module = pop(at);
          check(module->kind == Value::Kind::String && name->kind == Value::Kind::String, at,
                "STACK_GLOBAL without two strings");
          push_global(module->s, name->s);
          break;
        }
        case 'Q': push(persistent_load(pop(at), at)); break;  // BINPERSID
        case 'R': {  // REDUCE
          ValuePtr args = pop(at), callable = pop(at);
          check(args->kind == Value::Kind::Tuple, at, "REDUCE without an argument tuple");
          push(call(*callable, args->items, at));
          break;
        }
        case 'b': {  // BUILD: an object's attributes
          pop(at);
          // An OrderedDict's attributes (a state dict's `_metadata`: module versions) or a rebuilt
          // parameter's: neither changes a tensor.
          const Value::Kind k = top(at)->kind;
          check(k == Value::Kind::Dict || k == Value::Kind::Tensor, at,
                cat("BUILD (set attributes) on ", kind_name(k)));
          break;
        }
        case '0': pop(at); break;  // POP
        case '1': pop_to_mark(at); break;  // POP_MARK
        case '2': push(top(at)); break;    // DUP
        case '.': {                       // STOP
          ValuePtr result = pop(at);
          check(stack_.empty() && marks_.empty(), at, "STOP with more on the stack");
          return result;
        }
        default:
          fail(cat(label_, ": data.pkl: pickle opcode 0x", hex(op), " at byte ", at,
                   " is not one torch.save writes for a state dict"));
      }
    }
  }

 private:
  size_t offset() const { return size_t(p_ - begin_); }
  void check(bool ok, size_t at, const std::string& what) const {
    if (!ok) fail(cat(label_, ": data.pkl: ", what, " (byte ", at, ")"));
  }
  static std::string hex(uint8_t v) {
    const char* digits = "0123456789abcdef";
    return std::string{digits[v >> 4], digits[v & 15]};
  }
  const uint8_t* take(uint64_t n) {
    MCD_CHECK(n <= uint64_t(end_ - p_), label_, ": data.pkl: truncated (", n, " more bytes needed at byte ", offset(),
              " of ", end_ - begin_, ")");
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  uint8_t u8() { return *take(1); }
  uint64_t le(int n) {
    const uint8_t* b = take(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | b[k];
    return v;
  }
  uint16_t u16() { return uint16_t(le(2)); }
  uint32_t u32() { return uint32_t(le(4)); }
  uint64_t u64() { return le(8); }
  std::string line(size_t at) {
    const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', size_t(end_ - p_)));
    check(nl != nullptr, at, "GLOBAL name without its newline");
    std::string s(reinterpret_cast<const char*>(p_), size_t(nl - p_));
    p_ = nl + 1;
    return s;
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr fresh(Value::Kind kind) {  // a new value, containers recorded for the destructor
    ValuePtr v = make(kind);
    if (is_container(kind)) containers_.push_back(v);
    return v;
  }
  void push_int(int64_t v) {
    auto i = make(Value::Kind::Int);
    i->i = v;
    push(i);
  }
  void push_string(uint64_t n, size_t at) {
    auto s = make(Value::Kind::String);
    const uint8_t* b = take(n);
    s->s.assign(reinterpret_cast<const char*>(b), n);
    push(s);
  }
  void push_global(const std::string& module, const std::string& name) {
    auto g = make(Value::Kind::Global);
    g->s = module + "." + name;
    push(g);
  }
  ValuePtr pop(size_t at) {
    check(stack_.size() > floor(), at, "an opcode needs a value but the stack is empty");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top(size_t at) const {
    check(stack_.size() > floor(), at, "an opcode needs a value but the stack is empty");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark(size_t at) {
    check(!marks_.empty(), at, "no MARK before an opcode that needs one");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> vs(stack_.begin() + ptrdiff_t(mark), stack_.end());
    stack_.resize(mark);
    return vs;
  }
  ValuePtr memo_get(uint64_t index, size_t at) const {
    const auto it = memo_.find(index);
    check(it != memo_.end(), at, cat("memo entry ", index, " read before it was written"));
    return it->second;
  }
  Value* expect(const ValuePtr& v, Value::Kind kind, size_t at, const char* op) const {
    check(v->kind == kind, at, cat(op, " on ", kind_name(v->kind), ", expected ", kind_name(kind)));
    return v.get();
  }
  void set_items(Value& dict, const std::vector<ValuePtr>& kvs, size_t at) const {
    check(kvs.size() % 2 == 0, at, "SETITEMS with an odd number of values");
    for (size_t k = 0; k < kvs.size(); k += 2) dict.dict.emplace_back(kvs[k], kvs[k + 1]);
  }

  // A storage reference: ("storage", torch.<Type>Storage, key, location, numel).
  ValuePtr persistent_load(const ValuePtr& pid, size_t at) {
    const auto& t = pid->items;
    check(pid->kind == Value::Kind::Tuple && t.size() == 5 && t[0]->kind == Value::Kind::String &&
              t[0]->s == "storage" && t[1]->kind == Value::Kind::Global && t[2]->kind == Value::Kind::String &&
              t[3]->kind == Value::Kind::String && t[4]->kind == Value::Kind::Int,
          at, "a persistent id that is not ('storage', class, key, location, numel)");
    const std::string& cls = t[1]->s;
    DType dtype = DType::F32;
    check(cls.rfind("torch.", 0) == 0 && dtype_from_storage_class(cls.substr(6), &dtype), at,
          cat("storage class ", cls, " (supported: float64/32/16, bfloat16, int64/32/16/8, uint8, bool storages)"));
    const std::string& key = t[2]->s;
    check(!key.empty() && key.find('/') == std::string::npos && key != "." && key != "..", at,
          cat("storage key '", key, "' is not a record name"));
    check(t[4]->i >= 0, at, cat("storage '", key, "' has ", t[4]->i, " elements"));
    const auto seen = storages_.find(key);
    if (seen != storages_.end())
      check(seen->second.first == dtype && seen->second.second == t[4]->i, at,
            cat("storage '", key, "' is referenced with two different types or sizes"));
    storages_[key] = {dtype, t[4]->i};
    auto s = make(Value::Kind::Storage);
    s->tensor.storage_key = key;
    s->tensor.dtype = dtype;
    s->tensor.storage_numel = t[4]->i;
    return s;
  }

  std::vector<int64_t> int_tuple(const ValuePtr& v, size_t at, const char* what) const {
    check(v->kind == Value::Kind::Tuple, at, cat("a tensor's ", what, " is ", kind_name(v->kind), ", not a tuple"));
    std::vector<int64_t> out;
    for (const ValuePtr& e : v->items) {
      check(e->kind == Value::Kind::Int, at, cat("a tensor's ", what, " holds ", kind_name(e->kind)));
      out.push_back(e->i);
    }
    return out;
  }

  ValuePtr call(const Value& callable, const std::vector<ValuePtr>& args, size_t at) {
    check(callable.kind == Value::Kind::Global, at, cat("REDUCE calls ", kind_name(callable.kind)));
    const std::string& fn = callable.s;
    if (fn == "collections.OrderedDict") {
      check(args.empty(), at, "OrderedDict called with arguments");
      return fresh(Value::Kind::Dict);
    }
    if (fn == "torch._utils._rebuild_tensor_v2" || fn == "torch._utils._rebuild_tensor") {
      // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
      check(args.size() >= 4 && args.size() <= 7 && args[0]->kind == Value::Kind::Storage &&
                args[1]->kind == Value::Kind::Int,
            at, cat(fn, " with arguments other than (storage, offset, size, stride, ...)"));
      auto t = make(Value::Kind::Tensor);
      t->tensor = args[0]->tensor;
      t->tensor.storage_offset = args[1]->i;
      t->tensor.shape = int_tuple(args[2], at, "size");
      t->tensor.strides = int_tuple(args[3], at, "stride");
      check_view(t->tensor, at);
      return t;
    }
    if (fn == "torch._utils._rebuild_parameter" || fn == "torch._utils._rebuild_parameter_with_state") {
      check(!args.empty() && args[0]->kind == Value::Kind::Tensor, at, cat(fn, " without a tensor"));
      return args[0];  // a Parameter is its data here
    }
    fail(cat(label_, ": data.pkl: refuses to call ", fn, " (byte ", at,
             "): a state dict holds only tensors, dicts and numbers, and nothing in a checkpoint is executed"));
  }

  void check_view(const PickledTensor& t, size_t at) const {
    check(t.shape.size() == t.strides.size(), at,
          cat("a tensor of storage '", t.storage_key, "' has ", t.shape.size(), " sizes but ", t.strides.size(), " strides"));
    check(t.storage_offset >= 0, at, cat("negative offset into storage '", t.storage_key, "'"));
    // The last element's position, with overflow refused: every (size - 1) * stride is added.
    int64_t last = t.storage_offset;
    bool empty = false;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      check(t.shape[d] >= 0 && t.strides[d] >= 0, at,
            cat("a tensor of storage '", t.storage_key, "' has a negative size or stride"));
      if (t.shape[d] == 0) empty = true;
      int64_t span = 0;
      check(!__builtin_mul_overflow(t.shape[d] == 0 ? 0 : t.shape[d] - 1, t.strides[d], &span) &&
                !__builtin_add_overflow(last, span, &last),
            at, cat("a tensor of storage '", t.storage_key, "' spans more than 64-bit positions"));
    }
    check(empty || last < t.storage_numel, at,
          cat("a tensor reaches element ", last, " of storage '", t.storage_key, "', which has ", t.storage_numel));
    // More elements than the storage holds only by overlapping (a stride 0): refused, since reading copies
    // it out contiguously and a few bytes of file could ask for any amount of memory.
    int64_t numel = 1;
    for (int64_t d : t.shape)
      check(!__builtin_mul_overflow(numel, d, &numel), at, cat("a tensor of storage '", t.storage_key, "' has more elements than 64 bits count"));
    check(numel <= t.storage_numel, at,
          cat("a tensor of ", numel, " elements overlaps itself in storage '", t.storage_key, "' of ", t.storage_numel,
              " (a broadcast view); save it contiguous"));
  }

  const uint8_t* p_;
  const uint8_t* end_;
  const uint8_t* begin_;
  const std::string& label_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, std::pair<DType, int64_t>> storages_;
  std::vector<ValuePtr> containers_;  // every tuple, list and dict made, emptied by the destructor
};

}  // namespace

int64_t PickledTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool dtype_from_storage_class(const std::string& name, DType* dtype) {
  for (const StorageClass& c : kStorageClasses)
    if (name == c.name) {
      *dtype = c.dtype;
      return true;
    }
  return false;
}

const char* storage_class_name(DType dtype) {
  for (const StorageClass& c : kStorageClasses)
    if (c.dtype == dtype) return c.name;
  fail(cat("no torch storage class for dtype ", dtype_name(dtype)));
}

namespace {

// Python's pickler, protocol 2, for the few objects a state dict holds; memoizes what Python memoizes
// (BINPUT after each new object) so that repeated globals and strings are fetched with BINGET.
class PickleWriter {
 public:
  PickleWriter() { out_ += "\x80\x02"; }
  void op(char c) { out_.push_back(c); }
  void put() { memo_op('q', 'r', next_++); }              // BINPUT / LONG_BINPUT
  void get(uint32_t index) { memo_op('h', 'j', index); }  // BINGET / LONG_BINGET
  void string(const std::string& s) {
    op('X');
    le(s.size(), 4);
    out_ += s;
    put();
  }
  void shared(const std::string& key, const std::function<void()>& write) {  // a memoized object
    const auto it = memo_.find(key);
    if (it != memo_.end()) return get(it->second);
    write();
    memo_[key] = next_ - 1;
  }
  void global(const std::string& module, const std::string& name) {
    shared("g " + module + "." + name, [&] {
      op('c');
      out_ += module + "\n" + name + "\n";
      put();
    });
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
    } else {
      op('\x8a');
      out_.push_back(8);
      le(uint64_t(v), 8);
    }
  }
  void int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) return op(')');
    if (v.size() > 3) op('(');
    for (int64_t x : v) integer(x);
    op(v.size() > 3 ? 't' : char(0x84 + v.size()));
    put();
  }
  std::string finish() {
    op('.');
    return std::move(out_);
  }

 private:
  void le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out_.push_back(char((v >> (8 * k)) & 0xff));
  }
  // A memo index: the one-byte opcode below 256, else the four-byte one.
  void memo_op(char one_byte, char four_bytes, uint32_t index) {
    if (index < 256) {
      op(one_byte);
      out_.push_back(char(index));
    } else {
      op(four_bytes);
      le(index, 4);
    }
  }
  std::string out_;
  uint32_t next_ = 0;
  std::map<std::string, uint32_t> memo_;
};

}  // namespace

std::string state_dict_pickle(const std::vector<PickledTensor>& tensors) {
  std::set<std::string> names;
  std::map<std::string, std::pair<DType, int64_t>> storages;
  for (const PickledTensor& t : tensors) {
    MCD_CHECK(names.insert(t.name).second, "state dict: tensor '", t.name, "' given twice");
    const auto [it, fresh] = storages.emplace(t.storage_key, std::make_pair(t.dtype, t.storage_numel));
    MCD_CHECK(fresh || it->second == std::make_pair(t.dtype, t.storage_numel), "state dict: storage '",
              t.storage_key, "' given with two dtypes or sizes");
  }
  PickleWriter p;
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.put();
  // Items in batches of up to 1,000 (MARK ... SETITEMS), a lone item with SETITEM, as Python does.
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t batch = i - i % 1000, batch_size = std::min<size_t>(1000, tensors.size() - batch);
    if (i == batch && batch_size > 1) p.op('(');
    const PickledTensor& t = tensors[i];
    p.string(t.name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    // The storage as a persistent id: ('storage', torch.<Type>Storage, key, 'cpu', numel).
    p.op('(');
    p.shared("s storage", [&] { p.string("storage"); });
    p.global("torch", storage_class_name(t.dtype));
    p.shared("k " + t.storage_key, [&] { p.string(t.storage_key); });
    p.shared("s cpu", [&] { p.string("cpu"); });
    p.integer(t.storage_numel);
    p.op('t');
    p.put();
    p.op('Q');
    p.integer(t.storage_offset);
    p.int_tuple(t.shape);
    p.int_tuple(t.strides);
    p.op('\x89');  // requires_grad: False
    p.global("collections", "OrderedDict");  // backward_hooks: OrderedDict()
    p.op(')');
    p.op('R');
    p.put();
    p.op('t');
    p.put();
    p.op('R');
    p.put();
    if (i + 1 == batch + batch_size) p.op(batch_size > 1 ? 'u' : 's');
  }
  std::string bytes = p.finish();
  // What is written must read back as given: the reader's checks (views inside their storages) apply.
  const std::vector<PickledTensor> back =
      parse_state_dict_pickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "state dict being written");
  MCD_CHECK(back.size() == tensors.size(), "state dict: wrote ", tensors.size(), " tensors but reads back ", back.size());
  return bytes;
}

std::vector<PickledTensor> parse_state_dict_pickle(const uint8_t* data, size_t size, const std::string& label) {
  Machine machine(data, size, label);
  const ValuePtr root = machine.run();
  MCD_CHECK(root->kind == Value::Kind::Dict, label, ": holds ", kind_name(root->kind),
            ", not a state dict (a dict of name -> tensor, as model.state_dict() makes)");
  std::vector<PickledTensor> out;
  std::set<std::string> names;
  for (const auto& [key, value] : root->dict) {
    MCD_CHECK(key->kind == Value::Kind::String, label, ": a state dict key is ", kind_name(key->kind), ", not a name");
    if (value->kind == Value::Kind::Dict)
      fail(cat(label, ": '", key->s, "' holds a dict, not a tensor: the file wraps the state dict (a training "
               "checkpoint?); save model.state_dict() itself, e.g. torch.save(ckpt['", key->s, "'], 'pytorch_model.bin')"));
    MCD_CHECK(value->kind == Value::Kind::Tensor, label, ": '", key->s, "' holds ", kind_name(value->kind),
              ", not a tensor");
    MCD_CHECK(names.insert(key->s).second, label, ": tensor '", key->s, "' appears twice");
    PickledTensor t = value->tensor;
    t.name = key->s;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace mcd::io
