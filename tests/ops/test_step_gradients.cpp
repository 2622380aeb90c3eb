// The gradients of a graphed training step (ops/step_gradients.h), on the CPU: a capture's
// gradients become the replays' output buffers (the very tensors when they have their parameter's
// layout, else parameter-shaped copies), a fresh step's gradients are those buffers with nothing
// copied, an accumulating step adds them to gradients of its own, and no gradient is ever a buffer
// a later replay could overwrite while it must keep its value. A "replay" here writes new values
// into the output buffers, which is all a CUDA graph's replay does to them. The CUDA graphs
// themselves: tests/gpu (GpuCodesign.*Graph*, bit for bit against eager steps).
#include <gtest/gtest.h>

#include "ops/step_gradients.h"
#include "test_support.h"
#include "util/error.h"

namespace mcd {
namespace {

const auto kF64 = torch::TensorOptions().dtype(at::kDouble);

std::vector<at::Tensor> three_params() {
  return {torch::randn({3, 4}, kF64).requires_grad_(true), torch::randn({5}, kF64).requires_grad_(true),
          torch::randn({2, 2}, kF64).requires_grad_(true)};
}

// What a replay does: every written output buffer gets the step's new values.
void fake_replay(ops::StepGradients& g, const std::vector<at::Tensor>& values) {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].defined()) g.outputs()[i].copy_(values[i]);
}

TEST(StepGradients, AFreshStepsGradientsAreTheOutputBuffersThemselves) {
  torch::manual_seed(1);
  std::vector<at::Tensor> p = three_params();
  p[2].mutable_grad() = torch::ones({2, 2}, kF64);  // an old gradient the step does not reach
  ops::StepGradients g(p);
  const std::vector<at::Tensor> captured = {torch::randn({3, 4}, kF64), torch::randn({5}, kF64), at::Tensor()};
  const std::vector<bool> written = g.adopt(captured);
  EXPECT_EQ(written, (std::vector<bool>{true, true, false}));
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(g.outputs()[i].is_same(captured[i])) << i;  // no copy
  EXPECT_FALSE(g.outputs()[2].defined());

  for (int step = 0; step < 2; ++step) {
    g.begin_step();
    for (const at::Tensor& t : p) EXPECT_FALSE(t.grad().defined()) << "a fresh step starts without gradients";
    g.before_replay();
    const std::vector<at::Tensor> values = {torch::randn({3, 4}, kF64), torch::randn({5}, kF64), at::Tensor()};
    fake_replay(g, values);
    g.finish_replay(written);
    for (int i = 0; i < 2; ++i) {
      EXPECT_TRUE(p[i].grad().is_same(g.outputs()[i])) << i;
      EXPECT_TRUE(p[i].grad().equal(values[i])) << i;
    }
    EXPECT_FALSE(p[2].grad().defined()) << "a parameter the step does not reach has no gradient";
  }
}

TEST(StepGradients, AnAccumulatingStepAddsIntoGradientsOfItsOwn) {
  torch::manual_seed(2);
  std::vector<at::Tensor> p = three_params();
  ops::StepGradients g(p);
  const std::vector<bool> written = g.adopt({torch::zeros({3, 4}, kF64), torch::zeros({5}, kF64), at::Tensor()});
  g.begin_step();
  g.before_replay();
  const std::vector<at::Tensor> a = {torch::randn({3, 4}, kF64), torch::randn({5}, kF64), at::Tensor()};
  fake_replay(g, a);
  g.finish_replay(written);
  p[2].mutable_grad() = torch::full({2, 2}, 7.0, kF64);  // e.g. an eager backward's contribution

  // The second micro-batch: no begin_step.
  g.before_replay();
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(p[i].grad().is_same(g.outputs()[i])) << "the replay would overwrite the first micro-batch's sum";
    EXPECT_TRUE(p[i].grad().equal(a[i])) << i;
  }
  const std::vector<at::Tensor> b = {torch::randn({3, 4}, kF64), torch::randn({5}, kF64), at::Tensor()};
  fake_replay(g, b);
  g.finish_replay(written);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(p[i].grad().equal(a[i] + b[i])) << i;  // one float64 add of the same two values
    EXPECT_FALSE(p[i].grad().is_same(g.outputs()[i])) << i;
    EXPECT_TRUE(g.outputs()[i].equal(b[i])) << "the buffers keep the replay's values";
  }
  EXPECT_TRUE(p[2].grad().equal(torch::full({2, 2}, 7.0, kF64))) << "an unreached gradient is left alone";
}

// Clipping scales gradients in place: no two gradients may share memory, and each must have its
// parameter's layout (what the fused optimizer reads). A gradient that is a transpose, an expanded
// scalar or another parameter's tensor is copied into a buffer of its own.
TEST(StepGradients, GradientsWithAnotherLayoutOrSharedMemoryAreCopied) {
  torch::manual_seed(3);
  std::vector<at::Tensor> p = three_params();
  ops::StepGradients g(p);
  const at::Tensor transposed = torch::randn({4, 3}, kF64).t();
  const at::Tensor expanded = torch::randn({1}, kF64).expand({5});
  const at::Tensor shared = torch::randn({2, 2}, kF64);
  ops::StepGradients g2({torch::randn({2, 2}, kF64).requires_grad_(true), torch::randn({2, 2}, kF64).requires_grad_(true)});
  g.adopt({transposed, expanded, shared});
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(g.outputs()[i].strides(), p[i].strides()) << i;
    EXPECT_EQ(g.outputs()[i].storage().data() == transposed.storage().data(), false) << i;
    EXPECT_EQ(g.outputs()[i].storage().data() == expanded.storage().data(), false) << i;
  }
  EXPECT_TRUE(g.outputs()[0].equal(transposed));
  EXPECT_TRUE(g.outputs()[1].equal(expanded));
  EXPECT_TRUE(g.outputs()[2].is_same(shared));  // its own layout, nobody else's memory: kept

  g2.adopt({shared, shared});  // one tensor as two parameters' gradients
  EXPECT_TRUE(g2.outputs()[0].is_same(shared));
  EXPECT_NE(g2.outputs()[1].storage().data(), shared.storage().data());
  EXPECT_TRUE(g2.outputs()[1].equal(shared));
}

TEST(StepGradients, LaterCapturesWriteTheFirstCapturesBuffers) {
  torch::manual_seed(4);
  std::vector<at::Tensor> p = three_params();
  ops::StepGradients g(p);
  const std::vector<at::Tensor> first = {torch::randn({3, 4}, kF64), at::Tensor(), torch::randn({2, 2}, kF64)};
  g.adopt(first);
  const std::vector<at::Tensor> second = {torch::randn({3, 4}, kF64), torch::randn({5}, kF64), torch::randn({2, 2}, kF64)};
  const std::vector<bool> written = g.adopt(second);
  EXPECT_EQ(written, (std::vector<bool>{true, true, true}));
  EXPECT_TRUE(g.outputs()[0].is_same(first[0]));  // the first capture's buffer, now holding the copy
  EXPECT_TRUE(g.outputs()[0].equal(second[0]));
  EXPECT_TRUE(g.outputs()[1].is_same(second[1]));  // first reached by the second capture
  EXPECT_TRUE(g.outputs()[2].is_same(first[2]));
}

TEST(StepGradients, EagerStepsAndReleaseLeaveNoGradientOnABuffer) {
  torch::manual_seed(5);
  std::vector<at::Tensor> p = three_params();
  ops::StepGradients g(p);
  const std::vector<bool> written = g.adopt({torch::randn({3, 4}, kF64), torch::randn({5}, kF64), torch::randn({2, 2}, kF64)});
  auto replay_ones = [&] {
    g.before_replay();
    fake_replay(g, {torch::ones({3, 4}, kF64), torch::ones({5}, kF64), torch::ones({2, 2}, kF64)});
    g.finish_replay(written);
  };
  g.begin_step();
  replay_ones();

  // An eager step after a replay: begin_step drops the gradients; a regulariser's backward before the
  // micro-batches and the micro-batch's own add up as in any eager step.
  g.begin_step();
  for (const at::Tensor& t : p) EXPECT_FALSE(t.grad().defined());
  (p[0].sum() * 3).backward();
  g.before_eager();
  (p[0].sum() * 2).backward();
  g.finish_eager();
  EXPECT_TRUE(p[0].grad().equal(torch::full({3, 4}, 5.0, kF64)));
  EXPECT_FALSE(g.fresh());

  // An eager backward that accumulates onto a replay's gradients leaves the buffers alone.
  g.begin_step();
  replay_ones();
  g.before_eager();
  (p[0].sum() * 2).backward();
  g.finish_eager();
  EXPECT_TRUE(p[0].grad().equal(torch::full({3, 4}, 3.0, kF64)));
  EXPECT_TRUE(g.outputs()[0].equal(torch::ones({3, 4}, kF64)));

  // After a replay, release() turns the buffers into copies (the buffers' memory may then go).
  g.begin_step();
  g.before_replay();
  fake_replay(g, {torch::full({3, 4}, 3.0, kF64), torch::full({5}, 3.0, kF64), torch::full({2, 2}, 3.0, kF64)});
  g.finish_replay(written);
  g.release();
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_FALSE(p[i].grad().is_same(g.outputs()[i])) << i;
    EXPECT_TRUE(p[i].grad().equal(g.outputs()[i])) << i;
  }
}

// Before any begin_step a step adds to the gradients there are (LibTorch's own convention).
TEST(StepGradients, WithoutBeginStepAReplayAddsToExistingGradients) {
  std::vector<at::Tensor> p = three_params();
  p[0].mutable_grad() = torch::full({3, 4}, 2.0, kF64);
  ops::StepGradients g(p);
  const std::vector<bool> written = g.adopt({torch::zeros({3, 4}, kF64), at::Tensor(), at::Tensor()});
  g.before_replay();
  fake_replay(g, {torch::ones({3, 4}, kF64), at::Tensor(), at::Tensor()});
  g.finish_replay(written);
  EXPECT_TRUE(p[0].grad().equal(torch::full({3, 4}, 3.0, kF64)));
  EXPECT_FALSE(p[0].grad().is_same(g.outputs()[0]));
}

TEST(StepGradients, BadInputIsRefused) {
  EXPECT_THROW(ops::StepGradients({torch::randn({2}, kF64)}), Error);  // does not require a gradient
  ops::StepGradients g({torch::randn({2}, kF64).requires_grad_(true)});
  EXPECT_THROW(g.adopt({}), Error);
  EXPECT_THROW(g.adopt({torch::randn({3}, kF64)}), Error);
  EXPECT_THROW(g.finish_replay({true, false}), Error);
}

}  // namespace
}  // namespace mcd
