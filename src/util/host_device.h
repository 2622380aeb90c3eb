// MCD_HOST_DEVICE: a function that plain C++ and CUDA kernels both call (__host__ __device__ under nvcc, nothing
// otherwise), for the few pieces of arithmetic a CPU test checks and a kernel runs.
#pragma once

#ifdef __CUDACC__
#define MCD_HOST_DEVICE __host__ __device__
#else
#define MCD_HOST_DEVICE
#endif
