// data.h: the stage interface of the data pipeline: parameters, stage
// definitions and reports, and the runner that streams documents (doc.h)
// through them.
//
//   sources (text, JSONL, HTML, WARC, man, code) --> documents {source, id, text}
//     --> per-document stages (clean, filters, decontaminate, augment)   [parallel, in order]
//     --> corpus stages (dedup, line dedup, mixing)                       [whole-corpus passes]
//     --> tokenizer --> token shards + manifest.json + report.json
//
// A document keeps its source and id from the first reader to the manifest, so a
// training batch can be traced back to the documents that made it.
// Every stage also runs alone as `kiln data STAGE`: JSONL in, JSONL out.
#ifndef KILN_DATA_H
#define KILN_DATA_H

#include "kiln/core.h"
#include "kiln/doc.h"

#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- parameters
// A stage's parameters: key -> one or more string values, from the pipeline YAML
// (a mapping under the stage name) or from the command line (--key value,
// repeated for lists). `where` says where each came from, for error messages.
typedef struct {
    char *key;
    char **vals;
    int nvals;
    char *where;  // "pipeline.yaml:14" or "command line"
    int used;
} KilnParam;
typedef struct {
    KilnParam *p;
    int n;
    char *stage;  // for messages
} KilnParams;

int params_add(KilnParams *ps, const char *key, const char *val, const char *where, KilnErr *err);
void params_free(KilnParams *ps);
// Getters: when the key is absent *out keeps the default passed in it; a value
// of the wrong type is an error naming stage, key, value and where.
int params_int(KilnParams *ps, const char *key, long *out, KilnErr *err);
int params_double(KilnParams *ps, const char *key, double *out, KilnErr *err);
int params_bool(KilnParams *ps, const char *key, int *out, KilnErr *err);  // true/false/yes/no/1/0
int params_str(KilnParams *ps, const char *key, const char **out, KilnErr *err);
// One of the names in choices (NULL-terminated); *out is its index.
int params_enum(KilnParams *ps, const char *key, const char *const *choices, int *out, KilnErr *err);
// All values of a list key (absent: n = 0). Values stay owned by ps.
int params_list(KilnParams *ps, const char *key, const char *const **vals, int *n, KilnErr *err);
// Where key was written ("pipe.yaml:12", "command line"), NULL when absent.
const char *params_where(const KilnParams *ps, const char *key);
// Error naming the first key no getter asked for (a misspelt parameter).
int params_check_unused(const KilnParams *ps, KilnErr *err);

// ---------------------------------------------------------------- stages
// What happened to the documents of one stage: counts in and out, and each drop
// reason with its count and the first few documents it dropped.
#define KILN_DROP_EXAMPLES 3
typedef struct {
    char *reason;
    long docs, bytes;
    char examples[KILN_DROP_EXAMPLES][320];  // "source/id: first words..."
} KilnDropReason;

typedef struct {
    char *name;
    long docs_in, docs_out, bytes_in, bytes_out;
    long docs_changed;  // documents whose text a stage rewrote
    KilnDropReason *reasons;
    int nreasons;
    double seconds;     // thread-seconds spent in the stage (per-core throughput = bytes_in / seconds)
    char *extra_json;   // stage-specific details (a JSON object), or NULL
    KilnSkips skips;    // input lines the stage's reader skipped (not JSON documents), with examples
} KilnStageReport;

void stage_report_init(KilnStageReport *r, const char *name);
void stage_report_free(KilnStageReport *r);
// Counts one dropped document under reason (kept with an example if among the first).
void stage_report_drop(KilnStageReport *r, const char *reason, const KilnDoc *doc);
// The same, and with a rejects writer (may be NULL) the document goes there with
// "drop":"reason" added, as every stage's --rejects file has it.
int stage_reject(KilnDocWriter *rejects, KilnStageReport *r, const char *reason, const KilnDoc *doc, KilnErr *err);

// Scratch a stage may use while working on one document; one per thread.
typedef struct {
    KilnBuf a, b;
} KilnScratch;
void scratch_free(KilnScratch *s);

typedef struct KilnStageDef {
    const char *name;     // "clean", "gopher_quality", "dedup", ...
    const char *summary;  // one line for `kiln data --help`
    const char *params_help;  // "  key (default): meaning\n" lines
    // Builds the stage's state from its parameters (must consume every key it
    // understands; the caller rejects leftovers). seed: the pipeline's seed.
    int (*create)(KilnParams *ps, uint64_t seed, void **state, KilnErr *err);
    void (*destroy)(void *state);
    // Per-document stages: called from many threads at once with the same state
    // (which must be read-only, or updated atomically). Returns NULL to keep the
    // document (possibly after rewriting doc->text, e.g. into s->a then
    // kbuf_swap(&doc->text, &s->a)) or a static reason string to drop it.
    const char *(*apply)(void *state, KilnDoc *doc, KilnScratch *s);
    // Corpus stages (apply == NULL): read every document of in_path (JSONL, may be
    // read more than once), write the kept ones to out in input order, count
    // drops and the reader's skipped lines in rep, and write what they drop to
    // rejects (may be NULL) through stage_reject. May put temporary files in
    // work_dir.
    int (*run_corpus)(void *state, const char *in_path, KilnDocWriter *out, KilnDocWriter *rejects,
                      const char *work_dir, KilnStageReport *rep, KilnErr *err);
    // Optional: stage-specific report details as a JSON object, malloc'd
    // (e.g. the evaluation items decontamination found, per source).
    char *(*report_json)(void *state);
} KilnStageDef;

// All stages, by name; NULL when unknown.
const KilnStageDef *stage_find(const char *name);
const KilnStageDef *const *stage_all(int *n);

// ---------------------------------------------------------------- running stages
// Anything that yields documents: a JSONL reader, or a source reader over raw
// files (sources.h). next() returns 1 with a document, 0 at the end, -1 on a
// fatal error.
typedef struct {
    int (*next)(void *ctx, KilnDoc *doc, KilnErr *err);
    void *ctx;
    KilnDocReader *reader;  // set when the source is a JSONL reader: lines are then parsed in parallel
} KilnDocSource;
KilnDocSource docreader_source(KilnDocReader *r);

// Runs consecutive per-document stages over a source, in batches processed on
// all threads, writing kept documents (in input order) to out and the ones
// stage i drops, with "drop":"stage:reason", to stages[i].rejects (when set).
// reps[i] receives stage i's counts.
typedef struct {
    const KilnStageDef *def;
    void *state;
    const char *const *only;  // per-document stages: apply only to these sources
    int nonly;                // (0: all); other documents pass through unchanged
    KilnDocWriter *rejects;   // where this stage's dropped documents go, or NULL
} KilnStage;
int stages_run_stream(KilnStage *stages, int nstages, KilnDocSource in, KilnDocWriter *out, KilnStageReport *reps,
                      KilnErr *err);

#endif
