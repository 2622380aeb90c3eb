// Atomic training checkpoints (see checkpointing.h).
#include "train/checkpointing.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "io/safetensors_torch.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::train {
namespace {

constexpr const char* kStateFile = "trainer_state.json";  // written last: its presence = complete

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08lld", static_cast<long long>(step));
  return buf;
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Test hook: SIGKILL halfway through writing checkpoint `step` (model written, optimizer and state
// not), like a power cut would.
void maybe_inject_kill(const FaultInjection& faults, int64_t step) {
  if (faults.kill_in_checkpoint_at_step == step) ::raise(SIGKILL);
}

bool is_complete(const std::string& folder) { return fs::is_regular_file(fs::join(folder, kStateFile)); }

}  // namespace

std::string write_checkpoint(const SaveWeights& save_weights, const CheckpointContents& contents,
                             const std::string& out_dir, int64_t step, int64_t keep_last,
                             const FaultInjection& faults) {
  const std::string root = fs::join(out_dir, "checkpoints");
  fs::make_dirs(root);
  const std::string final_dir = fs::join(root, step_name(step));
  const std::string tmp = fs::join(root, ".tmp_" + step_name(step) + "_" + std::to_string(::getpid()));
  fs::remove_tree(tmp);
  fs::make_dirs(tmp);
  save_weights(tmp);
  maybe_inject_kill(faults, step);
  io::save_safetensors(fs::join(tmp, "optimizer.safetensors"), contents.optimizer);
  nlohmann::json state = contents.trainer_state;
  state["step"] = step;
  write_text_atomic(fs::join(tmp, kStateFile), state.dump(2) + "\n");
  fsync_dir(tmp);
  fs::remove_tree(final_dir);  // a checkpoint of the same step from an earlier, abandoned run
  fs::rename_path(tmp, final_dir);
  fsync_dir(root);
  write_text_atomic(fs::join(root, "latest"), step_name(step) + "\n");
  // Prune: keep the newest keep_last complete checkpoints.
  std::vector<std::string> complete;
  for (const auto& name : fs::list_dir(root))
    if (name.rfind("step_", 0) == 0 && is_complete(fs::join(root, name))) complete.push_back(name);
  for (size_t i = 0; i + size_t(keep_last) < complete.size(); ++i) fs::remove_tree(fs::join(root, complete[i]));
  return final_dir;
}

std::optional<std::string> find_latest_checkpoint(const std::string& out_dir) {
  const std::string root = fs::join(out_dir, "checkpoints");
  if (!fs::is_directory(root)) return std::nullopt;
  std::vector<std::string> complete;
  for (const auto& name : fs::list_dir(root)) {
    const std::string path = fs::join(root, name);
    if (name.rfind(".tmp_", 0) == 0) {
      fs::remove_tree(path);  // an interrupted write
    } else if (name.rfind("step_", 0) == 0 && is_complete(path)) {
      complete.push_back(path);
    }
  }
  if (complete.empty()) return std::nullopt;
  return complete.back();  // names sort by step (zero-padded)
}

LoadedCheckpoint read_checkpoint(const LoadWeights& load_weights, const std::string& folder) {
  load_weights(folder);
  LoadedCheckpoint out;
  out.optimizer = io::load_safetensors(fs::join(folder, "optimizer.safetensors"));
  const std::string state_path = fs::join(folder, kStateFile);
  std::ifstream f(state_path);
  MCD_CHECK(f.good(), state_path, ": cannot open");
  try {
    out.trainer_state = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    fail(cat(state_path, ": invalid JSON: ", e.what()));
  }
  MCD_CHECK(out.trainer_state.contains("step") && out.trainer_state["step"].is_number_integer(), state_path,
            ": no integer 'step'");
  return out;
}

}  // namespace mcd::train
