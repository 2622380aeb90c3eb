// Training subcommands: `pretrain` (one process, or one rank of a data-parallel job started by
// torchrun-style environment variables) and `launch` (starts N local ranks of any subcommand
// with those variables set, like torchrun --nproc-per-node).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <tuple>

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

namespace {

// A free TCP port for rank 0's store, chosen by binding port 0. The socket stays bound (with
// SO_REUSEADDR, never listening) while the ranks run: the kernel then hands the port to no other
// bind(0) or outgoing connection, and the store, which binds with SO_REUSEADDR too, can still
// take it. Returns the port and the socket to close afterwards.
std::pair<int, int> reserve_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  MCD_CHECK(fd >= 0, "launch --master-port 0: socket() failed: ", std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    fail(cat("launch --master-port 0: cannot find a free port: ", std::strerror(err)));
  }
  return {int(ntohs(addr.sin_port)), fd};
}

}  // namespace

Command add_launch(CLI::App& app, const GlobalOptions& globals) {
  auto* sub = app.add_subcommand("launch", "run N local ranks of a subcommand (RANK, WORLD_SIZE, LOCAL_RANK, "
                                           "MASTER_ADDR, MASTER_PORT set), e.g. launch --nproc 2 -- pretrain --config F; "
                                           "the global options (--threads, --ops) given before `launch` apply to every rank");
  struct Args {
    int nproc = 2;
    int port = 29500;
    bool dry_run = false;
    std::vector<std::string> command;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--nproc", a->nproc, "number of ranks")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--master-port", a->port, "TCP port of rank 0's store, 1..65535; 0 = a free port chosen here")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub->add_flag("--dry-run", a->dry_run, "print each rank's environment and command line instead of running it");
  sub->add_option("command", a->command, "the subcommand and its arguments (after --)")->required();
  return {sub, [a, &globals] {
            const std::string exe = fs::executable_path();
            int port = a->port, reserved_fd = -1;
            if (port == 0) std::tie(port, reserved_fd) = reserve_free_port();
            // Every rank runs `exe <global options> <command>` (with --threads 0, cores / nproc threads each).
            std::vector<std::string> args{exe};
            for (auto& s : globals.to_args_for(a->nproc)) args.push_back(s);
            for (auto& s : a->command) args.push_back(s);
            auto env_of = [&](int r) {
              return std::vector<std::pair<std::string, std::string>>{
                  {"RANK", std::to_string(r)},           {"LOCAL_RANK", std::to_string(r)},
                  {"WORLD_SIZE", std::to_string(a->nproc)}, {"MASTER_ADDR", "127.0.0.1"},
                  {"MASTER_PORT", std::to_string(port)}};
            };
            if (a->dry_run) {
              for (int r = 0; r < a->nproc; ++r) {
                std::string line;
                for (const auto& [k, v] : env_of(r)) line += k + "=" + v + " ";
                for (size_t i = 0; i < args.size(); ++i) line += (i ? " " : "") + args[i];
                std::cout << line << "\n";
              }
              std::cout << std::flush;
              if (reserved_fd >= 0) ::close(reserved_fd);
              return;
            }
            std::vector<char*> argv;
            for (auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
            argv.push_back(nullptr);
            std::vector<pid_t> children;
            for (int r = 0; r < a->nproc; ++r) {
              const pid_t pid = ::fork();
              MCD_CHECK(pid >= 0, "launch: fork failed");
              if (pid == 0) {
                for (const auto& [k, v] : env_of(r)) ::setenv(k.c_str(), v.c_str(), 1);
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
            if (reserved_fd >= 0) ::close(reserved_fd);
            MCD_CHECK(!failed, "launch: a rank failed with status ", failed);
          }};
}

}  // namespace mcd::cli
