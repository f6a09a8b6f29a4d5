// gemm.h: sgemm into a C that holds nothing yet. cblas_sgemm with beta 0 has
// OpenBLAS clear C in a pass of its own (sgemm_beta, 8% of the baby GPT's
// step), which measured 5-25% slower on the model's shapes than zeroing C
// with memset and calling it with beta 1; the sums are the same bit for bit
// (0 + x is x), so this is a pure speed change (docs/benchmarks.md).
#ifndef KILN_CPU_GEMM_H
#define KILN_CPU_GEMM_H

#include <cblas.h>
#include <omp.h>
#include <string.h>

// C (M,N) with leading dimension ldc, row-major = alpha op(A) op(B)
static inline void sgemm_fresh(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    if (ldc == N) {
        long n = (long)M * N, chunk = 1 << 14;
#pragma omp parallel for if (parallel : n > 4 * chunk && !omp_in_parallel())
        for (long i = 0; i < n; i += chunk) memset(C + i, 0, sizeof(float) * (size_t)(n - i < chunk ? n - i : chunk));
    } else {
        for (int i = 0; i < M; i++) memset(C + (long)i * ldc, 0, sizeof(float) * (size_t)N);
    }
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, 1.0f, C, ldc);
}

#endif
