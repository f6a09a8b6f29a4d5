// checkpoint.h: a checkpoint is a directory written whole or not at all:
//   RUN/ckpt-00000100/model.safetensors      weights, HF-style names
//   RUN/ckpt-00000100/optimizer.safetensors  AdamW moments (exp_avg.*, exp_avg_sq.*)
//   RUN/ckpt-00000100/state.json             step, tokens, loader position, live settings,
//                                            spike-guard window, config, commit, and the
//                                            sha256 of both safetensors files
//   RUN/ckpt-00000100/state.json.sha256      sha256 of state.json (absent before issue 12:
//                                            such a checkpoint is accepted with a warning)
// It is built in a fresh RUN/.ckpt-00000100-<random>.tmp (made exclusively, so a planted
// link is never followed), fsync'd, then renamed; RUN/latest names the newest.
// Randomness needs no saved stream: dropout masks and the loader's permutations are
// pure functions of (train.seed, step, micro-batch) and (seed, epoch, shard).
#ifndef KILN_CHECKPOINT_H
#define KILN_CHECKPOINT_H

#include "kiln/config.h"
#include "kiln/guard.h"
#include "kiln/model.h"

#define KILN_MAX_SKIPS 1024

typedef struct {
    int step;                 // optimizer steps taken
    long long tokens_seen;
    int loader_shard;
    long loader_pos;
    long loader_epoch;
    float val_loss;           // last validation loss, NAN if none
    double train_seconds;     // wall time spent in training steps, over all resumes
    // live settings: the config's values, changed by the control file and the spike guard
    float lr_mult;
    float weight_decay, grad_clip;
    int optimizer;            // KilnOptimizer
    int act;                  // KilnAct
    int opt_step;             // updates since the optimizer's state was last reset
    // spike guard
    KilnGuardWindow guard;
    int spikes;               // spikes handled so far
    // steps that throw away skip_count[i] steps' worth of batches before they
    // train (one more for each spike there), sorted by step
    int nskip;
    int skip_step[KILN_MAX_SKIPS], skip_count[KILN_MAX_SKIPS];
} KilnTrainState;

// The state a fresh run starts from: settings from the config, nothing seen.
void train_state_init(KilnTrainState *st, const KilnConfig *cfg);
// How many steps' worth of batches step throws away before it trains (0: none).
int train_state_skips(const KilnTrainState *st, int step);
// Adds count to step's entry in the skip list; -1 when the list is full.
int train_state_add_skip(KilnTrainState *st, int step, int count);

// Writes RUN/ckpt-<step>; path (if not NULL, 1024 bytes) receives its directory.
// Refuses (an error) when a weight or optimizer moment is not finite.
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
// Checks a checkpoint directory: state.json matches state.json.sha256 (when there
// is one), parses, and both files match their sha256.
int checkpoint_verify(const char *ckpt_dir, KilnErr *err);
// The newest checkpoint of RUN that verifies: RUN/latest's first, then every
// ckpt-* from the newest down. Each one passed over is described in warn
// (warn_n bytes, "" if none). -1 when no checkpoint verifies.
int checkpoint_find_good(const char *run_dir, char *path, size_t n, char *warn, size_t warn_n, KilnErr *err);
// Removes checkpoints beyond the newest keep_last (0: keep all), sparing
// milestones (steps that are multiples of keep_every) and the one named by RUN/latest.
int checkpoint_prune(const char *run_dir, int keep_last, int keep_every, KilnErr *err);
// A model for inference from a checkpoint directory, or from a run directory
// (its newest good checkpoint): cfg gets the checkpoint's config, m its
// weights (m is created here; gpt_destroy it), resolved (1024 bytes, may be
// NULL) the checkpoint directory used.
int checkpoint_open_model(const char *path, KilnConfig *cfg, KilnModel *m, char *resolved, KilnErr *err);
// 0 when a checkpoint's config has the same model shape as cfg; otherwise an
// error naming the first key that differs.
int checkpoint_same_shape(const KilnModelConfig *saved, const KilnModelConfig *cfg, const char *ckpt_dir,
                          KilnErr *err);

#endif
