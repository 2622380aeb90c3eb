// Anchor translation unit for the tests' precompiled header (tests/CMakeLists.txt).
#include "test_pch.h"
