// checkpoint.h: a checkpoint is a directory written whole or not at all:
//   RUN/ckpt-00000100/model.safetensors      weights, HF-style names
//   RUN/ckpt-00000100/optimizer.safetensors  AdamW moments (exp_avg.*, exp_avg_sq.*)
//   RUN/ckpt-00000100/state.json             step, tokens, loader position, live settings,
//                                            spike-guard window, config, commit, and the
//                                            sha256 of both safetensors files
//   RUN/ckpt-00000100/state.json.sha256      sha256 of state.json (absent before issue 12:
//                                            such a checkpoint is accepted with a warning)
// or, sharded (tensor or pipeline parallelism, ZeRO), model.safetensors, the ranks'
// shard-RANK.safetensors parts and state.json naming them (see KilnShardInfo below).
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
// Sharded checkpoints (runs with tensor or pipeline parallelism or ZeRO): the
// directory holds model.safetensors (the whole model's weights, which every
// reader of a checkpoint takes) written by rank 0, one part per rank with
// something of its own (shard-RANK.safetensors: its share's weights as one
// flat "params" tensor when it is its share's first replica, and the moments
// it holds as "exp_avg", "exp_avg_sq"), and state.json naming the layout and
// every part with its sha256 (the manifest). A run of the same layout reads
// back each rank's own part; any other reader (another layout, one process,
// kiln eval) reads the whole weights and assembles the moments from the parts.
typedef struct {
    int dp, tp, pp, zero;               // the layout
    int rank, dp_rank, tp_rank, stage;  // the part's rank and its place
    int has_params;                     // holds its share's weights
    long opt_lo, opt_n;                 // the moments it holds: [opt_lo, opt_lo + opt_n) of its share's layout
} KilnShardInfo;

// Rank 0: a fresh temp directory for step's checkpoint (tmp, n bytes), which
// every rank then writes its part into.
int checkpoint_begin(const char *run_dir, int step, char *tmp, size_t n, KilnErr *err);
// Rank 0: the whole model's weights into tmp.
int checkpoint_write_weights(const char *tmp, const KilnConfig *cfg, const KilnModel *m, KilnErr *err);
// A rank's part from its share m (the moments: m's m and v, opt_n of them);
// sha (65 bytes) gets the file's sha256. Refuses non-finite values.
int checkpoint_write_shard(const char *tmp, const KilnModel *m, const KilnShardInfo *si, char *sha, KilnErr *err);
// Rank 0, once every part is written: state.json with the layout and the
// parts (parts[i] and shas[i] for each of nparts ranks; those with nothing are
// left out), then tmp installed as RUN/ckpt-<step> and RUN/latest.
int checkpoint_commit_shards(const char *run_dir, const char *tmp, const KilnConfig *cfg, const KilnTrainState *st,
                             const KilnShardInfo *parts, char (*shas)[65], int nparts, char *path, KilnErr *err);
// Throws tmp away (a part failed).
void checkpoint_abort(const char *tmp);
// A sharded checkpoint's layout into *layout (dp, tp, pp, zero): 0; 1 when it
// is a whole-model checkpoint; -1 on error.
int checkpoint_layout(const char *ckpt_dir, KilnShardInfo *layout, KilnErr *err);
// The same from the text of a state.json (name: for messages), with the count of parts.
int checkpoint_parse_layout(const char *text, size_t len, const char *name, KilnShardInfo *layout, int *nparts,
                            KilnErr *err);
// A rank of the layout the checkpoint was written with reads its own share's
// weights (and with_optimizer, its moments: m's opt_lo, opt_n) from the parts.
int checkpoint_load_shard(const char *ckpt_dir, KilnModel *m, const KilnShardInfo *si, int with_optimizer,
                          KilnErr *err);

// Reads state.json of a checkpoint directory: the config it was trained with and its state.
int checkpoint_read_state(const char *ckpt_dir, KilnConfig *cfg, KilnTrainState *st, KilnErr *err);
// The same from the text of a state.json; name is used in messages.
int checkpoint_parse_state(const char *text, size_t len, const char *name, KilnConfig *cfg,
                           KilnTrainState *st, KilnErr *err);
// Loads weights (and AdamW moments if with_optimizer) into a model created
// from that config (a sharded checkpoint's moments assembled from its parts).
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
