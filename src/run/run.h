// run.h: the trainer's state and the parts of `kiln pretrain` that its
// files share (internal to src/run):
//   pretrain.c  the run manager: start, resume, the step loop, the spike guard,
//               the control file, evaluations, checkpoints, metrics, progress
//   step.c      one step's forward and backward passes over the ranks and
//               the sums of the gradients (data, tensor, pipeline parallel; ZeRO)
//   layout.c    where the model's state lives across ranks: ZeRO's shards of
//               the moments and the model-parallel shares, gathered on rank 0
//               for checkpoints and evaluations and shared out from it
//   async.c     asynchronous SGD: a parameter server and its workers
//   pipeline.c  the 1F1B schedule of a pipeline stage
#ifndef KILN_RUN_RUN_H
#define KILN_RUN_RUN_H

#include "kiln/core.h"
#include "kiln/eval.h"
#include "kiln/guard.h"
#include "kiln/manifest.h"
#include "kiln/toxicity.h"
#include "kiln/train.h"

#include "dist/comm.h"
#include "run/kernels.h"
#include "run/track.h"
#include "train/loader.h"

#include <stdio.h>

// A rank's part of a sharded checkpoint, as rank 0 hears of it.
typedef struct {
    int failed;
    char sha[65];
    KilnShardInfo si;
} ShardRecord;

typedef struct {
    KilnComm comm;          // the job's ranks (one without mpirun)
    // world rank = (pp rank x dp + dp rank) x tp + tp rank: a replica's
    // tensor-parallel ranks are neighbours (the same node), its pipeline
    // stages farthest apart, as Megatron-LM places them
    KilnComm dpc;           // the data-parallel group: the ranks that hold the same share of the model
    KilnComm tpc;           // the tensor-parallel group: one stage of one replica
    KilnComm ppc;           // the pipeline: one replica's stages for one tensor-parallel rank, ranked by stage
    KilnComm mpc;           // the model-parallel group: all of one replica's ranks (tp x pp), for checkpoints
    KilnComm embc;          // pp > 1 with a tied head: the first and last stages, which both hold the embedding
    int dp, tp, pp, mp;     // the groups' sizes (mp = tp x pp)
    KilnModel full;         // mp > 1, on rank 0: the whole model, which checkpoints and evaluations read
    float *sharebuf;        // mp > 1, on rank 0: another rank's share in passing (the largest share's size)
    ShardRecord *shard_recs;         // rank 0: every rank's part of a sharded checkpoint
    KilnShardInfo *shard_parts;
    char (*shard_shas)[65];
    float *mvbuf;           // mp > 1 with ZeRO, on replica 0's ranks: this share's whole moments (2 x P)
    int32_t *pipe_tok, *pipe_tgt;  // pp > 1: the step's micro-batches of this replica (grad_accum x B x T)
    int *pipe_micro;        // and their numbers in the step
    int pipe_n;
    double pipe_wait_s;     // pp > 1: the last step's time waiting for the other stages
    double bubble_since_log;  // the sum of the steps' bubble fractions since the last progress line
    int writer;             // rank 0: the one that writes and reads files of the run directory
    int zero;               // ZeRO-1: each rank holds and updates its shard of the optimizer state; 2: and of
                            // the gradients
    int async;              // parallel.mode async: rank 0 serves weights, the others send gradients
    float *gshard;          // ZeRO: this rank's shard of the summed gradients (m.opt_n; the model's gopt)
    float *gpiece;          // ZeRO-2: a tensor's piece of it in passing
    const KilnConfig *cfg;  // = &cfg_own
    KilnConfig cfg_own;     // the caller's config, with a resumed run's schedule extension settled
    char extend_note[512];  // what a resume does to the learning rate, said once at start
    const KilnPretrainOptions *opt;
    const char *dir;        // the run directory (out_dir)
    int lock_fd;            // RUN/lock, held while we run; -1 before
    KilnTrainConfig live;   // cfg->train with the live settings of st applied
    KilnModel m;
    KilnLoader train, val;
    int have_val;
    KilnTrainState st;
    KilnTracker tr;
    int have_tracker;
    KilnManifest *manifest;  // beside the training shards, to name documents; may be NULL
    KilnTask **tasks;        // eval.tasks, scored every eval.every steps
    int ntasks;
    KilnToxOptions *tox;     // eval.tasks that are toxicity task files
    int ntox;
    KilnCodec codec;
    KilnTokenizer *tokenizer;
    int32_t *tok, *tgt;      // one micro-batch (B,T)
    int *rows_shard;         // where this step's rows came from: (grad_accum*B)
    long *rows_start;
    int nrows;
    int consumed_skip;       // the skipped step whose batches were already thrown away
    int want_checkpoint, want_eval, want_stop;
    double peak_flops, flops_per_token;
    char peak_label[48];     // the peak MFU is against, named in the progress line
    KilnKernelNotes kernels; // what runs the matmuls, and why (run/kernels.c)
    double rss_mb_since_log;  // the highest step peak of resident memory since the last progress line
    double comm_s_since_log;  // time in collectives since the last progress line
    double t_ckpt, t_beat, t_log, t_bar;
    int steps_since_log;
    int tty;
    FILE *log;
} Run;

// ZeRO-1: the model's moments pointed at whole-layout buffers on rank 0 for
// a checkpoint's write or read, and back.
typedef struct {
    float *m, *v;
    long lo, n;
} Moments;

Moments run_moments_swap(KilnModel *m, Moments x);

// ---- pretrain.c ----
void run_say(Run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));  // a progress line (rank 0)
double run_wall_now(void);
int run_event(Run *r, const char *kind, const char *detail, KilnErr *err);  // an event in metrics.jsonl
void run_heartbeat(Run *r, int force);
void run_next_micro_batch(Run *r);  // the loader's next micro-batch into r->tok, r->tgt
int run_read_control(Run *r, int signalled, KilnErr *err);
int run_eval(Run *r, KilnErr *err);
int run_save_checkpoint(Run *r, const char *why, KilnErr *err);
// The update from the gradients (their batch's mean loss: loss) and the step's
// records; t0: when the step began. extra: metrics the caller adds.
// 0, or 1 when a spike was handled instead.
int run_apply_step(Run *r, int micro, double loss, double t0, const KilnMetric *extra, int nextra, KilnErr *err);
int run_after_step(Run *r, KilnErr *err);  // evaluations and checkpoints due after a step

// ---- step.c ----
// Forward and backward over this step's micro-batches; their mean loss in *loss.
int run_forward_backward(Run *r, int micro_batches, double *loss, KilnErr *err);
double run_grad_norm(Run *r);  // of the gradients summed over the ranks
void run_tp_allreduce(void *ctx, float *x, long n, int max);  // the model's KilnTensorParallel sum

// ---- layout.c ----
KilnModel *run_whole(Run *r);  // the model checkpoints and evaluations read (rank 0's whole one)
void run_share_plan(const Run *r, int j, KilnModel *plan);
void run_share_gather(Run *r);
void run_share_distribute(Run *r, int moments);
int run_load_sharded(Run *r, const char *path, KilnErr *err);
int run_load_shares(Run *r, const char *path, KilnErr *err);
KilnShardInfo run_part(const Run *r);  // this rank's part of a sharded checkpoint

// ---- async.c ----
int run_async_server(Run *r, KilnErr *err);
int run_async_worker(Run *r, KilnErr *err);

#endif
