// matmul.c: the three products of a linear layer, each on the library chosen
// for its class (KilnMatmul): OpenBLAS's sgemm, oneDNN's sgemm, or oneDNN's
// bf16 matmul (bf16_gemm.c). Which sgemm is faster depends on the CPU and the
// shape: on an AVX-512 Xeon oneDNN's leads OpenBLAS's by 7-47% on the forward
// and input-gradient products of GPT-2's layers and trails on none of the
// weight-gradient ones (docs/benchmarks.md), on Zen 3 neither leads; so the
// trainer races them on the model's shapes (mm_race).
#include "backend/backend.h"

#include "backend/cpu/gemm.h"

#include <pthread.h>
#include <signal.h>

#ifdef KILN_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

// oneDNN 2.6's JIT f32 gemm points the stack register at heap memory while it
// runs, so a signal handled on that thread writes its frame into the heap
// (oneDNN issue #4845, fixed in 3.11.2; Debian 12 ships 2.6.3): a trainer
// sent SIGUSR1 a few times a second aborted with a corrupted heap within a
// few signals. The trainer handles SIGTERM, SIGINT and SIGUSR1. OpenMP's
// workers never take a signal (backend_set_threads blocks them all there),
// and the calling thread blocks them for the length of each oneDNN call: a
// signal that arrives meanwhile is delivered as the call returns.
void onednn_signals_off(sigset_t *old) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
}

void onednn_signals_on(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

int backend_onednn_version(void) {
#ifdef KILN_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    return v->major * 10000 + v->minor * 100 + v->patch;
#else
    return 0;
#endif
}

void mm_product(const KilnMatmul *mm, int cls, int M, int N, int K, const float *A, const float *B, int accumulate,
                float *C) {
    int ta = cls == KILN_MM_TN, tb = cls == KILN_MM_NT;
    int lda = ta ? M : K, ldb = tb ? K : N;
    if (mm && mm->bf16) {
        KilnErr e;
        if (!bf16_gemm(mm->bf16, ta, tb, M, N, K, A, B, accumulate, C, &e)) return;
    }
#ifdef KILN_HAVE_DNNL
    if (mm && mm->onednn[cls]) {
        sigset_t old;
        onednn_signals_off(&old);
        dnnl_status_t st =
            dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, N);
        onednn_signals_on(&old);
        if (st == dnnl_success) return;
    }
#endif
    CBLAS_TRANSPOSE tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
    if (accumulate) cblas_sgemm(CblasRowMajor, tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, N);
    else sgemm_fresh(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, C, N);
}

void mm_race(const KilnMatmul *x, const KilnMatmul *y, int cls, const int (*shapes)[3], int n, int reps, double *x_s,
             double *y_s) {
    long most = 0;
    for (int i = 0; i < n; i++) {
        long M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
        long big = M * K > K * N ? M * K : K * N;
        if (M * N > big) big = M * N;
        if (big > most) most = big;
    }
    *x_s = *y_s = 0;
    float *a = backend_alloc(3 * most, NULL);
    if (!a) return;
    for (long i = 0; i < 2 * most; i++) a[i] = (float)(i % 13) * 0.0625f - 0.375f;
    const KilnMatmul *mm[2] = {x, y};
    for (int i = 0; i < n; i++) {
        double best[2] = {1e30, 1e30};
        // the two alternate, so that the shared machine's drift hits both; call 0 warms
        // each library's threads, buffers and plans
        for (int r = 0; r <= reps; r++)
            for (int k = 0; k < 2; k++) {
                double t = kiln_now();
                mm_product(mm[k], cls, shapes[i][0], shapes[i][1], shapes[i][2], a, a + most, cls == KILN_MM_TN,
                           a + 2 * most);
                t = kiln_now() - t;
                if (r && t < best[k]) best[k] = t;
            }
        *x_s += best[0];
        *y_s += best[1];
    }
    backend_free(a);
}
