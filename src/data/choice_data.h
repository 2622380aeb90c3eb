// Multiple-choice examples for zero-shot evaluation by log-likelihood (`mamba-codesign zeroshot`,
// docs/eval.md, "Zero-shot multiple choice"): JSON lines, one example each,
//   {"context": "The capital of France is", "choices": [" Paris", " Rome"], "label": 0}
// with an optional "id" (string or number). The model scores each choice's tokens after the
// context's; a choice carries its own leading space, as the text would continue. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/glue/glue.h"

namespace mcd::data {

struct ChoiceExample {
  std::string id;                    // "id" as written, else the 1-based line
  std::string context;               // may be empty (the model then scores the choice after EOS)
  std::vector<std::string> choices;  // at least 2, none empty
  int64_t label = 0;                 // the correct choice's index
  int64_t line = 0;                  // 1-based line in its file
};

// Strict: a line that is not a JSON object, a missing or mistyped field, fewer than two choices, an
// empty choice, a label outside the choices, an unknown key or a file without examples is an
// mcd::Error naming the file and line. Blank lines are skipped; a UTF-8 byte-order mark and CRLF
// line endings are accepted.
std::vector<ChoiceExample> read_choice_jsonl(const std::string& path);

// Writes examples as read_choice_jsonl reads them (with their ids), atomically.
void write_choice_jsonl(const std::string& path, const std::vector<ChoiceExample>& examples);

// A GLUE classification split as zero-shot prompts, one answer word per label in label-id order:
//   sst2  "{sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:"  " negative" / " positive"
//   cola  "{sentence}\nQuestion: Does this sentence make sense?\nAnswer:"  " no" / " yes"
//   mrpc  "Sentence 1: {a}\nSentence 2: {b}\nQuestion: Do both sentences mean the same thing?\nAnswer:"  " no" / " yes"
//   qqp   "Question 1: {a}\nQuestion 2: {b}\nQuestion: Do both questions ask the same thing?\nAnswer:"  " no" / " yes"
//   mnli  "{a}\nQuestion: {b} True, False or Neither?\nAnswer:"  " True" / " Neither" / " False"
//   qnli  "{question}\n{sentence}\nQuestion: Does this response answer the question?\nAnswer:"  " yes" / " no"
//   rte   "{a}\nQuestion: {b} True or False?\nAnswer:"  " True" / " False"
//   wnli  the same prompt, labels (not_entailment, entailment): " False" / " True"
// (the shapes of lm-evaluation-harness's GLUE prompts). Ids are the 1-based line of each example in
// its file. Regression (STS-B) and custom tasks are refused: they have no answer words.
std::vector<ChoiceExample> glue_as_choices(const glue::Dataset& dataset);

}  // namespace mcd::data
