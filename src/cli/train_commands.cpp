// Training subcommands: `pretrain` (one process, or one rank of a data-parallel job started by
// torchrun-style environment variables) and `launch` (starts N local ranks of any subcommand
// with those variables set, like torchrun --nproc-per-node).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>

#include "cli/commands.h"
#include "util/error.h"
#include "util/fs.h"

#ifdef MCD_HAS_TRAIN
#include "train/trainer.h"
#endif

namespace mcd::cli {

Command add_pretrain(CLI::App& app) {
  auto* sub = app.add_subcommand("pretrain", "pre-train a Mamba LM on a corpus (configs/train/*.yaml)");
  struct Args {
    std::string config;
    std::vector<std::string> overrides, faults;
    bool resume = false, quiet = false;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--config", a->config, "training YAML file")->required();
  sub->add_option("--set", a->overrides, "override a key: section.key=value (repeatable)");
  sub->add_flag("--resume", a->resume, "continue from the newest checkpoint in run.out_dir");
  sub->add_flag("--quiet", a->quiet, "no progress line");
  // Test-only fault injection, kept out of --help: nan-loss-at-step=N, kill-in-checkpoint-at-step=N.
  sub->add_option("--test-fault", a->faults)->group("");
  return {sub, [a] {
#ifdef MCD_HAS_TRAIN
            const train::TrainConfig config = train::load_train_config(a->config, a->overrides);
            train::TrainOptions o;
            o.resume = a->resume;
            o.quiet = a->quiet;
            for (const std::string& f : a->faults) {
              const auto eq = f.find('=');
              const std::string key = f.substr(0, eq);
              int64_t step = -1;
              try {
                step = eq == std::string::npos ? -1 : std::stoll(f.substr(eq + 1));
              } catch (const std::exception&) {
              }
              MCD_CHECK(step >= 0, "--test-fault '", f, "': expected nan-loss-at-step=N or kill-in-checkpoint-at-step=N");
              if (key == "nan-loss-at-step") o.faults.nan_loss_at_step = step;
              else if (key == "kill-in-checkpoint-at-step") o.faults.kill_in_checkpoint_at_step = step;
              else fail(cat("--test-fault '", f, "': unknown fault (valid: nan-loss-at-step, kill-in-checkpoint-at-step)"));
            }
            const auto summary = train::run_pretraining(config, o);
            if (!summary.empty()) std::cout << summary.dump() << std::endl;
#else
            fail("this build has no trainer");
#endif
          }};
}

Command add_launch(CLI::App& app) {
  auto* sub = app.add_subcommand("launch", "run N local ranks of a subcommand (RANK, WORLD_SIZE, LOCAL_RANK, "
                                           "MASTER_ADDR, MASTER_PORT set), e.g. launch --nproc 2 -- pretrain --config F");
  struct Args {
    int nproc = 2;
    int port = 29500;
    std::vector<std::string> command;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--nproc", a->nproc, "number of ranks")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--master-port", a->port, "TCP port of rank 0's store")->capture_default_str();
  sub->add_option("command", a->command, "the subcommand and its arguments (after --)")->required();
  return {sub, [a] {
            const std::string exe = fs::executable_path();
            std::vector<pid_t> children;
            for (int r = 0; r < a->nproc; ++r) {
              const pid_t pid = ::fork();
              MCD_CHECK(pid >= 0, "launch: fork failed");
              if (pid == 0) {
                ::setenv("RANK", std::to_string(r).c_str(), 1);
                ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
                ::setenv("WORLD_SIZE", std::to_string(a->nproc).c_str(), 1);
                ::setenv("MASTER_ADDR", "127.0.0.1", 1);
                ::setenv("MASTER_PORT", std::to_string(a->port).c_str(), 1);
                std::vector<char*> argv{const_cast<char*>(exe.c_str())};
                for (auto& s : a->command) argv.push_back(const_cast<char*>(s.c_str()));
                argv.push_back(nullptr);
                ::execv(exe.c_str(), argv.data());
                std::perror("launch: execv");
                ::_exit(127);
              }
              children.push_back(pid);
            }
            // Wait for all; when one fails, stop the others so nothing hangs in a collective.
            int failed = 0;
            for (size_t remaining = children.size(); remaining > 0; --remaining) {
              int status = 0;
              const pid_t pid = ::wait(&status);
              const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
              if (!ok && !failed) {
                failed = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                std::cerr << "launch: rank with pid " << pid << " failed (" << failed << "); stopping the others\n";
                for (pid_t c : children)
                  if (c != pid) ::kill(c, SIGTERM);
              }
            }
            MCD_CHECK(!failed, "launch: a rank failed with status ", failed);
          }};
}

}  // namespace mcd::cli
