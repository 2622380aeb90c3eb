// The experiment's stage graph (see stage_graph.h).
#include "pipeline/stage_graph.h"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cstdio>
#include <iostream>
#include <set>
#include <sstream>

#include "data/hash64.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/json_file.h"

namespace mcd::pipeline {
namespace {

constexpr const char* kRecordFormat = "mcd-stage";

bool valid_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.back() == '/' || name.find("..") != std::string::npos) return false;
  for (const char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/')) return false;
  return true;
}

std::string record_path(const std::string& run_dir, const std::string& name) {
  return fs::join(fs::join(fs::join(run_dir, "stages"), name), "stage.json");
}

void write_record(const std::string& run_dir, const std::string& name, const nlohmann::json& record) {
  write_text_atomic(record_path(run_dir, name), record.dump(2) + "\n");
}

std::string duration(double seconds) {
  const int64_t s = int64_t(std::llround(std::max(0.0, seconds)));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%llds", (long long)s);
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

const char* stage_status_name(StageStatus s) {
  switch (s) {
    case StageStatus::kDone: return "done";
    case StageStatus::kSkipped: return "skipped";
    case StageStatus::kFailed: return "failed";
    case StageStatus::kBlocked: return "blocked";
  }
  return "?";
}

int64_t RunReport::failed() const {
  int64_t n = 0;
  for (const auto& s : stages) n += s.status == StageStatus::kFailed || s.status == StageStatus::kBlocked;
  return n;
}

int64_t RunReport::executed() const {
  int64_t n = 0;
  for (const auto& s : stages) n += s.status == StageStatus::kDone || s.status == StageStatus::kFailed;
  return n;
}

void StageGraph::add(Stage stage) {
  MCD_CHECK(valid_name(stage.name), "stage name '", stage.name, "': use letters, digits, - _ . and inner /");
  MCD_CHECK(!index_.count(stage.name), "stage '", stage.name, "' is added twice");
  for (const auto& need : stage.needs)
    MCD_CHECK(index_.count(need), "stage '", stage.name, "' needs '", need, "', which is not added before it");
  MCD_CHECK(stage.action != nullptr, "stage '", stage.name, "' has no action");
  index_[stage.name] = stages_.size();
  stages_.push_back(std::move(stage));
}

std::map<std::string, std::string> StageGraph::keys() const {
  std::map<std::string, std::string> keys;
  for (const auto& s : stages_) {
    nlohmann::json basis = {{"name", s.name}, {"settings", s.settings}, {"needs", nlohmann::json::object()}};
    for (const auto& need : s.needs) basis["needs"][need] = keys.at(need);
    const std::string text = basis.dump();  // nlohmann's objects are sorted: a canonical form
    keys[s.name] = data::hex64(data::hash_bytes(text.data(), text.size(), 0x6d63642d7374616bull));
  }
  return keys;
}

nlohmann::json read_stage_record(const std::string& run_dir, const std::string& name) {
  const std::string path = record_path(run_dir, name);
  if (!fs::is_regular_file(path)) return nullptr;
  nlohmann::json j;
  try {
    j = read_json_file(path);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + "; delete the file to run the stage again");
  }
  MCD_CHECK(j.is_object() && j.value("format", "") == kRecordFormat, path, ": not a stage record");
  return j;
}

RunReport StageGraph::run(const std::string& run_dir, const std::function<void(const std::string&)>& log_fn,
                          int jobs) const {
  MCD_CHECK(jobs >= 1, "run: jobs must be at least 1, got ", jobs);
  auto log = [&](const std::string& line) {
    if (log_fn) {
      log_fn(line);
    } else {
      std::cerr << line << "\n";
    }
  };
  const auto keys = this->keys();
  fs::make_dirs(fs::join(run_dir, "stages"));
  RunReport report;
  std::map<std::string, nlohmann::json> outputs;
  std::map<std::string, std::string> broken;  // stage -> the failed stage behind it

  // What is left to do, for the ETA: expected seconds of the stages not done with their key.
  std::set<std::string> pending;
  double pending_expected = 0;
  for (const auto& s : stages_) {
    const nlohmann::json r = read_stage_record(run_dir, s.name);
    if (!(r.is_object() && r.value("status", "") == "done" && r.value("key", "") == keys.at(s.name))) {
      pending.insert(s.name);
      pending_expected += s.expected_seconds;
    }
  }
  double measured = 0, measured_expected = 0;  // of the stages run so far: the speed correction
  const auto start = std::chrono::steady_clock::now();
  int64_t position = 0;
  const int64_t to_run = int64_t(pending.size());

  // Stages start in list order as soon as their needs are finished and fewer than `jobs` actions
  // run; with jobs = 1 that is exactly the list order, one at a time, in this thread. Actions run
  // in worker threads otherwise (each of ours waits on a child process); records, outputs and log
  // lines are handled here only.
  enum State { kWaiting, kRunning, kFinished };
  std::vector<State> state(stages_.size(), kWaiting);
  std::vector<int64_t> positions(stages_.size(), 0);
  struct Result {
    size_t index;
    StageReport sr;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Result> finished;
  std::vector<std::thread> workers;
  int running = 0;
  size_t remaining = stages_.size();

  auto execute = [this](size_t i, StageContext ctx, StageReport sr) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      sr.outputs = stages_[i].action(ctx);
      sr.status = StageStatus::kDone;
    } catch (const std::exception& e) {
      sr.status = StageStatus::kFailed;
      sr.message = e.what();
    }
    sr.seconds = seconds_since(t0);
    return Result{i, std::move(sr)};
  };
  auto finish = [&](Result r) {
    const Stage& s = stages_[r.index];
    StageReport& sr = r.sr;
    const std::string tag = "[stage " + std::to_string(positions[r.index]) + "/" + std::to_string(to_run) + "] ";
    if (sr.status == StageStatus::kDone) {
      outputs[s.name] = sr.outputs;
      write_record(run_dir, s.name, {{"format", kRecordFormat}, {"name", s.name}, {"key", sr.key}, {"status", "done"},
                                     {"settings", s.settings}, {"outputs", sr.outputs}, {"seconds", sr.seconds}});
      log(tag + s.name + ": done in " + duration(sr.seconds));
    } else {
      broken[s.name] = s.name;
      write_record(run_dir, s.name, {{"format", kRecordFormat}, {"name", s.name}, {"key", sr.key}, {"status", "failed"},
                                     {"settings", s.settings}, {"error", sr.message}, {"seconds", sr.seconds}});
      log(tag + s.name + ": FAILED: " + sr.message);
    }
    measured += sr.seconds;
    measured_expected += s.expected_seconds;
    pending_expected -= s.expected_seconds;
    state[r.index] = kFinished;
    --remaining;
    report.stages.push_back(std::move(sr));
  };

  // Declared last, so it joins the workers before anything they use goes away (also on an error).
  struct Joiner {
    std::vector<std::thread>& w;
    ~Joiner() {
      for (auto& t : w)
        if (t.joinable()) t.join();
    }
  } joiner{workers};
  bool exclusive_running = false;
  while (remaining > 0) {
    bool hold = exclusive_running;  // an exclusive stage runs or waits for the others: start nothing
    for (size_t i = 0; i < stages_.size(); ++i) {
      const Stage& s = stages_[i];
      if (state[i] != kWaiting) continue;
      bool ready = true;
      for (const auto& need : s.needs) ready = ready && state[index_.at(need)] == kFinished;
      if (!ready) continue;
      StageReport sr;
      sr.name = s.name;
      sr.key = keys.at(s.name);
      const std::string dir = fs::join(fs::join(run_dir, "stages"), s.name);
      for (const auto& need : s.needs)
        if (broken.count(need)) {
          sr.status = StageStatus::kBlocked;
          sr.message = "not run: it needs '" + need + "', which " +
                       (broken.at(need) == need ? std::string("failed") : "was blocked by '" + broken.at(need) + "'");
          broken[s.name] = broken.at(need);
        }
      if (sr.status == StageStatus::kBlocked) {
        log("[stage] " + s.name + ": " + sr.message);
        state[i] = kFinished;
        --remaining;
        report.stages.push_back(sr);
        continue;
      }
      const nlohmann::json record = read_stage_record(run_dir, s.name);
      if (record.is_object() && record.value("status", "") == "done" && record.value("key", "") == sr.key) {
        sr.status = StageStatus::kSkipped;
        sr.outputs = record.value("outputs", nlohmann::json(nullptr));
        outputs[s.name] = sr.outputs;
        state[i] = kFinished;
        --remaining;
        report.stages.push_back(sr);
        continue;
      }
      if (s.exclusive && running > 0) hold = true;
      if (hold || running >= jobs) continue;  // later: skips and blocks above still go on
      StageContext ctx;
      ctx.dir = dir;
      ctx.resuming = record.is_object() && record.value("key", "") == sr.key;  // started, not finished
      if (record.is_object() && !ctx.resuming) {
        log("[stage] " + s.name + ": settings changed (key " + record.value("key", "?") + " -> " + sr.key +
            "): its folder is cleared");
        fs::remove_tree(dir);
      }
      fs::make_dirs(dir);
      for (const auto& need : s.needs) ctx.inputs[need] = outputs.at(need);
      write_record(run_dir, s.name, {{"format", kRecordFormat}, {"name", s.name}, {"key", sr.key}, {"status", "running"},
                                     {"settings", s.settings}});
      positions[i] = ++position;
      const double factor = measured_expected > 0 ? measured / measured_expected : 1.0;
      log("[stage " + std::to_string(position) + "/" + std::to_string(to_run) + "] " + s.name +
          (ctx.resuming ? " (resuming)" : "") + ": expected " + duration(s.expected_seconds * factor) + ", run " +
          duration(seconds_since(start)) + " elapsed, about " + duration(pending_expected * factor / jobs) + " left");
      state[i] = kRunning;
      ++running;
      if (s.exclusive) hold = exclusive_running = true;
      if (jobs == 1) {
        finished.push_back(execute(i, std::move(ctx), std::move(sr)));
      } else {
        workers.emplace_back([&, i, ctx, sr]() mutable {
          Result r = execute(i, std::move(ctx), std::move(sr));
          std::lock_guard<std::mutex> lock(mu);
          finished.push_back(std::move(r));
          cv.notify_one();
        });
      }
      if (jobs == 1) break;  // finish it before looking further, as a sequential run does
    }
    if (remaining == 0) break;
    std::deque<Result> done;
    {
      std::unique_lock<std::mutex> lock(mu);
      MCD_CHECK(running > 0 || !finished.empty(), "run: no stage can start (internal error)");
      cv.wait(lock, [&] { return !finished.empty(); });
      done.swap(finished);
    }
    for (auto& r : done) {
      --running;
      if (stages_[r.index].exclusive) exclusive_running = false;
      finish(std::move(r));
    }
  }
  return report;
}

}  // namespace mcd::pipeline
