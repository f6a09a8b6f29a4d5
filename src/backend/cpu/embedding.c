// embedding.c: token (+ learned position) embeddings.
#include "backend/backend.h"

#include <string.h>
#include <omp.h>

// tokens (B,T), wte (V,C), wpe (maxT,C) or NULL -> out (B,T,C)
void embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                       int B, int T, int C) {
#pragma omp parallel for if (parallel : !omp_in_parallel())
    for (long n = 0; n < (long)B * T; n++) {
        float *o = out + n * C;
        const float *e = wte + (long)tokens[n] * C;
        if (wpe) {
            const float *p = wpe + (n % T) * C;
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        } else {
            memcpy(o, e, sizeof(float) * C);
        }
    }
}

// dout (B,T,C) -> dwte (V,C) +=, dwpe (maxT,C) +=
// Serial over rows: a token may repeat, so rows of dwte would race.
// Parallel over channel blocks instead, which never collide.
void embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                        int B, int T, int C) {
    long N = (long)B * T;
#pragma omp parallel for
    for (int c0 = 0; c0 < C; c0 += 64) {
        int c1 = c0 + 64 < C ? c0 + 64 : C;
        for (long n = 0; n < N; n++) {
            const float *d = dout + n * C;
            float *w = dwte + (long)tokens[n] * C;
            for (int c = c0; c < c1; c++) w[c] += d[c];
            if (dwpe) {
                float *p = dwpe + (n % T) * C;
                for (int c = c0; c < c1; c++) p[c] += d[c];
            }
        }
    }
}
