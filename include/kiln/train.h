// train.h: the pretraining loop: shards -> batches -> forward/backward -> AdamW,
// with validation and checkpoints.
#ifndef KILN_TRAIN_H
#define KILN_TRAIN_H

#include "kiln/checkpoint.h"
#include "kiln/config.h"
#include "kiln/model.h"

#include <signal.h>

typedef struct {
    const char *resume;     // checkpoint directory, "latest" (newest good one of out_dir), or NULL
    const char *init_from;  // warm start: weights of this checkpoint, fresh optimizer and schedule
    FILE *log;              // progress lines; NULL for silence; a terminal gets a progress bar
    // set asynchronously (signal handlers): stop after this step with a checkpoint;
    // read the control file now (or, if there is none, checkpoint now)
    volatile sig_atomic_t *stop_requested, *control_requested;
    int argc;               // the command line, recorded in RUN/env.json
    char **argv;
} KilnPretrainOptions;

// What pretrain_run returns besides 0 (finished): a stop with a checkpoint
// (signal or control file), a runtime failure, bad input (config, data,
// checkpoint that does not fit: restarting cannot help).
enum { KILN_TRAIN_DONE = 0, KILN_TRAIN_STOPPED = 1, KILN_TRAIN_FAILED = -1, KILN_TRAIN_BAD_INPUT = -2 };

int pretrain_run(const KilnConfig *cfg, const KilnPretrainOptions *opt, KilnErr *err);

#endif
