// infer.c: inference with a KV cache (infer.h). gpt_forward's layers applied to
// the new tokens only; attention reads every earlier position's keys and values
// from the cache. New tokens go through in chunks of at most INFER_ROWS rows, so
// the scratch does not grow with the prompt (causality makes chunks exact).
//
// Block l, for r new rows at positions pos..pos+r-1, x = residual (r,C):
//   ln   = norm(x)                              (r,C)
//   qkv  = ln @ Wqkv^T + b ; RoPE at pos+i     (r,QKV)
//   K[l], V[l] rows pos..pos+r-1 = k, v         (max_len, NKV*HD) caches
//   att  = attention over K[l], V[l] rows 0..pos+r-1   (r,C)
//   x   += att @ Wo^T + b
//   x   += act(norm(x) @ Wfc^T + b) @ Wp^T + b  (r,C)
// logits = norm(x) @ head^T                     (r,V)
#include "kiln/infer.h"

#include "backend/backend.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

enum { INFER_ROWS = 64 };  // new tokens per pass through the layers

struct KilnInfer {
    const KilnModel *m;
    int max_len, pos, rows, nthreads;
    float *k, *v;  // (L, max_len, NKV*HD) caches, RoPE already applied to k
    // scratch for one chunk of r <= rows new tokens
    float *x, *ln, *att, *tmp;  // (r,C): residual stream, norm output, attention, branch output
    float *mean, *rstd;         // (r)
    float *qkv, *fch, *fch_act; // (r,QKV), (r,F), (r,H)
    float *att_scratch;         // nthreads blocks of rows*max_len scores
    float *mem;                 // everything above, one allocation
};

int infer_create(KilnInfer **out, const KilnModel *m, int max_len, KilnErr *err) {
    *out = NULL;
    const KilnModelConfig *c = &m->cfg;
    if (max_len < 1 || max_len > c->block_size)
        return kiln_fail(err, "inference cache length %d must be in 1..model.block_size (%d)", max_len,
                         c->block_size);
    KilnInfer *s = calloc(1, sizeof *s);
    if (!s) return kiln_fail(err, "out of memory for an inference state");
    s->m = m;
    s->max_len = max_len;
    s->rows = max_len < INFER_ROWS ? max_len : INFER_ROWS;
    // created inside a parallel region: this thread's alone, so serial
    s->nthreads = omp_in_parallel() ? 1 : omp_get_max_threads();
    long C = c->n_embd, R = s->rows, KV = (long)c->n_layer * max_len * c->n_kv_head * m->HD;
    long sizes[] = {KV, KV, R * C, R * C, R, R, R * m->QKV, R * C, R * C, R * m->F, R * m->H,
                    (long)s->nthreads * R * max_len};
    float **ptrs[] = {&s->k, &s->v, &s->x, &s->ln, &s->mean, &s->rstd, &s->qkv, &s->att, &s->tmp,
                      &s->fch, &s->fch_act, &s->att_scratch};
    long total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += (sizes[i] + 15) & ~15L;
    s->mem = backend_alloc(total, err);
    if (!s->mem) {
        free(s);
        return kiln_wrap(err, "inference cache for %d tokens", max_len);
    }
    long off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        *ptrs[i] = s->mem + off;
        off += (sizes[i] + 15) & ~15L;
    }
    *out = s;
    return 0;
}

void infer_free(KilnInfer *s) {
    if (!s) return;
    backend_free(s->mem);
    free(s);
}

int infer_pos(const KilnInfer *s) { return s->pos; }
int infer_max_len(const KilnInfer *s) { return s->max_len; }

void infer_truncate(KilnInfer *s, int k) {
    if (k < 0) k = 0;
    if (k < s->pos) s->pos = k;  // never forward: positions past pos hold no keys
}

static void norm_rows(const KilnInfer *s, float *out, const float *inp, const float *w, const float *b,
                      int r) {
    const KilnModelConfig *c = &s->m->cfg;
    if (c->norm == KILN_NORM_LAYERNORM)
        layernorm_forward(out, s->mean, s->rstd, inp, w, b, r, c->n_embd, c->norm_eps);
    else
        rmsnorm_forward(out, s->rstd, inp, w, r, c->n_embd, c->norm_eps);
}

// fch (r,F) -> fch_act (r,H)
static void act_rows(const KilnInfer *s, int r) {
    const KilnModel *m = s->m;
    long n = (long)r * m->H;
    switch (m->cfg.act) {
    case KILN_ACT_GELU: gelu_forward(s->fch_act, s->fch, n); break;
    case KILN_ACT_GELU_ERF: gelu_erf_forward(s->fch_act, s->fch, n); break;
    case KILN_ACT_RELU: relu_forward(s->fch_act, s->fch, n); break;
    case KILN_ACT_SWIGLU: swiglu_forward(s->fch_act, s->fch, r, m->H); break;
    }
}

static const float *layer_w(const KilnModel *m, KilnParamId id, long per_layer, int l) {
    return m->p.t[id] ? m->p.t[id] + per_layer * l : NULL;
}

// Block l on x (r,C) at positions pos..pos+r-1; fills the cache rows.
static void block_rows(KilnInfer *s, int l, int r) {
    const KilnModel *m = s->m;
    const KilnModelConfig *c = &m->cfg;
    int C = c->n_embd, NH = c->n_head, NKV = c->n_kv_head, HD = m->HD, KVD = NKV * HD;
    int QKV = m->QKV, pos = s->pos;
    norm_rows(s, s->ln, s->x, layer_w(m, PT_LN1W, C, l), layer_w(m, PT_LN1B, C, l), r);
    linear_forward(s->qkv, s->ln, layer_w(m, PT_QKVW, (long)QKV * C, l), layer_w(m, PT_QKVB, QKV, l), r,
                   C, QKV, NULL);
    if (c->pos == KILN_POS_ROPE) {
        long half = HD / 2;  // row i of a (1,r) batch is at t = i: shift the tables by pos
        rope_forward(s->qkv, m->rope_cos + pos * half, m->rope_sin + pos * half, 1, r, NH, NKV, HD);
    }
    float *kc = s->k + (long)l * s->max_len * KVD, *vc = s->v + (long)l * s->max_len * KVD;
    for (int i = 0; i < r; i++) {
        const float *row = s->qkv + (long)i * QKV;
        backend_copy(kc + (long)(pos + i) * KVD, row + NH * HD, KVD);
        backend_copy(vc + (long)(pos + i) * KVD, row + NH * HD + KVD, KVD);
    }
    attention_infer(s->att, s->qkv, QKV, kc, vc, s->att_scratch, r, pos, NH, NKV, HD, s->nthreads);
    linear_forward(s->tmp, s->att, layer_w(m, PT_ATTPROJW, (long)C * C, l), layer_w(m, PT_ATTPROJB, C, l),
                   r, C, C, NULL);
    residual_add(s->x, s->x, s->tmp, (long)r * C);
    norm_rows(s, s->ln, s->x, layer_w(m, PT_LN2W, C, l), layer_w(m, PT_LN2B, C, l), r);
    linear_forward(s->fch, s->ln, layer_w(m, PT_FCW, (long)m->F * C, l), layer_w(m, PT_FCB, m->F, l), r,
                   C, m->F, NULL);
    act_rows(s, r);
    linear_forward(s->tmp, s->fch_act, layer_w(m, PT_FCPROJW, (long)C * m->H, l),
                   layer_w(m, PT_FCPROJB, C, l), r, m->H, C, NULL);
    residual_add(s->x, s->x, s->tmp, (long)r * C);
}

// r <= rows tokens at s->pos -> logits (r,V) unless NULL; pos += r
static void append_rows(KilnInfer *s, const int32_t *tokens, int r, float *logits) {
    const KilnModel *m = s->m;
    const KilnModelConfig *c = &m->cfg;
    const float *wpe = m->p.t[PT_WPE] ? m->p.t[PT_WPE] + (long)s->pos * c->n_embd : NULL;
    embedding_forward(s->x, tokens, m->p.t[PT_WTE], 0, c->vocab_size, wpe, 1, r, c->n_embd);
    for (int l = 0; l < c->n_layer; l++) block_rows(s, l, r);
    s->pos += r;
    if (!logits) return;  // only the cache was wanted
    norm_rows(s, s->ln, s->x, m->p.t[PT_LNFW], m->p.t[PT_LNFB], r);
    const float *head = c->tied ? m->p.t[PT_WTE] : m->p.t[PT_LMHEAD];
    // logits are the caller's host memory, which the CPU backend writes directly
    linear_forward(logits, s->ln, head, NULL, r, c->n_embd, c->vocab_size, NULL);
}

int infer_append(KilnInfer *s, const int32_t *tokens, int n, float *logits, KilnErr *err) {
    int V = s->m->cfg.vocab_size;
    if (n < 0) return kiln_fail(err, "cannot append %d tokens", n);
    if (n > s->max_len - s->pos)
        return kiln_fail(err, "appending %d tokens at position %d exceeds the inference cache of %d", n,
                         s->pos, s->max_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return kiln_fail(err, "token %d at position %d is outside the vocabulary (%d)", tokens[i],
                             s->pos + i, V);
    for (int i = 0; i < n; i += s->rows) {
        int r = n - i < s->rows ? n - i : s->rows;
        append_rows(s, tokens + i, r, logits ? logits + (long)i * V : NULL);
    }
    return 0;
}

double logprob_at(const float *logits, int V, int t) {
    double mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[t] - mx - log(sum);
}

int argmax_token(const float *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;  // strict: the lowest id wins a tie
    return best;
}

// Sort order of sample_token: most probable first, lower id first among equals.
typedef struct {
    double w;
    int id;
} Cand;

static int cand_cmp(const void *pa, const void *pb) {
    const Cand *a = pa, *b = pb;
    if (a->w != b->w) return a->w > b->w ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

int sample_token(const float *logits, int V, float temperature, int top_k, float top_p, float u) {
    if (!(temperature > 0.0f)) return argmax_token(logits, V);
    double mx = logits[argmax_token(logits, V)], inv_t = 1.0 / temperature, z = 0.0;
    for (int i = 0; i < V; i++) z += exp(((double)logits[i] - mx) * inv_t);
    int k = top_k > 0 && top_k < V ? top_k : V;
    // the kept tokens are the first `kept` in Cand order; last = the last of them
    Cand last = {0.0, V};  // everything kept
    if (k < V || top_p < 1.0f) {
        // Without top-k, a token in the nucleus has more than 1 - top_p of the
        // mass at or below its probability, spread over at most V tokens, so
        // p > (1 - top_p) / V: half that bound skips most of a peaked vocabulary.
        // (With top-k the mass of all k tokens is needed, so none is skipped.)
        double floor_w = k == V && top_p < 1.0f ? 0.5 * (1.0 - top_p) / V * z : 0.0;
        Cand *cand = malloc(sizeof *cand * (size_t)V);
        if (!cand) return -1;
        int nc = 0;
        for (int i = 0; i < V; i++) {
            double w = exp(((double)logits[i] - mx) * inv_t);
            if (w >= floor_w) cand[nc++] = (Cand){w, i};
        }
        qsort(cand, (size_t)nc, sizeof *cand, cand_cmp);
        int kept = nc < k ? nc : k;
        double mass_k = k == V ? z : 0.0;
        for (int i = 0; k < V && i < kept; i++) mass_k += cand[i].w;
        // nucleus over the renormalised top-k: smallest prefix reaching top_p
        double cum = 0.0;
        for (int i = 0; i < kept; i++) {
            cum += cand[i].w;
            if (cum >= (double)top_p * mass_k) {
                kept = i + 1;
                break;
            }
        }
        last = cand[kept - 1];
        free(cand);
    }
    // u through the cumulative distribution of the kept tokens, in id order
    double mass = 0.0;
    for (int i = 0; i < V; i++) {
        Cand c = {exp(((double)logits[i] - mx) * inv_t), i};
        if (last.id == V || cand_cmp(&c, &last) <= 0) mass += c.w;
    }
    double target = (double)u * mass, cum = 0.0;
    int pick = -1;
    for (int i = 0; i < V; i++) {
        Cand c = {exp(((double)logits[i] - mx) * inv_t), i};
        if (last.id != V && cand_cmp(&c, &last) > 0) continue;
        cum += c.w;
        pick = i;
        if (cum > target) break;
    }
    return pick;
}
