// The data side of fine-tuning: a GLUE task's or a custom task's splits (data/glue readers),
// tokenized into model inputs (METHOD.md §4): a single text as `a <end>`, a pair as
// `a <sep> b <end>`, truncated longest-first to max_length. The end token gives last-token
// pooling the same final token in every example.
#pragma once

#include <string>
#include <vector>

#include "data/glue/glue.h"
#include "data/tokenizer/bpe_tokenizer.h"

namespace mcd::finetune {

struct TaskSource {
  std::string task;        // a GLUE task name or "custom"
  std::string data_dir;    // GLUE: the root or the task's folder
  std::string train_file;  // custom: TSV or JSONL files
  std::string dev_file;
  bool regression = false; // custom only
};

struct TaskData {
  std::string task;
  bool regression = false;
  int num_labels = 0;
  std::vector<std::string> label_names;
  data::glue::Dataset train;
  std::vector<data::glue::Dataset> evals;  // dev (MNLI: dev_matched, dev_mismatched)
};

TaskData load_task(const TaskSource& source);

// Keeps a seeded random `max_examples` of the dataset's examples (in their original order); no-op
// when it has no more than that or max_examples is 0.
void subsample(data::glue::Dataset& dataset, int64_t max_examples, uint64_t seed);

struct EncodeOptions {
  int64_t max_length = 128;   // tokens including the separator and end tokens
  int32_t separator_id = 50256;  // GPT-2 has no separator: <|endoftext|> separates
  int32_t end_id = 50256;
};

struct EncodedSplit {
  std::string name;                       // the split
  std::vector<std::vector<int32_t>> ids;  // per example
  std::vector<double> labels;             // class id or score
  int64_t truncated = 0;                  // examples that were cut to max_length
  int64_t max_token_id() const;
};

EncodedSplit encode(const data::glue::Dataset& dataset, const data::BpeTokenizer& tokenizer, const EncodeOptions& options);
// Token id lists of a and b cut longest-first so that |a| + |b| + specials ≤ max_length, joined.
std::vector<int32_t> join_pair(std::vector<int32_t> a, const std::vector<int32_t>* b, const EncodeOptions& options,
                               bool* truncated = nullptr);

}  // namespace mcd::finetune
