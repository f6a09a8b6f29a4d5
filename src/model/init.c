// init.c: weight-init schemes (model.init), all seeded and deterministic.
//   gpt2    GPT-2 / nanoGPT: matrices and embeddings normal(0, init_std), the two
//           residual projections (attn out, MLP down) normal(0, init_std/sqrt(2L))
//   small   "SmallInit" (Nguyen & Salazar 2019, Transformers without Tears; as in
//           GPT-NeoX's small_init): every matrix and embedding normal(0, sqrt(2/(5C))),
//           which is Xavier-normal for a (C, 4C) matrix. The paper scales nothing
//           by depth, so neither do we (GPT-NeoX pairs it with a separate "wang"
//           init for output layers; that is not part of SmallInit).
//   tfixup  T-Fixup (Huang et al. 2020), decoder rule, N = n_layer blocks:
//           Xavier-uniform for every block matrix (q, k, v, gate and up counted as
//           separate matrices, fan_in + fan_out of each); embeddings (token and
//           learned positions) normal(0, C^-1/2); then the value projection, the
//           attention output, every MLP matrix and the embeddings scaled by
//           (9N)^-1/4. An untied lm_head is normal(0, C^-1/2), unscaled, as the
//           authors' code initialises fairseq's output projection.
//           Departures from the authors' fairseq code, which follow the paper's
//           text instead: q and k are plain Xavier (fairseq gives them gain
//           1/sqrt(2)); learned positions are scaled like the token embedding
//           (the paper scales "input embeddings"; fairseq's are sinusoidal).
//           Departures from both: our blocks keep their pre-norm (T-Fixup drops
//           LayerNorm), and there is no sqrt(C) multiplier on the embedding output.
// Everywhere: norm weights 1, biases 0. init_std is used by gpt2 only.
// The draws are serial and on the host, straight into the parameters: the CPU
// backend's memory is the host's (a device backend would draw through backend_view).
#include "kiln/model.h"

#include <math.h>
#include <string.h>

static void fill_normal(float *t, long n, float std, KilnRng *rng) {
    for (long k = 0; k < n; k++) t[k] = std * kiln_rng_normal(rng);
}

// Xavier-uniform for a (rows, cols) matrix: U(-b, b), b = sqrt(6/(rows+cols)),
// times scale.
static void fill_xavier(float *t, long rows, long cols, float scale, KilnRng *rng) {
    float b = sqrtf(6.0f / (float)(rows + cols));
    for (long k = 0; k < rows * cols; k++) t[k] = scale * b * (2.0f * kiln_rng_uniform(rng) - 1.0f);
}

static int is_norm_weight(int i) { return i == PT_LN1W || i == PT_LN2W || i == PT_LNFW; }
static int is_bias(int i) {
    return i == PT_LN1B || i == PT_LN2B || i == PT_LNFB || i == PT_QKVB || i == PT_ATTPROJB ||
           i == PT_FCB || i == PT_FCPROJB;
}

// The block matrices of layer l under T-Fixup (shapes as in model.h).
static void tfixup_layer(KilnModel *m, int l, float s, KilnRng *rng) {
    const KilnModelConfig *c = &m->cfg;
    long C = c->n_embd, QD = (long)c->n_head * m->HD, KVD = (long)c->n_kv_head * m->HD, H = m->H;
    float *qkv = m->p.t[PT_QKVW] + l * (long)m->QKV * C;  // rows: q (QD), k (KVD), v (KVD)
    fill_xavier(qkv, QD, C, 1.0f, rng);
    fill_xavier(qkv + QD * C, KVD, C, 1.0f, rng);
    fill_xavier(qkv + (QD + KVD) * C, KVD, C, s, rng);
    fill_xavier(m->p.t[PT_ATTPROJW] + l * C * C, C, C, s, rng);
    float *fc = m->p.t[PT_FCW] + l * (long)m->F * C;  // (F,C): SwiGLU gate rows then up rows
    for (int half = 0; half < m->F / H; half++) fill_xavier(fc + half * H * C, H, C, s, rng);
    fill_xavier(m->p.t[PT_FCPROJW] + l * C * H, C, H, s, rng);
}

void gpt_init_weights(KilnModel *m, uint64_t seed) {
    const KilnModelConfig *c = &m->cfg;
    KilnRng rng;
    kiln_rng_seed(&rng, seed);
    float std = c->init_std, resid_std = std / sqrtf(2.0f * c->n_layer);
    float small = sqrtf(2.0f / (5.0f * c->n_embd)), emb = 1.0f / sqrtf((float)c->n_embd);
    float fix = powf(9.0f * c->n_layer, -0.25f);
    for (int i = 0; i < PT_COUNT; i++) {
        float *t = m->p.t[i];
        long n = m->layout.size[i];
        if (!t) continue;
        if (is_norm_weight(i)) {
            for (long k = 0; k < n; k++) t[k] = 1.0f;
        } else if (is_bias(i)) {
            memset(t, 0, sizeof(float) * n);
        } else if (c->init == KILN_INIT_SMALL) {
            fill_normal(t, n, small, &rng);
        } else if (c->init == KILN_INIT_TFIXUP) {
            if (i == PT_WTE || i == PT_WPE) fill_normal(t, n, emb * fix, &rng);
            else if (i == PT_LMHEAD) fill_normal(t, n, emb, &rng);
            else if (i == PT_QKVW)  // all block matrices at once, layer by layer
                for (int l = 0; l < c->n_layer; l++) tfixup_layer(m, l, fix, &rng);
        } else {
            fill_normal(t, n, (i == PT_ATTPROJW || i == PT_FCPROJW) ? resid_std : std, &rng);
        }
    }
}
