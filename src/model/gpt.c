// gpt.c: the transformer assembled from the backend's layers (backend.h).
// One code path covers GPT-2 (learned positions, LayerNorm, GELU, biases,
// tied) and Llama (RoPE, RMSNorm, SwiGLU, GQA, no biases, untied) and their
// mixtures. Every operation on floats is a backend call.
//
// With train.precision bf16 every matmul takes bf16 operands (backend.h):
// the matmul weights from bf16 copies refreshed at each forward, the
// activations they multiply rounded where they are made (ln1, qkv, att, ln2,
// fch_act, lnf: nothing else reads them unrounded), and the output gradients
// rounded before their matmuls, as autocast's bf16 outputs get bf16 gradients.
//
// Block l, with x = residual in (N,C):
//   ln1  = norm(x)                       (N,C)
//   qkv  = ln1 @ Wqkv^T + b  ; RoPE(q,k)  (N,QKV)
//   att  = causal_attention(qkv)         (N,C)
//   res2 = x + drop(att @ Wo^T + b)      (N,C)
//   ln2  = norm(res2)                    (N,C)
//   fch  = ln2 @ Wfc^T + b               (N,F)
//   fcha = act(fch)                      (N,H)
//   res3 = res2 + drop(fcha @ Wp^T + b)  (N,C) -> next block
//
// A model may be one rank's share (gpt_create_share). Under tensor
// parallelism QKV, H, F and V are this rank's columns and att is (N,AD), AD =
// its heads x HD; the two row-parallel products (att @ Wo^T, fcha @ Wp^T) are
// partial sums, all-reduced over the group (tp_sum) before the residual, as
// are the input gradients of the column-parallel ones before each norm's
// backward. A pipeline stage walks its own blocks l0 .. l0 + nl - 1: the first
// embeds, a later one starts from the activations it received, the last ends
// in the head and the loss.
#include "kiln/model.h"

#include "backend/backend.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static void plan_params(KilnModel *m) {
    const KilnModelConfig *c = &m->cfg;
    long C = c->n_embd, L = m->nl, V = m->V;
    int ln = c->norm == KILN_NORM_LAYERNORM;
    KilnParamLayout *pl = &m->layout;
    memset(pl, 0, sizeof *pl);
    // pipeline stages: the embeddings on the first, the final norm and the
    // head on the last (a tied head: a copy of the embedding there)
    pl->size[PT_WTE] = m->first || (m->last && c->tied) ? V * C : 0;
    pl->size[PT_WPE] = m->first && c->pos == KILN_POS_LEARNED ? (long)c->block_size * C : 0;
    pl->size[PT_LN1W] = L * C;
    pl->size[PT_LN1B] = ln && c->bias ? L * C : 0;
    pl->size[PT_QKVW] = L * m->QKV * C;
    pl->size[PT_QKVB] = c->bias ? L * m->QKV : 0;
    pl->size[PT_ATTPROJW] = L * C * m->AD;
    pl->size[PT_ATTPROJB] = c->bias ? L * C : 0;
    pl->size[PT_LN2W] = L * C;
    pl->size[PT_LN2B] = ln && c->bias ? L * C : 0;
    pl->size[PT_FCW] = L * m->F * C;
    pl->size[PT_FCB] = c->bias ? L * m->F : 0;
    pl->size[PT_FCPROJW] = L * C * m->H;
    pl->size[PT_FCPROJB] = c->bias ? L * C : 0;
    pl->size[PT_LNFW] = m->last ? C : 0;
    pl->size[PT_LNFB] = m->last && ln && c->bias ? C : 0;
    pl->size[PT_LMHEAD] = m->last && !c->tied ? V * C : 0;
    long off = 0;
    for (int i = 0; i < PT_COUNT; i++) {
        pl->offset[i] = off;
        off += (pl->size[i] + 15) & ~15L;  // 64-byte aligned tensors
    }
    pl->total = off;
    pl->decay[PT_QKVW] = pl->decay[PT_ATTPROJW] = pl->decay[PT_FCW] = pl->decay[PT_FCPROJW] = 1;
    pl->decay[PT_LMHEAD] = 1;
}

KilnTensors gpt_views(const KilnModel *m, float *base) {
    KilnTensors t;
    for (int i = 0; i < PT_COUNT; i++)
        t.t[i] = m->layout.size[i] && base ? base + m->layout.offset[i] : NULL;
    return t;
}

// Activation plan: sizes in floats, carved from one allocation in this order.
static long plan_acts(KilnModel *m, KilnActs *a, float *mem) {
    long C = m->cfg.n_embd, L = m->nl, V = m->last ? m->V : 0, AD = m->AD;
    long N = (long)m->maxB * m->maxT, NH = m->NH;
    long off = 0;
#define TAKE(ptr, n)                          \
    do {                                      \
        (ptr) = mem ? mem + off : NULL;       \
        off += ((long)(n) + 15) & ~15L;       \
    } while (0)
    // with recomputation, one layer's worth of everything but the block
    // outputs (res3), which backward recomputes each block from
    long LA = m->cfg.recompute ? 1 : L;
    TAKE(a->encoded, N * C);
    TAKE(a->ln1, LA * N * C);
    TAKE(a->ln1_mean, LA * N);
    TAKE(a->ln1_rstd, LA * N);
    TAKE(a->qkv, LA * N * m->QKV);
    TAKE(a->att, LA * N * AD);
    TAKE(a->lse, LA * m->maxB * NH * m->maxT);
    TAKE(a->res2, LA * N * C);
    TAKE(a->ln2, LA * N * C);
    TAKE(a->ln2_mean, LA * N);
    TAKE(a->ln2_rstd, LA * N);
    TAKE(a->fch, LA * N * m->F);
    TAKE(a->fch_act, LA * N * m->H);
    TAKE(a->res3, L * N * C);
    TAKE(a->lnf, m->last ? N * C : 0);
    TAKE(a->lnf_mean, m->last ? N : 0);
    TAKE(a->lnf_rstd, m->last ? N : 0);
    TAKE(a->logits, N * V);
    TAKE(a->dres, N * C);
    TAKE(a->dln, N * C);
    TAKE(a->dqkv, N * m->QKV);
    TAKE(a->datt, N * AD);
    TAKE(a->dfch, N * m->F);
    TAKE(a->dfch_act, N * m->H);
    TAKE(a->dtmp, N * C);
    TAKE(a->tmp, N * C);
    TAKE(a->att_scratch, attention_scratch_floats(m->maxT, m->nthreads));
    TAKE(a->ce_max, m->tp.size > 1 ? N : 0);
    TAKE(a->ce_sum, m->tp.size > 1 ? N : 0);
    float *tok_mem, *tgt_mem;
    TAKE(tok_mem, N);  // int32 and float have the same size
    TAKE(tgt_mem, N);
#undef TAKE
    a->tokens = (int32_t *)tok_mem;
    a->targets = (int32_t *)tgt_mem;
    return off;
}

// Refuses, by the keys that set them, sizes that the plans below would compute
// past 64 bits or that no machine could hold. The estimates are in double so
// that they cannot overflow themselves; they count the largest tensors of
// plan_params and plan_acts (the rest is a fraction of a percent).
#define KILN_MAX_MODEL_BYTES 0x1p48  // 256 TiB
static int check_sizes(const KilnModel *m, int maxB, int maxT, KilnErr *err) {
    const KilnModelConfig *c = &m->cfg;
    double C = c->n_embd, L = c->n_layer, V = c->vocab_size, QKV = m->QKV, F = m->F, H = m->H;
    double N = (double)maxB * maxT;
    double params = V * C * (c->tied ? 1 : 2) + (double)c->block_size * C + L * C * (QKV + C + F + H + 6);
    double param_bytes = params * 4 * sizeof(float);  // params, grads, m, v
    if (param_bytes > KILN_MAX_MODEL_BYTES)
        return kiln_fail(err,
                         "model too large: model.n_layer=%d, model.n_embd=%d, model.ffn_hidden=%d, "
                         "model.vocab_size=%d give %.3g parameters; with gradients and optimizer state they "
                         "would need %.3g bytes (at most %.3g)",
                         c->n_layer, c->n_embd, c->ffn_hidden, c->vocab_size, params, param_bytes,
                         KILN_MAX_MODEL_BYTES);
    double acts = N * (C * (7 + 6 * L) + L * (QKV + 2 * F + 2 * H + 4 + c->n_head) + 2 * V);
    double act_bytes = acts * sizeof(float);
    if (act_bytes > KILN_MAX_MODEL_BYTES)
        return kiln_fail(err,
                         "batch too large: train.batch_size x train.seq_len = %d x %d with model.n_layer=%d "
                         "and model.n_embd=%d: activations would need %.3g bytes (at most %.3g)",
                         maxB, maxT, c->n_layer, c->n_embd, act_bytes, KILN_MAX_MODEL_BYTES);
    return 0;
}

int gpt_create(KilnModel *m, const KilnModelConfig *cfg, int maxB, int maxT, KilnErr *err) {
    return gpt_create_share(m, cfg, maxB, maxT, NULL, NULL, err);
}

void gpt_slot(KilnModel *m, int i) {
    if (i == m->slot) return;
    KilnSlot *cur = &m->slot_acts[m->slot], *next = &m->slot_acts[i];
    cur->B = m->B, cur->T = m->T, cur->train = m->train, cur->dropout_seed = m->dropout_seed;
    m->a = next->a;
    m->B = next->B, m->T = next->T, m->train = next->train, m->dropout_seed = next->dropout_seed;
    m->slot = i;
}

// What tensor parallelism over tp ranks splits must divide among them.
static int check_tp(const KilnModelConfig *c, int tp, KilnErr *err) {
    static const char *const keys[] = {"model.n_head", "model.n_kv_head", "model.ffn_hidden", "model.vocab_size"};
    int counts[] = {c->n_head, c->n_kv_head, c->ffn_hidden, c->vocab_size};
    for (int i = 0; i < 4; i++)
        if (counts[i] % tp)
            return kiln_fail(err, "parallel.tp = %d does not divide %s = %d: each tensor-parallel rank holds an "
                                  "equal share of the heads, the MLP's hidden units and the vocabulary", tp, keys[i],
                             counts[i]);
    return 0;
}

int gpt_plan(KilnModel *m, const KilnModelConfig *cfg, const KilnTensorParallel *tp, const KilnPipeStage *pp,
             KilnErr *err) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->tp = tp ? *tp : (KilnTensorParallel){.size = 1};
    m->pp = pp ? *pp : (KilnPipeStage){.stages = 1};
    int k = m->tp.size, S = m->pp.stages;
    if (k < 1 || m->tp.rank < 0 || m->tp.rank >= k)
        return kiln_fail(err, "tensor-parallel rank %d of %d", m->tp.rank, k);
    if (S < 1 || m->pp.stage < 0 || m->pp.stage >= S) return kiln_fail(err, "pipeline stage %d of %d", m->pp.stage, S);
    if (check_tp(cfg, k, err)) return -1;
    if (cfg->n_layer % S)
        return kiln_fail(err, "parallel.pp = %d does not divide model.n_layer = %d: each pipeline stage holds an equal "
                              "share of the blocks", S, cfg->n_layer);
    m->nl = cfg->n_layer / S;
    m->l0 = m->pp.stage * m->nl;
    m->first = m->pp.stage == 0;
    m->last = m->pp.stage == S - 1;
    m->HD = cfg->n_embd / cfg->n_head;
    m->NH = cfg->n_head / k;
    m->NKV = cfg->n_kv_head / k;
    m->AD = m->NH * m->HD;
    m->QKV = (m->NH + 2 * m->NKV) * m->HD;
    m->H = cfg->ffn_hidden / k;
    m->F = cfg->act == KILN_ACT_SWIGLU ? 2 * m->H : m->H;
    m->V = cfg->vocab_size / k;
    m->vocab_lo = (long)m->tp.rank * m->V;
    plan_params(m);
    return 0;
}

int gpt_create_share(KilnModel *m, const KilnModelConfig *cfg, int maxB, int maxT, const KilnTensorParallel *tp,
                     const KilnPipeStage *pp, KilnErr *err) {
    if (maxT > cfg->block_size) {
        memset(m, 0, sizeof *m);
        return kiln_fail(err, "sequence length %d exceeds model.block_size %d", maxT, cfg->block_size);
    }
    if (gpt_plan(m, cfg, tp, pp, err)) return -1;
    if (m->tp.size > 1 && !m->tp.allreduce) return kiln_fail(err, "tensor parallelism without a group to sum over");
    m->maxB = maxB;
    m->maxT = maxT;
    m->nthreads = omp_get_max_threads();
    if (check_sizes(m, maxB, maxT, err)) return -1;
    // params and grads in one allocation, the optimizer's m and v in another
    // (which ZeRO replaces with a rank's shard: gpt_shard_optimizer)
    long P = m->layout.total;
    m->params = backend_alloc(P * 2, err);
    m->m = m->params ? backend_alloc(P * 2, err) : NULL;
    if (!m->m) {
        gpt_destroy(m);
        return kiln_wrap(err, "model parameters and optimizer state (model.n_layer=%d, model.n_embd=%d, "
                         "model.vocab_size=%d)", cfg->n_layer, cfg->n_embd, cfg->vocab_size);
    }
    m->grads = m->gopt = m->params + P;
    m->v = m->m + P;
    m->opt_lo = 0;
    m->opt_n = P;
    m->p = gpt_views(m, m->params);
    m->g = gpt_views(m, m->grads);
    if (cfg->precision == KILN_PREC_BF16) {
        m->wbf = backend_alloc(P, err);
        if (!m->wbf) {
            gpt_destroy(m);
            return kiln_wrap(err, "bf16 copies of the weights (train.precision: bf16)");
        }
        m->pb = gpt_views(m, m->wbf);
        if (cfg->bf16_kernels == KILN_BF16K_ONEDNN && gpt_bf16_kernels(m, 1, err)) {
            gpt_destroy(m);
            return kiln_wrap(err, "train.bf16_kernels: onednn");
        }
    }
    // one set of activations per micro-batch in flight (pipeline stages)
    int slots = m->pp.slots > 1 ? m->pp.slots : 1;
    long A = plan_acts(m, &m->a, NULL);
    long R = cfg->pos == KILN_POS_ROPE ? (long)cfg->block_size * m->HD : 0;
    m->acts_floats = A * slots + R;
    m->acts_mem = backend_alloc(m->acts_floats, err);
    m->slot_acts = m->acts_mem ? calloc((size_t)slots, sizeof *m->slot_acts) : NULL;
    if (!m->slot_acts) {
        gpt_destroy(m);
        return kiln_wrap(err, "activations for train.batch_size x train.seq_len = %d x %d%s", maxB, maxT,
                         slots > 1 ? " for each micro-batch in flight" : "");
    }
    for (int i = 0; i < slots; i++) plan_acts(m, &m->slot_acts[i].a, m->acts_mem + A * i);
    m->a = m->slot_acts[0].a;
    if (R) {
        m->rope_cos = m->acts_mem + A * slots;
        m->rope_sin = m->rope_cos + R / 2;
        rope_tables(m->rope_cos, m->rope_sin, cfg->block_size, m->HD, cfg->rope_theta);
    }
    return 0;
}

int gpt_shard_optimizer(KilnModel *m, long lo, long hi, KilnErr *err) {
    long n = hi - lo;
    float *mv = backend_alloc(2 * (n > 0 ? n : 1), err);  // zeroed, as optimizer_reset_state leaves it
    if (!mv) return kiln_wrap(err, "the optimizer state's shard");
    backend_free(m->m);
    m->m = mv;
    m->v = mv + n;
    m->opt_lo = lo;
    m->opt_n = n;
    return 0;
}

// A tensor stored per block (all the model's blocks back to back).
static int per_block(int id) { return id >= PT_LN1W && id <= PT_FCPROJB; }

int gpt_shard_grads(KilnModel *m, KilnErr *err) {
    const KilnParamLayout *pl = &m->layout;
    long P = pl->total, fix = 0, blk = 0, at[PT_COUNT];
    for (int id = 0; id < PT_COUNT; id++) {  // the whole tensors' gradients, then one block's
        long n = per_block(id) ? 0 : pl->size[id];
        at[id] = fix, fix += (n + 15) & ~15L;
    }
    for (int id = PT_LN1W; id <= PT_FCPROJB; id++) {
        long n = pl->size[id] / m->nl;
        at[id] = fix + blk, blk += (n + 15) & ~15L;
    }
    float *params = backend_alloc(P, err), *g = params ? backend_alloc(fix + blk > 0 ? fix + blk : 1, err) : NULL;
    if (!g) {
        backend_free(params);
        return kiln_wrap(err, "parallel.zero 2: the weights and one block's gradients");
    }
    memcpy(params, m->params, sizeof(float) * (size_t)P);
    backend_free(m->params);
    m->params = params;
    m->p = gpt_views(m, params);
    m->grads = NULL;
    m->gmem = g;
    m->gfix_n = fix, m->gblk_n = blk;
    for (int id = 0; id < PT_COUNT; id++) {
        float *t = pl->size[id] ? g + at[id] : NULL;
        m->g.t[id] = per_block(id) ? NULL : t;
        m->gb.t[id] = per_block(id) ? t : NULL;
    }
    return 0;
}

int gpt_bf16_kernels(KilnModel *m, int on, KilnErr *err) {
    if (!on || m->bk) {
        if (!on) bf16_gemm_close(m->bk), m->bk = NULL;
        return 0;
    }
    if (m->cfg.precision != KILN_PREC_BF16) return kiln_fail(err, "bf16 kernels on a model with train.precision fp32");
    m->bk = bf16_gemm_open(err);
    return m->bk ? 0 : -1;
}

int gpt_sgemm_libs(KilnModel *m, int mask, KilnErr *err) {
    if (mask && !backend_onednn_version())
        return kiln_fail(err, "this kiln was built without oneDNN (Debian's libdnnl-dev, scripts/install-deps.sh)");
    for (int i = 0; i < 3; i++) m->sgemm_onednn[i] = (unsigned char)((mask >> i) & 1);
    return 0;
}

void gpt_destroy(KilnModel *m) {
    bf16_gemm_close(m->bk);
    backend_free(m->gmem);
    free(m->slot_acts);
    backend_free(m->m);
    backend_free(m->params);
    backend_free(m->wbf);
    backend_free(m->acts_mem);
    memset(m, 0, sizeof *m);
}

KilnMemPlan gpt_memory_plan(const KilnModel *m) {
    double P = (double)m->layout.total * sizeof(float);
    double O = (double)m->opt_n * sizeof(float);  // this rank's shard under ZeRO
    double G = m->gmem ? (double)(m->gfix_n + m->gblk_n) * sizeof(float) : P;  // ZeRO-2: a block's and the rest
    KilnMemPlan p = {.weights = P, .grads = G, .optim = 2 * O, .acts = (double)m->acts_floats * sizeof(float),
                     .bf16_weights = m->wbf ? P : 0};
    return p;
}

int gpt_tp_split(KilnParamId id) {
    switch (id) {
    case PT_WTE: case PT_LMHEAD: case PT_QKVW: case PT_QKVB: case PT_ATTPROJW: case PT_FCW: case PT_FCB:
    case PT_FCPROJW: return 1;
    default: return 0;
    }
}

long gpt_num_params(const KilnModel *m) {
    KilnModel w;  // the whole model's plan (a share's config is the whole model's)
    if (gpt_plan(&w, &m->cfg, NULL, NULL, NULL)) return 0;
    long n = 0;
    for (int i = 0; i < PT_COUNT; i++) n += w.layout.size[i];
    return n;
}

double gpt_flops_per_token(const KilnModel *m, int T) {
    const KilnModelConfig *c = &m->cfg;
    KilnModel w;
    if (gpt_plan(&w, c, NULL, NULL, NULL)) return 0;
    double matmul = (double)w.layout.size[PT_QKVW] + w.layout.size[PT_ATTPROJW] + w.layout.size[PT_FCW] +
                    w.layout.size[PT_FCPROJW] + (double)c->vocab_size * c->n_embd;
    return 6.0 * matmul + 12.0 * c->n_layer * c->n_embd * (double)T;
}

// ---- tensor parallelism: where rank k's share sits in the whole model ----

// Rows [r0, r0 + n) of a (rows, width) matrix whose columns [c0, c0 + w) are
// the share's: a block of one layer's tensor.
typedef struct {
    long r0, n, c0, w;
} TpBlock;

// Tensor id's blocks for rank k per layer (out: up to 3), with the whole
// tensor's and the share's row widths; returns the count.
static int tp_blocks(const KilnModel *m, int id, int k, TpBlock *out, long *whole_w, long *shard_w) {
    const KilnModelConfig *c = &m->cfg;
    long C = c->n_embd, HD = m->HD, H = m->H, n = 0;
    *whole_w = *shard_w = 1;
    switch (id) {
    case PT_WTE: case PT_LMHEAD:
        *whole_w = *shard_w = C;
        out[n++] = (TpBlock){k * m->V, m->V, 0, C};
        break;
    case PT_QKVW: case PT_QKVB: {  // q rows, then k, then v: each split by heads
        long QD = (long)c->n_head * HD, KVD = (long)c->n_kv_head * HD, q = m->NH * HD, kv = m->NKV * HD;
        *whole_w = *shard_w = id == PT_QKVW ? C : 1;
        out[n++] = (TpBlock){k * q, q, 0, *whole_w};
        out[n++] = (TpBlock){QD + k * kv, kv, 0, *whole_w};
        out[n++] = (TpBlock){QD + KVD + k * kv, kv, 0, *whole_w};
        break;
    }
    case PT_FCW: case PT_FCB:  // SwiGLU: gate rows, then up rows, each split by hidden units
        *whole_w = *shard_w = id == PT_FCW ? C : 1;
        for (long half = 0; half < m->F / H; half++)
            out[n++] = (TpBlock){half * c->ffn_hidden + k * H, H, 0, *whole_w};
        break;
    case PT_ATTPROJW: case PT_FCPROJW: {  // row-parallel: the input columns are split
        long w = id == PT_ATTPROJW ? m->AD : H;
        *whole_w = w * m->tp.size, *shard_w = w;
        out[n++] = (TpBlock){0, C, k * w, w};
        break;
    }
    }
    return (int)n;
}

void gpt_share_copy(const KilnModel *m, int k, float *shard, const KilnModel *full, float *whole, int to_whole) {
    for (int id = 0; id < PT_COUNT; id++) {
        long n = m->layout.size[id];
        if (!n) continue;
        float *s = shard + m->layout.offset[id], *w = whole + full->layout.offset[id];
        if (!gpt_tp_split(id)) {  // whole on every tensor-parallel rank; a stage's layers of it
            long at = id == PT_WPE || id == PT_LNFW || id == PT_LNFB ? 0 : n / m->nl * m->l0;
            memcpy(to_whole ? w + at : s, to_whole ? s : w + at, sizeof(float) * (size_t)n);
            continue;
        }
        TpBlock b[3];
        long ww, sw;
        int nb = tp_blocks(m, id, k, b, &ww, &sw);
        int per_layer = id != PT_WTE && id != PT_LMHEAD;
        int layers = per_layer ? m->nl : 1;
        long s_layer = n / layers, w_layer = per_layer ? full->layout.size[id] / full->nl : full->layout.size[id];
        for (int l = 0; l < layers; l++) {
            float *sl = s + l * s_layer, *wl = w + (per_layer ? m->l0 + l : 0) * w_layer;
            long srow = 0;
            for (int i = 0; i < nb; i++)
                for (long r = 0; r < b[i].n; r++, srow++) {
                    float *a = sl + srow * sw, *z = wl + (b[i].r0 + r) * ww + b[i].c0;
                    memcpy(to_whole ? z : a, to_whole ? a : z, sizeof(float) * (size_t)b[i].w);
                }
        }
    }
}

enum { SITE_EMBED, SITE_ATTN, SITE_ATTN_RESID, SITE_MLP_RESID };
static KilnDropout drop_site(const KilnModel *m, int layer, int site) {
    KilnDropout d = {0.0f, 0, 0, 0};
    if (m->train && m->cfg.dropout > 0.0f) {
        d.p = m->cfg.dropout;
        if (layer >= 0) layer += m->l0;  // the model's block number: a pipeline stage's masks are one process's
        d.seed = kiln_hash64(m->dropout_seed ^ kiln_hash64((uint64_t)(layer + 1) * 8 + site));
        if (site == SITE_ATTN) d.head0 = m->tp.rank * m->NH, d.heads = m->cfg.n_head;
    }
    return d;
}

static void norm_forward(const KilnModel *m, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N) {
    if (m->cfg.norm == KILN_NORM_LAYERNORM)
        layernorm_forward(out, mean, rstd, inp, w, b, N, m->cfg.n_embd, m->cfg.norm_eps);
    else
        rmsnorm_forward(out, rstd, inp, w, N, m->cfg.n_embd, m->cfg.norm_eps);
}

static void norm_backward(const KilnModel *m, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean, const float *rstd,
                          int N) {
    if (m->cfg.norm == KILN_NORM_LAYERNORM)
        layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, m->cfg.n_embd);
    else
        rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, m->cfg.n_embd);
}

static void act_forward(const KilnModel *m, float *out, const float *inp, int N) {
    long n = (long)N * m->H;
    switch (m->cfg.act) {
    case KILN_ACT_GELU: gelu_forward(out, inp, n); break;
    case KILN_ACT_GELU_ERF: gelu_erf_forward(out, inp, n); break;
    case KILN_ACT_RELU: relu_forward(out, inp, n); break;
    case KILN_ACT_SWIGLU: swiglu_forward(out, inp, N, m->H); break;
    }
}

static void act_backward(const KilnModel *m, float *dinp, const float *inp, const float *dout,
                         int N) {
    long n = (long)N * m->H;
    switch (m->cfg.act) {
    case KILN_ACT_GELU: gelu_backward(dinp, inp, dout, n); break;
    case KILN_ACT_GELU_ERF: gelu_erf_backward(dinp, inp, dout, n); break;
    case KILN_ACT_RELU: relu_backward(dinp, inp, dout, n); break;
    case KILN_ACT_SWIGLU: swiglu_backward(dinp, inp, dout, N, m->H); break;
    }
}

static int is_bf16(const KilnModel *m) { return m->cfg.precision == KILN_PREC_BF16; }

// The libraries the linear layers' products run on (backend.h).
static KilnMatmul matmul_of(const KilnModel *m) {
    KilnMatmul mm = {.bf16 = m->bk};
    memcpy(mm.onednn, m->sgemm_onednn, sizeof mm.onednn);
    return mm;
}

// A matmul operand, rounded to bf16 in place when the model runs in bf16.
static void mm_operand(const KilnModel *m, float *x, long n) {
    if (is_bf16(m)) bf16_round(x, n);
}

// The weights the matmuls read: the parameters, or their bf16 copies.
static const KilnTensors *mm_weights(const KilnModel *m) { return is_bf16(m) ? &m->pb : &m->p; }

// The matmul weights' bf16 copies from the current parameters (the lm head:
// wte when tied; the embedding lookups read the fp32 parameters).
static void refresh_bf16_weights(KilnModel *m) {
    static const KilnParamId ids[] = {PT_QKVW, PT_ATTPROJW, PT_FCW, PT_FCPROJW, PT_LMHEAD, PT_WTE};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        KilnParamId id = ids[i];
        if (id == PT_WTE && !m->cfg.tied) continue;
        if (m->p.t[id]) bf16_round_copy(m->pb.t[id], m->p.t[id], m->layout.size[id]);
    }
}

// Per-layer slices of the parameter and activation arrays.
typedef struct {
    float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw,
        *fcprojb;
} LayerParams;

static float *slice(float *t, long per_layer, int l) { return t ? t + per_layer * l : NULL; }

static LayerParams layer_params(const KilnModel *m, const KilnTensors *t, int l) {
    long C = m->cfg.n_embd;
    LayerParams p;
    p.ln1w = slice(t->t[PT_LN1W], C, l);
    p.ln1b = slice(t->t[PT_LN1B], C, l);
    p.qkvw = slice(t->t[PT_QKVW], (long)m->QKV * C, l);
    p.qkvb = slice(t->t[PT_QKVB], m->QKV, l);
    p.attprojw = slice(t->t[PT_ATTPROJW], C * m->AD, l);
    p.attprojb = slice(t->t[PT_ATTPROJB], C, l);
    p.ln2w = slice(t->t[PT_LN2W], C, l);
    p.ln2b = slice(t->t[PT_LN2B], C, l);
    p.fcw = slice(t->t[PT_FCW], (long)m->F * C, l);
    p.fcb = slice(t->t[PT_FCB], m->F, l);
    p.fcprojw = slice(t->t[PT_FCPROJW], C * m->H, l);
    p.fcprojb = slice(t->t[PT_FCPROJB], C, l);
    return p;
}

typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *lse, *res2, *ln2, *ln2_mean, *ln2_rstd, *fch,
        *fch_act, *res3;
} LayerActs;

// Layer l's activations; with recomputation all layers share one set but res3.
static LayerActs layer_acts(const KilnModel *m, int l) {
    const KilnActs *a = &m->a;
    long N = (long)m->maxB * m->maxT, C = m->cfg.n_embd;
    LayerActs s;
    s.res3 = a->res3 + l * N * C;
    if (m->cfg.recompute) l = 0;
    s.ln1 = a->ln1 + l * N * C;
    s.ln1_mean = a->ln1_mean + l * N;
    s.ln1_rstd = a->ln1_rstd + l * N;
    s.qkv = a->qkv + l * N * m->QKV;
    s.att = a->att + l * N * m->AD;
    s.lse = a->lse + l * N * m->NH;
    s.res2 = a->res2 + l * N * C;
    s.ln2 = a->ln2 + l * N * C;
    s.ln2_mean = a->ln2_mean + l * N;
    s.ln2_rstd = a->ln2_rstd + l * N;
    s.fch = a->fch + l * N * m->F;
    s.fch_act = a->fch_act + l * N * m->H;
    return s;
}

// Tensor parallelism: the partial sums of a row-parallel product (or of an
// input gradient through a column-parallel one), summed over the group.
static void tp_sum(const KilnModel *m, float *x, long n) {
    if (m->tp.size > 1) m->tp.allreduce(m->tp.ctx, x, n, 0);
}

// logits (N,V) -> mean loss; dlogits in place when dloss != 0. Under tensor
// parallelism over this rank's vocabulary columns, with the row statistics
// reduced over the group.
static double crossentropy(KilnModel *m, const int32_t *targets, int N, float dloss) {
    KilnActs *a = &m->a;
    if (m->tp.size == 1) return crossentropy_forward_backward(a->logits, targets, N, m->V, dloss, NULL);
    crossentropy_shard_max(a->logits, N, m->V, a->ce_max);
    m->tp.allreduce(m->tp.ctx, a->ce_max, N, 1);
    crossentropy_shard_sumexp(a->logits, N, m->V, a->ce_max, a->ce_sum);
    tp_sum(m, a->ce_sum, N);
    float loss = (float)crossentropy_shard_finish(a->logits, targets, N, m->V, m->vocab_lo, a->ce_max, a->ce_sum,
                                                  dloss, NULL);
    // each rank's share of the mean: a float's sum is exact enough for the
    // loss (the gradients never see it) and keeps to one all-reduce type
    tp_sum(m, &loss, 1);
    return loss;
}

// One transformer block: x (N,C) -> s.res3 (N,C), keeping what backward needs in s.
static void block_forward(KilnModel *m, int l, const float *x, const LayerActs *s) {
    KilnMatmul mm = matmul_of(m);
    const KilnModelConfig *c = &m->cfg;
    int B = m->B, T = m->T, N = B * T, C = c->n_embd, NH = m->NH, NKV = m->NKV;
    KilnActs *a = &m->a;
    LayerParams p = layer_params(m, &m->p, l), w = layer_params(m, mm_weights(m), l);
    // row-parallel layers: the bias goes in once, on the group's first rank
    const float *attprojb = m->tp.rank ? NULL : p.attprojb, *fcprojb = m->tp.rank ? NULL : p.fcprojb;
    norm_forward(m, s->ln1, s->ln1_mean, s->ln1_rstd, x, p.ln1w, p.ln1b, N);
    mm_operand(m, s->ln1, (long)N * C);
    linear_forward(s->qkv, s->ln1, w.qkvw, p.qkvb, N, C, m->QKV, &mm);
    if (c->pos == KILN_POS_ROPE) rope_forward(s->qkv, m->rope_cos, m->rope_sin, B, T, NH, NKV, m->HD);
    mm_operand(m, s->qkv, (long)N * m->QKV);
    attention_forward(s->att, s->lse, s->qkv, a->att_scratch, B, T, NH, NKV, m->HD, drop_site(m, l, SITE_ATTN),
                      is_bf16(m));
    mm_operand(m, s->att, (long)N * m->AD);
    linear_forward(a->tmp, s->att, w.attprojw, attprojb, N, m->AD, C, &mm);
    tp_sum(m, a->tmp, (long)N * C);
    dropout_apply(a->tmp, (long)N * C, drop_site(m, l, SITE_ATTN_RESID));
    residual_add(s->res2, x, a->tmp, (long)N * C);
    norm_forward(m, s->ln2, s->ln2_mean, s->ln2_rstd, s->res2, p.ln2w, p.ln2b, N);
    mm_operand(m, s->ln2, (long)N * C);
    linear_forward(s->fch, s->ln2, w.fcw, p.fcb, N, C, m->F, &mm);
    act_forward(m, s->fch_act, s->fch, N);
    mm_operand(m, s->fch_act, (long)N * m->H);
    linear_forward(a->tmp, s->fch_act, w.fcprojw, fcprojb, N, m->H, C, &mm);
    tp_sum(m, a->tmp, (long)N * C);
    dropout_apply(a->tmp, (long)N * C, drop_site(m, l, SITE_MLP_RESID));
    residual_add(s->res3, s->res2, a->tmp, (long)N * C);
}

int gpt_forward(KilnModel *m, const int32_t *tokens, const int32_t *targets, int B, int T,
                float dloss, uint64_t dropout_seed, KilnErr *err) {
    const KilnModelConfig *c = &m->cfg;
    if (B > m->maxB || T > m->maxT)
        return kiln_fail(err, "batch %d x %d exceeds the planned %d x %d", B, T, m->maxB, m->maxT);
    int N = B * T, C = c->n_embd, V = c->vocab_size;
    for (int n = 0; n < N; n++) {
        if (tokens[n] < 0 || tokens[n] >= V)
            return kiln_fail(err, "token %d at position %d is outside the vocabulary (%d)", tokens[n], n, V);
        if (targets && targets[n] >= V)
            return kiln_fail(err, "target %d at position %d is outside the vocabulary (%d)", targets[n], n, V);
    }
    m->B = B;
    m->T = T;
    m->train = dloss != 0.0f;
    m->dropout_seed = dropout_seed;
    KilnActs *a = &m->a;
    backend_from_host(a->tokens, tokens, sizeof(int32_t) * N);
    if (targets) backend_from_host(a->targets, targets, sizeof(int32_t) * N);

    if (is_bf16(m)) refresh_bf16_weights(m);
    if (m->first) {
        // vocabulary-parallel: each rank embeds the tokens it holds, the positions on the first
        embedding_forward(a->encoded, tokens, m->p.t[PT_WTE], m->vocab_lo, m->V, m->tp.rank ? NULL : m->p.t[PT_WPE],
                          B, T, C);
        tp_sum(m, a->encoded, (long)N * C);
        dropout_apply(a->encoded, (long)N * C, drop_site(m, -1, SITE_EMBED));
    }  // a later pipeline stage finds its input there (gpt_stage_input)
    const float *x = a->encoded;
    for (int l = 0; l < m->nl; l++) {
        LayerActs s = layer_acts(m, l);
        block_forward(m, l, x, &s);
        x = s.res3;
    }
    m->loss = 0.0;
    if (!m->last) return 0;  // the output for the next stage: gpt_stage_output
    norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, x, m->p.t[PT_LNFW], m->p.t[PT_LNFB], N);
    mm_operand(m, a->lnf, (long)N * C);
    const KilnTensors *mw = mm_weights(m);
    const float *head = c->tied ? mw->t[PT_WTE] : mw->t[PT_LMHEAD];
    KilnMatmul mm = matmul_of(m);
    linear_forward(a->logits, a->lnf, head, NULL, N, C, m->V, &mm);
    if (targets) {
        m->loss = crossentropy(m, targets, N, dloss);
    } else if (m->train) {
        return kiln_fail(err, "a training forward needs targets");
    }
    return 0;
}

// The gradient of a residual branch's output from dres (the residual
// stream's): through the branch's dropout mask, and rounded to bf16 for the
// branch's matmul, in dtmp; dres itself when neither applies.
static const float *branch_grad(KilnModel *m, KilnDropout d) {
    KilnActs *a = &m->a;
    long n = (long)m->B * m->T * m->cfg.n_embd;
    if (d.p <= 0.0f && !is_bf16(m)) return a->dres;
    backend_copy(a->dtmp, a->dres, n);
    dropout_apply(a->dtmp, n, d);
    mm_operand(m, a->dtmp, n);
    return a->dtmp;
}

void gpt_zero_grad(KilnModel *m) {
    if (m->gmem) backend_zero(m->gmem, m->gfix_n);  // ZeRO-2: the whole tensors'; a block's are zeroed as it starts
    else backend_zero(m->grads, m->layout.total);
}

// The gradients of tensor id's block l (l = -1: the whole tensor) are final.
static void grads_ready(KilnModel *m, int id, int l) {
    long n = m->layout.size[id], off = m->layout.offset[id];
    if (!m->grad_ready || !n) return;
    if (l >= 0) n /= m->nl, off += l * n;
    float *g = l < 0 ? m->g.t[id] : m->gmem ? m->gb.t[id] : m->g.t[id] + (off - m->layout.offset[id]);
    m->grad_ready(m->grad_ready_ctx, g, off, n);
}

// Block l's gradients: its slices of the whole buffer, or under ZeRO-2 the
// one block's buffer, zeroed as the block's backward pass starts.
static LayerParams block_grads(KilnModel *m, int l) {
    if (!m->gmem) return layer_params(m, &m->g, l);
    backend_zero(m->gmem + m->gfix_n, m->gblk_n);
    return layer_params(m, &m->gb, 0);
}

void gpt_backward(KilnModel *m) {
    KilnMatmul mm = matmul_of(m);
    const KilnModelConfig *c = &m->cfg;
    KilnActs *a = &m->a;
    int B = m->B, T = m->T, N = B * T, C = c->n_embd, V = m->V;
    int NH = m->NH, NKV = m->NKV, L = m->nl;
    const KilnTensors *mw = mm_weights(m);
    if (m->last) {
        const float *head = c->tied ? mw->t[PT_WTE] : mw->t[PT_LMHEAD];
        float *dhead = c->tied ? m->g.t[PT_WTE] : m->g.t[PT_LMHEAD];
        // logits now hold dlogits (N,V) -> dln (N,C)
        mm_operand(m, a->logits, (long)N * V);
        linear_backward(a->dln, dhead, NULL, a->logits, a->lnf, head, N, C, V, &mm);
        tp_sum(m, a->dln, (long)N * C);
        const float *xlast = L > 0 ? layer_acts(m, L - 1).res3 : a->encoded;
        backend_zero(a->dres, (long)N * C);
        norm_backward(m, a->dres, m->g.t[PT_LNFW], m->g.t[PT_LNFB], a->dln, xlast, m->p.t[PT_LNFW],
                      a->lnf_mean, a->lnf_rstd, N);
        grads_ready(m, PT_LMHEAD, -1);  // tied: the embedding's, which the embedding backward adds to
        grads_ready(m, PT_LNFW, -1);
        grads_ready(m, PT_LNFB, -1);
    }  // else the next pipeline stage's gradient of this one's output is in dres (gpt_stage_dinput)
    for (int l = L - 1; l >= 0; l--) {
        LayerParams p = layer_params(m, &m->p, l), w = layer_params(m, mw, l);
        LayerParams g = block_grads(m, l);
        LayerActs s = layer_acts(m, l);
        const float *x = l > 0 ? layer_acts(m, l - 1).res3 : a->encoded;
        // the shared set holds the last block's activations from the forward
        // pass; any other block's are recomputed from its input, bit for bit
        // (the same kernels, threads and dropout masks)
        if (c->recompute && l < L - 1) {
            LayerActs r = s;
            r.res3 = a->dtmp;  // its output is not needed again: dres already holds d(res3)
            block_forward(m, l, x, &r);
        }
        // dres holds d(res3). MLP branch: res3 = res2 + drop(fch_act @ Wp^T + b)
        const float *dbranch = branch_grad(m, drop_site(m, l, SITE_MLP_RESID));
        linear_backward(a->dfch_act, g.fcprojw, g.fcprojb, dbranch, s.fch_act, w.fcprojw, N, m->H, C, &mm);
        act_backward(m, a->dfch, s.fch, a->dfch_act, N);
        mm_operand(m, a->dfch, (long)N * m->F);
        linear_backward(a->dln, g.fcw, g.fcb, a->dfch, s.ln2, w.fcw, N, C, m->F, &mm);
        tp_sum(m, a->dln, (long)N * C);
        norm_backward(m, a->dres, g.ln2w, g.ln2b, a->dln, s.res2, p.ln2w, s.ln2_mean, s.ln2_rstd, N);
        // dres holds d(res2). Attention branch: res2 = x + drop(att @ Wo^T + b)
        dbranch = branch_grad(m, drop_site(m, l, SITE_ATTN_RESID));
        linear_backward(a->datt, g.attprojw, g.attprojb, dbranch, s.att, w.attprojw, N, m->AD, C, &mm);
        mm_operand(m, a->datt, (long)N * m->AD);
        attention_backward(a->dqkv, a->datt, s.att, s.qkv, s.lse, a->att_scratch, B, T, NH, NKV,
                           m->HD, drop_site(m, l, SITE_ATTN), is_bf16(m));
        if (c->pos == KILN_POS_ROPE) rope_backward(a->dqkv, m->rope_cos, m->rope_sin, B, T, NH, NKV, m->HD);
        mm_operand(m, a->dqkv, (long)N * m->QKV);
        linear_backward(a->dln, g.qkvw, g.qkvb, a->dqkv, s.ln1, w.qkvw, N, C, m->QKV, &mm);
        tp_sum(m, a->dln, (long)N * C);
        norm_backward(m, a->dres, g.ln1w, g.ln1b, a->dln, x, p.ln1w, s.ln1_mean, s.ln1_rstd, N);
        // dres holds d(x)
        for (int id = PT_LN1W; id <= PT_FCPROJB; id++) grads_ready(m, id, l);
    }
    if (m->first) {
        dropout_apply(a->dres, (long)N * C, drop_site(m, -1, SITE_EMBED));
        embedding_backward(m->g.t[PT_WTE], m->vocab_lo, m->V, m->g.t[PT_WPE], a->dres, a->tokens, B, T, C);
    }  // else dres holds the gradient of the stage's input, for the stage before
    grads_ready(m, PT_WTE, -1);
    grads_ready(m, PT_WPE, -1);
}

float *gpt_stage_input(KilnModel *m) { return m->a.encoded; }
float *gpt_stage_output(KilnModel *m) { return layer_acts(m, m->nl - 1).res3; }
float *gpt_stage_grad(KilnModel *m) { return m->a.dres; }

// HF Llama-style names; fused tensors are split into contiguous row blocks.
int gpt_named_tensors(const KilnModel *m, float *base, KilnNamedTensor *out) {
    const KilnModelConfig *c = &m->cfg;
    KilnTensors t = gpt_views(m, base);
    long C = c->n_embd, V = c->vocab_size, H = m->H;
    long QD = (long)c->n_head * m->HD, KVD = (long)c->n_kv_head * m->HD;
    int n = 0;
#define ADD(ID, PTR, NAME_FMT, NAME_ARG, D0, D1)                                      \
    do {                                                                               \
        if (out) {                                                                     \
            KilnNamedTensor *nt = &out[n];                                             \
            snprintf(nt->name, sizeof nt->name, NAME_FMT, NAME_ARG);                   \
            nt->data = (PTR);                                                          \
            nt->id = (ID);                                                             \
            nt->shape[0] = (D0);                                                       \
            nt->shape[1] = (D1);                                                       \
            nt->ndim = (D1) > 0 ? 2 : 1;                                               \
        }                                                                              \
        n++;                                                                           \
    } while (0)
    ADD(PT_WTE, t.t[PT_WTE], "%s", "model.embed_tokens.weight", V, C);
    if (t.t[PT_WPE]) ADD(PT_WPE, t.t[PT_WPE], "%s", "model.embed_positions.weight", (long)c->block_size, C);
    for (int l = 0; l < c->n_layer; l++) {
        LayerParams p = layer_params(m, &t, l);
        char pre[64];
        snprintf(pre, sizeof pre, "model.layers.%d.", l);
        ADD(PT_LN1W, p.ln1w, "%sinput_layernorm.weight", pre, C, 0);
        if (p.ln1b) ADD(PT_LN1B, p.ln1b, "%sinput_layernorm.bias", pre, C, 0);
        ADD(PT_QKVW, p.qkvw, "%sself_attn.q_proj.weight", pre, QD, C);
        ADD(PT_QKVW, p.qkvw + QD * C, "%sself_attn.k_proj.weight", pre, KVD, C);
        ADD(PT_QKVW, p.qkvw + (QD + KVD) * C, "%sself_attn.v_proj.weight", pre, KVD, C);
        if (p.qkvb) {
            ADD(PT_QKVB, p.qkvb, "%sself_attn.q_proj.bias", pre, QD, 0);
            ADD(PT_QKVB, p.qkvb + QD, "%sself_attn.k_proj.bias", pre, KVD, 0);
            ADD(PT_QKVB, p.qkvb + QD + KVD, "%sself_attn.v_proj.bias", pre, KVD, 0);
        }
        ADD(PT_ATTPROJW, p.attprojw, "%sself_attn.o_proj.weight", pre, C, QD);
        if (p.attprojb) ADD(PT_ATTPROJB, p.attprojb, "%sself_attn.o_proj.bias", pre, C, 0);
        ADD(PT_LN2W, p.ln2w, "%spost_attention_layernorm.weight", pre, C, 0);
        if (p.ln2b) ADD(PT_LN2B, p.ln2b, "%spost_attention_layernorm.bias", pre, C, 0);
        if (c->act == KILN_ACT_SWIGLU) {
            ADD(PT_FCW, p.fcw, "%smlp.gate_proj.weight", pre, H, C);
            ADD(PT_FCW, p.fcw + H * C, "%smlp.up_proj.weight", pre, H, C);
            if (p.fcb) {
                ADD(PT_FCB, p.fcb, "%smlp.gate_proj.bias", pre, H, 0);
                ADD(PT_FCB, p.fcb + H, "%smlp.up_proj.bias", pre, H, 0);
            }
        } else {
            ADD(PT_FCW, p.fcw, "%smlp.up_proj.weight", pre, H, C);
            if (p.fcb) ADD(PT_FCB, p.fcb, "%smlp.up_proj.bias", pre, H, 0);
        }
        ADD(PT_FCPROJW, p.fcprojw, "%smlp.down_proj.weight", pre, C, H);
        if (p.fcprojb) ADD(PT_FCPROJB, p.fcprojb, "%smlp.down_proj.bias", pre, C, 0);
    }
    ADD(PT_LNFW, t.t[PT_LNFW], "%s", "model.norm.weight", C, 0);
    if (t.t[PT_LNFB]) ADD(PT_LNFB, t.t[PT_LNFB], "%s", "model.norm.bias", C, 0);
    if (t.t[PT_LMHEAD]) ADD(PT_LMHEAD, t.t[PT_LMHEAD], "%s", "lm_head.weight", V, C);
#undef ADD
    return n;
}
