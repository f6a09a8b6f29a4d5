// norm.c: LayerNorm and RMSNorm over the channel dimension.
#include "backend/backend.h"

#include <math.h>
#include <omp.h>

// inp (N,C), w (C), b (C) or NULL -> out (N,C), mean (N), rstd (N)
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                       const float *b, int N, int C, float eps) {
#pragma omp parallel for if (parallel : !omp_in_parallel())
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        float s = 1.0f / sqrtf(v + eps);
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + (b ? b[c] : 0.0f);
        mean[n] = m;
        rstd[n] = s;
    }
}

// dout (N,C) -> dinp (N,C) +=, dw (C) +=, db (C) +=
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C, *d = dout + n * C;
        float *di = dinp + n * C;
        float m = mean[n], s = rstd[n];
        float dmean = 0.0f, dnorm_mean = 0.0f;
        for (int c = 0; c < C; c++) {
            float dn = w[c] * d[c];
            dmean += dn;
            dnorm_mean += dn * (x[c] - m) * s;
        }
        dmean /= C;
        dnorm_mean /= C;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s;
            di[c] += (w[c] * d[c] - dmean - norm * dnorm_mean) * s;
        }
    }
    // parameter gradients reduce over rows: split by channel blocks so threads never collide
#pragma omp parallel for
    for (int c0 = 0; c0 < C; c0 += 32) {
        int c1 = c0 + 32 < C ? c0 + 32 : C;
        for (long n = 0; n < N; n++) {
            const float *x = inp + n * C, *d = dout + n * C;
            for (int c = c0; c < c1; c++) {
                dw[c] += d[c] * (x[c] - mean[n]) * rstd[n];
                if (db) db[c] += d[c];
            }
        }
    }
}

// inp (N,C), w (C) -> out (N,C), rstd (N)
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                     float eps) {
#pragma omp parallel for if (parallel : !omp_in_parallel())
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        float ss = 0.0f;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float s = 1.0f / sqrtf(ss / C + eps);
        for (int c = 0; c < C; c++) o[c] = x[c] * s * w[c];
        rstd[n] = s;
    }
}

// dout (N,C) -> dinp (N,C) +=, dw (C) +=
void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int N, int C) {
#pragma omp parallel for
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C, *d = dout + n * C;
        float *di = dinp + n * C;
        float s = rstd[n];
        float dot = 0.0f;  // mean(dnorm * norm)
        for (int c = 0; c < C; c++) dot += w[c] * d[c] * x[c] * s;
        dot /= C;
        for (int c = 0; c < C; c++) di[c] += (w[c] * d[c] - x[c] * s * dot) * s;
    }
#pragma omp parallel for
    for (int c0 = 0; c0 < C; c0 += 32) {
        int c1 = c0 + 32 < C ? c0 + 32 : C;
        for (long n = 0; n < N; n++) {
            const float *x = inp + n * C, *d = dout + n * C;
            for (int c = c0; c < c1; c++) dw[c] += d[c] * x[c] * rstd[n];
        }
    }
}
