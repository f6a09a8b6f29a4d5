// matmul.c: the three products of a linear layer, each on the library chosen
// for its class (KilnMatmul): OpenBLAS's sgemm, oneDNN's sgemm, or oneDNN's
// bf16 matmul (bf16_gemm.c). Which sgemm is faster depends on the CPU and the
// shape: on an AVX-512 Xeon oneDNN's leads OpenBLAS's by 7-47% on the forward
// and input-gradient products of GPT-2's layers and trails on none of the
// weight-gradient ones (docs/benchmarks.md), on Zen 3 neither leads; so the
// trainer races them on the model's shapes (mm_class_seconds).
#include "backend/backend.h"

#include "backend/cpu/gemm.h"

#ifdef KILN_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

int backend_has_onednn(void) {
#ifdef KILN_HAVE_DNNL
    return 1;
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
    if (mm && mm->onednn[cls] &&
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, N) ==
            dnnl_success)
        return;
#endif
    CBLAS_TRANSPOSE tA = ta ? CblasTrans : CblasNoTrans, tB = tb ? CblasTrans : CblasNoTrans;
    if (accumulate) cblas_sgemm(CblasRowMajor, tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, N);
    else sgemm_fresh(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, C, N);
}

double mm_class_seconds(int onednn, int cls, const int (*shapes)[3], int n, int reps) {
    long most = 0;
    for (int i = 0; i < n; i++) {
        long M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
        long big = M * K > K * N ? M * K : K * N;
        if (M * N > big) big = M * N;
        if (big > most) most = big;
    }
    float *a = backend_alloc(3 * most, NULL);
    if (!a) return 0;
    for (long i = 0; i < 2 * most; i++) a[i] = (float)(i % 13) * 0.0625f - 0.375f;
    KilnMatmul mm = {.bf16 = NULL, .onednn = {0, 0, 0}};
    mm.onednn[cls] = (unsigned char)onednn;
    double total = 0;
    for (int i = 0; i < n; i++) {
        double best = 1e30;
        for (int r = 0; r <= reps; r++) {  // call 0 warms the library's threads and caches
            double t = kiln_now();
            mm_product(&mm, cls, shapes[i][0], shapes[i][1], shapes[i][2], a, a + most, cls == KILN_MM_TN,
                       a + 2 * most);
            t = kiln_now() - t;
            if (r && t < best) best = t;
        }
        total += best;
    }
    backend_free(a);
    return total;
}
