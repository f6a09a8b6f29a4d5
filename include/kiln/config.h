// config.h: the run configuration, read from YAML with --set overrides.
//   model:  the transformer's shape and variant
//   train:  optimiser, schedule, batch and logging
//   data:   token shards
// Every key is listed once in a table (config.c); unknown keys and values of the
// wrong type are errors that name the key and where it came from.
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include "kiln/core.h"

typedef enum { KILN_POS_LEARNED, KILN_POS_ROPE } KilnPos;
typedef enum { KILN_NORM_LAYERNORM, KILN_NORM_RMSNORM } KilnNorm;
typedef enum { KILN_ACT_GELU, KILN_ACT_GELU_ERF, KILN_ACT_RELU, KILN_ACT_SWIGLU } KilnAct;
// Weight-init scheme (gpt_init_weights) and optimizer (optimizer_step in optim.h).
typedef enum { KILN_INIT_GPT2, KILN_INIT_SMALL, KILN_INIT_TFIXUP } KilnInit;
typedef enum { KILN_OPT_ADAMW, KILN_OPT_SGD, KILN_OPT_LION } KilnOptimizer;
// Learning-rate shape after the linear warmup (see lr_at in optim.h).
typedef enum { KILN_LR_COSINE, KILN_LR_LINEAR, KILN_LR_STEP, KILN_LR_INV_SQRT, KILN_LR_WSD, KILN_LR_CONSTANT } KilnLrSchedule;
typedef enum { KILN_RAMP_LINEAR, KILN_RAMP_STEP } KilnBatchRamp;
// Matmul precision (train.precision): bf16 rounds every matmul's operands to
// bf16 and sums in fp32, as torch.autocast("cpu", torch.bfloat16); weights,
// optimizer state, norms, softmax and the loss stay fp32.
typedef enum { KILN_PREC_FP32, KILN_PREC_BF16 } KilnPrecision;
// What runs bf16's matmuls (train.bf16_kernels): auto races the two on the
// model's shapes at start (a resumed run keeps its checkpoint's choice);
// sgemm: the fp32 sgemm on bf16-rounded operands; onednn: bf16 instructions.
typedef enum { KILN_BF16K_AUTO, KILN_BF16K_SGEMM, KILN_BF16K_ONEDNN } KilnBf16Kernels;
// Which sgemm runs each product class of the linear layers (train.sgemm):
// 0 auto (this machine's verdict for the model's shapes, src/run/kernels.c),
// 1 + mask for the triple "forward,input-gradient,weight-gradient" of
// openblas | onednn (bit i set: class i on oneDNN), and the shorthands
// KILN_SGEMM_OPENBLAS and KILN_SGEMM_ONEDNN for all three.
#define KILN_SGEMM_AUTO 0
#define KILN_SGEMM_OPENBLAS 9
#define KILN_SGEMM_ONEDNN 10
// The class mask of a train.sgemm value; -1 for auto.
static inline int kiln_sgemm_mask(int v) {
    return v == KILN_SGEMM_AUTO ? -1 : v == KILN_SGEMM_OPENBLAS ? 0 : v == KILN_SGEMM_ONEDNN ? 7 : v - 1;
}
// A resumed run given more train.steps than its checkpoint was planned for:
// hold the LR the original schedule ended at, decay the extension's last
// wsd_decay_frac linearly to min_lr, or re-plan the schedule over the new steps.
typedef enum { KILN_EXTEND_CONSTANT, KILN_EXTEND_DECAY, KILN_EXTEND_STRETCH } KilnExtend;
// What the spike guard does when the loss or gradient norm jumps (see guard.h).
#define KILN_SPIKE_WINDOW_MAX 1024
// Upper bounds on the size keys, far above any model this trains on one machine.
// They keep every derived size (ffn_hidden, the tensor and activation plans in
// gpt.c) inside 64-bit arithmetic, so an absurd value is refused by name
// instead of overflowing into a negative size or a bogus allocation.
#define KILN_MAX_N_EMBD (1 << 20)
#define KILN_MAX_FFN_HIDDEN (1 << 22)
#define KILN_MAX_N_LAYER (1 << 14)
#define KILN_MAX_VOCAB (1 << 24)
#define KILN_MAX_BLOCK (1 << 24)
#define KILN_MAX_BATCH (1 << 24)
#define KILN_MAX_BATCH_TOKENS (1L << 30)  // batch_size x seq_len: tokens of one micro-batch
typedef enum { KILN_SPIKE_ROLLBACK, KILN_SPIKE_SKIP, KILN_SPIKE_STOP } KilnSpikeAction;
// parallel.mode: every rank in step (sync), or a parameter server and workers (async)
typedef enum { KILN_PAR_SYNC, KILN_PAR_ASYNC } KilnParMode;

typedef struct {
    int vocab_size;
    int block_size;   // longest sequence (positions)
    int n_layer;
    int n_head;
    int n_kv_head;    // < n_head: grouped-query attention; 0 means n_head
    int n_embd;
    int ffn_hidden;   // 0: 4*n_embd, or for SwiGLU 8/3*n_embd rounded up to 64
    KilnPos pos;
    KilnNorm norm;
    KilnAct act;
    int bias;         // biases on linear layers and LayerNorm
    int tied;         // lm_head shares the token embedding
    float dropout;
    float norm_eps;
    float rope_theta;
    float init_std;
    KilnInit init;
    int recompute;    // not a model key: train.recompute, which the trainer passes in
    KilnPrecision precision;  // not a model key either: train.precision
    KilnBf16Kernels bf16_kernels;  // nor this: train.bf16_kernels (auto counts as sgemm here)
} KilnModelConfig;

typedef struct {
    int batch_size;   // sequences per micro-batch
    int seq_len;      // tokens per sequence (<= model.block_size)
    int grad_accum;   // micro-batches per optimizer step
    int steps;
    float lr;
    float min_lr;
    int warmup_steps;
    int decay_steps;  // the decay from lr to min_lr ends here; 0 means steps
    KilnLrSchedule schedule;
    int step_every;        // step schedule: multiply by step_factor every step_every steps
    float step_factor;
    float wsd_decay_frac;  // WSD: the last fraction of decay_steps decays linearly to min_lr
    KilnExtend extend;     // a resume past the planned steps (see KilnExtend)
    int extend_from;       // the planned steps an extension started from; 0: none (set at resume)
    float extend_lr;       // the lr the planned schedule ended at, which the extension continues from
    KilnOptimizer optimizer;
    float beta1, beta2, eps;  // AdamW; Lion mixes with beta1 and keeps momentum with beta2
    float momentum;        // SGD
    int nesterov;          // SGD
    float weight_decay;
    int decay_embeddings;  // weight decay on embeddings too (nanoGPT does this)
    float l1, l2;          // penalties on the weight-decayed tensors, added to their gradients
    float grad_clip;       // global-norm clip; 0 disables
    unsigned long long seed;
    int log_every;
    int eval_every;        // 0: only at the end
    int eval_batches;      // 0: the whole validation split
    int checkpoint_every;  // 0: only at the end
    float checkpoint_minutes;  // also every this many minutes; 0: off
    int keep_last;         // checkpoints kept besides milestones; 0: all
    int keep_every;        // milestones: checkpoints at multiples of this step are never removed
    // batch-size ramp: the global batch grows from batch_ramp_start tokens to
    // grad_accum*batch_size*seq_len over the first batch_ramp_tokens tokens
    unsigned long long batch_ramp_start, batch_ramp_tokens;
    KilnBatchRamp batch_ramp;
    int batch_ramp_stages;     // step ramp: number of equal increments
    // spike guard: z-scores of loss and gradient norm over a window of recent steps
    float spike_z, spike_grad_z;  // 0: that check is off; either on also catches NaN/Inf
    int spike_window, spike_min_history;
    KilnSpikeAction spike_action;
    int spike_skip_steps;      // steps of batches skipped, ending at the spike
    float spike_lr_factor;     // learning-rate multiplier applied at each spike
    int spike_max;             // spikes handled before the run stops
    float peak_tflops;         // for MFU; 0: the larger of the theoretical and a measured sgemm peak
    int threads;           // 0: OMP_NUM_THREADS or all cores
    int recompute;         // keep only each block's output; recompute the rest in backward
    KilnPrecision precision;  // fp32 | bf16 matmuls
    KilnBf16Kernels bf16_kernels;
    int sgemm;                // train.sgemm (kiln_sgemm_mask)
} KilnTrainConfig;

typedef struct {
    char train[1024];  // shard path or glob
    char val[1024];    // shard path or glob; empty: no validation
    int shuffle;       // seeded shuffle of shards and sequences, fresh each epoch
} KilnDataConfig;

// Benchmarks scored during pretraining (kiln eval's tasks), logged as
// eval/<task>/<metric> in metrics.jsonl and TensorBoard.
typedef struct {
    char tasks[512];       // comma-separated task names or files; empty: none
    int every;             // steps between evaluations; 0: at the end only
    int limit;             // items per task; 0: all
    int shots;             // -1: each task's default
    char tokenizer[1024];  // the model's tokenizer file or "bytes"; empty: from the shards' manifest
    char task_dir[1024];   // empty: as kiln eval ($KILN_TASKS, ./tasks, tasks/ beside kiln)
    char data_dir[1024];   // empty: ../shared/data
} KilnEvalConfig;

// How the ranks of an MPI job (mpirun -np N kiln pretrain ...) share the work.
typedef struct {
    int dp;           // data-parallel ranks; 0: all of them (over tp)
    int tp;           // tensor-parallel ranks per replica (Megatron-LM's splits); 1: none
    int pp;           // pipeline stages per replica (the blocks split evenly, 1F1B); 1: none
    int zero;         // 1: ZeRO-1, the optimizer state sharded over the data-parallel ranks; 2: the gradients too
    KilnParMode mode;  // async: rank 0 a parameter server, the others workers
    int staleness;    // async: a gradient computed on weights older than this many updates is dropped
    float timeout_s;  // longest wait for the other ranks (with rank 0's heartbeat as old); 0: forever
} KilnParallelConfig;

typedef struct {
    KilnModelConfig model;
    KilnTrainConfig train;
    KilnDataConfig data;
    KilnEvalConfig eval;
    KilnParallelConfig parallel;
    char out_dir[1024];
} KilnConfig;

void kiln_config_defaults(KilnConfig *cfg);
// Reads a YAML file of nested mappings; keys as in the table, e.g. model.n_layer.
int kiln_config_load_yaml(KilnConfig *cfg, const char *path, KilnErr *err);
int kiln_config_load_yaml_string(KilnConfig *cfg, const char *text, size_t len, const char *name,
                                 KilnErr *err);
// Applies "key=value" (from --set); origin names where it came from in errors.
int kiln_config_set(KilnConfig *cfg, const char *key, const char *value, const char *origin,
                    KilnErr *err);
// Fills derived defaults (n_kv_head, ffn_hidden, decay_steps) and checks ranges.
int kiln_config_finalize(KilnConfig *cfg, KilnErr *err);
// Writes the whole config as YAML (also used inside checkpoint state).
void kiln_config_write_yaml(const KilnConfig *cfg, FILE *f);
// The name of value for an enum key ("model.act", 2 -> "relu"); "?" when the key
// is not an enum or the value is out of range.
const char *kiln_config_enum_name(const char *key, int value);
// Prints every key with its type and default: the reference for `kiln help config`.
void kiln_config_print_keys(FILE *f);

#endif
