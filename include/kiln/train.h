// train.h: the pretraining loop: shards -> batches -> forward/backward -> AdamW,
// with validation and checkpoints.
#ifndef KILN_TRAIN_H
#define KILN_TRAIN_H

#include "kiln/checkpoint.h"
#include "kiln/config.h"
#include "kiln/model.h"
#include "kiln/shard.h"

typedef struct {
    const char *resume;  // checkpoint directory, or NULL to start fresh
    FILE *log;           // progress lines; NULL for silence
} KilnPretrainOptions;

int pretrain_run(const KilnConfig *cfg, const KilnPretrainOptions *opt, KilnErr *err);

// Mean loss over the loader's batches (all of them if max_batches is 0), from its start.
int evaluate_loss(KilnModel *m, KilnLoader *val, int max_batches, double *loss, KilnErr *err);

#endif
