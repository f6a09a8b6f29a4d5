// track.h: what a run records for people and tools to read:
//   RUN/metrics.jsonl   one JSON object per line (step, time, named numbers, or an event)
//   RUN/tb/events.out.tfevents.<secs>.<host>   TensorBoard scalars (TFRecord of Event protos)
//   RUN/config.yaml, RUN/env.json              the resolved config and the environment
// Series names are the metrics.jsonl keys ("loss", "val_loss", "lr", ...); the
// TensorBoard tag of a name is "train/<name>", "val/<rest>" for "val_<rest>",
// or the name itself when it has a slash ("eval/hellaswag/acc_norm").
#ifndef KILN_TRACK_H
#define KILN_TRACK_H

#include "backend/backend.h"
#include "kiln/config.h"

#include <stdio.h>

typedef struct {
    const char *name;
    double value;  // NaN or Inf is written as null (JSONL) and left out (TensorBoard)
} KilnMetric;

// TensorBoard event file writer: TFRecord framing (length, masked CRC-32C of the
// length, payload, masked CRC-32C of the payload) around serialized Event protos.
typedef struct {
    FILE *f;
    char path[1100];
} KilnTbWriter;

// Creates dir and a new event file whose first record is the file_version event.
int tb_open(KilnTbWriter *w, const char *dir, double wall_time, KilnErr *err);
// One Event{wall_time, step, summary{value{tag, simple_value}}}.
int tb_scalar(KilnTbWriter *w, const char *tag, long long step, float value, double wall_time, KilnErr *err);
// Event{session_log{status: START}} at step: TensorBoard then drops the points a
// killed run wrote past the step it resumed from.
int tb_session_start(KilnTbWriter *w, long long step, double wall_time, KilnErr *err);
int tb_flush(KilnTbWriter *w, KilnErr *err);
void tb_close(KilnTbWriter *w);
// Masked CRC-32C as TFRecord uses it (exposed for tests).
uint32_t tb_masked_crc32c(const void *data, size_t n);

typedef struct {
    char dir[1024];
    FILE *metrics;     // RUN/metrics.jsonl, opened for append
    KilnTbWriter tb;
} KilnTracker;

// Opens RUN's metrics.jsonl and a new TensorBoard file. resume_step < 0: a fresh
// run (metrics.jsonl is truncated). resume_step >= 0: records a killed run wrote
// for steps after resume_step are removed (events are kept), atomically, so each
// step appears once; the TensorBoard file starts with a session START at
// resume_step + 1 (0 for a fresh run): TensorBoard keeps only the points before it.
int tracker_open(KilnTracker *t, const char *run_dir, int resume_step, double wall_time, KilnErr *err);
// One metrics.jsonl line {"step":S,"time":T,<name>:<value>,...} plus one TensorBoard scalar per finite value.
int tracker_log(KilnTracker *t, int step, double wall_time, const KilnMetric *m, int n, KilnErr *err);
// {"step":S,"time":T,"event":kind,"detail":<detail_json>}; detail_json is a JSON
// object's text or NULL.
int tracker_event(KilnTracker *t, int step, double wall_time, const char *kind, const char *detail_json,
                  KilnErr *err);
// Flushes both files (the trainer calls it at checkpoints and every few seconds).
int tracker_flush(KilnTracker *t, KilnErr *err);
void tracker_close(KilnTracker *t);

// Writes RUN/config.yaml and RUN/env.json (atomically): kiln version and git commit,
// command line, host name, OS (uname), CPU model and core count, thread count,
// compiler, OpenBLAS config/version, versions of the linked libraries (libyaml,
// cJSON, zlib, zstd, OpenSSL, libxml2, PCRE2, utf8proc), start time, and the
// peak MFU is against with its inputs (kernel: what its measurement ran).
int run_env_write(const char *run_dir, const KilnConfig *cfg, int argc, char **argv, int threads,
                  const KilnPeak *peak, const char *kernel, KilnErr *err);

#endif
