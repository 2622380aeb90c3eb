// The `data` subcommand group. `data glue` reads one GLUE split (or a custom TSV/JSONL file) with
// the readers of src/data/glue and prints one JSON line: the example count and the label counts
// (STS-B and custom regression: min/mean/max score), plus the majority-class fraction a fine-tuned
// model must beat.
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/commands.h"
#include "data/glue/glue.h"
#include "util/error.h"

namespace mcd::cli {

Command add_data(CLI::App& app) {
  auto* sub = app.add_subcommand("data", "inspect datasets (GLUE and custom classification/regression files)");
  sub->require_subcommand(1);
  auto* glue = sub->add_subcommand("glue", "one split of a GLUE task or custom file: examples and labels (one JSON line)");
  struct Args {
    std::string task, dir, split = "dev", file;
    bool regression = false;
  };
  auto a = std::make_shared<Args>();
  glue->add_option("--task", a->task, "cola sst2 mrpc stsb qqp mnli qnli rte wnli, or custom")->required();
  glue->add_option("--dir", a->dir, "the GLUE root or the task's own folder (GLUE tasks)");
  glue->add_option("--split", a->split, "train, dev (MNLI: dev_matched, dev_mismatched)")->capture_default_str();
  glue->add_option("--file", a->file, "custom task: a .tsv (text, text_b, label) or .jsonl file");
  glue->add_flag("--regression", a->regression, "custom task: labels are real-valued scores");
  return {sub, [a, glue] {
            if (!glue->parsed()) return;
            data::glue::Dataset d;
            if (a->task == "custom") {
              MCD_CHECK(!a->file.empty(), "data glue: --task custom needs --file PATH (.tsv or .jsonl)");
              data::glue::CustomOptions o;
              o.regression = a->regression;
              d = data::glue::read_custom(a->file, a->split, o);
            } else {
              MCD_CHECK(!a->dir.empty(), "data glue: --task ", a->task, " needs --dir (GLUE root or task folder)");
              d = data::glue::read_glue(a->task, a->split, a->dir);
            }
            nlohmann::json j = data::glue::label_summary(d);
            j["path"] = d.path;
            if (!d.regression) j["majority_fraction"] = data::glue::majority_fraction(d);
            std::cout << j.dump() << std::endl;
          }};
}

}  // namespace mcd::cli
