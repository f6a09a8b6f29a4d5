// bench_matmul: the model's matmuls in OpenBLAS (what kiln links), BLIS and
// oneDNN, side by side on the same buffers and threads (issue 13, item 1).
//
//   bench_matmul [--model gpt2|baby|6layer] [--B 4] [--T 64] [--secs 0.5]
//
// For each linear layer of the model (qkv, attention projection, MLP up and
// down, lm_head) it times the three products kiln runs, row-major:
//   forward   out (N,OC) = inp (N,IC) @ W^T          (NT)
//   backward  dinp (N,IC) = dout (N,OC) @ W (OC,IC)  (NN)
//             dW (OC,IC) += dout^T (OC,N) @ inp      (TN, beta 1)
// and prints GFLOP/s (the best of repeated calls for --secs each) and which
// library wins per shape. BLIS and oneDNN are loaded with dlopen, so their
// cblas/BLAS symbols never meet OpenBLAS's; a library that is not installed
// is reported and skipped. Prints lscpu's model and flags first.
#define _GNU_SOURCE
#include "kiln/core.h"
#include "backend/backend.h"

#include <cblas.h>
#include <dlfcn.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { NT, NN, TN } Kind;
static const char *KIND[] = {"fwd NT", "bwd NN", "bwd TN"};

// BLIS's typed API with general strides (no transpose flags needed)
typedef void (*BliSgemm)(int, int, int64_t, int64_t, int64_t, const float *, const float *, int64_t, int64_t,
                         const float *, int64_t, int64_t, const float *, float *, int64_t, int64_t);
typedef void (*BliThreads)(int64_t);
// oneDNN's row-major sgemm: C = alpha op(A) op(B) + beta C
typedef int (*DnnlSgemm)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *,
                         int64_t, float, float *, int64_t);

typedef struct {
    BliSgemm bli;
    DnnlSgemm dnnl;
    KilnBf16Gemm *bf16;  // kiln's bf16 kernels (oneDNN's bf16 matmul, with the packing to bf16)
} Libs;

// C (M,N) = op(A) (M,K) @ op(B) (K,N) + beta C, all row-major, per kind.
static void run(int lib, const Libs *L, Kind k, int M, int N, int K, const float *A, const float *B, float beta,
                float *C) {
    const float one = 1.0f;
    // NT: A (M,K), B stored (N,K). NN: A (M,K), B (K,N). TN: A stored (K,M), B (K,N).
    int ta = k == TN, tb = k == NT;
    if (lib == 0) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                    ta ? M : K, B, tb ? K : N, beta, C, N);
    } else if (lib == 1) {
        int64_t rsa = ta ? 1 : K, csa = ta ? M : 1, rsb = tb ? 1 : N, csb = tb ? K : 1;
        L->bli(0, 0, M, N, K, &one, A, rsa, csa, B, rsb, csb, &beta, C, N, 1);
    } else if (lib == 2) {
        L->dnnl(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, beta, C, N);
    } else {
        KilnErr e;
        if (bf16_gemm(L->bf16, ta, tb, M, N, K, A, B, beta != 0, C, &e)) fprintf(stderr, "%s\n", e.msg), exit(1);
    }
}

static double gflops(int lib, const Libs *L, Kind k, int M, int N, int K, const float *A, const float *B, float *C,
                     double secs) {
    float beta = k == TN ? 1.0f : 0.0f;
    run(lib, L, k, M, N, K, A, B, beta, C);  // warm the threads and the library's caches
    double best = 0, end = kiln_now() + secs;
    for (int i = 0; i < 3 || kiln_now() < end; i++) {
        double t = kiln_now();
        run(lib, L, k, M, N, K, A, B, beta, C);
        t = kiln_now() - t;
        if (t > 0 && 2.0 * M * N * K / t > best) best = 2.0 * M * N * K / t;
    }
    return best / 1e9;
}

int main(int argc, char **argv) {
    backend_choose_runtime(argv);  // the OpenBLAS kernels kiln runs on this CPU
    const char *model = "gpt2";
    int B = 4, T = 64;
    double secs = 0.5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--B")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--T")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--secs")) secs = atof(argv[i + 1]);
        else return fprintf(stderr, "unknown option %s\n", argv[i]), 2;
    }
    int C, V;
    if (!strcmp(model, "gpt2")) C = 768, V = 50257;
    else if (!strcmp(model, "6layer")) C = 384, V = 50257;
    else if (!strcmp(model, "baby")) C = 384, V = 65;
    else return fprintf(stderr, "unknown model %s (gpt2, 6layer, baby)\n", model), 2;
    int threads = omp_get_max_threads();
    if (system("lscpu | grep -E 'Model name|^Flags' | cut -c1-400") != 0) printf("(lscpu not available)\n");
    Libs L = {0};
    void *h = dlopen("/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (h) {
        L.bli = (BliSgemm)(uintptr_t)dlsym(h, "bli_sgemm");
        BliThreads set = (BliThreads)(uintptr_t)dlsym(h, "bli_thread_set_num_threads");
        if (set) set(threads);
    }
    h = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h) L.dnnl = (DnnlSgemm)(uintptr_t)dlsym(h, "dnnl_sgemm");
    KilnErr e;
    L.bf16 = bf16_gemm_open(&e);
    printf("%s, B=%d T=%d, %d threads; OpenBLAS %s; BLIS %s; oneDNN %s; bf16 %s\n", model, B, T, threads,
           openblas_get_corename(), L.bli ? "libblis4-openmp" : "not installed",
           L.dnnl ? "libdnnl2" : "not installed", L.bf16 ? "oneDNN's bf16 matmul (kiln's bf16_gemm)" : e.msg);
    struct {
        const char *name;
        int IC, OC;
    } layers[] = {{"qkv", C, 3 * C}, {"attproj", C, C}, {"fc", C, 4 * C}, {"fcproj", 4 * C, C}, {"lm_head", C, V}};
    int N = B * T;
    long most = 4L * C * C;  // the largest operand: a weight, or N rows of the widest layer
    if ((long)V * C > most) most = (long)V * C;
    if ((long)N * (V > 4 * C ? V : 4 * C) > most) most = (long)N * (V > 4 * C ? V : 4 * C);
    float *A = malloc(sizeof(float) * (size_t)most), *W = malloc(sizeof(float) * (size_t)most),
          *O = malloc(sizeof(float) * (size_t)most);
    if (!A || !W || !O) return fprintf(stderr, "out of memory\n"), 1;
    for (long i = 0; i < most; i++) A[i] = W[i] = O[i] = (float)(i % 13) * 0.01f;
    // each library's threads spun up and the clock raised before the first row
    for (int lib = 0; lib < 4; lib++)
        if (lib == 0 || (lib == 1 && L.bli) || (lib == 2 && L.dnnl) || (lib == 3 && L.bf16))
            gflops(lib, &L, NT, N, 4 * C, C, A, W, O, 0.5);
    printf("\n%-8s %-7s %16s %10s %10s %10s  %-26s %10s\n", "layer", "kind", "M x N x K", "OpenBLAS", "BLIS", "oneDNN",
           "best fp32", "bf16");
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        int IC = layers[l].IC, OC = layers[l].OC;
        for (int k = NT; k <= TN; k++) {
            int M = k == TN ? OC : N, Nn = k == NN ? IC : k == NT ? OC : IC, K = k == NT ? IC : k == NN ? OC : N;
            double g[4] = {0, 0, 0, 0};
            for (int lib = 0; lib < 4; lib++)
                if (lib == 0 || (lib == 1 && L.bli) || (lib == 2 && L.dnnl) || (lib == 3 && L.bf16))
                    g[lib] = gflops(lib, &L, (Kind)k, M, Nn, K, A, W, O, secs);
            int best = g[1] > g[0] ? 1 : 0;
            if (g[2] > g[best]) best = 2;
            char shape[48];
            snprintf(shape, sizeof shape, "%dx%dx%d", M, Nn, K);
            char win[40];
            snprintf(win, sizeof win, "%s (%.2fx OpenBLAS)", (const char *[]){"OpenBLAS", "BLIS", "oneDNN"}[best],
                     g[best] / g[0]);
            printf("%-8s %-7s %16s %10.1f %10.1f %10.1f  %-26s %10.1f (%.2fx OpenBLAS)\n", layers[l].name, KIND[k],
                   shape, g[0], g[1], g[2], win, g[3], g[3] / g[0]);
        }
    }
    free(A);
    free(W);
    free(O);
    bf16_gemm_close(L.bf16);
    return 0;
}
