// The ops layer's options (see options.h): the process-wide value behind a mutex, the scoped
// override and the strict key/value parser.
#include "ops/options.h"

#include <mutex>

#include "util/error.h"

namespace mcd::ops {
namespace {

std::mutex& options_mutex() {
  static std::mutex m;
  return m;
}
OpsOptions& current() {
  static OpsOptions value;
  return value;
}

bool parse_bool(const std::string& key, const std::string& value) {
  if (value == "true" || value == "on") return true;
  if (value == "false" || value == "off") return false;
  fail(cat("ops option '", key, "': expected true or false (also on, off), got '", value, "'"));
}

// A whole number 0..kDecodeFewRowMaxRows, nothing else ("8 ", "+3", "0x2" and "1.5" are refused).
int parse_few_row_limit(const std::string& value) {
  const bool digits = !value.empty() && value.size() <= 2 &&
                      value.find_first_not_of("0123456789") == std::string::npos;
  const int n = digits ? std::stoi(value) : -1;
  if (n < 0 || n > kDecodeFewRowMaxRows)
    fail(cat("ops option 'decode_few_row_limit': expected a whole number 0..", kDecodeFewRowMaxRows, ", got '", value,
             "'"));
  return n;
}

std::string joined_keys() {
  std::string s;
  for (const auto& k : ops_option_keys()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

}  // namespace

OpsOptions ops_options() {
  const std::lock_guard<std::mutex> lock(options_mutex());
  return current();
}

void set_ops_options(const OpsOptions& options) {
  const std::lock_guard<std::mutex> lock(options_mutex());
  current() = options;
}

ScopedOpsOptions::ScopedOpsOptions(const OpsOptions& options) : saved_(ops_options()) { set_ops_options(options); }
ScopedOpsOptions::~ScopedOpsOptions() { set_ops_options(saved_); }

const std::vector<std::string>& ops_option_keys() {
  static const std::vector<std::string> keys{"backend", "fused_mixer", "mixer_saves_conv_output", "scan_plan",
                                             "scan_time_segments", "scan_narrow_backward", "in_proj_saves_input",
                                             "keep_cast_weights", "decode_overlap", "decode_fused_conv",
                                             "decode_fused_head", "decode_few_row_limit"};
  return keys;
}

OpsOptions parse_ops_option(OpsOptions base, const std::string& key, const std::string& value) {
  if (key == "backend") {
    base.backend = parse_backend(value);
  } else if (key == "fused_mixer") {
    base.fused_mixer = parse_bool(key, value);
  } else if (key == "mixer_saves_conv_output") {
    base.mixer_saves_conv_output = parse_bool(key, value);
  } else if (key == "scan_plan") {
    base.scan_plan = parse_scan_plan(value);
  } else if (key == "scan_time_segments") {
    base.scan_time_segments = parse_bool(key, value);
  } else if (key == "scan_narrow_backward") {
    base.scan_narrow_backward = parse_narrow_scan_backward(value);
  } else if (key == "in_proj_saves_input") {
    base.in_proj_saves_input = parse_bool(key, value);
  } else if (key == "keep_cast_weights") {
    base.keep_cast_weights = parse_bool(key, value);
  } else if (key == "decode_overlap") {
    base.decode_overlap = parse_bool(key, value);
  } else if (key == "decode_fused_conv") {
    base.decode_fused_conv = parse_bool(key, value);
  } else if (key == "decode_fused_head") {
    base.decode_fused_head = parse_bool(key, value);
  } else if (key == "decode_few_row_limit") {
    base.decode_few_row_limit = parse_few_row_limit(value);
  } else {
    fail(cat("unknown ops option '", key, "' (valid: ", joined_keys(), ")"));
  }
  return base;
}

std::vector<std::pair<std::string, std::string>> ops_option_values(const OpsOptions& o) {
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& key : ops_option_keys()) {
    if (key == "backend") out.emplace_back(key, backend_name(o.backend));
    else if (key == "fused_mixer") out.emplace_back(key, b(o.fused_mixer));
    else if (key == "mixer_saves_conv_output") out.emplace_back(key, b(o.mixer_saves_conv_output));
    else if (key == "scan_plan") out.emplace_back(key, scan_plan_name(o.scan_plan));
    else if (key == "scan_time_segments") out.emplace_back(key, b(o.scan_time_segments));
    else if (key == "scan_narrow_backward") out.emplace_back(key, narrow_scan_backward_name(o.scan_narrow_backward));
    else if (key == "in_proj_saves_input") out.emplace_back(key, b(o.in_proj_saves_input));
    else if (key == "keep_cast_weights") out.emplace_back(key, b(o.keep_cast_weights));
    else if (key == "decode_overlap") out.emplace_back(key, b(o.decode_overlap));
    else if (key == "decode_fused_conv") out.emplace_back(key, b(o.decode_fused_conv));
    else if (key == "decode_fused_head") out.emplace_back(key, b(o.decode_fused_head));
    else if (key == "decode_few_row_limit") out.emplace_back(key, std::to_string(o.decode_few_row_limit));
    else fail(cat("ops_option_values: key '", key, "' has no writer"));
  }
  return out;
}

ScanPlan parse_scan_plan(const std::string& name) {
  if (name == "auto") return ScanPlan::kAuto;
  if (name == "low_memory") return ScanPlan::kLowMemory;
  fail(cat("unknown scan plan '", name, "' (valid: auto, low_memory)"));
}

const char* scan_plan_name(ScanPlan plan) {
  switch (plan) {
    case ScanPlan::kAuto: return "auto";
    case ScanPlan::kLowMemory: return "low_memory";
  }
  return "?";
}

NarrowScanBackward parse_narrow_scan_backward(const std::string& name) {
  if (name == "auto") return NarrowScanBackward::kAuto;
  if (name == "eight_lanes") return NarrowScanBackward::kEightLanes;
  if (name == "four_lanes") return NarrowScanBackward::kFourLanes;
  fail(cat("unknown scan_narrow_backward '", name, "' (valid: auto, eight_lanes, four_lanes)"));
}

const char* narrow_scan_backward_name(NarrowScanBackward b) {
  switch (b) {
    case NarrowScanBackward::kAuto: return "auto";
    case NarrowScanBackward::kEightLanes: return "eight_lanes";
    case NarrowScanBackward::kFourLanes: return "four_lanes";
  }
  return "?";
}

}  // namespace mcd::ops
