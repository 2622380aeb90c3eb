// The pipeline's stage graph: order, keys, skipping, re-running what a setting change touches,
// resuming an interrupted stage, and failures that stop only their dependants.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <string>
#include <vector>

#include "pipeline/stage_graph.h"
#include "util/error.h"
#include "util/fs.h"

namespace mcd::pipeline {
namespace {

struct TempRun {
  std::string dir = fs::make_temp_dir("mcd_pipeline");
  ~TempRun() { fs::remove_tree(dir); }
};

// a → b → d, a → c; every action counts its calls and passes on what it got.
struct Diamond {
  std::map<std::string, int> calls;
  std::map<std::string, nlohmann::json> settings = {{"a", {{"lr", 1}}}, {"b", {{"x", 1}}}, {"c", {{"y", 1}}}, {"d", {}}};
  std::string fail;  // a stage whose action throws
  std::vector<std::string> order;

  StageGraph graph() {
    StageGraph g;
    const std::vector<std::pair<std::string, std::vector<std::string>>> shape = {
        {"a", {}}, {"b", {"a"}}, {"c", {"a"}}, {"d", {"b"}}};
    for (const auto& [name, needs] : shape) {
      Stage s;
      s.name = name;
      s.needs = needs;
      s.settings = settings[name];
      s.action = [this, name = name](const StageContext& ctx) {
        ++calls[name];
        order.push_back(name);
        if (fail == name) throw Error("stage " + name + " broke");
        nlohmann::json out = {{"name", name}, {"dir", ctx.dir}};
        for (const auto& [k, v] : ctx.inputs) out["from"][k] = v.at("name");
        return out;
      };
      g.add(s);
    }
    return g;
  }
};

TEST(StageGraph, RunsInOrderPassesOutputsAndASecondRunDoesNoWork) {
  TempRun run;
  Diamond d;
  std::vector<std::string> lines;
  const RunReport r1 = d.graph().run(run.dir, [&](const std::string& l) { lines.push_back(l); });
  EXPECT_EQ(d.order, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(r1.executed(), 4);
  EXPECT_EQ(r1.failed(), 0);
  EXPECT_EQ(r1.stages[3].outputs["from"]["b"], "b");
  EXPECT_TRUE(fs::is_directory(r1.stages[3].outputs["dir"].get<std::string>()));
  EXPECT_EQ(read_stage_record(run.dir, "d")["status"], "done");
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("[stage 1/4] a"), std::string::npos) << lines.front();

  const RunReport r2 = d.graph().run(run.dir, [](const std::string&) {});
  EXPECT_EQ(r2.executed(), 0);
  for (const auto& s : r2.stages) EXPECT_EQ(s.status, StageStatus::kSkipped) << s.name;
  // Skipped stages still hand their recorded outputs on.
  EXPECT_EQ(r2.stages[3].outputs["from"]["b"], "b");
  EXPECT_EQ(d.calls["a"], 1);
}

TEST(StageGraph, ChangingOneSettingRerunsThatStageAndItsDependantsOnly) {
  TempRun run;
  Diamond d;
  const auto keys1 = d.graph().keys();
  d.graph().run(run.dir, [](const std::string&) {});
  // A file the old b left behind: b's folder is cleared when its settings change.
  std::ofstream(fs::join(run.dir, "stages/b/old.txt")) << "stale";
  d.settings["b"]["x"] = 2;
  const auto keys2 = d.graph().keys();
  EXPECT_EQ(keys1.at("a"), keys2.at("a"));
  EXPECT_EQ(keys1.at("c"), keys2.at("c"));
  EXPECT_NE(keys1.at("b"), keys2.at("b"));
  EXPECT_NE(keys1.at("d"), keys2.at("d"));  // through its need
  d.calls.clear();
  d.graph().run(run.dir, [](const std::string&) {});
  EXPECT_EQ(d.calls, (std::map<std::string, int>{{"b", 1}, {"d", 1}}));
  EXPECT_FALSE(fs::exists(fs::join(run.dir, "stages/b/old.txt")));
}

TEST(StageGraph, AFailedStageStopsItsDependantsAndTheOthersGoOn) {
  TempRun run;
  Diamond d;
  d.fail = "b";
  const RunReport r = d.graph().run(run.dir, [](const std::string&) {});
  EXPECT_EQ(d.calls["c"], 1);  // independent of b: still runs
  EXPECT_EQ(d.calls.count("d"), 0u);
  EXPECT_EQ(r.failed(), 2);
  EXPECT_EQ(r.stages[1].status, StageStatus::kFailed);
  EXPECT_NE(r.stages[1].message.find("stage b broke"), std::string::npos);
  EXPECT_EQ(r.stages[3].status, StageStatus::kBlocked);
  EXPECT_NE(r.stages[3].message.find("'b'"), std::string::npos) << r.stages[3].message;
  const nlohmann::json rec = read_stage_record(run.dir, "b");
  EXPECT_EQ(rec["status"], "failed");
  EXPECT_NE(rec["error"].get<std::string>().find("broke"), std::string::npos);
  // Fixed: the next invocation runs b (resuming in its folder) and d, and nothing that was done.
  d.fail.clear();
  d.calls.clear();
  const RunReport again = d.graph().run(run.dir, [](const std::string&) {});
  EXPECT_EQ(again.failed(), 0);
  EXPECT_EQ(d.calls, (std::map<std::string, int>{{"b", 1}, {"d", 1}}));
}

TEST(StageGraph, AnInterruptedStageResumesInItsFolder) {
  TempRun run;
  int attempts = 0;
  bool resumed_with_partial = false;
  auto graph = [&] {
    StageGraph g;
    Stage s;
    s.name = "finetune/sst2/seed1";
    s.settings = {{"seed", 1}};
    s.action = [&](const StageContext& ctx) {
      ++attempts;
      const std::string partial = fs::join(ctx.dir, "checkpoint");
      if (attempts == 1) {
        std::ofstream(partial) << "epoch 1";
        // A process killed here leaves the stage "running"; model it by not returning.
        throw std::runtime_error("killed");
      }
      resumed_with_partial = ctx.resuming && fs::exists(partial);
      return nlohmann::json{{"score", 90}};
    };
    g.add(s);
    return g;
  };
  graph().run(run.dir, [](const std::string&) {});
  // A real kill leaves the record of the start, not of a failure.
  nlohmann::json rec = read_stage_record(run.dir, "finetune/sst2/seed1");
  rec["status"] = "running";
  rec.erase("error");
  std::ofstream(fs::join(run.dir, "stages/finetune/sst2/seed1/stage.json")) << rec.dump();
  const RunReport r = graph().run(run.dir, [](const std::string&) {});
  EXPECT_EQ(r.failed(), 0);
  EXPECT_TRUE(resumed_with_partial);
  EXPECT_EQ(read_stage_record(run.dir, "finetune/sst2/seed1")["outputs"]["score"], 90);
}

TEST(StageGraph, MalformedGraphsAndRecordsAreClearErrors) {
  auto stage = [](const std::string& name, std::vector<std::string> needs = {}) {
    Stage s;
    s.name = name;
    s.needs = std::move(needs);
    s.action = [](const StageContext&) { return nlohmann::json(); };
    return s;
  };
  StageGraph g;
  g.add(stage("a"));
  auto message = [&](const Stage& s) {
    try {
      g.add(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(stage("a")).find("added twice"), std::string::npos);
  EXPECT_NE(message(stage("b", {"z"})).find("needs 'z'"), std::string::npos);
  EXPECT_NE(message(stage("../x")).find("stage name"), std::string::npos);
  EXPECT_NE(message(stage("a b")).find("stage name"), std::string::npos);
  TempRun run;
  fs::make_dirs(fs::join(run.dir, "stages/a"));
  std::ofstream(fs::join(run.dir, "stages/a/stage.json")) << "{ truncated";
  try {
    g.run(run.dir, [](const std::string&) {});
    FAIL() << "a corrupt stage record was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stages/a/stage.json"), std::string::npos) << e.what();
  }
}

TEST(StageGraph, RunsUpToJobsStagesAtOnceEachAfterItsNeeds) {
  // root → w1…w4 (independent) → sink, jobs = 2. Each w waits until a second stage is in flight
  // (or all four have started), so the run completes only if two really run at once; a third at
  // once would break the limit. With a failing w3, only the sink is blocked and the other ws finish.
  for (const bool fail_w3 : {false, true}) {
    std::mutex m;
    std::condition_variable cv;
    int in_flight = 0, max_in_flight = 0, started = 0;
    std::vector<std::string> events;
    StageGraph g;
    auto add = [&](const std::string& name, std::vector<std::string> needs, bool worker) {
      Stage s;
      s.name = name;
      s.needs = std::move(needs);
      s.action = [&, name, worker](const StageContext&) {
        std::unique_lock<std::mutex> lock(m);
        events.push_back("start " + name);
        max_in_flight = std::max(max_in_flight, ++in_flight);
        started += worker;
        cv.notify_all();
        if (worker) {
          const bool paired = cv.wait_for(lock, std::chrono::seconds(20), [&] { return in_flight >= 2 || started == 4; });
          EXPECT_TRUE(paired) << name << " never ran beside another stage";
        }
        --in_flight;
        events.push_back("end " + name);
        cv.notify_all();
        if (fail_w3 && name == "w3") throw Error("w3 broke");
        return nlohmann::json(name);
      };
      g.add(s);
    };
    add("root", {}, false);
    for (const char* w : {"w1", "w2", "w3", "w4"}) add(w, {"root"}, true);
    add("sink", {"w1", "w2", "w3", "w4"}, false);
    TempRun run;
    const RunReport r = g.run(run.dir, [](const std::string&) {}, 2);
    EXPECT_EQ(max_in_flight, 2);
    EXPECT_EQ(events.front(), "start root");
    EXPECT_EQ(events[1], "end root");
    if (!fail_w3) {
      EXPECT_EQ(r.executed(), 6);
      EXPECT_EQ(r.failed(), 0);
      EXPECT_EQ(events[events.size() - 2], "start sink");  // after every w ended
      EXPECT_EQ(read_stage_record(run.dir, "sink").value("status", ""), "done");
    } else {
      EXPECT_EQ(r.executed(), 5);  // root, w1…w4
      EXPECT_EQ(r.failed(), 2);    // w3 and the sink it blocks
      EXPECT_EQ(std::count(events.begin(), events.end(), std::string("end w4")), 1);
      EXPECT_EQ(read_stage_record(run.dir, "w3").value("status", ""), "failed");
      EXPECT_TRUE(read_stage_record(run.dir, "sink").is_null());
    }
    // A second invocation with more lanes does nothing new when everything was done.
    if (!fail_w3) EXPECT_EQ(g.run(run.dir, [](const std::string&) {}, 4).executed(), 0);
  }
}

// jobs = 2: stages whose needs are done run at the same time (here b and c, each of which waits
// until the other has started), dependants still wait for all their needs, a second run does no
// work, and a failure blocks only the stages that need it.
TEST(StageGraph, IndependentStagesRunConcurrentlyWithJobs) {
  std::atomic<int> started{0};
  std::atomic<bool> overlapped{true};
  std::mutex mu;
  std::set<std::string> finished;
  std::string fail;
  auto graph = [&] {
    StageGraph g;
    const std::vector<std::pair<std::string, std::vector<std::string>>> shape = {
        {"a", {}}, {"b", {"a"}}, {"c", {"a"}}, {"d", {"b", "c"}}, {"e", {"c"}}};
    for (const auto& [name, needs] : shape) {
      Stage s;
      s.name = name;
      s.needs = needs;
      s.settings = {{"v", 1}};
      s.action = [&, name = name, needs = needs](const StageContext&) {
        {
          std::lock_guard<std::mutex> lock(mu);
          for (const auto& n : needs) EXPECT_TRUE(finished.count(n)) << name << " started before " << n;
        }
        if (name == "b" || name == "c") {
          ++started;
          // Up to 10 s for the other to start: far above a thread's start-up time.
          const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
          while (started.load() < 2 && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          if (started.load() < 2) overlapped = false;
        }
        if (name == fail) throw Error("stage " + name + " broke");
        std::lock_guard<std::mutex> lock(mu);
        finished.insert(name);
        return nlohmann::json{{"name", name}};
      };
      g.add(s);
    }
    return g;
  };
  const auto quiet = [](const std::string&) {};
  TempRun run;
  const RunReport r = graph().run(run.dir, quiet, 2);
  EXPECT_TRUE(overlapped.load());
  EXPECT_EQ(r.executed(), 5);
  EXPECT_EQ(r.failed(), 0);
  EXPECT_EQ(graph().run(run.dir, quiet, 2).executed(), 0);

  TempRun run2;
  started = 0;
  finished.clear();
  fail = "c";
  const RunReport r2 = graph().run(run2.dir, quiet, 2);
  std::map<std::string, StageStatus> status;
  for (const auto& st : r2.stages) status[st.name] = st.status;
  EXPECT_EQ(status["b"], StageStatus::kDone);
  EXPECT_EQ(status["c"], StageStatus::kFailed);
  EXPECT_EQ(status["d"], StageStatus::kBlocked);
  EXPECT_EQ(status["e"], StageStatus::kBlocked);
  EXPECT_EQ(r2.failed(), 3);
  EXPECT_EQ(read_stage_record(run2.dir, "b").value("status", ""), "done");
}

// An exclusive stage (the profile) runs alone under jobs > 1: it waits for the running stage, and
// nothing starts while it runs.
TEST(StageGraph, AnExclusiveStageRunsAlone) {
  std::atomic<int> active{0};
  std::atomic<bool> alone{true};
  std::vector<std::string> order;
  std::mutex mu;
  StageGraph g;
  for (const auto& [name, exclusive] : std::vector<std::pair<std::string, bool>>{
           {"a", false}, {"b", false}, {"x", true}, {"c", false}}) {
    Stage s;
    s.name = name;
    if (name != "a") s.needs = {"a"};
    s.exclusive = exclusive;
    s.action = [&, name = name](const StageContext&) {
      ++active;
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(name);
      }
      // Long enough for a wrongly started neighbour to show up in `active`.
      for (int i = 0; i < 20; ++i) {
        if (name == "x" && active.load() != 1) alone = false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      --active;
      return nlohmann::json::object();
    };
    g.add(s);
  }
  TempRun run;
  const RunReport r = g.run(run.dir, [](const std::string&) {}, 2);
  EXPECT_EQ(r.executed(), 4);
  EXPECT_TRUE(alone.load());
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "x", "c"}));
}

}  // namespace
}  // namespace mcd::pipeline
