// supervise.h: keep a training command alive: restart it when it crashes or
// hangs, with back-off and a restart budget, and log each incident.
//
//   supervisor --fork/exec--> child (own process group), e.g. `kiln pretrain CFG`
//                             or `mpirun --hostfile RUN/hosts ... kiln pretrain CFG`
//   child writes RUN/heartbeat (`pid step unix_time`, rewritten at least every step;
//                             see core/rundir.h)
//   child exit:  0 done | 2 bad usage/config | 75 clean stop  -> supervisor stops
//                126/127 (shell: cannot execute / not found)  -> supervisor stops
//                anything else, or killed by a signal          -> crash: restart
//   heartbeat unchanged for heartbeat_timeout_s               -> hang: SIGTERM the
//                group, SIGKILL after kill_grace_s, restart
//   restarts add `--resume latest` (or replace `--resume X`) once RUN/latest exists.
//   SIGTERM/SIGINT to the supervisor: forwarded to the child's group; no restart.
//   RUN/incidents.jsonl: one JSON object per incident (crash, hang, restart, giveup, stop).
#ifndef KILN_SUPERVISE_H
#define KILN_SUPERVISE_H

#include "kiln/core.h"

#include <stdio.h>

typedef struct {
    char run_dir[1024];          // RUN: heartbeat, latest, incidents.jsonl
    int max_restarts;            // restarts allowed within budget_window_s (default 5)
    double budget_window_s;      // sliding window for max_restarts; 0 = over the whole run (default 3600)
    double heartbeat_timeout_s;  // silent this long => hung; counted from the start too (default 300)
    double kill_grace_s;         // SIGTERM .. SIGKILL of a hung child (default 30)
    double backoff_initial_s;    // wait before the first restart in the window (default 5)
    double backoff_max_s;        // the wait doubles per restart in the window up to this (default 300)
    const char *before_restart;  // /bin/sh -c command run before each restart; non-zero exit gives up
    FILE *log;                   // one line per event; NULL for silence
} KilnSuperviseOptions;

void supervise_defaults(KilnSuperviseOptions *o);

// Runs argv (argv[0] looked up in PATH) under supervision until it finishes,
// stops, or the budget runs out. Returns 0 when the child's own exit decided the
// outcome: *exit_code is then 0, 2, 75, 126, 127, or the child's code after a
// forwarded SIGTERM/SIGINT (128+signal if it died of one). Returns -1 with err
// set and *exit_code = 1 when the supervisor gave up (restart budget spent,
// before_restart failed) or could not work (fork, exec, unwritable RUN).
// SIGTERM and SIGINT handlers are installed for the duration and restored.
int supervise_run(const KilnSuperviseOptions *o, char *const argv[], int *exit_code, KilnErr *err);

// ---------------------------------------------------------------- parts, for tests
// The wait before a restart when k restarts already happened in the window:
// min(backoff_initial_s * 2^k, backoff_max_s).
double supervise_backoff(const KilnSuperviseOptions *o, int k);

// The arguments of a restart: argv with `--resume X` / `--resume=X` replaced by
// `--resume latest`, or `--resume latest` appended when absent. out gets
// pointers into argv and to static strings, NULL-terminated; cap is its length.
// Returns the argument count, -1 when cap is too small.
int supervise_resume_args(char *const argv[], const char **out, int cap);

#endif
