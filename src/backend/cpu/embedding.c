// embedding.c: token (+ learned position) embeddings.
#include "backend/backend.h"

#include <string.h>
#include <omp.h>

// tokens (B,T), wte (rows,C): the vocabulary's rows [lo, lo + rows), wpe (maxT,C) or NULL -> out (B,T,C).
// A token outside those rows embeds as zeros (tensor parallelism: the rank
// that holds its row adds it in the all-reduce that follows).
void embedding_forward(float *out, const int32_t *tokens, const float *wte, long lo, long rows, const float *wpe,
                       int B, int T, int C) {
#pragma omp parallel for if (parallel : !omp_in_parallel())
    for (long n = 0; n < (long)B * T; n++) {
        float *o = out + n * C;
        long row = tokens[n] - lo;
        if (row < 0 || row >= rows) {
            if (wpe) memcpy(o, wpe + (n % T) * C, sizeof(float) * C);
            else memset(o, 0, sizeof(float) * C);
            continue;
        }
        const float *e = wte + row * C;
        if (wpe) {
            const float *p = wpe + (n % T) * C;
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        } else {
            memcpy(o, e, sizeof(float) * C);
        }
    }
}

// dout (B,T,C) -> dwte (rows,C) += (the tokens in [lo, lo + rows)), dwpe (maxT,C) +=
// Serial over rows: a token may repeat, so rows of dwte would race.
// Parallel over channel blocks instead, which never collide.
void embedding_backward(float *dwte, long lo, long rows, float *dwpe, const float *dout, const int32_t *tokens,
                        int B, int T, int C) {
    long N = (long)B * T;
#pragma omp parallel for
    for (int c0 = 0; c0 < C; c0 += 64) {
        int c1 = c0 + 64 < C ? c0 + 64 : C;
        for (long n = 0; n < N; n++) {
            const float *d = dout + n * C;
            long row = tokens[n] - lo;
            if (row >= 0 && row < rows) {
                float *w = dwte + row * C;
                for (int c = c0; c < c1; c++) w[c] += d[c];
            }
            if (dwpe) {
                float *p = dwpe + (n % T) * C;
                for (int c = c0; c < c1; c++) p[c] += d[c];
            }
        }
    }
}
