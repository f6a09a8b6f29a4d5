// test_infer.c: KV-cache inference (infer.h) against gpt_forward for every model
// variant (positions x norm x activation x attention heads x tying x biases), the
// sequence appended whole, token by token, in uneven chunks, past a chunk
// boundary, after truncation; its errors, determinism and use from many threads;
// logprob_at; sample_token's exact distributions and its top-k/top-p boundaries.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kiln/config.h"
#include "kiln/infer.h"
#include "kiln/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double TOL = 1e-5;  // relative to the largest |logit|: float summation order

typedef struct {
    int pos, norm, act, nkv, tied, bias;
} Variant;

// A small model of the variant with weights that make every part count: init_std
// 0.3 (attention far from uniform), norms and biases moved away from 1 and 0.
static void make_model(KilnModel *m, Variant v, int V, int block, int T, uint64_t seed) {
    KilnConfig cfg;
    kiln_config_defaults(&cfg);
    KilnModelConfig mc = cfg.model;
    mc.vocab_size = V;
    mc.block_size = block;
    mc.n_layer = 2;
    mc.n_head = 4;
    mc.n_kv_head = v.nkv;
    mc.n_embd = 16;
    mc.ffn_hidden = 24;
    mc.pos = v.pos;
    mc.norm = v.norm;
    mc.act = v.act;
    mc.tied = v.tied;
    mc.bias = v.bias;
    mc.dropout = 0.0f;
    mc.init_std = 0.3f;
    KilnErr err;
    if (gpt_create(m, &mc, 1, T, &err)) fail_msg("%s", err.msg);
    gpt_init_weights(m, seed);
    KilnRng rng;
    kiln_rng_seed(&rng, seed + 1);
    for (int id = 0; id < PT_COUNT; id++) {
        if (!m->p.t[id] || id == PT_WTE || id == PT_WPE || id == PT_LMHEAD || id == PT_QKVW ||
            id == PT_ATTPROJW || id == PT_FCW || id == PT_FCPROJW)
            continue;
        for (long k = 0; k < m->layout.size[id]; k++) m->p.t[id][k] += 0.3f * kiln_rng_normal(&rng);
    }
}

static void random_tokens(int32_t *t, int n, int V, uint64_t seed) {
    KilnRng rng;
    kiln_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) t[i] = (int32_t)(kiln_rng_u64(&rng) % (uint64_t)V);
}

// gpt_forward's logits (T,V) for tokens, copied out
static float *reference_logits(KilnModel *m, const int32_t *tokens, int T) {
    KilnErr err;
    if (gpt_forward(m, tokens, NULL, 1, T, 0.0f, 0, &err)) fail_msg("%s", err.msg);
    float *out = malloc(sizeof(float) * T * m->cfg.vocab_size);
    memcpy(out, m->a.logits, sizeof(float) * T * m->cfg.vocab_size);
    return out;
}

static double rel_err(const float *a, const float *ref, long n) {
    double diff = 0.0, scale = 1e-30;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= diff)) diff = d;  // NaN sticks
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    return diff / scale;
}

// Appends tokens[0..T) in chunks of the given sizes (cycled) to a fresh cache.
static void append_chunks(KilnInfer *s, const int32_t *tokens, int T, const int *sizes, int nsizes,
                          float *logits, int V) {
    KilnErr err;
    for (int i = 0, c = 0; i < T; c++) {
        int n = sizes[c % nsizes];
        if (n > T - i) n = T - i;
        if (infer_append(s, tokens + i, n, logits + (long)i * V, &err)) fail_msg("%s", err.msg);
        i += n;
    }
    assert_int_equal(infer_pos(s), T);
}

static double check_variant(Variant v, int T, int block) {
    const int V = 29;
    KilnModel m;
    make_model(&m, v, V, block, T, 11);
    int32_t *tok = malloc(sizeof(int32_t) * T), *alt = malloc(sizeof(int32_t) * T);
    random_tokens(tok, T, V, 5);
    float *ref = reference_logits(&m, tok, T);
    float *got = malloc(sizeof(float) * T * V);
    KilnInfer *s;
    KilnErr err;
    if (infer_create(&s, &m, block, &err)) fail_msg("%s", err.msg);
    double worst = 0.0, e;
    char what[160];
    snprintf(what, sizeof what, "pos %d norm %d act %d kv %d tied %d bias %d T %d", v.pos, v.norm, v.act,
             v.nkv, v.tied, v.bias, T);
#define CHECK(label)                                                                 \
    do {                                                                             \
        e = rel_err(got, ref, (long)T * V);                                          \
        if (!(e <= TOL)) fail_msg("%s: %s: relative error %.3g", what, label, e);    \
        worst = e > worst ? e : worst;                                               \
    } while (0)

    int whole[] = {T}, one[] = {1}, uneven[] = {3, 1, 7, 2, 11, 5};
    append_chunks(s, tok, T, whole, 1, got, V);
    CHECK("whole");
    infer_truncate(s, 0);
    append_chunks(s, tok, T, one, 1, got, V);
    CHECK("token by token");
    infer_truncate(s, 0);
    append_chunks(s, tok, T, uneven, 6, got, V);
    CHECK("uneven chunks");

    // back to position k, then the same tokens again: only rows k.. are recomputed
    int k = T / 2;
    infer_truncate(s, k);
    assert_int_equal(infer_pos(s), k);
    memset(got + (long)k * V, 0, sizeof(float) * (T - k) * V);
    if (infer_append(s, tok + k, T - k, got + (long)k * V, &err)) fail_msg("%s", err.msg);
    CHECK("truncate and re-append");

    // truncate, then different tokens: the old ones must be forgotten
    memcpy(alt, tok, sizeof(int32_t) * T);
    for (int i = k; i < T; i++) alt[i] = (tok[i] + 1 + i) % V;
    float *ref_alt = reference_logits(&m, alt, T);
    infer_truncate(s, k);
    if (infer_append(s, alt + k, T - k, got + (long)k * V, &err)) fail_msg("%s", err.msg);
    e = rel_err(got + (long)k * V, ref_alt + (long)k * V, (long)(T - k) * V);
    if (!(e <= TOL)) fail_msg("%s: truncate and append other tokens: %.3g", what, e);

    // a prefix only cached (logits NULL), then the rest with logits
    infer_truncate(s, 0);
    if (infer_append(s, tok, 3, NULL, &err)) fail_msg("%s", err.msg);
    if (infer_append(s, tok + 3, T - 3, got + 3L * V, &err)) fail_msg("%s", err.msg);
    e = rel_err(got + 3L * V, ref + 3L * V, (long)(T - 3) * V);
    if (!(e <= TOL)) fail_msg("%s: cache-only prefix: %.3g", what, e);
#undef CHECK
    infer_free(s);
    free(ref_alt);
    free(got);
    free(ref);
    free(tok);
    free(alt);
    gpt_destroy(&m);
    return worst;
}

static void test_every_variant(void **state) {
    (void)state;
    int n = 0;
    double worst = 0.0;
    int kv_heads[] = {4, 2, 1};  // multi-head, grouped-query, multi-query
    for (int pos = 0; pos < 2; pos++)
        for (int norm = 0; norm < 2; norm++)
            for (int act = 0; act < 4; act++)
                for (int g = 0; g < 3; g++)
                    for (int tied = 0; tied < 2; tied++)
                        for (int bias = 0; bias < 2; bias++) {
                            Variant v = {pos, norm, act, kv_heads[g], tied, bias};
                            double e = check_variant(v, 20, 24);
                            worst = e > worst ? e : worst;
                            n++;
                        }
    printf("  %d variants, worst relative logit error %.2e\n", n, worst);
}

// More tokens than one pass through the layers takes (64): chunk boundaries.
static void test_long_sequence(void **state) {
    (void)state;
    Variant llama = {KILN_POS_ROPE, KILN_NORM_RMSNORM, KILN_ACT_SWIGLU, 2, 0, 0};
    Variant gpt2 = {KILN_POS_LEARNED, KILN_NORM_LAYERNORM, KILN_ACT_GELU, 4, 1, 1};
    printf("  T=150: llama %.2e, gpt2 %.2e\n", check_variant(llama, 150, 150), check_variant(gpt2, 150, 160));
}

static void test_errors(void **state) {
    (void)state;
    Variant v = {KILN_POS_LEARNED, KILN_NORM_LAYERNORM, KILN_ACT_GELU, 4, 1, 1};
    KilnModel m;
    make_model(&m, v, 29, 24, 24, 3);
    KilnInfer *s;
    KilnErr err;
    assert_int_equal(infer_create(&s, &m, 25, &err), -1);  // beyond block_size
    assert_non_null(strstr(err.msg, "block_size"));
    assert_int_equal(infer_create(&s, &m, 0, &err), -1);
    assert_int_equal(infer_create(&s, &m, 10, &err), 0);
    assert_int_equal(infer_max_len(s), 10);
    int32_t tok[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    float logits[12 * 29];
    assert_int_equal(infer_append(s, tok, 8, logits, &err), 0);
    assert_int_equal(infer_append(s, tok, 3, logits, &err), -1);  // 8 + 3 > 10
    assert_non_null(strstr(err.msg, "exceeds"));
    assert_int_equal(infer_pos(s), 8);  // a refused append changes nothing
    assert_int_equal(infer_append(s, tok, 2, logits, &err), 0);
    assert_int_equal(infer_append(s, tok, 1, logits, &err), -1);  // full
    infer_truncate(s, 4);
    int32_t bad[3] = {1, 29, 2};
    assert_int_equal(infer_append(s, bad, 3, logits, &err), -1);
    assert_non_null(strstr(err.msg, "vocabulary"));
    assert_non_null(strstr(err.msg, "29"));
    bad[1] = -1;
    assert_int_equal(infer_append(s, bad, 3, logits, &err), -1);
    assert_int_equal(infer_pos(s), 4);
    assert_int_equal(infer_append(s, tok, -1, logits, &err), -1);
    assert_int_equal(infer_append(s, tok, 0, logits, &err), 0);
    infer_truncate(s, 9);  // never moves forward
    assert_int_equal(infer_pos(s), 4);
    infer_truncate(s, -3);
    assert_int_equal(infer_pos(s), 0);
    infer_free(s);
    infer_free(NULL);
    gpt_destroy(&m);
}

// Bit-identical logits from repeated runs; the same logits (to float noise) when
// one KilnInfer per thread runs inside a parallel region, nesting allowed or not.
static void test_deterministic_and_threads(void **state) {
    (void)state;
    enum { T = 40, V = 29, NSEQ = 6 };
    Variant v = {KILN_POS_ROPE, KILN_NORM_LAYERNORM, KILN_ACT_GELU_ERF, 2, 0, 1};
    KilnModel m;
    make_model(&m, v, V, 48, T, 9);
    int32_t tok[NSEQ][T];
    static float serial[NSEQ][T * V], again[T * V], par[NSEQ][T * V];
    KilnErr err;
    for (int q = 0; q < NSEQ; q++) {
        random_tokens(tok[q], T, V, 100 + q);
        KilnInfer *s;
        if (infer_create(&s, &m, T, &err)) fail_msg("%s", err.msg);
        int sizes[] = {5, 1, 9};
        append_chunks(s, tok[q], T, sizes, 3, serial[q], V);
        infer_truncate(s, 0);
        append_chunks(s, tok[q], T, sizes, 3, again, V);
        assert_memory_equal(serial[q], again, sizeof again);
        infer_free(s);
    }
    int saved_levels = omp_get_max_active_levels();
    for (int nested = 0; nested < 2; nested++) {
        omp_set_max_active_levels(nested ? 4 : 1);
        int bad = 0;
#pragma omp parallel for num_threads(3) schedule(static, 1) reduction(+ : bad)
        for (int q = 0; q < NSEQ; q++) {
            KilnInfer *s;
            KilnErr e2;
            if (infer_create(&s, &m, T, &e2)) {
                bad++;
                continue;
            }
            for (int i = 0; i < T; i++) bad += infer_append(s, tok[q] + i, 1, par[q] + (long)i * V, &e2) != 0;
            infer_free(s);
        }
        assert_int_equal(bad, 0);
        for (int q = 0; q < NSEQ; q++) {
            double e = rel_err(par[q], serial[q], (long)T * V);
            if (!(e <= TOL)) fail_msg("sequence %d in a parallel region (nested %d): %.3g", q, nested, e);
        }
    }
    omp_set_max_active_levels(saved_levels);
    gpt_destroy(&m);
}

static void test_logprob_at(void **state) {
    (void)state;
    float l[3] = {1.0f, 2.0f, 3.0f};
    double z = exp(1.0) + exp(2.0) + exp(3.0);
    for (int t = 0; t < 3; t++) assert_true(fabs(logprob_at(l, 3, t) - (l[t] - log(z))) < 1e-12);
    float big[2] = {1000.0f, 1001.0f};  // max-subtracted: no overflow
    assert_true(fabs(logprob_at(big, 2, 1) + log1p(exp(-1.0))) < 1e-12);
    assert_true(fabs(logprob_at(big, 2, 0) + 1.0 + log1p(exp(-1.0))) < 1e-12);
    float low[2] = {0.0f, -200.0f};  // exp(-200) underflows float, not double
    assert_true(fabs(logprob_at(low, 2, 1) + 200.0) < 1e-9);
}

// Frequency of each token over the grid u = (j + 0.5) / M.
static void sweep_m(const float *logits, int V, float temp, int top_k, float top_p, double *freq, int M) {
    for (int i = 0; i < V; i++) freq[i] = 0.0;
    for (int j = 0; j < M; j++) {
        int t = sample_token(logits, V, temp, top_k, top_p, (float)((j + 0.5) / M));
        assert_true(t >= 0 && t < V);
        freq[t] += 1.0 / M;
    }
}
static void sweep(const float *logits, int V, float temp, int top_k, float top_p, double *freq) {
    sweep_m(logits, V, temp, top_k, top_p, freq, 20000);
}

// freq must equal the weights w renormalised over the tokens with w > 0 (to the grid's 1/M)
static void expect_dist_m(const double *freq, const double *w, int V, int M) {
    double z = 0.0;
    for (int i = 0; i < V; i++) z += w[i];
    for (int i = 0; i < V; i++)
        if (fabs(freq[i] - w[i] / z) > 1.0 / M + 1e-9)
            fail_msg("token %d: frequency %.6f, expected %.6f", i, freq[i], w[i] / z);
}
static void expect_dist(const double *freq, const double *w, int V) { expect_dist_m(freq, w, V, 20000); }

static void test_sample_greedy(void **state) {
    (void)state;
    float l[5] = {1.0f, 3.0f, -2.0f, 3.0f, 2.5f};
    assert_int_equal(sample_token(l, 5, 0.0f, 0, 1.0f, 0.7f), 1);  // tie 1 vs 3: the lower id
    assert_int_equal(sample_token(l, 5, 0.0f, 2, 0.1f, 0.0f), 1);
    assert_int_equal(sample_token(l, 5, -1.0f, 0, 1.0f, 0.3f), 1);
    float one[1] = {4.0f};
    assert_int_equal(sample_token(one, 1, 0.8f, 0, 1.0f, 0.99f), 0);
}

static void test_sample_distribution(void **state) {
    (void)state;
    float l[5] = {0.3f, -1.2f, 2.0f, 0.9f, -0.4f};
    double f[5], w[5];
    float temps[3] = {1.0f, 0.6f, 2.5f};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 5; i++) w[i] = exp(l[i] / (double)temps[k]);
        sweep(l, 5, temps[k], 0, 1.0f, f);
        expect_dist(f, w, 5);
        sweep(l, 5, temps[k], 5, 1.0f, f);  // top_k = V keeps all
        expect_dist(f, w, 5);
    }
    // top_k 2: tokens 2 and 3 renormalised
    for (int i = 0; i < 5; i++) w[i] = (i == 2 || i == 3) ? exp(l[i]) : 0.0;
    sweep(l, 5, 1.0f, 2, 1.0f, f);
    expect_dist(f, w, 5);
    // u at the ends: the first and the last kept token in id order
    assert_int_equal(sample_token(l, 5, 1.0f, 2, 1.0f, 0.0f), 2);
    assert_int_equal(sample_token(l, 5, 1.0f, 2, 1.0f, 0.99999f), 3);
    assert_int_equal(sample_token(l, 5, 1.0f, 0, 1.0f, 0.0f), 0);
    assert_int_equal(sample_token(l, 5, 1.0f, 0, 1.0f, 0.99999f), 4);
}

// Probabilities 1/2, 1/4, 1/8, 1/8 at ids 2, 1, 0, 3: the nucleus boundaries are
// at 1/2, 3/4 and 7/8 of the mass; the tied 1/8s rank id 0 before id 3.
static void test_sample_top_p_boundaries(void **state) {
    (void)state;
    float l[4] = {0.0f, logf(2.0f), logf(4.0f), 0.0f};
    double f[4];
    struct {
        float top_p;
        double w[4];
    } cases[] = {
        {0.0f, {0, 0, 1, 0}},     // at least one token
        {0.49f, {0, 0, 1, 0}},    {0.51f, {0, 2, 4, 0}}, {0.74f, {0, 2, 4, 0}},
        {0.76f, {1, 2, 4, 0}},    {0.87f, {1, 2, 4, 0}}, {0.88f, {1, 2, 4, 1}},
        {1.0f, {1, 2, 4, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        sweep(l, 4, 1.0f, 0, cases[c].top_p, f);
        expect_dist(f, cases[c].w, 4);
    }
    // top-k first, then the nucleus of the renormalised top-k: 2/3, 1/3
    double only2[4] = {0, 0, 1, 0}, both[4] = {0, 2, 4, 0}, three[4] = {1, 2, 4, 0};
    sweep(l, 4, 1.0f, 2, 0.6f, f);
    expect_dist(f, only2, 4);
    sweep(l, 4, 1.0f, 2, 0.7f, f);
    expect_dist(f, both, 4);
    sweep(l, 4, 1.0f, 3, 1.0f, f);  // top_k 3 among tied 1/8s: the lower id
    expect_dist(f, three, 4);
    sweep(l, 4, 1.0f, 3, 0.86f, f);  // renormalised 4/7, 6/7 = 0.857, 7/7
    expect_dist(f, three, 4);
    sweep(l, 4, 1.0f, 3, 0.85f, f);
    expect_dist(f, both, 4);
    sweep(l, 4, 1.0f, 3, 0.57f, f);
    expect_dist(f, only2, 4);
    // top-k among ties keeps the lower ids
    float tied[5] = {0.0f, 1.0f, 1.0f, 1.0f, 0.5f};
    double first2[5] = {0, 1, 1, 0, 0};
    double f5[5];
    sweep(tied, 5, 1.0f, 2, 1.0f, f5);
    expect_dist(f5, first2, 5);
    // the nucleus of a top-k counts the whole top-k mass, improbable members too:
    // p = .45, .40, then eight of .01875; top-9 mass .98125, and .45/.98125 < 0.5
    float l10[10];
    double w10[10] = {0}, f10[10];
    for (int i = 0; i < 10; i++) l10[i] = logf(i == 0 ? 0.45f : i == 1 ? 0.40f : 0.01875f);
    w10[0] = 0.45, w10[1] = 0.40;
    sweep(l10, 10, 1.0f, 9, 0.5f, f10);
    expect_dist(f10, w10, 10);
    // temperature before the cut: at T=0.5 the weights are 1, 4, 16, 1 (of 22)
    double sharp[4] = {0, 0, 1, 0}, sharp2[4] = {0, 4, 16, 0};
    sweep(l, 4, 0.5f, 0, 0.72f, f);  // 16/22 = 0.727
    expect_dist(f, sharp, 4);
    sweep(l, 4, 0.5f, 0, 0.74f, f);
    expect_dist(f, sharp2, 4);
}

// A larger, peaked vocabulary (where sample_token skips improbable tokens before
// sorting) against a direct implementation: sort everything, cut, renormalise.
static const double *g_w;  // the weights qsort's comparator ranks (test only)
static int cmp_idx(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (g_w[i] != g_w[j]) return g_w[i] > g_w[j] ? -1 : 1;
    return i - j;
}

static void test_sample_large_vocab(void **state) {
    (void)state;
    enum { V = 1000 };
    static float l[V];
    static double w[V], keep[V], f[V];
    static int idx[V];
    KilnRng rng;
    kiln_rng_seed(&rng, 77);
    for (int i = 0; i < V; i++) l[i] = 3.0f * kiln_rng_normal(&rng);
    l[17] = l[18] = l[19];  // a few ties
    float top_ps[] = {0.3f, 0.9f, 0.99f};
    int top_ks[] = {0, 50};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 2; b++) {
            double mx = -INFINITY;
            for (int i = 0; i < V; i++) mx = l[i] > mx ? l[i] : mx;
            for (int i = 0; i < V; i++) {
                w[i] = exp(((double)l[i] - mx) / 0.8);
                idx[i] = i;
            }
            g_w = w;
            qsort(idx, V, sizeof(int), cmp_idx);
            int k = top_ks[b] ? top_ks[b] : V;
            double mk = 0.0, cum = 0.0;
            for (int i = 0; i < k; i++) mk += w[idx[i]];
            int kept = k;
            for (int i = 0; i < k; i++) {
                cum += w[idx[i]];
                if (cum >= top_ps[a] * mk) {
                    kept = i + 1;
                    break;
                }
            }
            for (int i = 0; i < V; i++) keep[i] = 0.0;
            for (int i = 0; i < kept; i++) keep[idx[i]] = w[idx[i]];
            sweep_m(l, V, 0.8f, top_ks[b], top_ps[a], f, 4000);
            expect_dist_m(f, keep, V, 4000);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_variant),
        cmocka_unit_test(test_long_sequence),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_deterministic_and_threads),
        cmocka_unit_test(test_logprob_at),
        cmocka_unit_test(test_sample_greedy),
        cmocka_unit_test(test_sample_distribution),
        cmocka_unit_test(test_sample_top_p_boundaries),
        cmocka_unit_test(test_sample_large_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
