// bf16_gemm.c: matmuls in bf16 instructions for train.precision bf16, through
// oneDNN's matmul primitive (its brgemm kernels: AVX512_BF16's vdpbf16ps, or
// AMX where the CPU and OS offer it), the library PyTorch runs autocast's
// bf16 linear layers on. Operands are packed to bf16 (rounded to nearest
// even, as bf16_round), products summed in fp32, output fp32: the numbers
// of the emulation (fp32 sgemm on rounded operands) up to the order of the
// sums. A plan (primitive and its memory descriptors) is made once per shape
// and kept; the operands' addresses are set at each call.
#include "backend/backend.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#ifdef KILN_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

typedef struct {
    int ta, tb, M, N, K, acc;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
} Plan;

struct KilnBf16Gemm {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    Plan *plans;
    int nplans, cap;
    uint16_t *abuf, *bbuf;  // the operands packed to bf16
    long acap, bcap;
    char impl[64];          // oneDNN's name for the kernel of the latest plan
    int failed;
    KilnErr first;          // the first failure
};

const char *bf16_gemm_failure(const KilnBf16Gemm *g) { return g->failed ? g->first.msg : NULL; }

static int failure(KilnBf16Gemm *g, KilnErr *err) {
    if (!g->failed && err) g->first = *err;
    g->failed = 1;
    return -1;
}

KilnBf16Gemm *bf16_gemm_open(KilnErr *err) {
    KilnCpuIsa isa;
    backend_cpu_isa(&isa);
    if (!isa.avx512_bf16) {
        kiln_fail(err, "this CPU has no bf16 instructions (AVX512_BF16)");
        return NULL;
    }
    KilnBf16Gemm *g = calloc(1, sizeof *g);
    if (!g) {
        kiln_fail(err, "out of memory");
        return NULL;
    }
    if (dnnl_engine_create(&g->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&g->stream, g->eng, dnnl_stream_default_flags) != dnnl_success) {
        kiln_fail(err, "oneDNN: no CPU engine");
        bf16_gemm_close(g);
        return NULL;
    }
    snprintf(g->impl, sizeof g->impl, "none yet");
    return g;
}

void bf16_gemm_close(KilnBf16Gemm *g) {
    if (!g) return;
    for (int i = 0; i < g->nplans; i++) {
        dnnl_primitive_destroy(g->plans[i].prim);
        dnnl_memory_destroy(g->plans[i].a);
        dnnl_memory_destroy(g->plans[i].b);
        dnnl_memory_destroy(g->plans[i].c);
    }
    free(g->plans);
    kiln_free(g->abuf);
    kiln_free(g->bbuf);
    if (g->stream) dnnl_stream_destroy(g->stream);
    if (g->eng) dnnl_engine_destroy(g->eng);
    free(g);
}

const char *bf16_gemm_impl(const KilnBf16Gemm *g) { return g->impl; }

// The primitive for C (M,N) (+)= op(A) op(B), row-major: a transposed
// operand is the stored matrix read with swapped strides, never copied.
static int make_plan(KilnBf16Gemm *g, Plan *p, KilnErr *err) {
    dnnl_dims_t ad = {p->M, p->K}, bd = {p->K, p->N}, cd = {p->M, p->N};
    dnnl_dims_t as = {p->ta ? 1 : p->K, p->ta ? p->M : 1};
    dnnl_dims_t bs = {p->tb ? 1 : p->N, p->tb ? p->K : 1};
    dnnl_dims_t cs = {p->N, 1};
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    int ok = dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_bf16, as) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_bf16, bs) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, cs) == dnnl_success &&
             dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success;
    if (ok && p->acc)  // C += product: the sum post-op reads C before writing it
        ok = dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    ok = ok && dnnl_primitive_desc_create(&pd, &desc, attr, g->eng, NULL) == dnnl_success &&
         dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
         dnnl_primitive_create(&p->prim, pd) == dnnl_success &&
         dnnl_memory_create(&p->a, &amd, g->eng, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&p->b, &bmd, g->eng, DNNL_MEMORY_NONE) == dnnl_success &&
         dnnl_memory_create(&p->c, &cmd, g->eng, DNNL_MEMORY_NONE) == dnnl_success;
    if (ok && impl) snprintf(g->impl, sizeof g->impl, "%s", impl);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) return kiln_fail(err, "oneDNN: no bf16 matmul for %d x %d x %d (%s%s)", p->M, p->N, p->K,
                             p->ta ? "T" : "N", p->tb ? "T" : "N");
    return 0;
}

static Plan *find_plan(KilnBf16Gemm *g, int ta, int tb, int M, int N, int K, int acc, KilnErr *err) {
    for (int i = 0; i < g->nplans; i++) {
        Plan *p = &g->plans[i];
        if (p->ta == ta && p->tb == tb && p->M == M && p->N == N && p->K == K && p->acc == acc) return p;
    }
    if (g->nplans == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        Plan *q = realloc(g->plans, sizeof *q * (size_t)cap);
        if (!q) return kiln_fail(err, "out of memory"), NULL;
        g->plans = q;
        g->cap = cap;
    }
    Plan *p = &g->plans[g->nplans];
    *p = (Plan){.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .acc = acc};
    if (make_plan(g, p, err)) {
        if (p->prim) dnnl_primitive_destroy(p->prim);
        if (p->a) dnnl_memory_destroy(p->a);
        if (p->b) dnnl_memory_destroy(p->b);
        return NULL;
    }
    g->nplans++;
    return p;
}

// *buf, holding *cap values, made to hold n
static int reserve(uint16_t **buf, long *cap, long n, KilnErr *err) {
    if (n <= *cap) return 0;
    kiln_free(*buf);
    *buf = kiln_alloc((size_t)n * sizeof **buf, err);
    *cap = *buf ? n : 0;
    return *buf ? 0 : -1;
}

int bf16_gemm(KilnBf16Gemm *g, int ta, int tb, int M, int N, int K, const float *A, const float *B, int accumulate,
              float *C, KilnErr *err) {
    Plan *p = find_plan(g, ta, tb, M, N, K, accumulate, err);
    if (!p || reserve(&g->abuf, &g->acap, (long)M * K, err) || reserve(&g->bbuf, &g->bcap, (long)K * N, err))
        return failure(g, err);
    bf16_pack(g->abuf, A, (long)M * K);
    bf16_pack(g->bbuf, B, (long)K * N);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, p->b}, {DNNL_ARG_DST, p->c}};
    sigset_t old;
    onednn_signals_off(&old);  // as for its sgemm (matmul.c)
    int bad = dnnl_memory_set_data_handle(p->a, g->abuf) != dnnl_success ||
              dnnl_memory_set_data_handle(p->b, g->bbuf) != dnnl_success ||
              dnnl_memory_set_data_handle(p->c, C) != dnnl_success ||
              dnnl_primitive_execute(p->prim, g->stream, 3, args) != dnnl_success ||
              dnnl_stream_wait(g->stream) != dnnl_success;
    onednn_signals_on(&old);
    if (bad) {
        kiln_fail(err, "oneDNN: the bf16 matmul %d x %d x %d failed", M, N, K);
        return failure(g, err);
    }
    return 0;
}

#else  // built without oneDNN: bf16 runs on the fp32 sgemm (precision.c)

struct KilnBf16Gemm {
    int unused;
};

KilnBf16Gemm *bf16_gemm_open(KilnErr *err) {
    kiln_fail(err, "this kiln was built without oneDNN (Debian's libdnnl-dev, scripts/install-deps.sh)");
    return NULL;
}

void bf16_gemm_close(KilnBf16Gemm *g) { (void)g; }

const char *bf16_gemm_impl(const KilnBf16Gemm *g) {
    (void)g;
    return "none";
}

const char *bf16_gemm_failure(const KilnBf16Gemm *g) {
    (void)g;
    return NULL;
}

int bf16_gemm(KilnBf16Gemm *g, int ta, int tb, int M, int N, int K, const float *A, const float *B, int accumulate,
              float *C, KilnErr *err) {
    (void)g, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)B, (void)accumulate, (void)C;
    return kiln_fail(err, "this kiln was built without oneDNN");
}

#endif

void bf16_gemm_peak(KilnBf16Gemm *g, KilnPeak *p, int n) {
    p->flops_per_cycle *= 2;
    p->theoretical *= 2;
    snprintf(p->per_cycle_why, sizeof p->per_cycle_why, "AVX512_BF16: vdpbf16ps, 2 products per fp32 FMA lane");
    long N = n;
    float *a = backend_alloc(3 * N * N, NULL);
    p->measured = 0;
    if (a) {
        for (long i = 0; i < 2 * N * N; i++) a[i] = bf16_round_value((float)(i % 7) * 0.125f);
        double end = kiln_now() + 1.0, flops = 2.0 * N * N * N;
        for (int calls = 0; calls < 5 || kiln_now() < end; calls++) {
            KilnErr e;
            double t = kiln_now();
            if (bf16_gemm(g, 0, 0, n, n, n, a, a + N * N, 0, a + 2 * N * N, &e)) break;
            t = kiln_now() - t;
            if (calls && t > 0 && flops / t > p->measured) p->measured = flops / t;
        }
        backend_free(a);
    }
    p->peak_is = p->measured > p->theoretical ? "measured" : "theoretical";
    p->peak = p->measured > p->theoretical ? p->measured : p->theoretical;
}
