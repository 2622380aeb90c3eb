// Safetensors parsing/validation and serialization, torch-free (see io/safetensors.h).
// Every check raises mcd::Error "safetensors file '<label>': <problem>"; docs/safetensors.md lists
// them. fuzz/safetensors_fuzz.cpp drives this file directly, so it must never crash on any input.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "util/error.h"

namespace mcd::io {
namespace {

using json = nlohmann::json;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader/writer copies it without byte swapping"
#endif

struct DTypeRow {
  DType dtype;
  const char* name;
  size_t size;
  // Position in the reference implementation's Dtype enum, restricted to the types we support.
  // Its writer lays data out by descending position (I64, F64, F32, ..., BOOL), then by name.
  int layout_rank;
};

constexpr DTypeRow kDTypes[] = {
    {DType::F64, "F64", 8, 8},  {DType::F32, "F32", 4, 7}, {DType::F16, "F16", 2, 4},
    {DType::BF16, "BF16", 2, 5}, {DType::I64, "I64", 8, 9}, {DType::I32, "I32", 4, 6},
    {DType::I16, "I16", 2, 3},  {DType::I8, "I8", 1, 2},   {DType::U8, "U8", 1, 1},
    {DType::BOOL, "BOOL", 1, 0},
};

const DTypeRow& row(DType dtype) {
  for (const DTypeRow& r : kDTypes)
    if (r.dtype == dtype) return r;
  fail(cat("invalid DType value ", static_cast<int>(dtype)));
}

std::string supported_dtypes() {
  std::string out;
  for (const DTypeRow& r : kDTypes) out += (out.empty() ? "" : ", ") + std::string(r.name);
  return out;
}

// Names come from untrusted files: show control characters escaped and cap the length.
std::string quoted(const std::string& s) {
  constexpr size_t kMaxShown = 200;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "'";
}

// A JSON value as it appeared, shortened for messages.
std::string brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr size_t kMaxShown = 80;
  if (s.size() > kMaxShown) s = s.substr(0, kMaxShown) + "...";
  return s;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// Checked product of the dimensions; false on overflow of int64.
bool checked_numel(const std::vector<int64_t>& shape, uint64_t* out) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *out = n;
  return true;
}

// Offset of the first byte that is not well-formed UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF), or npos when the whole range is valid.
size_t invalid_utf8_at(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const uint8_t cc = p[i + k];
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

// The deepest valid header is object -> tensor object -> shape array.
constexpr int kMaxNesting = 3;

// Parses the header, rejecting duplicate keys at any level (nlohmann would silently keep the
// last one) and nesting deeper than any valid header, before the DOM can grow.
json parse_header(const uint8_t* p, size_t n, const std::string& prefix) {
  std::vector<std::set<std::string>> open_objects;
  int nesting = 0;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (++nesting > kMaxNesting)
          fail(cat(prefix, "header JSON is nested more than ", kMaxNesting, " levels deep"));
        if (event == json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        --nesting;
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::array_end:
        --nesting;
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get_ref<const std::string&>()).second)
          fail(cat(prefix, "header has duplicate key ", quoted(parsed.get_ref<const std::string&>())));
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(p, p + n, callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    fail(cat(prefix, "header is not valid JSON: ", e.what()));
  }
}

bool is_offset(const json& v) { return v.is_number_unsigned(); }

TensorInfo parse_entry(const std::string& name, const json& v, uint64_t data_size,
                       const std::string& prefix) {
  const std::string where = cat(prefix, "tensor ", quoted(name), ": ");
  if (!v.is_object())
    fail(cat(where, "entry must be an object with \"dtype\", \"shape\" and \"data_offsets\", got ",
             brief(v)));
  for (const auto& item : v.items()) {
    const std::string& key = item.key();
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail(cat(where, "unexpected key ", quoted(key),
               " (an entry has only \"dtype\", \"shape\" and \"data_offsets\")"));
  }
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) fail(cat(where, "missing \"", key, "\""));

  TensorInfo t;
  t.name = name;

  const json& dtype = v.at("dtype");
  if (!dtype.is_string()) fail(cat(where, "\"dtype\" must be a string, got ", brief(dtype)));
  const auto parsed_dtype = dtype_from_name(dtype.get_ref<const std::string&>());
  if (!parsed_dtype)
    fail(cat(where, "unsupported dtype ", quoted(dtype.get_ref<const std::string&>()),
             " (supported: ", supported_dtypes(), ")"));
  t.dtype = *parsed_dtype;

  const json& shape = v.at("shape");
  bool shape_ok = shape.is_array();
  if (shape_ok) {
    for (const json& d : shape) {
      if (!d.is_number_unsigned() ||
          d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        shape_ok = false;
        break;
      }
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
  }
  if (!shape_ok)
    fail(cat(where, "\"shape\" must be an array of non-negative integers, got ", brief(shape)));

  const json& offsets = v.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !is_offset(offsets[0]) || !is_offset(offsets[1]))
    fail(cat(where, "\"data_offsets\" must be [begin, end] with non-negative integers, got ",
             brief(offsets)));
  t.begin = offsets[0].get<uint64_t>();
  t.end = offsets[1].get<uint64_t>();
  if (t.begin > t.end)
    fail(cat(where, "data_offsets [", t.begin, ", ", t.end, "] have begin > end"));

  uint64_t numel = 0, nbytes = 0;
  if (!checked_numel(t.shape, &numel))
    fail(cat(where, "shape ", shape_str(t.shape), " has more elements than fit in 64 bits"));
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(t.dtype)), &nbytes))
    fail(cat(where, "shape ", shape_str(t.shape), " of ", dtype_name(t.dtype),
             " needs more bytes than fit in 64 bits"));
  if (t.end > data_size)
    fail(cat(where, "data_offsets [", t.begin, ", ", t.end,
             "] run past the end of the data section (", data_size, " bytes)"));
  if (t.end - t.begin != nbytes)
    fail(cat(where, "data_offsets [", t.begin, ", ", t.end, "] cover ", t.end - t.begin,
             " bytes but shape ", shape_str(t.shape), " of ", dtype_name(t.dtype), " needs ",
             nbytes, " bytes"));
  return t;
}

// The header and data order the writer will use; validates the inputs.
struct WritePlan {
  std::string header;  // padded JSON
  std::vector<const TensorBytes*> order;
};

std::string json_string(const std::string& s, const std::string& where, const char* what) {
  try {
    return json(s).dump();  // same escaping as the reference (serde_json): quotes, \\, controls
  } catch (const json::exception&) {
    fail(cat(where, what, " ", quoted(s), " is not valid UTF-8"));
  }
}

WritePlan plan_write(const std::vector<TensorBytes>& tensors,
                     const std::map<std::string, std::string>& metadata, const std::string& where) {
  WritePlan plan;
  std::set<std::string> names;
  for (const TensorBytes& t : tensors) {
    MCD_CHECK(t.name != "__metadata__", where,
              "\"__metadata__\" is reserved and cannot be a tensor name");
    MCD_CHECK(names.insert(t.name).second, where, "duplicate tensor name ", quoted(t.name));
    const DTypeRow& r = row(t.dtype);
    uint64_t numel = 0, nbytes = 0;
    MCD_CHECK(checked_numel(t.shape, &numel), where, "tensor ", quoted(t.name), ": shape ",
              shape_str(t.shape), " has a negative dimension or too many elements");
    MCD_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(r.size), &nbytes), where,
              "tensor ", quoted(t.name), ": shape ", shape_str(t.shape), " is too large");
    MCD_CHECK(nbytes == t.nbytes, where, "tensor ", quoted(t.name), ": ", t.nbytes,
              " bytes given but shape ", shape_str(t.shape), " of ", r.name, " needs ", nbytes);
    MCD_CHECK(t.data != nullptr || t.nbytes == 0, where, "tensor ", quoted(t.name),
              ": null data pointer");
    plan.order.push_back(&t);
  }
  std::sort(plan.order.begin(), plan.order.end(), [](const TensorBytes* a, const TensorBytes* b) {
    const int ra = row(a->dtype).layout_rank, rb = row(b->dtype).layout_rank;
    return ra != rb ? ra > rb : a->name < b->name;
  });

  std::string& h = plan.header;
  h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      h += json_string(k, where, "metadata key");
      h += ':';
      h += json_string(v, where, "metadata value");
    }
    h += '}';
  }
  uint64_t offset = 0;
  for (const TensorBytes* t : plan.order) {
    if (h.size() > 1) h += ',';
    h += json_string(t->name, where, "tensor name");
    h += ":{\"dtype\":\"";
    h += row(t->dtype).name;
    h += "\",\"shape\":[";
    for (size_t i = 0; i < t->shape.size(); ++i) {
      if (i) h += ',';
      h += std::to_string(t->shape[i]);
    }
    h += "],\"data_offsets\":[";
    h += std::to_string(offset);
    h += ',';
    MCD_CHECK(!__builtin_add_overflow(offset, static_cast<uint64_t>(t->nbytes), &offset), where,
              "total data size overflows 64 bits");
    h += std::to_string(offset);
    h += "]}";
  }
  h += '}';
  // Pad with spaces so the data section starts 8-byte aligned, as the reference does.
  h.append((8 - h.size() % 8) % 8, ' ');
  MCD_CHECK(h.size() <= kMaxHeaderBytes, where, "header would be ", h.size(),
            " bytes, above the ", kMaxHeaderBytes, "-byte limit readers accept");
  return plan;
}

void put_u64_le(uint64_t v, uint8_t out[8]) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

const char* dtype_name(DType dtype) { return row(dtype).name; }
size_t dtype_size(DType dtype) { return row(dtype).size; }

std::optional<DType> dtype_from_name(const std::string& name) {
  for (const DTypeRow& r : kDTypes)
    if (name == r.name) return r.dtype;
  return std::nullopt;
}

int64_t TensorInfo::numel() const {
  uint64_t n = 0;
  MCD_CHECK(checked_numel(shape, &n), "tensor ", quoted(name), ": invalid shape ",
            shape_str(shape));
  return static_cast<int64_t>(n);
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.label_ = path;
  f.map_ = MappedFile::open(path);
  f.mapped_ = true;
  f.parse(f.map_.size());
  return f;
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<uint8_t> bytes, std::string label) {
  SafetensorsFile f;
  f.label_ = std::move(label);
  f.owned_ = std::move(bytes);
  f.parse(f.owned_.size());
  return f;
}

void SafetensorsFile::parse(size_t total) {
  const std::string prefix = cat("safetensors file '", label_, "': ");
  const uint8_t* p = bytes();
  if (total < 8)
    fail(cat(prefix, "file is ", total, " bytes, too short for the 8-byte header-length prefix"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
  if (n > kMaxHeaderBytes)
    fail(cat(prefix, "header length ", n, " exceeds the ", kMaxHeaderBytes,
             "-byte limit (corrupt, or not a safetensors file)"));
  if (n > total - 8)
    fail(cat(prefix, "header length ", n, " runs past the end of the file (only ", total - 8,
             " bytes follow the length prefix)"));
  const uint8_t* header = p + 8;
  if (n == 0 || header[0] != '{')
    fail(cat(prefix, "header does not start with '{' (corrupt, or not a safetensors file)"));
  const size_t bad = invalid_utf8_at(header, n);
  if (bad != std::string::npos)
    fail(cat(prefix, "header is not valid UTF-8 (bad byte at header offset ", bad, ")"));
  // nlohmann stops at a NUL byte as if the input ended there; JSON never contains a raw one.
  if (const void* nul = std::memchr(header, 0, n))
    fail(cat(prefix, "header is not valid JSON: NUL byte at header offset ",
             static_cast<const uint8_t*>(nul) - header));

  const json root = parse_header(header, n, prefix);
  if (!root.is_object())
    fail(cat(prefix, "header must be a JSON object, got ", root.type_name()));
  header_size_ = n;
  data_size_ = total - 8 - n;

  for (const auto& item : root.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    if (key == "__metadata__") {
      if (!value.is_object())
        fail(cat(prefix, "\"__metadata__\" must be an object of strings, got ", brief(value)));
      for (const auto& kv : value.items()) {
        if (!kv.value().is_string())
          fail(cat(prefix, "\"__metadata__\" value for key ", quoted(kv.key()),
                   " must be a string, got ", brief(kv.value())));
        metadata_[kv.key()] = kv.value().get<std::string>();
      }
      continue;
    }
    tensors_.push_back(parse_entry(key, value, data_size_, prefix));
  }

  // The data section must be exactly tiled by the tensors: no overlaps, no holes, and (as in
  // the reference reader) no trailing bytes.
  std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : tensors_) {
    if (t.begin < cursor)
      fail(cat(prefix, "tensors ", quoted(prev->name), " [", prev->begin, ", ", prev->end,
               ") and ", quoted(t.name), " [", t.begin, ", ", t.end, ") overlap"));
    if (t.begin > cursor)
      fail(cat(prefix, "data section bytes [", cursor, ", ", t.begin,
               ") belong to no tensor (a hole before tensor ", quoted(t.name), ")"));
    cursor = t.end;
    prev = &t;
  }
  if (cursor != data_size_)
    fail(cat(prefix, "the tensors cover ", cursor, " bytes but the data section has ", data_size_,
             " (", data_size_ - cursor, " trailing bytes belong to no tensor)"));

  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t)
    fail(cat("safetensors file '", label_, "': no tensor named ", quoted(name), " (the file has ",
             tensors_.size(), " tensors)"));
  return *t;
}

const uint8_t* SafetensorsFile::data(const TensorInfo& t) const {
  MCD_CHECK(t.begin <= t.end && t.end <= data_size_, "safetensors file '", label_, "': tensor ",
            quoted(t.name), " [", t.begin, ", ", t.end,
            ") lies outside this file's data section (", data_size_, " bytes)");
  return bytes() + 8 + header_size_ + t.begin;
}

std::vector<uint8_t> serialize_safetensors(const std::vector<TensorBytes>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  const WritePlan plan = plan_write(tensors, metadata, "serialize_safetensors: ");
  size_t total = 8 + plan.header.size();
  for (const TensorBytes* t : plan.order) total += t->nbytes;
  std::vector<uint8_t> out(total);
  put_u64_le(plan.header.size(), out.data());
  std::copy(plan.header.begin(), plan.header.end(), out.begin() + 8);
  size_t pos = 8 + plan.header.size();
  for (const TensorBytes* t : plan.order) {
    if (t->nbytes) std::copy_n(static_cast<const uint8_t*>(t->data), t->nbytes, out.data() + pos);
    pos += t->nbytes;
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const WritePlan plan =
      plan_write(tensors, metadata, cat("cannot write safetensors file '", path, "': "));
  write_file_atomic(path, [&](std::FILE* f) {
    uint8_t prefix[8];
    put_u64_le(plan.header.size(), prefix);
    write_bytes(f, prefix, sizeof prefix);
    write_bytes(f, plan.header.data(), plan.header.size());
    for (const TensorBytes* t : plan.order) write_bytes(f, t->data, t->nbytes);
  });
}

}  // namespace mcd::io
