// model.h: a decoder-only transformer (GPT-2 and Llama families from one code path).
// Parameters, gradients, AdamW moments and activations are planned once from the
// config and allocated in one go; forward and backward walk the layers in order.
#ifndef KILN_MODEL_H
#define KILN_MODEL_H

#include "kiln/config.h"
#include "kiln/core.h"

#include <stdint.h>

// Parameter tensors; per-layer ones are stored for all layers back to back.
typedef enum {
    PT_WTE,       // (V,C) token embedding
    PT_WPE,       // (maxT,C) learned positions
    PT_LN1W,      // (L,C)
    PT_LN1B,      // (L,C)
    PT_QKVW,      // (L,(NH+2NKV)*HD,C) q, k, v projections stacked
    PT_QKVB,      // (L,(NH+2NKV)*HD)
    PT_ATTPROJW,  // (L,C,C)
    PT_ATTPROJB,  // (L,C)
    PT_LN2W,      // (L,C)
    PT_LN2B,      // (L,C)
    PT_FCW,       // (L,F,C), F = H or 2H (SwiGLU: gate rows, then up rows)
    PT_FCB,       // (L,F)
    PT_FCPROJW,   // (L,C,H)
    PT_FCPROJB,   // (L,C)
    PT_LNFW,      // (C)
    PT_LNFB,      // (C)
    PT_LMHEAD,    // (V,C), absent when tied
    PT_COUNT
} KilnParamId;

typedef struct {
    long size[PT_COUNT];    // floats in the tensor, all layers; 0 when the variant lacks it
    long offset[PT_COUNT];  // into the flat buffer
    int decay[PT_COUNT];    // weight decay applies
    long total;
} KilnParamLayout;

typedef struct {
    float *t[PT_COUNT];  // views into a flat buffer; NULL when absent
} KilnTensors;

// A named, contiguous slice of a flat buffer, as saved in safetensors (HF-style names).
typedef struct {
    char name[96];
    float *data;
    int ndim;
    long shape[2];
    KilnParamId id;
} KilnNamedTensor;

// Per-layer activations are arrays over layers; see gpt.c for each shape.
typedef struct {
    float *encoded;                          // (N,C)
    float *ln1, *ln1_mean, *ln1_rstd;        // (L,N,C), (L,N), (L,N)
    float *qkv;                              // (L,N,QKV) q, k after RoPE
    float *att, *lse;                        // (L,N,C), (L,B,NH,T)
    float *res2;                             // (L,N,C)
    float *ln2, *ln2_mean, *ln2_rstd;        // (L,N,C), (L,N), (L,N)
    float *fch, *fch_act;                    // (L,N,F), (L,N,H)
    float *res3;                             // (L,N,C)
    float *lnf, *lnf_mean, *lnf_rstd;        // (N,C), (N), (N)
    float *logits;                           // (N,V), dlogits in place after training forward
    // backward scratch, reused by every layer
    float *dres, *dln, *dqkv, *datt, *dfch, *dfch_act, *dtmp;
    float *tmp;                              // (N,C) branch output before dropout
    float *att_scratch;                      // per-thread (T,T) blocks
    float *ce_max, *ce_sum;                  // (N) vocabulary-parallel cross-entropy's row statistics
    int32_t *tokens, *targets;               // (N)
} KilnActs;

// Tensor parallelism as Megatron-LM's: each of a group's ranks holds and
// computes its share of the heads (q and their k, v: column-parallel QKV,
// row-parallel output projection), of the MLP's hidden units (column-parallel
// first matmul with SwiGLU's gate and up halves split alike, row-parallel
// second) and of the vocabulary (embedding rows, lm head rows, cross-entropy
// over the shards). Norms, positions and the row-parallel layers' biases are
// whole on every rank and get the same gradients on each.
typedef struct {
    int size, rank;  // 1, 0: the whole model
    // in place over the group: the sum (max 0) or the maximum (max 1); every
    // rank must get the same bits, as MPI's all-reduce gives them
    void (*allreduce)(void *ctx, float *x, long n, int max);
    void *ctx;
} KilnTensorParallel;

// Pipeline parallelism: the stage this rank computes. The blocks are split
// evenly among the stages, the embeddings on the first, the final norm and
// the head on the last (a tied head keeps its own copy of the embedding).
typedef struct {
    int stages, stage;  // 1, 0: the whole model
    int slots;          // activation sets, one per micro-batch in flight (1F1B: stages - stage); 0: 1
} KilnPipeStage;

// One micro-batch's activations and what its backward pass needs of its forward.
typedef struct {
    KilnActs a;
    int B, T, train;
    uint64_t dropout_seed;
} KilnSlot;

typedef struct {
    KilnModelConfig cfg;
    KilnParamLayout layout;
    KilnTensorParallel tp;
    KilnPipeStage pp;
    int l0, nl;              // this stage's blocks: l0 .. l0 + nl - 1 of cfg.n_layer
    int first, last;         // it embeds the tokens; it has the head and the loss
    int HD, QKV, H, F;       // head size, qkv width, MLP hidden, fc output width (this rank's share)
    int NH, NKV, AD;         // this rank's query and kv heads; the attention's output width NH*HD
    int V;                   // this rank's vocabulary rows, [vocab_lo, vocab_lo + V)
    long vocab_lo;
    float *params, *grads;   // layout.total floats each, one allocation (ZeRO-2: grads NULL, see gmem)
    // ZeRO-2 (gpt_shard_grads): gradients never whole. gmem holds the
    // gradients of the tensors that are not per block (embeddings, final
    // norm, head: gfix_n floats, views in g) and one block's (gblk_n floats,
    // views in gb, reused block after block: each goes to grad_ready as the
    // block's backward pass ends)
    float *gmem;
    long gfix_n, gblk_n;
    KilnTensors gb;
    // the gradients the optimizer reads: gopt[i - opt_lo] is parameter i's
    // (grads + opt_lo, or under ZeRO the caller's summed shard)
    float *gopt;
    // the optimizer's moments for [opt_lo, opt_lo + opt_n) of the layout: all of
    // it, or under ZeRO this rank's shard (m[i - opt_lo] is parameter i's)
    float *m, *v;
    long opt_lo, opt_n;
    KilnTensors p, g;
    float *wbf;              // train.precision bf16: the matmul weights rounded to bf16 (layout of params)
    struct KilnBf16Gemm *bk; // bf16's linear layers in bf16 instructions (gpt_bf16_kernels); NULL: an sgemm
    unsigned char sgemm_onednn[3];  // per product (forward, input and weight gradients): oneDNN's sgemm, else OpenBLAS's
    KilnTensors pb;          // views of wbf
    int maxB, maxT;          // activation plan
    int B, T;                // shape of the last forward
    int nthreads;
    KilnActs a;              // the current slot's (gpt_slot)
    KilnSlot *slot_acts;     // pp.slots of them
    int slot;
    float *acts_mem;
    long acts_floats;            // acts_mem's size (activations, scratch, RoPE tables)
    float *rope_cos, *rope_sin;  // (block_size, HD/2)
    uint64_t dropout_seed;       // masks of the last training forward
    // Called by gpt_backward with each gradient as soon as it is final (the
    // head's, each block's slice of every per-layer tensor, last the
    // embeddings'), so that a caller can send it while the pass goes on
    // (data parallelism); offset: where the n floats sit in the layout.
    // NULL: not called.
    void (*grad_ready)(void *ctx, float *grad, long offset, long n);
    void *grad_ready_ctx;
    int train;                   // last forward computed dlogits
    double loss;  // mean cross-entropy of the last forward with targets
} KilnModel;

// Plans and allocates everything for micro-batches up to (maxB, maxT).
int gpt_create(KilnModel *m, const KilnModelConfig *cfg, int maxB, int maxT, KilnErr *err);
// The same for rank tp->rank's share of pipeline stage pp->stage (tp, pp
// NULL: the whole model). Errors name the key that tp->size or pp->stages
// must divide.
int gpt_create_share(KilnModel *m, const KilnModelConfig *cfg, int maxB, int maxT, const KilnTensorParallel *tp,
                     const KilnPipeStage *pp, KilnErr *err);
// Only the dimensions and the parameter layout of that share (no memory):
// what rank 0 needs to place another rank's share in the whole model.
int gpt_plan(KilnModel *m, const KilnModelConfig *cfg, const KilnTensorParallel *tp, const KilnPipeStage *pp,
             KilnErr *err);
// Makes slot i's activations the current ones: the next gpt_forward fills
// them, gpt_backward reads those of the forward that filled them.
void gpt_slot(KilnModel *m, int i);
// A pipeline stage's borders, in the current slot (N,C): the input a stage
// after the first receives before gpt_forward, its output after it, and the
// gradient of its output, which gpt_backward of a stage before the last finds
// there and leaves as the gradient of the input for the stage before.
float *gpt_stage_input(KilnModel *m);
float *gpt_stage_output(KilnModel *m);
float *gpt_stage_grad(KilnModel *m);
// Between a share (shard, laid out as m's parameters: m is the share's plan,
// its pipeline stage's blocks, with k its tensor-parallel rank) and the whole
// model's buffer (whole, laid out as full's): to_whole 1 copies the share into
// its place, 0 takes it out. Tensors that tensor parallelism does not split
// are copied whole (a stage's blocks of them).
void gpt_share_copy(const KilnModel *m, int k, float *shard, const KilnModel *full, float *whole, int to_whole);
// Tensor id is split among the tensor-parallel ranks (else each holds it whole).
int gpt_tp_split(KilnParamId id);
// ZeRO: m and v for [lo, hi) of the layout only, zeroed (fresh optimizer state).
int gpt_shard_optimizer(KilnModel *m, long lo, long hi, KilnErr *err);
// ZeRO-2: gives up the whole gradient buffer for gmem (above); the caller
// takes each block's gradients in grad_ready, on every micro-batch, and the
// rest from g after the step's last backward pass.
int gpt_shard_grads(KilnModel *m, KilnErr *err);
void gpt_destroy(KilnModel *m);
// train.precision bf16: the linear layers' matmuls in bf16 instructions (on)
// or on the fp32 sgemm with bf16-rounded operands (off). -1 with err set when
// this build or CPU has no bf16 kernels. The attention's per-head products
// stay on the sgemm either way (T x T x head-size: too small to gain).
int gpt_bf16_kernels(KilnModel *m, int on, KilnErr *err);
// Which sgemm runs each of the linear layers' products (forward, input
// gradient, weight gradient): oneDNN's where bit i of mask is set (as
// kiln_sgemm_mask gives it), else OpenBLAS's (the default). -1 with err set
// when this build has no oneDNN.
int gpt_sgemm_libs(KilnModel *m, int mask, KilnErr *err);
void gpt_init_weights(KilnModel *m, uint64_t seed);  // scheme cfg.init (init.c)
long gpt_num_params(const KilnModel *m);  // the whole model's, also on a tensor-parallel share
// What gpt_create allocated, in bytes: weights, gradients, optimizer moments
// (m and v), activations with their scratch for (maxB, maxT), and with
// precision bf16 the weights' bf16 copies (in fp32 slots).
typedef struct {
    double weights, grads, optim, acts, bf16_weights;
} KilnMemPlan;
KilnMemPlan gpt_memory_plan(const KilnModel *m);
double gpt_flops_per_token(const KilnModel *m, int T);  // forward+backward, PaLM-style, the whole model's

// tokens, targets (B,T); targets may be NULL (logits only) and entries < 0 are ignored.
// dloss != 0 marks a training forward: dropout is on (seeded by dropout_seed) and
// the logits are replaced by dloss * dlogits, ready for gpt_backward.
int gpt_forward(KilnModel *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                float dloss, uint64_t dropout_seed, KilnErr *err);
void gpt_zero_grad(KilnModel *m);
void gpt_backward(KilnModel *m);  // adds into m->grads

// HF-style named views of a flat buffer laid out like params (params, grads, m, v).
// Returns the count; out may be NULL to count only.
int gpt_named_tensors(const KilnModel *m, float *base, KilnNamedTensor *out);
KilnTensors gpt_views(const KilnModel *m, float *base);

#endif
