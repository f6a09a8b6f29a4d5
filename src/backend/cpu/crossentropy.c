// crossentropy.c: softmax and cross-entropy fused over the vocabulary, with the
// gradient written over the logits so the (N,V) probabilities are never stored twice.
#include "backend/backend.h"

#include "backend/cpu/fastmath.h"

#include <math.h>

// logits (N,V), targets (N) -> mean loss; in place: logits <- dlogits * scale
double crossentropy_forward_backward(float *logits, const int32_t *targets, int N, int V,
                                     float dlogits_scale, long *count) {
    long cnt = 0;
    for (int n = 0; n < N; n++) cnt += targets[n] >= 0;
    if (count) *count = cnt;
    if (cnt == 0) return 0.0;
    double total = 0.0;
    float g = dlogits_scale / (float)cnt;
#pragma omp parallel for reduction(+ : total)
    for (int n = 0; n < N; n++) {
        float *row = logits + (long)n * V;
        int t = targets[n];
        float m = -INFINITY;
        for (int v = 0; v < V; v++) m = row[v] > m ? row[v] : m;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; v++) sum += fast_expf(row[v] - m);
        float lse = m + logf(sum);
        if (t >= 0) total += lse - row[t];
        if (dlogits_scale != 0.0f) {
            if (t < 0) {
                for (int v = 0; v < V; v++) row[v] = 0.0f;
            } else {
#pragma omp simd
                for (int v = 0; v < V; v++) row[v] = fast_expf(row[v] - lse) * g;
                row[t] -= g;
            }
        }
    }
    return total / (double)cnt;
}
