// eval.h: scoring a model on evaluation tasks (task.h) the way EleutherAI's
// lm-evaluation-harness defines its metrics, on all cores.
//
//   text --codec--> tokens --infer (KV cache)--> log-likelihoods / generations
//        --task metrics--> per-item values --aggregate--> value, stderr
#ifndef KILN_EVAL_H
#define KILN_EVAL_H

#include "kiln/infer.h"
#include "kiln/model.h"
#include "kiln/task.h"
#include "kiln/tokenizer.h"

// Text <-> tokens for a model: its BPE tokenizer, or bytes (token = byte) for
// models trained on byte shards.
typedef struct {
    const KilnTokenizer *tok;  // NULL: bytes
    int32_t eot;               // end-of-text: <|endoftext|>, or 0 (the byte corpora's document start)
    int vocab_size;
} KilnCodec;

// A codec for a model: tok_spec is a tokenizer file (tokenizer.json or a
// tiktoken rank file), "bytes", or NULL to take the tokenizer named in the
// manifest.json beside the training shards of cfg (data.train). *owned
// receives a tokenizer the caller frees (NULL in byte mode).
int codec_for_model(KilnCodec *c, KilnTokenizer **owned, const char *tok_spec, const KilnConfig *cfg,
                    KilnErr *err);
// Appends the tokens of text[0..len) (special-token text is ordinary text).
int codec_encode(const KilnCodec *c, const char *text, size_t len, KilnIds *out, KilnErr *err);
// The text of ids (malloc'd, NUL-terminated).
int codec_decode(const KilnCodec *c, const uint32_t *ids, long n, char **text, size_t *len, KilnErr *err);

// A KV cache and the tokens in it. Each call below reuses the longest common
// prefix of its input with what the cache holds (a shared context, few-shot
// examples) and recomputes only the rest. One session per thread.
typedef struct {
    KilnInfer *inf;
    int32_t *toks;  // (max_len) the tokens in the cache
    int n;
    int V;
    float *buf;     // logits of a chunk of positions
} KilnSession;
int session_open(KilnSession *s, const KilnModel *m, int max_len, KilnErr *err);
void session_close(KilnSession *s);

// Generation from a prompt. The prompt is cut from the left to leave
// max_tokens of room (as lm-evaluation-harness does). Stops at the end-of-text
// token, after max_tokens, or at the first of the until strings (which is cut
// off, with everything after it).
typedef struct {
    int max_tokens;
    float temperature;  // 0: greedy
    int top_k;          // 0: all
    float top_p;        // 1: all
    const char *const *until;
    int nuntil;
    uint64_t seed;      // sampling draws come from (seed, token index)
} KilnGenOpts;
int generate_text(KilnSession *s, const KilnCodec *c, const char *prompt, const KilnGenOpts *o, char **out,
                  KilnErr *err);

// log P(continuation | context) as lm-evaluation-harness computes it: trailing
// spaces of the context move to the continuation; the continuation's tokens
// are those of tok(context + continuation) past tok(context); an empty context
// is the end-of-text token; the input is cut from the left to the model's
// length. A continuation longer than the model's length (lm-evaluation-harness
// refuses those) is scored in windows, each token with as much preceding text
// as fits. *greedy = 1 when every continuation token is the argmax; *ntok gets
// the continuation's token count (either may be NULL).
int loglikelihood(KilnSession *s, const KilnCodec *c, const char *context, const char *continuation,
                  double *ll, int *greedy, int *ntok, KilnErr *err);
// log P(text) from the end-of-text token, in windows of the model's length
// that each predict new tokens with as much preceding text as fits
// (lm-evaluation-harness's loglikelihood_rolling); *ntok gets the token count.
int loglikelihood_rolling(KilnSession *s, const KilnCodec *c, const char *text, double *ll, long *ntok,
                          KilnErr *err);

// ---------------------------------------------------------------- running tasks
// One reported number: a task's metric (with its answer filter for generate
// tasks) on all items or on the clean subset (items the decontamination report
// did not find in the training data).
typedef struct {
    char task[64], metric[80], filter[32], subset[8];  // subset "all" | "clean"; filter "" when none
    double value, stderr_;                             // stderr_ NAN when the metric has none
    long n;
    int shots;
    double chance;  // what guessing scores (multiple choice: the mean of 1/choices); 0 when not known
} KilnMetricResult;

typedef struct {
    KilnMetricResult *r;
    int n, cap;
} KilnEvalResults;
int eval_results_add(KilnEvalResults *res, const KilnMetricResult *m, KilnErr *err);
void eval_results_free(KilnEvalResults *res);

typedef struct {
    int shots;                 // -1: the task's default
    long limit;                // 0: all items
    uint64_t seed;             // few-shot draws and sampling
    const char *const *found;  // ids the decontamination report found (sorted), or NULL
    long nfound;
    FILE *items_out;           // per-item JSONL (outputs and scores), or NULL
    FILE *prompts_out;         // rendered contexts and continuations, or NULL
    FILE *log;                 // progress, or NULL
    // called every couple of seconds from one thread while items are scored
    // (the trainer keeps its heartbeat going through long evaluations), or NULL
    void (*progress)(void *ctx, long done, long n);
    void *progress_ctx;
} KilnEvalOptions;

// Scores every item of t on all threads (one KilnSession each) and appends
// the task's metrics to res.
int eval_task(const KilnModel *m, const KilnCodec *c, KilnTask *t, const KilnEvalOptions *o, KilnEvalResults *res,
              KilnErr *err);

// The ids found by a decontamination report (the `decontaminate` stage's
// --report file, or a pipeline's report.json): every "found_ids" list under a
// "tasks" object, sorted. *ids is malloc'd, each string too.
int eval_load_found(const char *report, char ***ids, long *n, KilnErr *err);

// Metric arithmetic, as lm-evaluation-harness: the mean and its standard
// error (sample std with n-1, over sqrt n); a multiple-choice item's acc
// (argmax of ll) and acc_norm (argmax of ll / len, len the choice's length in
// characters without the target delimiter), the first of equal values winning.
void eval_mean_stderr(const double *x, long n, double *mean, double *se);
void eval_mc_item(const double *ll, const long *len, int n, int label, int *acc, int *acc_norm);

// Results as JSON (results + model + date + versions) and as a table.
int eval_write_json(const KilnEvalResults *res, const char *model, const char *path, KilnErr *err);
void eval_print_table(const KilnEvalResults *res, FILE *f);

#endif
