// CPU op timings (Google Benchmark): the LM head's row-wise cross-entropy step, the CPU op
// (ops/cpu/cross_entropy_cpu.h) against the LibTorch composite, on one (rows, V) chunk of the
// GPT-2 head in fp32, with the gradient written in place (training) and loss only (evaluation).
// Each iteration restores the logits first (a copy, also timed: the CopyOnly case is that part).
// Conditions as in `mamba-codesign`: its heap settings ([Note: heap trimming]) and two untimed
// calls first, so that pages the op keeps reusing are already mapped (a first touch costs ~10 µs
// per 4 KiB page on the paravirtualised development machines: the first 200 MB copy takes 0.5 s,
// the next ones 12 ms). docs/NOTES.md, [Note: CPU cross-entropy rows], records the figures.
#include <benchmark/benchmark.h>

#include <ATen/Parallel.h>

#include "ops/chunked_cross_entropy.h"
#include "ops/cpu/cross_entropy_cpu.h"
#include "util/heap.h"

namespace {

constexpr int64_t kVocab = 50257;

struct Chunk {
  at::Tensor logits, work, targets;
  explicit Chunk(int64_t rows)
      : logits(at::randn({rows, kVocab})), work(logits.clone()),
        targets(at::randint(0, kVocab, {rows}, at::kLong)) {}
};

void CopyOnly(benchmark::State& state) {
  Chunk c(state.range(0));
  for (auto _ : state) c.work.copy_(c.logits);
}

template <bool kCpuOp>
void RowStep(benchmark::State& state) {
  Chunk c(state.range(0));
  const bool write_grad = state.range(1) != 0;
  auto step = [&] {
    c.work.copy_(c.logits);
    const at::Tensor loss = kCpuOp ? mcd::ops::cpu::cross_entropy_rows(c.work, c.targets, 1e-3, write_grad)
                                   : mcd::ops::cross_entropy_rows_composite(c.work, c.targets, 1e-3, write_grad);
    benchmark::DoNotOptimize(loss.data_ptr());
  };
  step();
  step();
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * state.range(0));  // rows
}

// rows of the chunk (1,016: one 8 × 128-token step of configs/train/small-enwiki-cpu.yaml), write_grad
BENCHMARK(CopyOnly)->Arg(1016)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(RowStep, true)->Args({1016, 1})->Args({1016, 0})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(RowStep, false)->Args({1016, 1})->Args({1016, 0})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  mcd::keep_freed_heap();  // as mamba-codesign
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
