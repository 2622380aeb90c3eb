// c10d process groups and the trainer's collectives (see distributed.h).
#include "train/distributed.h"

#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef MCD_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef MCD_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "util/error.h"

namespace mcd::train {
namespace {

// An integer environment variable in [lo, hi] (`fallback` when unset); errors name the variable.
int env_int(const char* name, int fallback, long lo = 0, long hi = INT_MAX) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  MCD_CHECK(end && *end == '\0' && errno == 0 && x >= lo && x <= hi, "environment variable ", name, "='", v,
            "' is not an integer in ", lo, "..", hi);
  return int(x);
}

}  // namespace

DistEnv DistEnv::from_environment() {
  DistEnv e;
  e.world_size = env_int("WORLD_SIZE", 1);
  e.rank = env_int("RANK", 0);
  e.local_rank = env_int("LOCAL_RANK", e.rank);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", 29500, 1, 65535);  // a TCP port: never truncated to 16 bits
  MCD_CHECK(e.world_size >= 1 && e.rank < e.world_size, "RANK=", e.rank, " must be below WORLD_SIZE=", e.world_size);
  return e;
}

// The process group: c10d's ProcessGroup in 1.x, its Backend in 2.x; both offer the collectives.
struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
#if TORCH_VERSION_MAJOR >= 2
  c10::intrusive_ptr<c10d::Backend> group;
#else
  c10::intrusive_ptr<c10d::ProcessGroup> group;
#endif
};

Communicator::Communicator(const DistEnv& env, const std::string& backend) : env_(env), backend_(backend) {
  if (env.world_size == 1) return;
  impl_ = std::make_unique<Impl>();
  c10d::TCPStoreOptions opts;
  MCD_CHECK(env.master_port >= 1 && env.master_port <= 65535, "MASTER_PORT=", env.master_port,
            " is not a TCP port (1..65535)");
  opts.port = uint16_t(env.master_port);
  opts.isServer = env.rank == 0;
  opts.numWorkers = size_t(env.world_size);
  opts.waitWorkers = true;
  opts.timeout = std::chrono::milliseconds(300000);
  impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
  if (backend == "gloo") {
#ifdef MCD_WITH_GLOO
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, options);
#else
    fail("this build has no Gloo support (gloo headers were not found at configure time)");
#endif
  } else if (backend == "nccl") {
#ifdef MCD_WITH_NCCL
    impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size);
#else
    fail("this build has no NCCL support (LibTorch without CUDA)");
#endif
  } else {
    fail(cat("unknown distributed backend '", backend, "' (valid: gloo, nccl)"));
  }
}

Communicator::~Communicator() = default;

void Communicator::allreduce_(at::Tensor& flat) {
  std::vector<at::Tensor> one{flat};
  impl_->group->allreduce(one)->wait();
}

void Communicator::average_gradients(const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  if (env_.world_size == 1) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> bucket;
  int64_t bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    std::vector<at::Tensor> flats;
    for (const auto& g : bucket) flats.push_back(g.reshape({-1}));
    at::Tensor flat = at::cat(flats);
    allreduce_(flat);
    flat.div_(env_.world_size);
    int64_t offset = 0;
    for (auto& g : bucket) {
      g.copy_(flat.narrow(0, offset, g.numel()).view_as(g));
      offset += g.numel();
    }
    bucket.clear();
    bytes = 0;
  };
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    at::Tensor g = p.grad();
    if (!bucket.empty() && g.scalar_type() != bucket.front().scalar_type()) flush();
    bucket.push_back(g);
    bytes += g.numel() * int64_t(g.element_size());
    if (bytes >= bucket_bytes) flush();
  }
  flush();
}

void Communicator::broadcast_(const std::vector<at::Tensor>& tensors, int root) {
  if (env_.world_size == 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    std::vector<at::Tensor> one{t.detach()};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    impl_->group->broadcast(one, o)->wait();
  }
}

double Communicator::sum(double value) {
  if (env_.world_size == 1) return value;
  const bool cuda = backend_ == "nccl";
  at::Tensor t = torch::tensor({value}, torch::kDouble);
  if (cuda) t = t.to(torch::Device(torch::kCUDA, env_.local_rank));
  allreduce_(t);
  return t.to(torch::kCPU).item<double>();
}

void Communicator::barrier() {
  if (env_.world_size == 1) return;
  impl_->group->barrier()->wait();
}

}  // namespace mcd::train
