// Counter-based uniform noise that the host and a CUDA kernel compute alike: value j of the stream
// `key` is a pure function of (key, j) (splitmix64's finaliser), so the SDM gates' noise needs no
// generator state, no host-to-device copy, and is the same on every device and data-parallel rank.
// Plain C++ (also compiled by nvcc): no LibTorch here.
#pragma once

#include <cmath>
#include <cstdint>

#include "util/host_device.h"

namespace mcd {

// One 64-bit key from the three counters a training step has (seed, step, layer).
MCD_HOST_DEVICE inline uint64_t noise_key(uint64_t seed, int64_t step, int64_t layer) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL ^ (uint64_t(step) + 0x632BE59BD9B4E019ULL) * 0xBF58476D1CE4E5B9ULL ^
               (uint64_t(layer) + 1) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// U_j in (0, 1): (k + 1/2) / 2^23 for k the top 23 bits of the finalised counter, exact in float
// (24 significant bits), so 1 − U is exact too and the host and the device see the same U.
MCD_HOST_DEVICE inline float noise_uniform(uint64_t key, int64_t j) {
  uint64_t x = key + (uint64_t(j) + 1) * 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return (float(x >> 41) + 0.5f) * (1.0f / 8388608.0f);
}

// The logistic sample log U − log(1 − U) of U_j (float logs: the host's and CUDA's logf agree
// to an ulp or so).
MCD_HOST_DEVICE inline float noise_logistic(uint64_t key, int64_t j) {
  const float u = noise_uniform(key, j);
  return logf(u) - logf(1.0f - u);
}

}  // namespace mcd
