// The `finetune` subcommand (METHOD.md §4, docs/glue.md): fine-tune a pretrained model on a GLUE
// task or a custom task with full fine-tuning, a linear probe, LoRA, IA³ or SGH-PEFT, and write
// result.json, the adapters (or model) and, with --merge, the merged model.
#include <iostream>

#include "cli/commands.h"
#include "util/error.h"

#ifdef MCD_HAS_TRAIN
#include "finetune/finetune.h"
#endif

namespace mcd::cli {

Command add_finetune(CLI::App& app) {
  auto* sub = app.add_subcommand("finetune",
                                 "fine-tune a model on a GLUE or custom task: full, probe, lora, ia3 or sgh (SGH-PEFT)");
  struct Args {
    std::string model, task, data_dir, train, dev, method = "sgh", importance, out, device = "auto", pooling = "last";
    std::string targets = "in_proj,out_proj", precision = "bf16";
    bool regression = false, no_cuda_graphs = false, merge = false, resume = false, quiet = false, keep_checkpoints = false, scale_ranks = false;
    int64_t epochs = 3, max_steps = 0, batch = 32, eval_batch = 64, grad_accum = 1, max_length = 128;
    int64_t rank = 16, max_train = 0, max_eval = 0;
    double alpha = 0, dropout = 0.05, lr = 0, lr_scale = 1, weight_decay = 0.01, warmup = 0.06, clip = 1.0, percentile = 75;
    double freeze_percentile = 0, max_minutes = 0;
    uint64_t seed = 0;
    std::vector<std::string> faults;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--model", a->model, "pretrained model folder (HF format; dense, pruned or permuted)")->required();
  sub->add_option("--task", a->task, "cola sst2 mrpc stsb qqp mnli qnli rte wnli, or custom")->required();
  sub->add_option("--data-dir", a->data_dir, "GLUE root or the task's folder");
  sub->add_option("--train", a->train, "custom task: training file (.tsv or .jsonl)");
  sub->add_option("--dev", a->dev, "custom task: evaluation file (.tsv or .jsonl)");
  sub->add_flag("--regression", a->regression, "custom task: labels are real-valued scores");
  sub->add_option("--method", a->method, "full | probe | lora | ia3 | sgh")->capture_default_str();
  sub->add_option("--importance", a->importance, "sgh: importance.json written by `prune` or `importance`");
  sub->add_option("--out", a->out, "output folder (result.json, adapters/ or model/, merged/)")->required();
  sub->add_option("--seed", a->seed, "seed of head and adapter init, dropout and data order")->capture_default_str();
  sub->add_option("--epochs", a->epochs, "training epochs")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--max-steps", a->max_steps, "stop after this many optimizer steps (0: all epochs)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--batch", a->batch, "examples per optimizer step")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--eval-batch", a->eval_batch, "examples per evaluation forward")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--grad-accum", a->grad_accum, "micro-batches per step")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--max-length", a->max_length, "tokens per example after truncation (separator and end included)")
      ->check(CLI::Range(int64_t(4), int64_t(1) << 20))
      ->capture_default_str();
  sub->add_option("--lr", a->lr, "peak learning rate (0: the method's default)")->check(CLI::NonNegativeNumber);
  sub->add_option("--lr-scale", a->lr_scale,
                  "with --lr 0: the method's default learning rate times this (small models want larger rates)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--weight-decay", a->weight_decay, "AdamW weight decay of matrices")->capture_default_str();
  sub->add_option("--warmup", a->warmup, "warm-up as a fraction of the steps")->check(CLI::Range(0.0, 0.99))->capture_default_str();
  sub->add_option("--grad-clip", a->clip, "gradient norm clip (0: none)")->capture_default_str();
  sub->add_option("--rank", a->rank, "LoRA rank")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--alpha", a->alpha, "LoRA alpha (0: 2 x rank)")->check(CLI::NonNegativeNumber);
  sub->add_option("--dropout", a->dropout, "LoRA dropout")->check(CLI::Range(0.0, 0.99))->capture_default_str();
  sub->add_option("--targets", a->targets, "adapter targets: in_proj, out_proj or both")->capture_default_str();
  sub->add_option("--lora-percentile", a->percentile, "sgh: layers with importance at or above it get LoRA")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  sub->add_flag("--scale-ranks", a->scale_ranks, "sgh budget mode: LoRA rank proportional to importance");
  sub->add_option("--freeze-percentile", a->freeze_percentile, "sgh: layers below this importance percentile stay frozen")
      ->check(CLI::Range(0.0, 100.0));
  sub->add_option("--pooling", a->pooling, "last (last real token) or mean")->capture_default_str();
  sub->add_option("--precision", a->precision, "bf16 (autocast, CUDA only) or fp32")->capture_default_str();
  sub->add_option("--max-train-examples", a->max_train, "train on a seeded subsample of this size (0: all)");
  sub->add_option("--max-eval-examples", a->max_eval, "evaluate on a seeded subsample of this size (0: all)");
  sub->add_flag("--merge", a->merge, "also write merged/: the adapters folded into the weights, checked against the "
                                     "unmerged model");
  sub->add_option("--device", a->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  sub->add_flag("--no-cuda-graphs", a->no_cuda_graphs,
                "on CUDA, run every step eagerly instead of replaying each batch shape's step as a CUDA graph");
  sub->add_flag("--resume", a->resume, "continue from the newest checkpoint in --out");
  sub->add_flag("--keep-checkpoints", a->keep_checkpoints, "keep the per-epoch checkpoints after the run");
  sub->add_option("--max-minutes", a->max_minutes, "stop after this wall time (a checkpoint is written)");
  sub->add_flag("--quiet", a->quiet, "no progress line");
  sub->add_option("--test-fault", a->faults)->group("");
  return {sub, [a] {
#ifdef MCD_HAS_TRAIN
            finetune::FinetuneSettings s;
            s.model_dir = a->model;
            s.data.task = a->task;
            s.data.data_dir = a->data_dir;
            s.data.train_file = a->train;
            s.data.dev_file = a->dev;
            s.data.regression = a->regression;
            MCD_CHECK(a->task == "custom" || (a->train.empty() && a->dev.empty() && !a->regression),
                      "--train, --dev and --regression are for --task custom; GLUE tasks read --data-dir");
            s.importance_file = a->importance;
            s.out_dir = a->out;
            s.peft.method = peft::parse_method(a->method);
            MCD_CHECK(a->importance.empty() || s.peft.method == peft::Method::kSgh,
                      "--importance is used by --method sgh only");
            s.peft.lora.rank = a->rank;
            s.peft.lora.alpha = a->alpha > 0 ? a->alpha : 2.0 * double(a->rank);
            s.peft.lora.dropout = a->dropout;
            s.peft.on_in_proj = s.peft.on_out_proj = false;
            std::string rest = a->targets;
            while (!rest.empty()) {
              const auto comma = rest.find(',');
              const std::string t = rest.substr(0, comma);
              rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
              if (t == "in_proj") s.peft.on_in_proj = true;
              else if (t == "out_proj") s.peft.on_out_proj = true;
              else fail(cat("--targets: unknown target '", t, "' (valid: in_proj, out_proj)"));
            }
            s.peft.lora_percentile = a->percentile;
            s.peft.scale_ranks = a->scale_ranks;
            s.peft.freeze_percentile = a->freeze_percentile;
            s.epochs = a->epochs;
            s.max_steps = a->max_steps;
            s.batch_size = a->batch;
            s.eval_batch_size = a->eval_batch;
            s.grad_accum = a->grad_accum;
            s.max_length = a->max_length;
            MCD_CHECK(a->lr == 0 || a->lr_scale == 1, "--lr-scale scales the method's default rate; it cannot be "
                      "combined with --lr");
            s.lr = a->lr > 0 ? a->lr : a->lr_scale * finetune::default_lr(s.peft.method);
            s.weight_decay = a->weight_decay;
            s.warmup_ratio = a->warmup;
            s.grad_clip = a->clip;
            s.pooling = parse_pooling(a->pooling);
            MCD_CHECK(a->precision == "bf16" || a->precision == "fp32", "--precision must be bf16 or fp32, got '",
                      a->precision, "'");
            s.bf16 = a->precision == "bf16";
            s.cuda_graphs = !a->no_cuda_graphs;
            s.seed = a->seed;
            s.merge = a->merge;
            s.max_train_examples = a->max_train;
            s.max_eval_examples = a->max_eval;
            s.device = parse_device(a->device);
            s.resume = a->resume;
            s.quiet = a->quiet;
            s.keep_checkpoints = a->keep_checkpoints;
            s.max_minutes = a->max_minutes;
            for (const std::string& f : a->faults) {
              const auto eq = f.find('=');
              MCD_CHECK(eq != std::string::npos && f.substr(0, eq) == "kill-in-checkpoint-at-step",
                        "--test-fault '", f, "': expected kill-in-checkpoint-at-step=N");
              s.faults.kill_in_checkpoint_at_step = std::stoll(f.substr(eq + 1));
            }
            const nlohmann::json r = finetune::run_finetune(s);
            nlohmann::json line = {{"task", r["task"]},       {"method", r["method"]},
                                   {"seed", r["seed"]},       {"score", r["score"]},
                                   {"best", r["best"]},       {"parameters", r["parameters"]},
                                   {"result", s.out_dir + "/result.json"}};
            std::cout << line.dump() << std::endl;
#else
            fail("this build has no training support (the tokenizer/data components are missing)");
#endif
          }};
}

}  // namespace mcd::cli
