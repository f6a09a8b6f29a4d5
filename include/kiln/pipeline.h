// pipeline.h: `kiln data run PIPELINE.yaml` — sources, stages and an output
// of token shards, declared in one YAML file:
//
//   seed: 1234
//   out_dir: data/debian-tokens
//   sources:
//     - {name: kjv, format: jsonl, paths: [data/debian/kjv.jsonl]}
//     - {name: web, format: warc, paths: ["crawl/*.warc.gz"]}
//   stages:
//     - clean: {symbols: names}
//     - gopher_quality
//     - minhash_dedup: {threshold: 0.8}
//   output: {tokenizer: bytes, shard_tokens: 10000000, val_fraction: 0.005}
//
// Steps run in order; each writes out_dir/work/NN-STAGE.jsonl (temp name, then
// rename) and a marker with its report, so a re-run after an interruption
// resumes after the last finished step and never duplicates output. The end
// products are out_dir/{train,val}_NNNNNN.bin, manifest.json, report.json and
// report.txt.
#ifndef KILN_PIPELINE_H
#define KILN_PIPELINE_H

#include "kiln/data.h"

#include <stdio.h>

typedef struct {
    char *name, *format;
    char **globs;
    int nglobs;
    KilnParams opts;
} KilnPipeSource;

typedef struct {
    char *name;
    KilnParams params;
} KilnPipeStage;

typedef struct {
    char *path;  // the YAML file
    uint64_t fingerprint;  // hash of its bytes: a changed file re-runs every step
    uint64_t seed;
    char *out_dir;
    KilnPipeSource *sources;
    int nsources;
    KilnPipeStage *stages;
    int nstages;
    char *tokenizer;  // a tokenizer file, or "bytes"
    char *tokenizer_where;  // "pipe.yaml:N" where it was given, for messages
    long shard_tokens;
    double val_fraction;
    int keep_work;    // keep out_dir/work after success
} KilnPipeline;

int pipeline_load(KilnPipeline *p, const char *path, KilnErr *err);
void pipeline_free(KilnPipeline *p);
// Runs it, printing one progress line per step to progress (may be NULL).
int pipeline_run(const KilnPipeline *p, FILE *progress, KilnErr *err);

// The JSON object of one stage's report (also used by `kiln data STAGE --report`).
int stage_report_json(const KilnStageReport *r, KilnBuf *out);
// A readable table of stage reports (a cJSON array of stage_report_json objects).
struct cJSON;
void stage_reports_print(FILE *f, const struct cJSON *steps);

#endif
