// The ops layer's options (ops/options.h): the strict key/value parser the CLI and the training
// config's `ops:` section use, and the scoped override the tests use.
#include <gtest/gtest.h>

#include <string>

#include "ops/backend.h"
#include "ops/mamba_inner.h"
#include "ops/options.h"
#include "util/error.h"

namespace mcd {
namespace {

TEST(OpsOptions, ParsesEveryKeyStrictly) {
  ops::OpsOptions o;
  o = ops::parse_ops_option(o, "backend", "composite");
  EXPECT_EQ(o.backend, ops::Backend::kComposite);
  o = ops::parse_ops_option(o, "fused_mixer", "off");
  EXPECT_FALSE(o.fused_mixer);
  o = ops::parse_ops_option(o, "fused_mixer", "true");
  EXPECT_TRUE(o.fused_mixer);
  o = ops::parse_ops_option(o, "mixer_saves_conv_output", "on");
  EXPECT_TRUE(o.mixer_saves_conv_output);
  o = ops::parse_ops_option(o, "scan_plan", "low_memory");
  EXPECT_EQ(o.scan_plan, ops::ScanPlan::kLowMemory);
  EXPECT_TRUE(o.scan_time_segments);
  o = ops::parse_ops_option(o, "scan_time_segments", "off");
  EXPECT_FALSE(o.scan_time_segments);
  EXPECT_THROW(ops::parse_ops_option(o, "scan_time_segments", "4"), Error);
  EXPECT_EQ(o.scan_narrow_backward, ops::NarrowScanBackward::kAuto);
  o = ops::parse_ops_option(o, "scan_narrow_backward", "eight_lanes");
  EXPECT_EQ(o.scan_narrow_backward, ops::NarrowScanBackward::kEightLanes);
  o = ops::parse_ops_option(o, "scan_narrow_backward", "four_lanes");
  EXPECT_EQ(o.scan_narrow_backward, ops::NarrowScanBackward::kFourLanes);
  EXPECT_THROW(ops::parse_ops_option(o, "scan_narrow_backward", "on"), Error);
  EXPECT_TRUE(o.in_proj_saves_input);
  o = ops::parse_ops_option(o, "in_proj_saves_input", "off");
  EXPECT_FALSE(o.in_proj_saves_input);
  EXPECT_TRUE(o.keep_cast_weights);
  o = ops::parse_ops_option(o, "keep_cast_weights", "false");
  EXPECT_FALSE(o.keep_cast_weights);
  EXPECT_TRUE(o.decode_overlap);
  o = ops::parse_ops_option(o, "decode_overlap", "off");
  EXPECT_FALSE(o.decode_overlap);
  EXPECT_TRUE(o.decode_fused_conv);
  o = ops::parse_ops_option(o, "decode_fused_conv", "off");
  EXPECT_FALSE(o.decode_fused_conv);
  EXPECT_TRUE(o.decode_fused_head);
  o = ops::parse_ops_option(o, "decode_fused_head", "off");
  EXPECT_FALSE(o.decode_fused_head);
  EXPECT_EQ(o.decode_few_row_limit, 1);
  EXPECT_EQ(ops::kDecodeFewRowLimitDefault, 1);
  for (int n : {0, 1, 8}) {
    o = ops::parse_ops_option(o, "decode_few_row_limit", std::to_string(n));
    EXPECT_EQ(o.decode_few_row_limit, n);
  }
  for (const char* bad : {"9", "-1", "", "on", "1.5", " 2", "+3", "08x", "100"})
    EXPECT_THROW(ops::parse_ops_option(o, "decode_few_row_limit", bad), Error) << "'" << bad << "'";
  EXPECT_EQ(o.decode_few_row_limit, 8);  // a refused value leaves the options as they were
  EXPECT_EQ(o.backend, ops::Backend::kComposite);  // earlier keys kept
  EXPECT_EQ(ops::ops_option_keys().size(), 12u);
  for (const auto& key : ops::ops_option_keys()) {
    const std::string value = key == "backend" || key == "scan_plan" ? "auto"
                              : key == "scan_narrow_backward"         ? "eight_lanes"
                              : key == "decode_few_row_limit"         ? "1"
                                                                      : "false";
    EXPECT_NO_THROW(ops::parse_ops_option(o, key, value)) << key;
  }
}

// ops_option_values writes every key so that parse_ops_option reads the same options back.
TEST(OpsOptions, ValuesRoundTripThroughTheParser) {
  ops::OpsOptions o;
  o.backend = ops::Backend::kComposite;
  o.fused_mixer = false;
  o.mixer_saves_conv_output = true;
  o.scan_plan = ops::ScanPlan::kLowMemory;
  o.scan_time_segments = false;
  o.scan_narrow_backward = ops::NarrowScanBackward::kFourLanes;
  o.in_proj_saves_input = false;
  o.keep_cast_weights = false;
  o.decode_overlap = false;
  o.decode_fused_conv = false;
  o.decode_fused_head = false;
  o.decode_few_row_limit = 3;
  const auto values = ops::ops_option_values(o);
  ASSERT_EQ(values.size(), ops::ops_option_keys().size());
  ops::OpsOptions back;
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(values[i].first, ops::ops_option_keys()[i]);
    back = ops::parse_ops_option(back, values[i].first, values[i].second);
  }
  EXPECT_EQ(back.backend, o.backend);
  EXPECT_EQ(back.fused_mixer, o.fused_mixer);
  EXPECT_EQ(back.mixer_saves_conv_output, o.mixer_saves_conv_output);
  EXPECT_EQ(back.scan_plan, o.scan_plan);
  EXPECT_EQ(back.scan_time_segments, o.scan_time_segments);
  EXPECT_EQ(back.scan_narrow_backward, o.scan_narrow_backward);
  EXPECT_EQ(back.in_proj_saves_input, o.in_proj_saves_input);
  EXPECT_EQ(back.keep_cast_weights, o.keep_cast_weights);
  EXPECT_EQ(back.decode_overlap, o.decode_overlap);
  EXPECT_EQ(back.decode_fused_conv, o.decode_fused_conv);
  EXPECT_EQ(back.decode_fused_head, o.decode_fused_head);
  EXPECT_EQ(back.decode_few_row_limit, o.decode_few_row_limit);
}

TEST(OpsOptions, UnknownKeysAndValuesListTheValidOnes) {
  auto message = [](const std::string& key, const std::string& value) {
    try {
      ops::parse_ops_option(ops::OpsOptions{}, key, value);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("scan_variant", "12").find("backend, fused_mixer, mixer_saves_conv_output, scan_plan"),
            std::string::npos);
  EXPECT_NE(message("backend", "cuda").find("auto, reference, composite"), std::string::npos);
  EXPECT_NE(message("scan_plan", "low-memory").find("auto, low_memory"), std::string::npos);
  EXPECT_NE(message("fused_mixer", "1").find("true or false"), std::string::npos);
  EXPECT_NE(message("mixer_saves_conv_output", "yes").find("true or false"), std::string::npos);
  EXPECT_STREQ(ops::scan_plan_name(ops::parse_scan_plan("low_memory")), "low_memory");
  EXPECT_NE(message("scan_narrow_backward", "eight").find("auto, eight_lanes, four_lanes"), std::string::npos);
  for (const char* name : {"auto", "eight_lanes", "four_lanes"})
    EXPECT_STREQ(ops::narrow_scan_backward_name(ops::parse_narrow_scan_backward(name)), name);
  EXPECT_NE(message("decode_few_row_limit", "9").find("whole number 0..8, got '9'"), std::string::npos);
}

TEST(OpsOptions, ScopedOverrideRestoresThePreviousOptions) {
  const ops::OpsOptions before = ops::ops_options();
  {
    ops::OpsOptions o = before;
    o.backend = ops::Backend::kReference;
    o.fused_mixer = false;
    o.poison_outputs = true;
    const ops::ScopedOpsOptions outer(o);
    EXPECT_EQ(ops::backend(), ops::Backend::kReference);
    EXPECT_FALSE(ops::fused_mixer_enabled());
    {
      o.scan_plan = ops::ScanPlan::kLowMemory;
      const ops::ScopedOpsOptions inner(o);
      EXPECT_EQ(ops::ops_options().scan_plan, ops::ScanPlan::kLowMemory);
    }
    EXPECT_EQ(ops::ops_options().scan_plan, before.scan_plan);
    EXPECT_TRUE(ops::ops_options().poison_outputs);
  }
  const ops::OpsOptions after = ops::ops_options();
  EXPECT_EQ(after.backend, before.backend);
  EXPECT_EQ(after.fused_mixer, before.fused_mixer);
  EXPECT_EQ(after.mixer_saves_conv_output, before.mixer_saves_conv_output);
  EXPECT_EQ(after.scan_plan, before.scan_plan);
  EXPECT_EQ(after.poison_outputs, before.poison_outputs);
}

}  // namespace
}  // namespace mcd
