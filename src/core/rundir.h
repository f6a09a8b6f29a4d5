// rundir.h: the names inside a run directory (RUN/...), spelled only here, and
// the two small files several rooms share: the trainer's heartbeat and its pid.
// The trainer (run/) writes them, the supervisor (run/) and `kiln report`
// (report/) read them, so they live in core, below both.
//
//   RUN/config.yaml         the config the run was started with
//   RUN/env.json            host, threads, command line
//   RUN/metrics.jsonl       one JSON record per step, eval and event
//   RUN/incidents.jsonl     the supervisor's crash/hang/restart records
//   RUN/tb/                 TensorBoard event files
//   RUN/heartbeat           `pid step unix_time`, rewritten while training
//   RUN/trainer.pid         the trainer's pid while it runs
//   RUN/lock                empty; flock()ed by the trainer while it runs
//   RUN/control             live settings for the trainer (then control.applied
//                           or control.rejected)
//   RUN/latest              the newest checkpoint's directory name
//   RUN/report.html         `kiln report`'s page
//   RUN/eval/*.json         `kiln eval --model RUN`'s results (CKPT-TIME.json), shown by the report
//   RUN/ckpt-NNNNNNNN/      a checkpoint: model.safetensors, optimizer.safetensors,
//                           state.json
#ifndef KILN_RUNDIR_H
#define KILN_RUNDIR_H

#include "kiln/core.h"

#include <stddef.h>

// Macros rather than constants so that messages and help texts can splice them.
#define RUNDIR_CONFIG "config.yaml"
#define RUNDIR_ENV "env.json"
#define RUNDIR_METRICS "metrics.jsonl"
#define RUNDIR_INCIDENTS "incidents.jsonl"
#define RUNDIR_TB "tb"
#define RUNDIR_HEARTBEAT "heartbeat"
#define RUNDIR_PID "trainer.pid"
#define RUNDIR_CONTROL "control"
#define RUNDIR_LATEST "latest"
#define RUNDIR_LOCK "lock"
// Set by `kiln supervise` (to 1) when it restarts a run that died before its
// first checkpoint: that fresh start may replace the dead run's files.
#define RUNDIR_RESTART_ENV "KILN_SUPERVISE_FRESH_RESTART"
#define RUNDIR_REPORT "report.html"  // `kiln report`'s default page
#define RUNDIR_EVAL "eval"          // results of `kiln eval --model RUN`, one JSON file each
#define RUNDIR_CKPT_FMT "ckpt-%08d"  // printf format of a checkpoint's name, by step
#define RUNDIR_CKPT_MODEL "model.safetensors"
#define RUNDIR_CKPT_OPTIM "optimizer.safetensors"
#define RUNDIR_CKPT_STATE "state.json"
#define RUNDIR_CKPT_STATE_SHA "state.json.sha256"  // sha256 of state.json (it cannot hold its own)

// The step of a checkpoint directory's name (ckpt- and 8 digits, nothing after):
// 0 and *step, or -1 for any other name.
int rundir_ckpt_step(const char *name, int *step);

// ---------------------------------------------------------------- heartbeat
typedef struct {
    long pid;
    long step;
    double time;  // unix seconds
} KilnHeartbeat;

// Writes RUN/heartbeat as `pid step unix_time` through a renamed temp file, so a
// reader never sees half of one. No fsync: a lost beat only delays a restart.
// -1 when it could not be written (the trainer carries on regardless).
int rundir_write_heartbeat(const char *run_dir, long pid, long step, double time);

// Parses one heartbeat `pid step unix_time` (trailing newline/space allowed).
// -1 when s[0..n) is not exactly that (negative numbers, junk, missing fields).
int rundir_parse_heartbeat(const char *s, size_t n, KilnHeartbeat *hb);

// Reads and parses RUN/heartbeat; -1 when it is missing or not a heartbeat.
int rundir_read_heartbeat(const char *run_dir, KilnHeartbeat *hb);

// ---------------------------------------------------------------- trainer.pid
// RUN/trainer.pid holds `pid\n` while the trainer runs.
int rundir_write_pid(const char *run_dir, long pid);
void rundir_remove_pid(const char *run_dir);
// The number at the start of RUN/trainer.pid; -1 when it is missing or has none.
// The caller decides which pids it believes.
int rundir_read_pid(const char *run_dir, long *pid);

// ---------------------------------------------------------------- lock
// One writer per run directory: an exclusive flock() on dir/lock, taken without
// waiting and held until rundir_unlock or the process's death (the kernel drops
// it, so a SIGKILLed trainer never leaves a stale lock; the file is never
// removed, which would let two processes lock two files of one name). 0 and
// *fd, or -1 with "DIR is in use by pid N (another WHAT)" in err, WHAT being
// the kind of process that takes this lock. dir must exist.
int rundir_lock(const char *dir, const char *what, int *fd, KilnErr *err);
void rundir_unlock(int fd);

#endif
