// crossentropy.c: softmax and cross-entropy fused over the vocabulary, with the
// gradient written over the logits so the (N,V) probabilities are never stored twice.
#include "backend/backend.h"

#include "backend/cpu/fastmath.h"

#include <math.h>

// A row's logits -> its dlogits in place: g x (softmax - onehot(t)), the
// onehot only where this row's target is among its columns (has_t); g 0: an
// ignored target's row, all zeros.
static void row_grad(float *row, int V, float lse, float g, int has_t, long t) {
    if (g == 0.0f) {
        for (int v = 0; v < V; v++) row[v] = 0.0f;
        return;
    }
#pragma omp simd
    for (int v = 0; v < V; v++) row[v] = fast_expf(row[v] - lse) * g;
    if (has_t) row[t] -= g;
}

// The targets that count (>= 0), also into *count when asked.
static long count_targets(const int32_t *targets, int N, long *count) {
    long cnt = 0;
    for (int n = 0; n < N; n++) cnt += targets[n] >= 0;
    if (count) *count = cnt;
    return cnt;
}

// logits (N,V), targets (N) -> mean loss; in place: logits <- dlogits * scale
double crossentropy_forward_backward(float *logits, const int32_t *targets, int N, int V,
                                     float dlogits_scale, long *count) {
    long cnt = count_targets(targets, N, count);
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
        if (dlogits_scale != 0.0f) row_grad(row, V, lse, t >= 0 ? g : 0.0f, t >= 0, t);
    }
    return total / (double)cnt;
}

// Vocabulary-parallel cross-entropy (tensor parallelism, as Megatron-LM's):
// logits (N,V) are this rank's columns [lo, lo + V) of the vocabulary. The
// caller takes the max of mx over ranks after the first pass and the sum of
// sum after the second; the third gives this rank's share of the mean loss
// (rows whose target it holds) and, with dlogits_scale != 0, its columns of
// dlogits in place.
void crossentropy_shard_max(const float *logits, int N, int V, float *mx) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *row = logits + (long)n * V;
        float m = -INFINITY;
        for (int v = 0; v < V; v++) m = row[v] > m ? row[v] : m;
        mx[n] = m;
    }
}

void crossentropy_shard_sumexp(const float *logits, int N, int V, const float *mx, float *sum) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *row = logits + (long)n * V;
        float s = 0.0f, m = mx[n];
#pragma omp simd reduction(+ : s)
        for (int v = 0; v < V; v++) s += fast_expf(row[v] - m);
        sum[n] = s;
    }
}

double crossentropy_shard_finish(float *logits, const int32_t *targets, int N, int V, long lo, const float *mx,
                                 const float *sum, float dlogits_scale, long *count) {
    long cnt = count_targets(targets, N, count);
    if (cnt == 0) return 0.0;
    double total = 0.0;
    float g = dlogits_scale / (float)cnt;
#pragma omp parallel for reduction(+ : total)
    for (int n = 0; n < N; n++) {
        float *row = logits + (long)n * V;
        long t = targets[n] - lo;  // the target's column here, if this rank holds it
        int mine = targets[n] >= 0 && t >= 0 && t < V;
        float lse = mx[n] + logf(sum[n]);
        if (mine) total += lse - row[t];
        if (dlogits_scale != 0.0f) row_grad(row, V, lse, targets[n] >= 0 ? g : 0.0f, mine, t);
    }
    return total / (double)cnt;
}
