// The experiment's stages as a small dependency graph (issue: `mamba-codesign run`). Torch-free:
// a stage is a name, the stages it needs, the settings it depends on (JSON) and an action; what
// the action does (pre-train, CSP, prune, fine-tune, profile, report) is bound by the caller.
//
// Keys. A stage's key is hash(name, settings, the keys of its dependencies), so changing one
// setting changes the key of that stage and of everything downstream of it, and nothing else.
//
// The run directory. Stage S works in <run>/stages/<S>/ and, when its action returns, writes
// <run>/stages/<S>/stage.json = {format, name, key, status: "done", outputs, seconds} (atomically).
// run() then:
//   - skips S when stage.json says done with the same key (a second invocation does no work);
//   - re-runs S in a fresh folder when the key differs (a setting changed): the old folder is
//     removed first, as its contents belong to other settings;
//   - calls the action again in the same folder when S started with this key but did not finish
//     (stage.json says running): the action resumes from what it left there (checkpoints);
//   - when an action throws, records status "failed" with the message, skips every stage that
//     needs S (status "blocked", naming S) and goes on with the others; run() returns the count.
// Concurrency: with jobs > 1, independent stages run at the same time (report.stages is then in
// order of completion), except an `exclusive` stage: once it is ready no other stage starts, and
// it starts when the running ones have finished, so what it measures is not disturbed.
// Progress: one line per stage start and end with its index, elapsed time, the stage's own
// expected seconds and the remaining total (from the stages' estimates, corrected by the ratio of
// measured to expected time of the stages finished so far).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mcd::pipeline {

struct StageContext {
  std::string dir;    // the stage's own folder (exists)
  bool resuming = false;  // the folder holds an unfinished attempt with the same key
  // The outputs (stage.json "outputs") of each dependency, by name.
  std::map<std::string, nlohmann::json> inputs;
};

struct Stage {
  std::string name;                  // unique; also the folder name (letters, digits, - _ . /)
  std::vector<std::string> needs;    // names of stages that must be done first
  nlohmann::json settings;           // everything the result depends on (besides `needs`)
  double expected_seconds = 1;       // the estimate behind the ETA
  // Does the work in ctx.dir and returns its outputs (paths, scores…), stored in stage.json.
  std::function<nlohmann::json(const StageContext&)> action;
  bool exclusive = false;  // with jobs > 1, runs alone (timing measurements); last, after action
};

enum class StageStatus { kDone, kSkipped, kFailed, kBlocked };
const char* stage_status_name(StageStatus s);

struct StageReport {
  std::string name, key, message;  // message: the error, or which failed stage blocked it
  StageStatus status = StageStatus::kDone;
  double seconds = 0;              // time spent in this invocation
  nlohmann::json outputs;
};

struct RunReport {
  std::vector<StageReport> stages;  // in execution order
  int64_t failed() const;           // failed + blocked
  int64_t executed() const;         // actions called
};

class StageGraph {
 public:
  // Throws mcd::Error for a duplicate or badly formed name and for a need that is not (yet) added:
  // stages are added after what they need, which also rules out cycles.
  void add(Stage stage);
  const std::vector<Stage>& stages() const { return stages_; }
  // The keys of every stage (hex64), computed from settings and dependencies.
  std::map<std::string, std::string> keys() const;
  // Runs what is not done under run_dir (see the header comment). `log` gets the progress lines
  // (null: stderr). Up to `jobs` actions run at once, each in its own thread (stages whose needs
  // are finished start in list order); with 1, stages run in list order in the calling thread.
  RunReport run(const std::string& run_dir, const std::function<void(const std::string&)>& log = nullptr,
                int jobs = 1) const;

 private:
  std::vector<Stage> stages_;
  std::map<std::string, size_t> index_;
};

// stage.json of a stage under run_dir, or null when it has none.
nlohmann::json read_stage_record(const std::string& run_dir, const std::string& name);

}  // namespace mcd::pipeline
