// linear.c: fully connected layers; their products go to the library the
// caller's KilnMatmul names (matmul.c).
#include "backend/backend.h"

#include <omp.h>
#include <string.h>

// inp (N,IC), w (OC,IC) as in torch.nn.Linear, bias (OC) -> out (N,OC)
// With a bias, out starts as the bias rows and the product is added onto
// them (beta 1), as torch's addmm does: one pass over out instead of
// OpenBLAS zeroing it for beta 0 and a second pass adding the bias.
void linear_forward(float *out, const float *inp, const float *w, const float *bias, int N, int IC,
                    int OC, const KilnMatmul *mm) {
    if (bias) {
#pragma omp parallel for if (parallel : !omp_in_parallel())
        for (long n = 0; n < N; n++) memcpy(out + n * OC, bias, sizeof(float) * (size_t)OC);
    }
    mm_product(mm, KILN_MM_NT, N, OC, IC, inp, w, bias != NULL, out);
}

// dout (N,OC) -> dinp (N,IC) = dout @ w; dw (OC,IC) += dout^T @ inp; dbias (OC) += sum_n dout
void linear_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, int N, int IC, int OC, const KilnMatmul *mm) {
    if (dinp) mm_product(mm, KILN_MM_NN, N, IC, OC, dout, w, 0, dinp);
    mm_product(mm, KILN_MM_TN, OC, IC, N, dout, inp, 1, dw);
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
