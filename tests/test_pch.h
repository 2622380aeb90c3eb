// The precompiled header of the LibTorch test executables (tests/CMakeLists.txt): built at -O0
// like the test code itself, so it cannot be shared with the libraries' -O3 header.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>
