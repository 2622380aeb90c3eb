// The precompiled header shared by every LibTorch translation unit (see CMakeLists.txt).
// Keep it to stable, heavy headers: changing it rebuilds everything.
#pragma once
#include <torch/torch.h>
#include <string>
#include <vector>
#include <map>
#include <memory>
