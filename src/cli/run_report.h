// The `report` stage of `mamba-codesign run` (docs/pipeline.md "The report"): results.json with
// every raw number, report.md (ablation table, H1–H4 with their verdicts, setup, plots) and the
// PNG plots drawn by gnuplot.
#pragma once

#include <nlohmann/json.hpp>

#include "pipeline/experiment.h"
#include "pipeline/stage_graph.h"

namespace mcd::cli {

// Reads the fine-tuning results and the profile named by the report stage's inputs, the
// pre-training metrics and the deployed models' configs; writes <stage>/results.json,
// <stage>/report.md and <stage>/plots/. Returns the stage's outputs.
nlohmann::json write_run_report(const pipeline::Experiment& e, const pipeline::StageContext& c);

}  // namespace mcd::cli
