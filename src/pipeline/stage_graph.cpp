// The experiment's stage graph (see stage_graph.h).
#include "pipeline/stage_graph.h"

#include <chrono>
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>
#include <mutex>

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
                          int64_t jobs) const {
  MCD_CHECK(jobs >= 1, "run: jobs must be at least 1, got ", jobs);
  std::mutex mu;  // guards everything below that the stage threads touch, and the log
  auto log = [&](const std::string& line) {  // called with mu held
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

  enum class State { kWaiting, kRunning, kFinished };
  std::vector<State> state(stages_.size(), State::kWaiting);
  std::condition_variable finished_one;
  int64_t running = 0;
  std::vector<std::thread> threads;

  // Runs stage i's action on its own thread; the record, outputs and report under mu.
  auto launch = [&](size_t i, StageContext ctx, StageReport sr, int64_t pos) {
    threads.emplace_back([&, i, ctx = std::move(ctx), sr = std::move(sr), pos]() mutable {
      const Stage& s = stages_[i];
      const std::string tag = "[stage " + std::to_string(pos) + "/" + std::to_string(to_run) + "] " + s.name;
      const auto t0 = std::chrono::steady_clock::now();
      nlohmann::json out;
      std::string error;
      try {
        out = s.action(ctx);
      } catch (const std::exception& e) {
        error = e.what();
        if (error.empty()) error = "unknown error";
      }
      sr.seconds = seconds_since(t0);
      std::lock_guard<std::mutex> lock(mu);
      try {
        if (error.empty()) {
          sr.status = StageStatus::kDone;
          sr.outputs = out;
          write_record(run_dir, s.name, {{"format", kRecordFormat}, {"name", s.name}, {"key", sr.key}, {"status", "done"},
                                         {"settings", s.settings}, {"outputs", sr.outputs}, {"seconds", sr.seconds}});
          outputs[s.name] = sr.outputs;
          log(tag + ": done in " + duration(sr.seconds));
        }
      } catch (const std::exception& e) {  // the record could not be written: the stage is not done
        error = std::string("its record could not be written: ") + e.what();
      }
      if (!error.empty()) {
        sr.status = StageStatus::kFailed;
        sr.message = error;
        broken[s.name] = s.name;
        try {
          write_record(run_dir, s.name, {{"format", kRecordFormat}, {"name", s.name}, {"key", sr.key}, {"status", "failed"},
                                         {"settings", s.settings}, {"error", sr.message}, {"seconds", sr.seconds}});
        } catch (const std::exception&) {
        }
        log(tag + ": FAILED: " + sr.message);
      }
      measured += sr.seconds;
      measured_expected += s.expected_seconds;
      pending_expected -= s.expected_seconds;
      report.stages.push_back(std::move(sr));
      state[i] = State::kFinished;
      --running;
      finished_one.notify_all();
    });
  };

  std::unique_lock<std::mutex> lock(mu);
  try {
    for (;;) {
      // One pass in the stages' order: settle every waiting stage whose needs are finished (blocked,
      // skipped, or started) while fewer than `jobs` run. The pass stops at the first ready stage
      // that finds no free lane, so with jobs = 1 stages run and are reported exactly in order.
      bool all_finished = true, full = false, progress = false;
      for (size_t i = 0; i < stages_.size() && !full; ++i) {
        if (state[i] != State::kFinished) all_finished = false;
        if (state[i] != State::kWaiting) continue;
        const Stage& s = stages_[i];
        bool ready = true;
        for (const auto& need : s.needs) ready = ready && state[index_.at(need)] == State::kFinished;
        if (!ready) continue;
        if (running >= jobs) {  // settled in a later pass, keeping the stages' order when jobs = 1
          full = true;
          break;
        }
        StageReport sr;
        sr.name = s.name;
        sr.key = keys.at(s.name);
        for (const auto& need : s.needs)
          if (broken.count(need)) {
            sr.status = StageStatus::kBlocked;
            sr.message = "not run: it needs '" + need + "', which " +
                         (broken.at(need) == need ? std::string("failed") : "was blocked by '" + broken.at(need) + "'");
            broken[s.name] = broken.at(need);
          }
        if (sr.status == StageStatus::kBlocked) {
          log("[stage] " + s.name + ": " + sr.message);
          report.stages.push_back(sr);
          state[i] = State::kFinished;
          progress = true;
          continue;
        }
        const nlohmann::json record = read_stage_record(run_dir, s.name);
        if (record.is_object() && record.value("status", "") == "done" && record.value("key", "") == sr.key) {
          sr.status = StageStatus::kSkipped;
          sr.outputs = record.value("outputs", nlohmann::json(nullptr));
          outputs[s.name] = sr.outputs;
          report.stages.push_back(sr);
          state[i] = State::kFinished;
          progress = true;
          continue;
        }
        const std::string dir = fs::join(fs::join(run_dir, "stages"), s.name);
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
        write_record(run_dir, s.name, {{"format", kRecordFormat}, {"name", s.name}, {"key", sr.key},
                                       {"status", "running"}, {"settings", s.settings}});
        ++position;
        // The remaining work spreads over up to `jobs` stages at a time.
        const double factor = measured_expected > 0 ? measured / measured_expected : 1.0;
        const double lanes = double(std::max<int64_t>(1, std::min<int64_t>(jobs, to_run - position + 1)));
        log("[stage " + std::to_string(position) + "/" + std::to_string(to_run) + "] " + s.name +
            (ctx.resuming ? " (resuming)" : "") + ": expected " + duration(s.expected_seconds * factor) + ", run " +
            duration(seconds_since(start)) + " elapsed, about " + duration(pending_expected * factor / lanes) + " left");
        state[i] = State::kRunning;
        ++running;
        progress = true;
        launch(i, std::move(ctx), std::move(sr), position);
      }
      if (all_finished) break;
      if (progress) continue;  // a pass that settled something may have readied later stages
      // Stages are added after their needs, so with nothing running the first waiting stage is ready.
      MCD_CHECK(running > 0, "run: no stage can start (internal error)");
      finished_one.wait(lock);
    }
  } catch (...) {
    // A record or folder that cannot be read or written: let the running stages finish, then report.
    finished_one.wait(lock, [&] { return running == 0; });
    lock.unlock();
    for (auto& t : threads) t.join();
    throw;
  }
  lock.unlock();
  for (auto& t : threads) t.join();
  return report;
}

}  // namespace mcd::pipeline
