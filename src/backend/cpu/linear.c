// linear.c: fully connected layers; every product goes through OpenBLAS sgemm,
// or in bf16 instructions (bf16_gemm.c) when the caller passes a handle.
#include "backend/backend.h"

#include "backend/cpu/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

// inp (N,IC), w (OC,IC) as in torch.nn.Linear, bias (OC) -> out (N,OC)
// With a bias, out starts as the bias rows and sgemm adds the product onto
// them (beta 1), as torch's addmm does: one pass over out instead of
// OpenBLAS zeroing it for beta 0 and a second pass adding the bias.
void linear_forward(float *out, const float *inp, const float *w, const float *bias, int N, int IC,
                    int OC, KilnBf16Gemm *bk) {
    KilnErr e;
    if (!bias) {
        if (bk && !bf16_gemm(bk, 0, 1, N, OC, IC, inp, w, 0, out, &e)) return;
        sgemm_fresh(CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, w, IC, out, OC);
        return;
    }
#pragma omp parallel for if (parallel : !omp_in_parallel())
    for (long n = 0; n < N; n++) memcpy(out + n * OC, bias, sizeof(float) * (size_t)OC);
    if (bk && !bf16_gemm(bk, 0, 1, N, OC, IC, inp, w, 1, out, &e)) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, w, IC, 1.0f, out, OC);
}

// dout (N,OC) -> dinp (N,IC) = dout @ w; dw (OC,IC) += dout^T @ inp; dbias (OC) += sum_n dout
void linear_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, int N, int IC, int OC, KilnBf16Gemm *bk) {
    KilnErr e;
    if (dinp && !(bk && !bf16_gemm(bk, 0, 0, N, IC, OC, dout, w, 0, dinp, &e)))
        sgemm_fresh(CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, w, IC, dinp, IC);
    if (!(bk && !bf16_gemm(bk, 1, 0, OC, IC, N, dout, inp, 1, dw, &e)))
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dw, IC);
    if (dbias) {
#pragma omp parallel for
        for (int j0 = 0; j0 < OC; j0 += 64) {
            int j1 = j0 + 64 < OC ? j0 + 64 : OC;
            for (long n = 0; n < N; n++) {
                const float *d = dout + n * OC;
                for (int j = j0; j < j1; j++) dbias[j] += d[j];
            }
        }
    }
}

void residual_add(float *out, const float *a, const float *b, long n) {
#pragma omp parallel for simd if (parallel : !omp_in_parallel())
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}
