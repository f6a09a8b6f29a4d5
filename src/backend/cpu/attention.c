// attention.c: causal multi-head / grouped-query self-attention.
// Flash-style: each head's (T,T) score block lives only in a per-thread scratch;
// forward keeps the row log-sum-exp (B,NH,T) and backward recomputes the scores.
#include "backend/backend.h"

#include "backend/cpu/fastmath.h"
#include "backend/cpu/gemm.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

void dropout_apply(float *x, long n, KilnDropout d) {
    if (d.p <= 0.0f) return;
    float scale = 1.0f / (1.0f - d.p);
#pragma omp parallel for
    for (long i = 0; i < n; i++) x[i] = dropout_keep(d, (uint64_t)i) ? x[i] * scale : 0.0f;
}

long attention_scratch_floats(int T, int nthreads) { return 3L * T * T * nthreads; }

// P (n,S) <- causal softmax(scale * Q K^T) for one head, Q (n,HD) rows at
// positions pos..pos+n-1, K (S,HD) keys of positions 0..S-1, S = pos+n: row i sees
// keys 0..pos+i (training: pos = 0, n = S = T). lse (n) written if save_lse (and
// not NULL), else read (backward recomputes P from the saved lse).
static void head_probs(float *P, float *lse, int save_lse, const float *Q, int ldq, const float *K,
                       int ldk, int n, int pos, int HD, float scale) {
    int S = pos + n;
    sgemm_fresh(CblasNoTrans, CblasTrans, n, S, HD, scale, Q, ldq, K, ldk, P, S);
    for (int i = 0; i < n; i++) {
        float *row = P + (long)i * S;
        int last = pos + i;
        float l;
        if (save_lse) {
            float m = -INFINITY;
            for (int j = 0; j <= last; j++) m = row[j] > m ? row[j] : m;
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j <= last; j++) {
                row[j] = fast_expf(row[j] - m);
                sum += row[j];
            }
            float inv = 1.0f / sum;
            for (int j = 0; j <= last; j++) row[j] *= inv;
            if (lse) lse[i] = m + logf(sum);
        } else {
            l = lse[i];
#pragma omp simd
            for (int j = 0; j <= last; j++) row[j] = fast_expf(row[j] - l);
        }
        for (int j = last + 1; j < S; j++) row[j] = 0.0f;
    }
}

// Head (b,h)'s number in the model's (B, heads) for its dropout mask.
static long mask_head(KilnDropout d, int b, int h, int NH) {
    return (long)b * (d.heads ? d.heads : NH) + d.head0 + h;
}

// P' = P * mask / (1-p) for head (b,h); the index makes masks reproducible in backward
static void head_dropout(float *Pd, const float *P, int T, long head_index, KilnDropout drop) {
    float scale = 1.0f / (1.0f - drop.p);
    uint64_t base = (uint64_t)head_index * T * T;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            long k = (long)i * T + j;
            Pd[k] = (j <= i && dropout_keep(drop, base + k)) ? P[k] * scale : 0.0f;
        }
}

// qkv (B,T,(NH+2NKV)*HD) -> out (B,T,NH*HD), lse (B,NH,T)
void attention_forward(float *out, float *lse, const float *qkv, float *scratch, int B, int T,
                       int NH, int NKV, int HD, KilnDropout drop, int bf16) {
    int QKV = (NH + 2 * NKV) * HD, C = NH * HD, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)HD);
#pragma omp parallel for schedule(dynamic)
    for (long bh = 0; bh < (long)B * NH; bh++) {
        int b = (int)(bh / NH), h = (int)(bh % NH), g = h / group;
        float *P = scratch + (long)omp_get_thread_num() * 3 * T * T, *Pd = P + (long)T * T;
        const float *base = qkv + (long)b * T * QKV;
        const float *Q = base + h * HD, *K = base + C + g * HD, *V = base + C + NKV * HD + g * HD;
        head_probs(P, lse + bh * T, 1, Q, QKV, K, QKV, T, 0, HD, scale);
        if (drop.p > 0.0f) {
            head_dropout(Pd, P, T, mask_head(drop, b, h, NH), drop);
            P = Pd;
        }
        if (bf16) bf16_round(P, (long)T * T);  // the lse is saved; P is not needed again
        // out_h (T,HD) = P (T,T) @ V (T,HD)
        sgemm_fresh(CblasNoTrans, CblasNoTrans, T, HD, T, 1.0f, P, T, V, QKV, out + (long)b * T * C + h * HD, C);
    }
}

// Inference over a KV cache: n new rows at positions pos..pos+n-1.
// q (n,ldq) holds the NH query heads (HD each) of the new rows; kc, vc (pos+n, NKV*HD)
// the keys and values of positions 0..pos+n-1, the new rows' included -> out (n,NH*HD).
// scratch: nthreads blocks of n*(pos+n) floats. Parallel over heads, but never
// inside an enclosing parallel region (one inference per thread).
void attention_infer(float *out, const float *q, int ldq, const float *kc, const float *vc,
                     float *scratch, int n, int pos, int NH, int NKV, int HD, int nthreads) {
    int KVD = NKV * HD, C = NH * HD, group = NH / NKV, S = pos + n;
    float scale = 1.0f / sqrtf((float)HD);
#pragma omp parallel for schedule(dynamic) num_threads(nthreads) if (nthreads > 1 && !omp_in_parallel())
    for (int h = 0; h < NH; h++) {
        int g = h / group;
        float *P = scratch + (long)omp_get_thread_num() * n * S;
        head_probs(P, NULL, 1, q + h * HD, ldq, kc + g * HD, KVD, n, pos, HD, scale);
        // out_h (n,HD) = P (n,S) @ V (S,HD)
        sgemm_fresh(CblasNoTrans, CblasNoTrans, n, HD, S, 1.0f, P, S, vc + g * HD, KVD, out + h * HD, C);
    }
}

// dout (B,T,NH*HD) -> dqkv (B,T,(NH+2NKV)*HD). Parallel over (b, kv group): the
// heads of a group add into the same dK, dV, so one thread owns a group.
void attention_backward(float *dqkv, const float *dout, const float *out, const float *qkv,
                        const float *lse, float *scratch, int B, int T, int NH, int NKV, int HD,
                        KilnDropout drop, int bf16) {
    (void)out;
    int QKV = (NH + 2 * NKV) * HD, C = NH * HD, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)HD);
#pragma omp parallel for schedule(dynamic)
    for (long bg = 0; bg < (long)B * NKV; bg++) {
        int b = (int)(bg / NKV), g = (int)(bg % NKV);
        float *P = scratch + (long)omp_get_thread_num() * 3 * T * T;
        float *dP = P + (long)T * T, *Pd = dP + (long)T * T;
        const float *base = qkv + (long)b * T * QKV;
        float *dbase = dqkv + (long)b * T * QKV;
        const float *K = base + C + g * HD, *V = base + C + NKV * HD + g * HD;
        float *dK = dbase + C + g * HD, *dV = dbase + C + NKV * HD + g * HD;
        for (int i = 0; i < T; i++) {
            memset(dK + (long)i * QKV, 0, sizeof(float) * HD);
            memset(dV + (long)i * QKV, 0, sizeof(float) * HD);
        }
        for (int h = g * group; h < (g + 1) * group; h++) {
            long bh = (long)b * NH + h;
            const float *Q = base + h * HD, *dO = dout + (long)b * T * C + h * HD;
            float *dQ = dbase + h * HD;
            head_probs(P, (float *)(lse + bh * T), 0, Q, QKV, K, QKV, T, 0, HD, scale);
            const float *Pv = P;  // the probabilities that multiplied V
            if (drop.p > 0.0f) {
                head_dropout(Pd, P, T, mask_head(drop, b, h, NH), drop);
                Pv = Pd;
            }
            if (bf16) {  // as forward rounded them; the softmax backward below uses P unrounded
                bf16_round_copy(Pd, Pv, (long)T * T);
                Pv = Pd;
            }
            // dV (T,HD) += Pv^T (T,T) @ dO (T,HD)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HD, T, 1.0f, Pv, T, dO, C, 1.0f,
                        dV, QKV);
            // dP (T,T) = dO (T,HD) @ V^T (HD,T), then through the dropout mask
            sgemm_fresh(CblasNoTrans, CblasTrans, T, T, HD, 1.0f, dO, C, V, QKV, dP, T);
            float inv_keep = drop.p > 0.0f ? 1.0f / (1.0f - drop.p) : 1.0f;
            for (int i = 0; i < T; i++) {
                float *dp = dP + (long)i * T;
                const float *p = P + (long)i * T;
                if (drop.p > 0.0f) {
                    const float *pd = Pd + (long)i * T;
                    for (int j = 0; j <= i; j++) dp[j] = pd[j] != 0.0f ? dp[j] * inv_keep : 0.0f;
                }
                // softmax backward: dS = P * (dP - sum_j P dP)
                float dot = 0.0f;
                for (int j = 0; j <= i; j++) dot += p[j] * dp[j];
                for (int j = 0; j <= i; j++) dp[j] = p[j] * (dp[j] - dot);
                for (int j = i + 1; j < T; j++) dp[j] = 0.0f;
            }
            if (bf16) bf16_round(dP, (long)T * T);
            // dQ (T,HD) = scale * dS (T,T) @ K (T,HD);  dK (T,HD) += scale * dS^T @ Q
            sgemm_fresh(CblasNoTrans, CblasNoTrans, T, HD, T, scale, dP, T, K, QKV, dQ, QKV);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HD, T, scale, dP, T, Q, QKV, 1.0f,
                        dK, QKV);
        }
    }
}
