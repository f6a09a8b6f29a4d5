// test_init.c: the weight-init schemes (model.init): each block's mean, std and
// distribution against its formula (init.c), norms 1 and biases 0, the same bytes
// for the same seed, and gpt2 unchanged from the original GPT-2 loop.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kiln/config.h"
#include "kiln/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double mean, std, maxabs;
    long n;
} Stats;

// Statistics of `rows` rows of `cols` starting at row `r0` of every layer's slice
// (layers of per_layer floats), so that e.g. the v rows of all layers pool together.
static Stats block_stats(const float *t, int layers, long per_layer, long r0, long rows, long cols) {
    double s = 0, ss = 0, mx = 0;
    long n = 0;
    for (int l = 0; l < layers; l++) {
        const float *b = t + l * per_layer + r0 * cols;
        for (long k = 0; k < rows * cols; k++, n++) {
            s += b[k], ss += (double)b[k] * b[k];
            if (fabs(b[k]) > mx) mx = fabs(b[k]);
        }
    }
    Stats st = {s / n, sqrt(ss / n - (s / n) * (s / n)), mx, n};
    return st;
}

// Normal(0, std): mean and std within sampling error, and tails beyond sqrt(3) std
// (which a uniform of that std never reaches).
static void expect_normal(Stats s, double std, const char *what) {
    assert_true(s.n >= 1000);
    double tol = 5.0 / sqrt(2.0 * s.n);  // ~5 standard errors of a sample std
    if (!(fabs(s.std / std - 1) < tol && fabs(s.mean) < 5 * std / sqrt(s.n) && s.maxabs > 2.5 * std))
        fail_msg("%s: mean %g std %g max %g, want normal(0, %g) (n %ld)", what, s.mean, s.std, s.maxabs, std, s.n);
}

// Uniform(-b, b): std b/sqrt(3), nothing beyond b, and values close to it.
static void expect_uniform(Stats s, double b, const char *what) {
    assert_true(s.n >= 1000);
    double std = b / sqrt(3.0), tol = 4.0 / sqrt(s.n);
    if (!(fabs(s.std / std - 1) < tol && fabs(s.mean) < 5 * std / sqrt(s.n) && s.maxabs <= b * (1 + 1e-6) &&
          s.maxabs > 0.99 * b))
        fail_msg("%s: mean %g std %g max %g, want uniform(-%g, %g) (n %ld)", what, s.mean, s.std, s.maxabs, b, b,
                 s.n);
}

static void make(KilnModel *m, KilnInit init, int llama, uint64_t seed) {
    KilnConfig cfg;
    KilnErr err;
    kiln_config_defaults(&cfg);
    KilnModelConfig *c = &cfg.model;
    c->vocab_size = 256, c->block_size = 64, c->n_layer = 3, c->n_head = 4, c->n_embd = 64;
    c->init = init, c->init_std = 0.03f;
    if (llama) {
        c->pos = KILN_POS_ROPE, c->norm = KILN_NORM_RMSNORM, c->act = KILN_ACT_SWIGLU;
        c->bias = 0, c->tied = 0, c->n_kv_head = 2;
    }
    assert_int_equal(kiln_config_finalize(&cfg, &err), 0);
    assert_int_equal(gpt_create(m, c, 1, 1, &err), 0);
    memset(m->params, 0x7f, sizeof(float) * m->layout.total);  // garbage the init must overwrite
    gpt_init_weights(m, seed);
}

static void expect_norms_and_biases(const KilnModel *m) {
    const int ones[] = {PT_LN1W, PT_LN2W, PT_LNFW};
    const int zeros[] = {PT_LN1B, PT_LN2B, PT_LNFB, PT_QKVB, PT_ATTPROJB, PT_FCB, PT_FCPROJB};
    for (size_t i = 0; i < 3; i++)
        for (long k = 0; k < m->layout.size[ones[i]]; k++) assert_true(m->p.t[ones[i]][k] == 1.0f);
    for (size_t i = 0; i < 7; i++)
        for (long k = 0; k < m->layout.size[zeros[i]]; k++) assert_true(m->p.t[zeros[i]][k] == 0.0f);
}

// Each matrix tensor pooled over its layers (the whole tensor).
static Stats whole(const KilnModel *m, int id) {
    return block_stats(m->p.t[id], 1, m->layout.size[id], 0, 1, m->layout.size[id]);
}

static void test_gpt2(void **st) {
    (void)st;
    for (int llama = 0; llama <= 1; llama++) {
        KilnModel m;
        make(&m, KILN_INIT_GPT2, llama, 1);
        double std = 0.03, resid = 0.03 / sqrt(2.0 * 3);
        expect_normal(whole(&m, PT_WTE), std, "gpt2 wte");
        expect_normal(whole(&m, PT_QKVW), std, "gpt2 qkv");
        expect_normal(whole(&m, PT_FCW), std, "gpt2 fc");
        expect_normal(whole(&m, PT_ATTPROJW), resid, "gpt2 attn out");
        expect_normal(whole(&m, PT_FCPROJW), resid, "gpt2 mlp down");
        if (llama) expect_normal(whole(&m, PT_LMHEAD), std, "gpt2 lm_head");
        else expect_normal(whole(&m, PT_WPE), std, "gpt2 wpe");
        expect_norms_and_biases(&m);
        // the same draws, in the same order, as the original GPT-2 init loop
        KilnRng rng;
        kiln_rng_seed(&rng, 1);
        for (int i = 0; i < PT_COUNT; i++) {
            if (!m.p.t[i] || i == PT_LN1W || i == PT_LN2W || i == PT_LNFW || i == PT_LN1B || i == PT_LN2B ||
                i == PT_LNFB || i == PT_QKVB || i == PT_ATTPROJB || i == PT_FCB || i == PT_FCPROJB)
                continue;
            float s = (i == PT_ATTPROJW || i == PT_FCPROJW) ? 0.03f / sqrtf(6.0f) : 0.03f;
            for (long k = 0; k < m.layout.size[i]; k++) assert_true(m.p.t[i][k] == s * kiln_rng_normal(&rng));
        }
        gpt_destroy(&m);
    }
}

static void test_small(void **st) {
    (void)st;
    for (int llama = 0; llama <= 1; llama++) {
        KilnModel m;
        make(&m, KILN_INIT_SMALL, llama, 2);
        double std = sqrt(2.0 / (5 * 64));  // 0.079, not init_std
        const int ids[] = {PT_WTE, PT_WPE, PT_QKVW, PT_ATTPROJW, PT_FCW, PT_FCPROJW, PT_LMHEAD};
        for (size_t i = 0; i < 7; i++)
            if (m.layout.size[ids[i]]) expect_normal(whole(&m, ids[i]), std, "small");
        expect_norms_and_biases(&m);
        gpt_destroy(&m);
    }
}

static void test_tfixup(void **st) {
    (void)st;
    for (int llama = 0; llama <= 1; llama++) {
        KilnModel m;
        make(&m, KILN_INIT_TFIXUP, llama, 3);
        const long C = 64, L = 3, H = m.H, QD = 64, KVD = llama ? 32 : 64, QKV = QD + 2 * KVD;
        const double s = pow(9.0 * L, -0.25), emb = 1 / sqrt((double)C);
        expect_normal(whole(&m, PT_WTE), emb * s, "tfixup wte");
        if (llama) expect_normal(whole(&m, PT_LMHEAD), emb, "tfixup untied lm_head");
        else expect_normal(whole(&m, PT_WPE), emb * s, "tfixup wpe");
        const float *qkv = m.p.t[PT_QKVW];
        expect_uniform(block_stats(qkv, L, QKV * C, 0, QD, C), sqrt(6.0 / (C + QD)), "tfixup q");
        expect_uniform(block_stats(qkv, L, QKV * C, QD, KVD, C), sqrt(6.0 / (C + KVD)), "tfixup k");
        expect_uniform(block_stats(qkv, L, QKV * C, QD + KVD, KVD, C), s * sqrt(6.0 / (C + KVD)), "tfixup v");
        expect_uniform(whole(&m, PT_ATTPROJW), s * sqrt(6.0 / (2 * C)), "tfixup attn out");
        if (llama) {  // gate and up are separate (H, C) matrices
            expect_uniform(block_stats(m.p.t[PT_FCW], L, 2 * H * C, 0, H, C), s * sqrt(6.0 / (C + H)), "gate");
            expect_uniform(block_stats(m.p.t[PT_FCW], L, 2 * H * C, H, H, C), s * sqrt(6.0 / (C + H)), "up");
        } else {
            expect_uniform(whole(&m, PT_FCW), s * sqrt(6.0 / (C + H)), "tfixup fc");
        }
        expect_uniform(whole(&m, PT_FCPROJW), s * sqrt(6.0 / (C + H)), "tfixup mlp down");
        expect_norms_and_biases(&m);
        gpt_destroy(&m);
    }
}

// Same seed, same bytes; another seed or scheme, other weights.
static void test_deterministic(void **st) {
    (void)st;
    for (int init = KILN_INIT_GPT2; init <= KILN_INIT_TFIXUP; init++) {
        KilnModel a, b, c, d;
        make(&a, (KilnInit)init, 1, 42);
        make(&b, (KilnInit)init, 1, 42);
        make(&c, (KilnInit)init, 1, 43);
        make(&d, (KilnInit)((init + 1) % 3), 1, 42);
        for (int id = 0; id < PT_COUNT; id++) {
            size_t n = sizeof(float) * a.layout.size[id];
            if (!n) continue;
            assert_memory_equal(a.p.t[id], b.p.t[id], n);
            int norm_or_bias = id != PT_WTE && id != PT_WPE && id != PT_QKVW && id != PT_ATTPROJW &&
                               id != PT_FCW && id != PT_FCPROJW && id != PT_LMHEAD;
            if (!norm_or_bias) {
                assert_memory_not_equal(a.p.t[id], c.p.t[id], n);
                assert_memory_not_equal(a.p.t[id], d.p.t[id], n);
            }
        }
        gpt_destroy(&a), gpt_destroy(&b), gpt_destroy(&c), gpt_destroy(&d);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2),
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_tfixup),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
