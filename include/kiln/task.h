// task.h: evaluation tasks defined by small YAML files (tasks/*.yaml), read
// from the datasets' original files, rendered into requests the way
// EleutherAI's lm-evaluation-harness renders them.
//
// Kinds and what an item asks of the model:
//   multiple_choice  loglik(context, target_delimiter + choice) for each choice;
//                    metrics acc, acc_norm (loglik / choice length in characters)
//   loglikelihood    loglik(context, continuation) and whether greedy decoding
//                    gives exactly the continuation (LAMBADA): acc, perplexity
//   generate         greedy continuation of context until a stop string; answer
//                    extraction by regex filters; exact_match per filter (GSM8K)
//   rolling          loglik of a whole text in max-length windows: word_perplexity,
//                    byte_perplexity, bits_per_byte (held-out text)
//   pairs            loglik("", each of two sentences) from the end-of-text token;
//                    pct_stereotype = share where the first is likelier, per group
//                    and overall (CrowS-Pairs); likelihood_difference
//
// Few-shot (multiple_choice, loglikelihood, generate): shots examples drawn
// with a fixed seed from the task's few-shot split (never the item itself),
// each rendered as text + target_delimiter + gold target, joined by
// fewshot_delimiter and followed by fewshot_delimiter and the item's text.
#ifndef KILN_TASK_H
#define KILN_TASK_H

#include "kiln/core.h"

typedef enum { TASK_MULTIPLE_CHOICE, TASK_LOGLIKELIHOOD, TASK_GENERATE, TASK_ROLLING, TASK_PAIRS } KilnTaskKind;

// One rendered item. Strings are owned by the task (freed with task_free).
typedef struct {
    const char *id;        // "task/<dataset id or 0-based record index>", as decontam.h reads the same file
    const char *context;   // few-shot prefix + text; "" for pairs and rolling
    const char **choices;  // multiple_choice: continuations (target_delimiter included);
                           // loglikelihood: [continuation]; pairs: the two sentences;
                           // rolling: [the whole text]
    int nchoices;
    int label;             // multiple_choice: the gold choice; else -1
    const char *target;    // generate: the gold answer text (before filtering); rolling: the
                           // original page, whose words and bytes the perplexities count
                           // (choices[0] is the detokenized text that is scored); else NULL
    const char *group;     // pairs: the group (CrowS-Pairs bias type); else NULL
    long line;             // line (or record) of the dataset file, for messages
} KilnTaskItem;

typedef struct KilnTask KilnTask;

// Reads a task file; dataset paths in it are relative to data_dir (e.g.
// ../shared/data). Errors name the YAML file and line, or the dataset file and
// line (a record that does not parse, a missing field, a label out of range).
// With skip_bad, bad dataset records are counted (task_skipped) instead.
int task_load(KilnTask **t, const char *yaml_path, const char *data_dir, int skip_bad, KilnErr *err);
void task_free(KilnTask *t);

const char *task_name(const KilnTask *t);
KilnTaskKind task_kind(const KilnTask *t);
long task_skipped(const KilnTask *t);     // bad records skipped (skip_bad)
int task_default_shots(const KilnTask *t);
const char *task_target_delimiter(const KilnTask *t);  // between text and target (default " ")
int task_max_shots(const KilnTask *t);    // 0 when the task has no few-shot split

// Renders the items with shots few-shot examples (seeded), at most limit items
// (0: all; the first limit records in file order, as lm-evaluation-harness's
// --limit). *items points into t and stays valid until task_free or the next
// task_render.
int task_render(KilnTask *t, int shots, uint64_t seed, long limit, const KilnTaskItem **items, long *n,
                KilnErr *err);

// generate: the stop strings and the token budget.
int task_until(const KilnTask *t, const char *const **until);  // returns the count
int task_max_gen_tokens(const KilnTask *t);

// generate: the answer filters (e.g. "strict-match", "flexible-extract").
int task_nfilters(const KilnTask *t);
const char *task_filter_name(const KilnTask *t, int f);
// Applies filter f to a generation: the extracted answer (malloc'd; "[invalid]"
// when the regex finds nothing, as lm-evaluation-harness).
char *task_filter_apply(const KilnTask *t, int f, const char *generation);
// exact_match of an extracted answer against the item's target, after the
// task's normalisation (ignore_case, ignore_punctuation, regexes_to_ignore).
int task_exact_match(const KilnTask *t, const char *pred, const char *target);

// ---------------------------------------------------------------- task files
// Where task files live: $KILN_TASKS, else ./tasks, else tasks/ beside the
// directory that holds the running binary (build/kiln -> tasks/).
void task_default_dir(char *out, size_t n);
// A task name's file, dir/NAME.yaml, or name itself when it is a path (has a
// '/' or ends in .yaml).
void task_file_path(const char *dir, const char *name, char *out, size_t n);

// ---------------------------------------------------------------- decontamination
// The items of a task as decontamination looks for them in training data: the
// records of data_path, read as the task file reads its dataset (format, blank
// lines, record index), each with the task's id and the texts of the task
// file's `decontaminate` section: each text template, followed by no choice,
// by each choice, or by the gold choice (every choice when the record has no
// label), as the task renders its choices (target_delimiter included).
// Identical texts of one item are given once. The task's label file is not
// read (data_path may be another copy of the set). fn returning -1 stops with
// its error; a record that lacks a field is an error naming data_path:line.
typedef int (*KilnTaskTextsFn)(void *ctx, const char *id, const char *const *texts, const size_t *lens, int ntexts,
                               KilnErr *err);
int task_decontam_items(const char *yaml_path, const char *data_path, KilnTaskTextsFn fn, void *ctx, KilnErr *err);

#endif
