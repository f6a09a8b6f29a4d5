// checkpoint.h: a checkpoint is a directory written whole or not at all:
//   RUN/ckpt-00000100/model.safetensors      weights, HF-style names
//   RUN/ckpt-00000100/optimizer.safetensors  AdamW moments (exp_avg.*, exp_avg_sq.*)
//   RUN/ckpt-00000100/state.json             step, tokens, loader position, config, commit
// It is built as RUN/.ckpt-00000100.tmp, fsync'd, then renamed; RUN/latest names the newest.
#ifndef KILN_CHECKPOINT_H
#define KILN_CHECKPOINT_H

#include "kiln/config.h"
#include "kiln/model.h"

typedef struct {
    int step;                 // optimizer steps taken
    long long tokens_seen;
    int loader_shard;
    long loader_pos;
    long loader_epoch;
    float val_loss;           // last validation loss, NAN if none
} KilnTrainState;

// Writes RUN/ckpt-<step>; path (if not NULL, 1024 bytes) receives its directory.
int checkpoint_save(const char *run_dir, const KilnConfig *cfg, const KilnModel *m,
                    const KilnTrainState *st, char *path, KilnErr *err);
// Reads state.json of a checkpoint directory: the config it was trained with and its state.
int checkpoint_read_state(const char *ckpt_dir, KilnConfig *cfg, KilnTrainState *st, KilnErr *err);
// The same from the text of a state.json; name is used in messages.
int checkpoint_parse_state(const char *text, size_t len, const char *name, KilnConfig *cfg,
                           KilnTrainState *st, KilnErr *err);
// Loads weights (and AdamW moments if with_optimizer) into a model created from that config.
int checkpoint_load(const char *ckpt_dir, KilnModel *m, int with_optimizer, KilnErr *err);
// Resolves RUN/latest to a checkpoint directory; returns -1 if there is none.
int checkpoint_latest(const char *run_dir, char *path, size_t n, KilnErr *err);

#endif
