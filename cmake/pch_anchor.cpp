// Anchor translation unit for the shared LibTorch precompiled header (see CMakeLists.txt).
#include "util/torch_pch.h"
