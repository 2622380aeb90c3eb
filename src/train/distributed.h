// Data parallelism through PyTorch's c10d: a process group (NCCL for CUDA, Gloo for CPU) set up
// from torchrun-style environment variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT), and the few collectives the trainer needs: bucketed gradient all-reduce,
// parameter broadcast, scalar sums. A world of one needs no process group at all.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "util/torch_compat.h"

namespace mcd::train {

struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  static DistEnv from_environment();  // defaults to a world of one; errors name the variable
};

class Communicator {
 public:
  // backend: "gloo" or "nccl". For world_size 1 no process group is created.
  Communicator(const DistEnv& env, const std::string& backend);
  ~Communicator();
  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  bool is_main() const { return env_.rank == 0; }

  // Averages the gradients of `params` over ranks, in flattened buckets of ~bucket_bytes.
  void average_gradients(const std::vector<at::Tensor>& params, int64_t bucket_bytes = 32 << 20);
  void broadcast_(const std::vector<at::Tensor>& tensors, int root = 0);  // in place
  double sum(double value);                                               // over ranks
  void barrier();

 private:
  void allreduce_(at::Tensor& flat);
  struct Impl;
  DistEnv env_;
  std::string backend_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcd::train
