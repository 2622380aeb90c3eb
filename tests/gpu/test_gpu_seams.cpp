// The model's seams on a CUDA device (ctest label `gpu`; every case skips itself without one):
// projection adapters are honoured by the fused CUDA mixer (through their effective weight), SDM
// gates sampled on the device equal the host's sample, and one decoding step (step_into) captured
// in a CUDA graph replays to the eager step's logits.
#include <gtest/gtest.h>

#ifdef MCD_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "model/channel_gate.h"
#include "model/mamba.h"
#include "test_adapters.h"
#include "test_support.h"

namespace mcd {
namespace {

ModelConfig seam_config() {
  ModelConfig c = model_preset("mamba-tiny");
  c.n_layer = 2;
  c.vocab_size = 97;
  return c;
}

// A float32 CUDA model with adapters (fused mixer) against the float64 CPU model with the same
// adapters folded into its weights. float32 products of ≤ 128 terms (no TF32 in LibTorch's default
// for fp32 matmuls) and the scan in fp32 give relative errors ~1e-6; 1e-4 (logits) and 1e-3
// (gradients, which pass through more products) leave margin, while an adapter the fused path
// skipped would change the outputs by ~10 % (the adapters' scales are in [0.5, 1.5]).
TEST(GpuSeams, FusedMixerHonoursProjectionAdapters) {
  MCD_SKIP_IF_NO_CUDA();
  const ModelConfig c = seam_config();
  MambaLM gpu(c), ref(c), plain(c);
  init_reference(*gpu, 5);
  init_reference(*ref, 5);
  init_reference(*plain, 5);
  gpu->to(torch::kCUDA);
  ref->to(at::kDouble);
  plain->to(torch::kCUDA);
  test::attach_test_adapters(*gpu, 6, at::kFloat);
  test::attach_test_adapters(*ref, 6, at::kDouble);
  // Seeded: the ids must not depend on which tests ran before (the suite's order changes the draw).
  torch::manual_seed(11);
  const at::Tensor ids = torch::randint(0, 97, {2, 33}, torch::kLong);
  const at::Tensor loss = gpu->loss(ids.to(torch::kCUDA));
  const at::Tensor loss_ref = ref->loss(ids);
  EXPECT_LT(test::rel_err(loss.reshape({1}), loss_ref.reshape({1})), 1e-5);
  {
    // The precondition is checked on the logits, where the adapters' ~10 % shows: the mean loss of
    // a random model sits near ln(97) whatever the weights, so a loss difference (7e-4 in one
    // draw, 2026-12-03) says little. 1e-2 is a tenth of the expected change and 1e4 times the
    // fp32 error bound above.
    torch::NoGradGuard no_grad;
    EXPECT_GT(test::rel_err(plain->forward(ids.to(torch::kCUDA)), ref->forward(ids)), 1e-2)
        << "the adapters must change the logits for this test to mean anything";
  }
  loss.backward();
  loss_ref.backward();
  auto rp = ref->named_parameters();
  for (const auto& p : gpu->named_parameters())
    EXPECT_LT(test::rel_err(p.value().grad(), rp[p.key()].grad()), 1e-3) << p.key();
  // Eval-mode logits equal the merged model's.
  torch::NoGradGuard no_grad;
  gpu->eval();
  ref->eval();
  test::merge_test_adapters(*ref);
  EXPECT_LT(test::rel_err(gpu->forward(ids.to(torch::kCUDA)), ref->forward(ids)), 1e-4);
}

// SDM gates sampled on the device equal the host's sample: the noise is counter-based (util/
// counter_noise.h), formed inside the channel_gate kernel on the device and by the CPU formula on
// the host, so this checks that both draw the same U for every (seed, step, layer, gate) — three
// steps, six layers, two gate types, the device's resample_gates against each host layer's own
// resample(), behind a long kernel. A wrong key (layer or step) changes gates by O(0.1). Tolerance:
// the host's and CUDA's logf differ by ~1 ulp (≤ 4e-6 of the noise at |n| ≤ 17), scaled by
// dz/dn ≤ 0.45, plus a few fp32 roundings: 5e-6 on the gates; the gradients of a weighted sum with
// respect to log α go through the same few operations: 2e-5 relative.
TEST(GpuSeams, SampledGatesOnTheDeviceEqualTheHostsSample) {
  MCD_SKIP_IF_NO_CUDA();
  for (const GateType type : {GateType::kHardConcrete, GateType::kGumbelSigmoid}) {
    const int layers = 6;
    std::vector<ChannelGate> host, device;
    for (int l = 0; l < layers; ++l) {
      host.push_back(ChannelGate(257, 1, type, 0.0));
      torch::manual_seed(30 + l);
      {
        torch::NoGradGuard no_grad;
        host.back()->log_alpha.copy_(torch::randn({257}) * 2.0);
      }
      device.push_back(ChannelGate(257, 1, type, 0.0));
      {
        torch::NoGradGuard no_grad;
        device.back()->log_alpha.copy_(host.back()->log_alpha);
      }
      device.back()->to(torch::kCUDA);
      host.back()->train();
      device.back()->train();
      host.back()->set_temperature(0.7);
      device.back()->set_temperature(0.7);
    }
    const at::Tensor weights = torch::linspace(-1.0, 1.0, 257);
    for (int64_t step = 0; step < 3; ++step) {
      // A long kernel first, so that the gate kernels queue behind it while the host runs ahead: each
      // must carry the key it was launched with (a key read later would give another step's noise).
      const at::Tensor big = torch::randn({2048, 2048}, torch::kCUDA);
      const at::Tensor busy = big.matmul(big).matmul(big);
      for (int l = 0; l < layers; ++l) host[l]->resample(5, step, l);
      resample_gates(device, 5, step);  // what the trainer does
      for (int l = 0; l < layers; ++l) {
        const at::Tensor zh = host[l]->forward(), zd = device[l]->forward();
        EXPECT_LT((zd.cpu() - zh).abs().max().item<double>(), 5e-6) << gate_type_name(type) << " step " << step << " layer " << l;
        (zh * weights).sum().backward();
        (zd * weights.to(torch::kCUDA)).sum().backward();
        EXPECT_LT(test::rel_err(device[l]->log_alpha.grad().cpu(), host[l]->log_alpha.grad()), 2e-5)
            << gate_type_name(type) << " step " << step << " layer " << l;
        host[l]->log_alpha.mutable_grad() = at::Tensor();
        device[l]->log_alpha.mutable_grad() = at::Tensor();
      }
      EXPECT_TRUE(busy.isfinite().all().item<bool>());
    }
  }
}

// The channel-major prefill (an inference forward at small B·E, [Note: channel-major prefill] in
// model/mamba.h) against the float64 CPU model: dense with adapters (their effective weights) and
// SDM-gated (the mask in the scan and folded into x_proj), logits and the conv and SSM states it
// hands to the decoder. Same fp32 budget as above (1e-4); a product oriented the wrong way, a
// skipped adapter or mask, or a state taken at the wrong step changes them by O(10 %) or more.
TEST(GpuSeams, ChannelMajorPrefillMatchesTheFloat64Model) {
  MCD_SKIP_IF_NO_CUDA();
  for (const std::string gate : {"", "hard_concrete"}) {
    ModelConfig c = seam_config();
    c.gate_type = gate;
    MambaLM gpu(c), ref(c);
    init_reference(*gpu, 7);
    init_reference(*ref, 7);
    gpu->to(torch::kCUDA);
    ref->to(at::kDouble);
    if (gate.empty()) {
      test::attach_test_adapters(*gpu, 8, at::kFloat);
      test::attach_test_adapters(*ref, 8, at::kDouble);
    }
    gpu->eval();
    ref->eval();
    if (gate.empty()) test::merge_test_adapters(*ref);
    torch::NoGradGuard no_grad;
    const at::Tensor probe = torch::zeros({2, 37, c.d_model}, torch::dtype(torch::kFloat).device(torch::kCUDA));
    ASSERT_TRUE(gpu->backbone->blocks[0]->mixer->channel_major_prefill_applies(probe))
        << "the test must run the channel-major path";
    torch::manual_seed(12);
    const at::Tensor ids = torch::randint(0, 97, {2, 37}, torch::kLong);
    InferenceCache cg = gpu->new_cache(2), cr = ref->new_cache(2);
    const at::Tensor logits = gpu->prefill(ids.to(torch::kCUDA), cg), want = ref->prefill(ids, cr);
    EXPECT_LT(test::rel_err(logits, want), 1e-4) << "gate '" << gate << "'";
    for (size_t l = 0; l < cr.layers.size(); ++l) {
      EXPECT_LT(test::rel_err(cg.layers[l].conv, cr.layers[l].conv), 1e-4) << "gate '" << gate << "' layer " << l;
      EXPECT_LT(test::rel_err(cg.layers[l].ssm, cr.layers[l].ssm), 1e-4) << "gate '" << gate << "' layer " << l;
    }
    EXPECT_LT(test::rel_err(gpu->forward(ids.to(torch::kCUDA)), ref->forward(ids)), 1e-4) << "gate '" << gate << "'";
  }
}

#ifdef MCD_WITH_CUDA
// The graph replays exactly the kernels the eager step ran, on the same inputs: the logits agree
// bit for bit (checked as equality).
TEST(GpuSeams, StepIntoReplaysFromACudaGraph) {
  MCD_SKIP_IF_NO_CUDA();
  ModelConfig c = seam_config();
  c.gate_type = "hard_concrete";
  MambaLM m(c);
  init_reference(*m, 9);
  m->to(torch::kCUDA);
  m->eval();
  const at::Tensor prompt = torch::randint(0, 97, {3, 8}, torch::kLong).to(torch::kCUDA);
  InferenceCache eager = m->new_cache(3), graphed = m->new_cache(3), scratch = m->new_cache(3);
  at::Tensor token = torch::zeros({3}, torch::dtype(torch::kLong).device(torch::kCUDA));
  at::Tensor logits = torch::empty({3, c.vocab_size}, torch::dtype(torch::kFloat).device(torch::kCUDA));
  at::cuda::CUDAGraph graph;
  {
    c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
    c10::cuda::CUDAStreamGuard guard(stream);
    m->step_into(token, scratch, logits);  // warm-up on the capture stream (library handles, pools)
    stream.synchronize();
    graph.capture_begin();
    m->step_into(token, graphed, logits);
    graph.capture_end();
  }
  at::Tensor want = torch::empty_like(logits);
  for (int64_t t = 0; t < prompt.size(1); ++t) {
    m->step_into(prompt.select(1, t), eager, want);
    token.copy_(prompt.select(1, t));
    graph.replay();
    torch::cuda::synchronize();
    EXPECT_TRUE(torch::equal(logits, want)) << "token " << t << ": max diff "
                                            << (logits - want).abs().max().item<double>();
  }
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}
#endif

}  // namespace
}  // namespace mcd
