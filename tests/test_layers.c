// test_layers: every layer's backward against finite differences of its forward.
#include "gradcheck.h"
#include "backend/backend.h"
#include "backend/cpu/fastmath.h"

#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

static const GcOptions OPT = {.h = 1e-2, .tol = 5e-3, .directions = 3, .coordinates = 12};

static float *randn(long n, float std, uint64_t seed) {
    KilnRng r;
    kiln_rng_seed(&r, seed);
    float *x = malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) x[i] = std * kiln_rng_normal(&r);
    return x;
}

static double dot(const float *a, const float *b, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// ---- linear ----
typedef struct {
    int N, IC, OC;
    float *inp, *w, *b, *out, *R, *dinp, *dw, *db;
} LinCtx;
static double lin_loss(void *p) {
    LinCtx *c = p;
    linear_forward(c->out, c->inp, c->w, c->b, c->N, c->IC, c->OC, NULL);
    return dot(c->out, c->R, (long)c->N * c->OC);
}
static void lin_grad(void *p) {
    LinCtx *c = p;
    memset(c->dw, 0, sizeof(float) * c->IC * c->OC);
    memset(c->db, 0, sizeof(float) * c->OC);
    linear_backward(c->dinp, c->dw, c->db, c->R, c->inp, c->w, c->N, c->IC, c->OC, NULL);
}
static void test_linear(void **state) {
    LinCtx c = {.N = 6, .IC = 5, .OC = 7};
    c.inp = randn(30, 1, 1);
    c.w = randn(35, 1, 2);
    c.b = randn(7, 1, 3);
    c.R = randn(42, 1, 4);
    c.out = calloc(42, 4);
    c.dinp = calloc(30, 4);
    c.dw = calloc(35, 4);
    c.db = calloc(7, 4);
    GcTensor ts[] = {{"inp", c.inp, c.dinp, 30}, {"weight", c.w, c.dw, 35}, {"bias", c.b, c.db, 7}};
    assert_true(gradcheck("linear", ts, 3, lin_loss, lin_grad, &c, OPT) < OPT.tol);
    free(c.inp), free(c.w), free(c.b), free(c.R), free(c.out), free(c.dinp), free(c.dw), free(c.db);
}

// ---- norms ----
typedef struct {
    int N, C, rms;
    float *inp, *w, *b, *out, *mean, *rstd, *R, *dinp, *dw, *db;
} NormCtx;
static double norm_loss(void *p) {
    NormCtx *c = p;
    if (c->rms)
        rmsnorm_forward(c->out, c->rstd, c->inp, c->w, c->N, c->C, 1e-5f);
    else
        layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5f);
    return dot(c->out, c->R, (long)c->N * c->C);
}
static void norm_grad(void *p) {
    NormCtx *c = p;
    norm_loss(c);
    memset(c->dinp, 0, sizeof(float) * c->N * c->C);
    memset(c->dw, 0, sizeof(float) * c->C);
    memset(c->db, 0, sizeof(float) * c->C);
    if (c->rms)
        rmsnorm_backward(c->dinp, c->dw, c->R, c->inp, c->w, c->rstd, c->N, c->C);
    else
        layernorm_backward(c->dinp, c->dw, c->b ? c->db : NULL, c->R, c->inp, c->w, c->mean, c->rstd, c->N, c->C);
}
static void check_norm(int rms, int bias) {
    NormCtx c = {.N = 5, .C = 8, .rms = rms};
    long n = 40;
    c.inp = randn(n, 1, 11);
    c.w = randn(8, 1, 12);
    c.b = bias ? randn(8, 1, 13) : NULL;
    c.R = randn(n, 1, 14);
    c.out = calloc(n, 4);
    c.mean = calloc(5, 4);
    c.rstd = calloc(5, 4);
    c.dinp = calloc(n, 4);
    c.dw = calloc(8, 4);
    c.db = calloc(8, 4);
    GcTensor ts[] = {{"inp", c.inp, c.dinp, n}, {"weight", c.w, c.dw, 8}, {"bias", c.b, c.db, 8}};
    const char *what = rms ? "rmsnorm" : bias ? "layernorm" : "layernorm (no bias)";
    assert_true(gradcheck(what, ts, bias ? 3 : 2, norm_loss, norm_grad, &c, OPT) < OPT.tol);
    free(c.inp), free(c.w), free(c.b), free(c.R), free(c.out), free(c.mean), free(c.rstd), free(c.dinp), free(c.dw),
        free(c.db);
}
static void test_layernorm(void **state) { check_norm(0, 1); }
static void test_layernorm_nobias(void **state) { check_norm(0, 0); }
static void test_rmsnorm(void **state) { check_norm(1, 0); }

// ---- activations ----
typedef struct {
    int kind, N, H;  // kind: 0 gelu, 1 gelu_erf, 2 relu, 3 swiglu
    float *inp, *out, *R, *dinp;
} ActCtx;
static double act_loss(void *p) {
    ActCtx *c = p;
    long n = (long)c->N * c->H;
    switch (c->kind) {
    case 0: gelu_forward(c->out, c->inp, n); break;
    case 1: gelu_erf_forward(c->out, c->inp, n); break;
    case 2: relu_forward(c->out, c->inp, n); break;
    case 3: swiglu_forward(c->out, c->inp, c->N, c->H); break;
    }
    return dot(c->out, c->R, n);
}
static void act_grad(void *p) {
    ActCtx *c = p;
    long n = (long)c->N * c->H;
    switch (c->kind) {
    case 0: gelu_backward(c->dinp, c->inp, c->R, n); break;
    case 1: gelu_erf_backward(c->dinp, c->inp, c->R, n); break;
    case 2: relu_backward(c->dinp, c->inp, c->R, n); break;
    case 3: swiglu_backward(c->dinp, c->inp, c->R, c->N, c->H); break;
    }
}
static void check_act(int kind, const char *name) {
    ActCtx c = {.kind = kind, .N = 4, .H = 9};
    long nin = (long)c.N * c.H * (kind == 3 ? 2 : 1);
    c.inp = randn(nin, 1.5f, 21 + kind);
    if (kind == 2)  // keep ReLU inputs away from the kink at 0
        for (long i = 0; i < nin; i++) c.inp[i] += c.inp[i] >= 0 ? 0.1f : -0.1f;
    c.R = randn((long)c.N * c.H, 1, 25);
    c.out = calloc((size_t)c.N * c.H, 4);
    c.dinp = calloc((size_t)nin, 4);
    GcTensor ts[] = {{"inp", c.inp, c.dinp, nin}};
    GcOptions o = OPT;
    if (kind == 2) o.h = 1e-3;
    assert_true(gradcheck(name, ts, 1, act_loss, act_grad, &c, o) < o.tol);
    free(c.inp), free(c.R), free(c.out), free(c.dinp);
}
static void test_gelu(void **state) { check_act(0, "gelu"); }
static void test_gelu_erf(void **state) { check_act(1, "gelu_erf"); }
static void test_relu(void **state) { check_act(2, "relu"); }
static void test_swiglu(void **state) { check_act(3, "swiglu"); }

// ---- RoPE ----
typedef struct {
    int B, T, NH, NKV, HD;
    float *qkv, *work, *cos_t, *sin_t, *R, *dqkv;
} RopeCtx;
static double rope_loss(void *p) {
    RopeCtx *c = p;
    long n = (long)c->B * c->T * (c->NH + 2 * c->NKV) * c->HD;
    memcpy(c->work, c->qkv, sizeof(float) * n);
    rope_forward(c->work, c->cos_t, c->sin_t, c->B, c->T, c->NH, c->NKV, c->HD);
    return dot(c->work, c->R, n);
}
static void rope_grad(void *p) {
    RopeCtx *c = p;
    long n = (long)c->B * c->T * (c->NH + 2 * c->NKV) * c->HD;
    memcpy(c->dqkv, c->R, sizeof(float) * n);
    rope_backward(c->dqkv, c->cos_t, c->sin_t, c->B, c->T, c->NH, c->NKV, c->HD);
}
static void test_rope(void **state) {
    RopeCtx c = {.B = 2, .T = 5, .NH = 2, .NKV = 1, .HD = 6};
    long n = (long)c.B * c.T * (c.NH + 2 * c.NKV) * c.HD;
    c.qkv = randn(n, 1, 31);
    c.R = randn(n, 1, 32);
    c.work = calloc(n, 4);
    c.dqkv = calloc(n, 4);
    c.cos_t = calloc(c.T * c.HD / 2, 4);
    c.sin_t = calloc(c.T * c.HD / 2, 4);
    rope_tables(c.cos_t, c.sin_t, c.T, c.HD, 10000.0f);
    GcTensor ts[] = {{"qkv", c.qkv, c.dqkv, n}};
    assert_true(gradcheck("rope", ts, 1, rope_loss, rope_grad, &c, OPT) < OPT.tol);
    // v is not rotated; position 0 is not rotated
    rope_loss(&c);
    int QKV = (c.NH + 2 * c.NKV) * c.HD;
    for (int j = 0; j < QKV; j++) assert_float_equal(c.work[j], c.qkv[j], 1e-6);
    for (int t = 0; t < c.T; t++)
        for (int j = (c.NH + c.NKV) * c.HD; j < QKV; j++)
            assert_float_equal(c.work[t * QKV + j], c.qkv[t * QKV + j], 0);
    free(c.qkv), free(c.R), free(c.work), free(c.dqkv), free(c.cos_t), free(c.sin_t);
}

// ---- attention ----
typedef struct {
    int B, T, NH, NKV, HD;
    KilnDropout drop;
    float *qkv, *out, *lse, *scratch, *R, *dqkv;
} AttCtx;
static double att_loss(void *p) {
    AttCtx *c = p;
    attention_forward(c->out, c->lse, c->qkv, c->scratch, c->B, c->T, c->NH, c->NKV, c->HD, c->drop, 0);
    return dot(c->out, c->R, (long)c->B * c->T * c->NH * c->HD);
}
static void att_grad(void *p) {
    AttCtx *c = p;
    att_loss(c);
    attention_backward(c->dqkv, c->R, c->out, c->qkv, c->lse, c->scratch, c->B, c->T, c->NH, c->NKV,
                       c->HD, c->drop, 0);
}
static void check_attention(int NH, int NKV, float p, const char *name) {
    AttCtx c = {.B = 2, .T = 7, .NH = NH, .NKV = NKV, .HD = 4, .drop = {p, 99}};
    long n = (long)c.B * c.T * (NH + 2 * NKV) * c.HD, no = (long)c.B * c.T * NH * c.HD;
    c.qkv = randn(n, 1, 41);
    c.R = randn(no, 1, 42);
    c.out = calloc(no, 4);
    c.lse = calloc((size_t)c.B * NH * c.T, 4);
    c.dqkv = calloc(n, 4);
    c.scratch = calloc(attention_scratch_floats(c.T, omp_get_max_threads()), 4);
    GcTensor ts[] = {{"qkv", c.qkv, c.dqkv, n}};
    assert_true(gradcheck(name, ts, 1, att_loss, att_grad, &c, OPT) < OPT.tol);
    // causality: changing the last position's k and v leaves earlier outputs alone
    att_loss(&c);
    float *before = malloc(sizeof(float) * no);
    memcpy(before, c.out, sizeof(float) * no);
    int QKV = (NH + 2 * NKV) * c.HD;
    for (int j = NH * c.HD; j < QKV; j++) c.qkv[(c.T - 1) * QKV + j] += 1.0f;
    att_loss(&c);
    for (int t = 0; t < c.T - 1; t++)
        for (int j = 0; j < NH * c.HD; j++) assert_float_equal(c.out[t * NH * c.HD + j], before[t * NH * c.HD + j], 0);
    free(before), free(c.qkv), free(c.R), free(c.out), free(c.lse), free(c.dqkv), free(c.scratch);
}
static void test_attention_mha(void **state) { check_attention(4, 4, 0.0f, "attention MHA"); }
static void test_attention_gqa(void **state) { check_attention(4, 2, 0.0f, "attention GQA"); }
static void test_attention_mqa(void **state) { check_attention(3, 1, 0.0f, "attention MQA"); }
static void test_attention_dropout(void **state) { check_attention(4, 2, 0.3f, "attention dropout"); }

// ---- bf16 (train.precision: bf16) ----
static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}
static float from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}
// Round to nearest even, as torch's float -> bfloat16 (c10::round_to_nearest_even)
static void test_bf16_round(void **state) {
    static const uint32_t cases[][2] = {
        {0x3f800000, 0x3f800000},  // 1 is bf16
        {0x3f808000, 0x3f800000},  // 1 + 2^-8: a tie, to the even 1
        {0x3f818000, 0x3f820000},  // 1 + 3*2^-8: a tie, to the even 1 + 2^-6
        {0x3f808001, 0x3f810000},  // just past the tie: up
        {0x3f807fff, 0x3f800000},  // just below: down
        {0xbf808001, 0xbf810000},  // the same for negatives
        {0x7f7fffff, 0x7f800000},  // FLT_MAX rounds past bf16's largest: infinity
        {0x7f7f7fff, 0x7f7f0000},  // bf16's largest stays
        {0x7f800000, 0x7f800000},  // infinities stay
        {0xff800000, 0xff800000},
        {0x80000000, 0x80000000},  // -0 stays
        {0x00008000, 0x00000000},  // subnormal tie to even 0
        {0x00018000, 0x00020000},  // subnormal tie to even
        {0x7f800001, 0x7fc00000},  // NaNs: torch's quiet NaN, never an infinity
        {0xffffffff, 0x7fc00000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t got = bits(bf16_round_value(from_bits(cases[i][0])));
        if (got != cases[i][1]) fail_msg("bf16(%08x) = %08x, want %08x", cases[i][0], got, cases[i][1]);
    }
    // the array forms agree with the scalar one, across the vectorized and serial paths
    long n = 10007;
    float *x = randn(n, 3, 61), *y = malloc(sizeof(float) * n);
    bf16_round_copy(y, x, n);
    for (long i = 0; i < n; i++) assert_int_equal(bits(y[i]), bits(bf16_round_value(x[i])));
    uint16_t *h = malloc(sizeof(uint16_t) * n);
    bf16_pack(h, x, n);  // the 16 bits a bf16 kernel reads
    for (long i = 0; i < n; i++) assert_int_equal((uint32_t)h[i] << 16, bits(y[i]));
    bf16_round(x, n);
    assert_memory_equal(x, y, sizeof(float) * n);
    free(x), free(y), free(h);
}

// bf16_gemm (oneDNN's bf16 kernels, train.bf16_kernels) on every shape class
// the linear layers use (forward NT, input gradient NN, weight gradient TN with
// accumulation) and odd sizes: against a double product of the operands
// rounded to bf16, within float summation error, and through linear_forward /
// linear_backward against their sgemm path. Skipped where this build or CPU
// has no bf16 kernels.
static double rel_err(const float *x, const double *ref, long n) {
    double d = 0, r = 0;
    for (long i = 0; i < n; i++) d += (x[i] - ref[i]) * (x[i] - ref[i]), r += ref[i] * ref[i];
    return sqrt(d / (r > 0 ? r : 1));
}
// x within relative 2-norm 1e-6 of ref: one library's products against another's
static void assert_close(const float *x, const float *ref, long n) {
    double d = 0, r = 0;
    for (long i = 0; i < n; i++) d += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]), r += (double)ref[i] * ref[i];
    if (!(sqrt(d / (r > 0 ? r : 1)) < 1e-6)) fail_msg("relative error %g over %ld values", sqrt(d / (r > 0 ? r : 1)), n);
}
static void test_bf16_gemm(void **state) {
    KilnErr err;
    KilnBf16Gemm *g = bf16_gemm_open(&err);
    if (!g) {
        print_message("skipped: %s\n", err.msg);
        skip();
    }
    static const int shapes[][3] = {{64, 96, 32}, {64, 32, 128}, {37, 53, 29}, {64, 257, 32}, {16, 24, 301}, {1, 7, 5}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        for (int kind = 0; kind < 3; kind++) {  // NT, NN, TN
            int ta = kind == 2, tb = kind == 0;
            float *A = randn((long)M * K, 1, 100 + si), *B = randn((long)K * N, 1, 200 + si);
            float *C = randn((long)M * N, 1, 300 + si);
            double *ref = malloc(sizeof(double) * M * N);
            for (int acc = 0; acc < 2; acc++) {
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double sum = acc ? C[(long)i * N + j] : 0;
                        for (int k = 0; k < K; k++) {
                            float a = ta ? A[(long)k * M + i] : A[(long)i * K + k];
                            float b = tb ? B[(long)j * K + k] : B[(long)k * N + j];
                            sum += (double)bf16_round_value(a) * bf16_round_value(b);
                        }
                        ref[(long)i * N + j] = sum;
                    }
                if (bf16_gemm(g, ta, tb, M, N, K, A, B, acc, C, &err)) fail_msg("%s", err.msg);
                double e = rel_err(C, ref, (long)M * N);
                if (e > 1e-6) fail_msg("%dx%dx%d %s acc %d: relative error %g", M, N, K, kind == 0 ? "NT" : kind == 1 ? "NN" : "TN", acc, e);
            }
            free(A), free(B), free(C), free(ref);
        }
    }
    // the layer: bf16 kernels against the sgemm on the same rounded operands
    int N = 48, IC = 40, OC = 72;
    float *inp = randn((long)N * IC, 1, 5), *w = randn((long)OC * IC, 0.2f, 6), *b = randn(OC, 1, 7);
    float *dout = randn((long)N * OC, 1, 8);
    bf16_round(inp, (long)N * IC), bf16_round(w, (long)OC * IC), bf16_round(dout, (long)N * OC);
    float *o1 = calloc((size_t)N * OC, 4), *o2 = calloc((size_t)N * OC, 4), *di1 = calloc((size_t)N * IC, 4),
          *di2 = calloc((size_t)N * IC, 4), *dw1 = calloc((size_t)OC * IC, 4), *dw2 = calloc((size_t)OC * IC, 4),
          *db1 = calloc(OC, 4), *db2 = calloc(OC, 4);
    KilnMatmul mm = {.bf16 = g};
    linear_forward(o1, inp, w, b, N, IC, OC, NULL);
    linear_forward(o2, inp, w, b, N, IC, OC, &mm);
    assert_close(o2, o1, (long)N * OC);
    linear_backward(di1, dw1, db1, dout, inp, w, N, IC, OC, NULL);
    linear_backward(di2, dw2, db2, dout, inp, w, N, IC, OC, &mm);
    assert_close(di2, di1, (long)N * IC);
    assert_close(dw2, dw1, (long)OC * IC);
    assert_memory_equal(db1, db2, sizeof(float) * OC);
    assert_null(bf16_gemm_failure(g));
    static const int shape[1][3] = {{64, 96, 32}};
    KilnMatmul sgemm = {.bf16 = NULL};
    double bs, ss;
    mm_race(&mm, &sgemm, KILN_MM_NT, shape, 1, 2, &bs, &ss);
    assert_true(bs > 0 && ss > 0);
    assert_null(bf16_gemm_failure(g));
    print_message("bf16 kernel %s; race on 64x96x32: %.1f vs sgemm %.1f GFLOP/s\n", bf16_gemm_impl(g),
                  2.0 * 64 * 96 * 32 / bs / 1e9, 2.0 * 64 * 96 * 32 / ss / 1e9);
    free(inp), free(w), free(b), free(dout), free(o1), free(o2), free(di1), free(di2), free(dw1), free(dw2);
    free(db1), free(db2);
    bf16_gemm_close(g);
}

// oneDNN's sgemm for each product class (train.sgemm) against OpenBLAS's:
// the same products in fp32, summed in another order.
static void test_sgemm_onednn(void **state) {
    if (!backend_onednn_version()) {
        print_message("skipped: this build has no oneDNN\n");
        skip();
    }
    int N = 37, IC = 70, OC = 53;
    float *inp = randn((long)N * IC, 1, 15), *w = randn((long)OC * IC, 0.2f, 16), *b = randn(OC, 1, 17);
    float *dout = randn((long)N * OC, 1, 18);
    for (int cls = 0; cls < KILN_MM_CLASSES; cls++) {
        KilnMatmul mm = {0};
        mm.onednn[cls] = 1;
        float *o1 = calloc((size_t)N * OC, 4), *o2 = calloc((size_t)N * OC, 4), *di1 = calloc((size_t)N * IC, 4),
              *di2 = calloc((size_t)N * IC, 4), *dw1 = randn((long)OC * IC, 1, 19), *dw2 = randn((long)OC * IC, 1, 19);
        linear_forward(o1, inp, w, b, N, IC, OC, NULL);
        linear_forward(o2, inp, w, b, N, IC, OC, &mm);
        linear_backward(di1, dw1, NULL, dout, inp, w, N, IC, OC, NULL);
        linear_backward(di2, dw2, NULL, dout, inp, w, N, IC, OC, &mm);
        assert_close(o2, o1, (long)N * OC);
        assert_close(di2, di1, (long)N * IC);
        assert_close(dw2, dw1, (long)OC * IC);  // accumulated onto the same start
        // the class that moved differs from OpenBLAS in its last bits only; the others are OpenBLAS's bit for bit
        if (cls != KILN_MM_NT) assert_memory_equal(o1, o2, sizeof(float) * N * OC);
        if (cls != KILN_MM_NN) assert_memory_equal(di1, di2, sizeof(float) * N * IC);
        if (cls != KILN_MM_TN) assert_memory_equal(dw1, dw2, sizeof(float) * OC * IC);
        free(o1), free(o2), free(di1), free(di2), free(dw1), free(dw2);
    }
    static const int shapes[][3] = {{64, 96, 32}, {64, 32, 96}};
    for (int cls = 0; cls < KILN_MM_CLASSES; cls++) {
        KilnMatmul openblas = {.bf16 = NULL}, onednn = {.bf16 = NULL};
        onednn.onednn[cls] = 1;
        double ob, dn;
        mm_race(&openblas, &onednn, cls, shapes, 2, 2, &ob, &dn);
        assert_true(ob > 0 && dn > 0);
    }
    free(inp), free(w), free(b), free(dout);
}

// bf16 attention against a double reference with the same rounding points:
// the probabilities rounded before P @ V (and dV), the score gradients before
// dQ and dK. Inputs are multiples of 1/8 below 2 (bf16 values whose products
// and short sums are exact in float) and HD = 4 (scale 1/2), so the scores are
// exact whatever order a BLAS sums in, and only kiln's exp and the softmax's
// float arithmetic differ from the reference: far below the bf16 rounding the
// test checks for (the fp32 path misses the reference by ~1e-3).
static double att_bf16_ref_err(int bf16) {
    enum { T = 7, HD = 4, NH = 2, NKV = 1, QKV = (NH + 2 * NKV) * HD, C = NH * HD };
    KilnRng r;
    kiln_rng_seed(&r, 77);
    float qkv[T * QKV], dout[T * C], out[T * C], lse[NH * T], dqkv[T * QKV];
    for (int i = 0; i < T * QKV; i++) qkv[i] = (float)((int)(kiln_rng_u64(&r) % 31) - 15) / 8.0f;
    for (int i = 0; i < T * C; i++) dout[i] = (float)((int)(kiln_rng_u64(&r) % 31) - 15) / 8.0f;
    float *scratch = calloc(attention_scratch_floats(T, omp_get_max_threads()), 4);
    KilnDropout nodrop = {0};
    attention_forward(out, lse, qkv, scratch, 1, T, NH, NKV, HD, nodrop, bf16);
    attention_backward(dqkv, dout, out, qkv, lse, scratch, 1, T, NH, NKV, HD, nodrop, bf16);
    free(scratch);
    double rout[T * C] = {0}, rd[T * QKV] = {0}, worst = 0, maxo = 0, maxd = 0;
    for (int h = 0; h < NH; h++) {
        const float *Q = qkv + h * HD, *K = qkv + C, *V = qkv + C + HD;
        double P[T][T] = {{0}}, Pr[T][T] = {{0}}, dS[T][T] = {{0}};
        for (int i = 0; i < T; i++) {
            double m = -1e300, sum = 0;
            for (int j = 0; j <= i; j++) {
                double sc = 0;
                for (int d = 0; d < HD; d++) sc += (double)Q[i * QKV + d] * K[j * QKV + d];
                P[i][j] = sc * 0.5;
                m = fmax(m, P[i][j]);
            }
            for (int j = 0; j <= i; j++) sum += P[i][j] = exp(P[i][j] - m);
            for (int j = 0; j <= i; j++) {
                P[i][j] /= sum;
                Pr[i][j] = bf16_round_value((float)P[i][j]);
            }
            for (int d = 0; d < HD; d++)
                for (int j = 0; j <= i; j++) rout[i * C + h * HD + d] += Pr[i][j] * V[j * QKV + d];
        }
        const float *dO = dout + h * HD;
        for (int i = 0; i < T; i++) {
            double dP[T] = {0}, dot = 0;
            for (int j = 0; j <= i; j++) {
                for (int d = 0; d < HD; d++) dP[j] += (double)dO[i * C + d] * V[j * QKV + d];
                dot += P[i][j] * dP[j];
            }
            for (int j = 0; j <= i; j++) dS[i][j] = bf16_round_value((float)(P[i][j] * (dP[j] - dot)));
            for (int j = 0; j <= i; j++)
                for (int d = 0; d < HD; d++) {
                    rd[i * QKV + h * HD + d] += 0.5 * dS[i][j] * K[j * QKV + d];            // dQ
                    rd[j * QKV + C + d] += 0.5 * dS[i][j] * Q[i * QKV + d];                 // dK
                    rd[j * QKV + C + HD + d] += Pr[i][j] * dO[i * C + d];                   // dV
                }
        }
    }
    for (int i = 0; i < T * C; i++) maxo = fmax(maxo, fabs(rout[i]));
    for (int i = 0; i < T * QKV; i++) maxd = fmax(maxd, fabs(rd[i]));
    for (int i = 0; i < T * C; i++) worst = fmax(worst, fabs(out[i] - rout[i]) / maxo);
    for (int i = 0; i < T * QKV; i++) worst = fmax(worst, fabs(dqkv[i] - rd[i]) / maxd);
    return worst;
}
static void test_attention_bf16(void **state) {
    double e16 = att_bf16_ref_err(1), e32 = att_bf16_ref_err(0);
    printf("attention bf16 vs its double reference: %.2e (the fp32 path: %.2e)\n", e16, e32);
    assert_true(e16 < 1e-5);
    assert_true(e32 > 1e-4);  // the reference tells rounding from none
}

// ---- cross-entropy ----
typedef struct {
    int N, V;
    float *logits, *work;
    int32_t *targets;
} CeCtx;
static double ce_loss(void *p) {
    CeCtx *c = p;
    memcpy(c->work, c->logits, sizeof(float) * c->N * c->V);
    return crossentropy_forward_backward(c->work, c->targets, c->N, c->V, 0.0f, NULL);
}
static void ce_grad(void *p) {
    CeCtx *c = p;
    memcpy(c->work, c->logits, sizeof(float) * c->N * c->V);
    crossentropy_forward_backward(c->work, c->targets, c->N, c->V, 1.0f, NULL);
}
static void test_crossentropy(void **state) {
    CeCtx c = {.N = 6, .V = 11};
    c.logits = randn(66, 2, 51);
    c.work = calloc(66, 4);
    int32_t targets[6] = {3, -1, 0, 10, 5, -1};
    c.targets = targets;
    GcTensor ts[] = {{"logits", c.logits, c.work, 66}};
    GcOptions o = OPT;
    o.h = 1e-2;
    // the grad callback leaves dlogits in work; copy them out before the loss reuses work
    ce_grad(&c);
    float *g = malloc(sizeof(float) * 66);
    memcpy(g, c.work, sizeof(float) * 66);
    ts[0].grad = g;
    assert_true(gradcheck("crossentropy", ts, 1, ce_loss, ce_grad, &c, o) < o.tol);
    // ignored rows get zero gradient; the loss equals a direct computation
    for (int v = 0; v < 11; v++) assert_float_equal(g[1 * 11 + v], 0.0f, 0);
    double want = 0;
    for (int n = 0; n < 6; n++) {
        if (targets[n] < 0) continue;
        double m = -1e30, s = 0;
        for (int v = 0; v < 11; v++) m = fmax(m, c.logits[n * 11 + v]);
        for (int v = 0; v < 11; v++) s += exp(c.logits[n * 11 + v] - m);
        want += m + log(s) - c.logits[n * 11 + targets[n]];
    }
    assert_float_equal(ce_loss(&c), want / 4, 1e-5);
    free(g), free(c.logits), free(c.work);
}

// ---- embedding ----
typedef struct {
    int B, T, C, V;
    int32_t *tokens;
    float *wte, *wpe, *out, *R, *dwte, *dwpe;
} EmbCtx;
static double emb_loss(void *p) {
    EmbCtx *c = p;
    embedding_forward(c->out, c->tokens, c->wte, 0, c->V, c->wpe, c->B, c->T, c->C);
    return dot(c->out, c->R, (long)c->B * c->T * c->C);
}
static void emb_grad(void *p) {
    EmbCtx *c = p;
    memset(c->dwte, 0, sizeof(float) * c->V * c->C);
    memset(c->dwpe, 0, sizeof(float) * c->T * c->C);
    embedding_backward(c->dwte, 0, c->V, c->dwpe, c->R, c->tokens, c->B, c->T, c->C);
}
static void test_embedding(void **state) {
    int32_t tokens[8] = {1, 4, 1, 0, 4, 4, 2, 1};  // repeats: gradients must add up
    EmbCtx c = {.B = 2, .T = 4, .C = 70, .V = 5, .tokens = tokens};
    c.wte = randn(5 * 70, 1, 61);
    c.wpe = randn(4 * 70, 1, 62);
    c.R = randn(8 * 70, 1, 63);
    c.out = calloc(8 * 70, 4);
    c.dwte = calloc(5 * 70, 4);
    c.dwpe = calloc(4 * 70, 4);
    GcTensor ts[] = {{"wte", c.wte, c.dwte, 350}, {"wpe", c.wpe, c.dwpe, 280}};
    assert_true(gradcheck("embedding", ts, 2, emb_loss, emb_grad, &c, OPT) < OPT.tol);
    free(c.wte), free(c.wpe), free(c.R), free(c.out), free(c.dwte), free(c.dwpe);
}

// ---- vocabulary-parallel shards (tensor parallelism): two ranks' halves of
// the embedding and of the cross-entropy, combined as the group's all-reduces
// combine them, give the whole vocabulary's results ----
static void test_vocab_shards(void **state) {
    (void)state;
    enum { B = 2, T = 3, N = B * T, C = 5, V = 8, H = V / 2 };
    int32_t tokens[N] = {0, 7, 3, 4, 4, 1}, targets[N] = {7, 0, -1, 3, 4, 5};
    float *wte = randn(V * C, 1, 71), *wpe = randn(T * C, 1, 72), *dout = randn(N * C, 1, 73);
    float whole[N * C], half[2][N * C], dw[V * C] = {0}, dwp[T * C] = {0}, dws[V * C] = {0}, dwps[T * C] = {0};
    embedding_forward(whole, tokens, wte, 0, V, wpe, B, T, C);
    for (int k = 0; k < 2; k++) embedding_forward(half[k], tokens, wte + k * H * C, k * H, H, k ? NULL : wpe, B, T, C);
    for (int i = 0; i < N * C; i++) assert_float_equal(half[0][i] + half[1][i], whole[i], 0);
    embedding_backward(dw, 0, V, dwp, dout, tokens, B, T, C);
    for (int k = 0; k < 2; k++) embedding_backward(dws + k * H * C, k * H, H, dwps, dout, tokens, B, T, C);
    for (int i = 0; i < V * C; i++) assert_float_equal(dws[i], dw[i], 0);
    for (int i = 0; i < T * C; i++) assert_float_equal(dwps[i], 2 * dwp[i], 1e-6);  // each rank's own copy
    float *logits = randn(N * V, 3, 74), shard[2][N * H], mx[2][N], sum[2][N];
    for (int k = 0; k < 2; k++)
        for (int n = 0; n < N; n++) memcpy(shard[k] + n * H, logits + n * V + k * H, sizeof(float) * H);
    double want = crossentropy_forward_backward(logits, targets, N, V, 0.5f, NULL), got = 0;
    for (int k = 0; k < 2; k++) crossentropy_shard_max(shard[k], N, H, mx[k]);
    for (int n = 0; n < N; n++) mx[0][n] = mx[1][n] = fmaxf(mx[0][n], mx[1][n]);
    for (int k = 0; k < 2; k++) crossentropy_shard_sumexp(shard[k], N, H, mx[k], sum[k]);
    for (int n = 0; n < N; n++) sum[0][n] = sum[1][n] = sum[0][n] + sum[1][n];
    for (int k = 0; k < 2; k++)
        got += crossentropy_shard_finish(shard[k], targets, N, H, k * H, mx[k], sum[k], 0.5f, NULL);
    assert_float_equal(got, want, 1e-5);
    for (int k = 0; k < 2; k++)
        for (int n = 0; n < N; n++)
            for (int v = 0; v < H; v++) assert_float_equal(shard[k][n * H + v], logits[n * V + k * H + v], 1e-6);
    free(wte), free(wpe), free(dout), free(logits);
}

// ---- dropout: the same seed gives the same mask; the kept fraction is about 1-p ----
static void test_dropout_mask(void **state) {
    long n = 100000;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) a[i] = b[i] = 1.0f;
    KilnDropout d = {0.25f, 5, 0, 0};
    dropout_apply(a, n, d);
    dropout_apply(b, n, d);
    long kept = 0;
    for (long i = 0; i < n; i++) {
        assert_float_equal(a[i], b[i], 0);
        if (a[i] != 0.0f) {
            kept++;
            assert_float_equal(a[i], 1.0f / 0.75f, 1e-6);
        }
    }
    assert_true(fabs((double)kept / n - 0.75) < 0.01);
    free(a), free(b);
}

// ---- fast_expf: within a few ulp of libm's expf over the whole useful range ----
static void test_fast_expf(void **state) {
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.000731f) {
        double want = exp((double)x), got = fast_expf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
    }
    print_message("fast_expf worst relative error %.3g (fp32 ulp is 1.19e-07)\n", worst);
    assert_true(worst < 3e-7);
    assert_float_equal(fast_expf(0.0f), 1.0f, 0);
    assert_true(fast_expf(-1000.0f) > 0.0f && fast_expf(-1000.0f) < 1e-37f);  // clamped, not denormal
    assert_true(isfinite(fast_expf(1000.0f)));
}
// ---- fast_normal_cdf: Phi(x) for exact GELU ----
// Within a few ulp everywhere, the far negative tail included, where 1 + erff
// (what GELU computed before) has no correct digit at all.
static void test_fast_normal_cdf(void **state) {
    (void)state;
    double worst[2] = {0, 0};
    for (float x = -12.0f; x <= 12.0f; x += 0.000917f) {
        double want = 0.5 * erfc(-(double)x / sqrt(2.0)), got = fast_normal_cdf(x);
        double rel = fabs(got - want) / want;
        int tail = want < 1e-4;
        if (rel > worst[tail]) worst[tail] = rel;
    }
    print_message("fast_normal_cdf worst relative error %.3g (Phi > 1e-4), %.3g (tail)\n", worst[0], worst[1]);
    assert_true(worst[0] < 6e-7);
    assert_true(worst[1] < 6e-7);
    assert_true(fast_normal_cdf(40.0f) == 1.0f && fast_normal_cdf(-40.0f) >= 0.0f);
}

// The backend's memory and machine calls: what the model, checkpoints and MFU rely on.
static void test_memory_and_machine(void **state) {
    (void)state;
    KilnErr err;
    long n = 1000;
    float *a = backend_alloc(n, &err), *b = backend_alloc(n, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal((uintptr_t)a % 64, 0);
    double abs_sum = 1.0, sq_sum = 2.0;  // the sums add onto these
    for (long i = 0; i < n; i++) assert_true(a[i] == 0.0f);
    float *x = randn(n, 1.0f, 7);
    backend_from_host(a, x, sizeof(float) * n);
    backend_copy(b, a, n);
    assert_memory_equal(b, x, sizeof(float) * n);
    abs_square_sums(b, n, &abs_sum, &sq_sum);
    double abs_ref = 1.0, sq_ref = 2.0;
    for (long i = 0; i < n; i++) abs_ref += fabs((double)x[i]), sq_ref += (double)x[i] * x[i];
    assert_true(fabs(abs_sum - abs_ref) < 1e-9 * abs_ref && fabs(sq_sum - sq_ref) < 1e-9 * sq_ref);
    assert_true(fabs(sum_squares(b, n) - (sq_ref - 2.0)) < 1e-9 * sq_ref);
    float *view = backend_view(b, n, &err);  // the checkpoint's access
    assert_non_null(view);
    view[3] = 42.0f;
    assert_int_equal(backend_view_end(view, b, n, 1, &err), 0);
    assert_true(b[3] == 42.0f);
    backend_zero(b, n);
    for (long i = 0; i < n; i++) assert_true(b[i] == 0.0f);
    assert_true(backend_peak_flops(64) > 0);
    KilnBackendInfo info = backend_info();
    assert_string_equal(info.name, "cpu");
    assert_non_null(info.blas);
    assert_non_null(info.blas_config);
    free(x);
    backend_free(a);
    backend_free(b);
}

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

// Threads follow the cgroup's CPU quota (issue 12, item 10): the tightest
// cpu.max on the process's group path, walking up to the root.
static void test_cgroup_quota(void **st) {
    (void)st;
    char root[] = "/tmp/kiln-cgroup-XXXXXX", p[256], self[256];
    assert_non_null(mkdtemp(root));
    snprintf(p, sizeof p, "%s/a", root), mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/a/b", root), mkdir(p, 0755);
    snprintf(self, sizeof self, "%s/cgroup", root);
    put(self, "0::/a/b\n");
    snprintf(p, sizeof p, "%s/a/b/cpu.max", root), put(p, "max 100000\n");
    assert_true(backend_cgroup_quota(self, root) == 0);  // no quota anywhere
    snprintf(p, sizeof p, "%s/a/cpu.max", root), put(p, "150000 100000\n");
    assert_true(fabs(backend_cgroup_quota(self, root) - 1.5) < 1e-12);  // the parent's
    snprintf(p, sizeof p, "%s/a/b/cpu.max", root), put(p, "50000 100000\n");
    assert_true(fabs(backend_cgroup_quota(self, root) - 0.5) < 1e-12);  // the tighter own
    put(self, "12:cpu:/x\n0::/\n");  // a container: its own group is the root
    snprintf(p, sizeof p, "%s/cpu.max", root), put(p, "200000 100000\n");
    assert_true(fabs(backend_cgroup_quota(self, root) - 2) < 1e-12);
    snprintf(p, sizeof p, "%s/nope", root);
    assert_true(backend_cgroup_quota(p, root) == 0);  // no /proc/self/cgroup
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

// issue 13: Debian 12's OpenBLAS runs its Prescott kernels on recent Xeons
static void test_blas_better_core(void **st) {
    (void)st;
    KilnCpuIsa none = {0}, avx2 = {.avx = 1, .avx2 = 1, .fma = 1},
               avx512 = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1, .avx512bw = 1, .avx512dq = 1, .avx512vl = 1},
               knl = {.avx = 1, .avx2 = 1, .fma = 1, .avx512f = 1};  // AVX-512 F without BW/DQ/VL
    assert_string_equal(backend_blas_better_core("Prescott", &avx512), "SkylakeX");
    assert_string_equal(backend_blas_better_core("Sandybridge", &avx512), "SkylakeX");
    assert_string_equal(backend_blas_better_core("Prescott", &avx2), "Haswell");
    assert_string_equal(backend_blas_better_core("Nehalem", &knl), "Haswell");
    assert_null(backend_blas_better_core("Prescott", &none));  // nothing better runs here
    assert_null(backend_blas_better_core("Haswell", &avx512));  // chosen knowing the CPU
    assert_null(backend_blas_better_core("Zen", &avx512));
    assert_null(backend_blas_better_core("SkylakeX", &avx512));
    assert_null(backend_blas_better_core("SapphireRapids", &avx512));  // newer than kiln knows: left alone
    assert_null(backend_blas_better_core(NULL, &avx512));
    char names[256];
    backend_isa_names(&avx2, names, sizeof names);
    assert_string_equal(names, "avx avx2 fma");
    backend_isa_names(&none, names, sizeof names);
    assert_string_equal(names, "none beyond SSE");
    // this machine: this test binary is not run again with a better core, as
    // the kiln binary is (test_blascore.sh): where OpenBLAS fell back here, the
    // core kiln would choose is one the CPU runs and not the fallback
    KilnCpuIsa here;
    backend_cpu_isa(&here);
    KilnBackendInfo be = backend_info();
    const char *better = backend_blas_better_core(be.blas_core, &here);
    if (better) {
        assert_string_not_equal(better, be.blas_core);
        assert_true(!strcmp(better, "SkylakeX") ? here.avx512f && here.avx512bw : here.avx2 && here.fma);
        print_message("OpenBLAS picked %s on this CPU; kiln runs %s\n", be.blas_core, better);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),          cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_nobias), cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_gelu),            cmocka_unit_test(test_gelu_erf),
        cmocka_unit_test(test_relu),            cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_rope),            cmocka_unit_test(test_attention_mha),
        cmocka_unit_test(test_attention_gqa),   cmocka_unit_test(test_attention_mqa),
        cmocka_unit_test(test_attention_dropout), cmocka_unit_test(test_attention_bf16),
        cmocka_unit_test(test_bf16_round),      cmocka_unit_test(test_bf16_gemm), cmocka_unit_test(test_sgemm_onednn),      cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_embedding),       cmocka_unit_test(test_vocab_shards),       cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_fast_expf),
        cmocka_unit_test(test_fast_normal_cdf),
        cmocka_unit_test(test_memory_and_machine),
        cmocka_unit_test(test_cgroup_quota),
        cmocka_unit_test(test_blas_better_core),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
