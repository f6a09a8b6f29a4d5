// optim.c: the optimizers' per-element updates over one tensor's slice, and the
// sums behind the gradient norm and the penalties. Which optimizer runs, on
// which tensors, with what settings, is train/optim.c's business.
#include "backend/backend.h"

#include <math.h>

static inline float sgnf(float x) { return (float)((x > 0.0f) - (x < 0.0f)); }

// The gradient each optimizer sees: clipped, plus the penalties' gradient.
static inline float effective_grad(float g, float p, float scale, float l1, float l2) {
    return g * scale + l1 * sgnf(p) + l2 * p;
}

int adamw_update(const OptSlice *s, float lr, float beta1, float beta2, float eps, int step) {
    float b1 = beta1, b2 = beta2;
    float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2), shrink = 1.0f - lr * s->wd;
    float *restrict p = s->p, *restrict mm = s->m, *restrict vv = s->v;
    const float *restrict g = s->g;
    float scale = s->scale, l1 = s->l1, l2 = s->l2;
    float bad = 0.0f;  // stays 0 while every value written is finite
#pragma omp parallel for simd reduction(+ : bad)
    for (long i = 0; i < s->n; i++) {
        float gi = effective_grad(g[i], p[i], scale, l1, l2);
        mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
        vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
        float denom = sqrtf(vv[i]) / bc2_sqrt + eps;
        p[i] = p[i] * shrink - step_size * mm[i] / denom;
        bad += p[i] * 0.0f + mm[i] * 0.0f + vv[i] * 0.0f;
    }
    return bad == 0.0f;
}

// dampening 0: with the buffer zeroed at reset, momentum*0 + g is torch's
// "buffer = g on the first step" without a special case.
int sgd_update(const OptSlice *s, float lr, float momentum, int nesterov) {
    float mu = momentum, wd = s->wd;
    float *restrict p = s->p, *restrict buf = s->m;
    const float *restrict g = s->g;
    float scale = s->scale, l1 = s->l1, l2 = s->l2;
    float bad = 0.0f;  // stays 0 while every value written is finite
#pragma omp parallel for simd reduction(+ : bad)
    for (long i = 0; i < s->n; i++) {
        float gi = effective_grad(g[i], p[i], scale, l1, l2) + wd * p[i];
        if (mu != 0.0f) {
            buf[i] = mu * buf[i] + gi;
            gi = nesterov ? gi + mu * buf[i] : buf[i];
        }
        p[i] -= lr * gi;
        bad += p[i] * 0.0f + buf[i] * 0.0f;
    }
    return bad == 0.0f;
}

int lion_update(const OptSlice *s, float lr, float beta1, float beta2) {
    float b1 = beta1, b2 = beta2, shrink = 1.0f - lr * s->wd;
    float *restrict p = s->p, *restrict mm = s->m;
    const float *restrict g = s->g;
    float scale = s->scale, l1 = s->l1, l2 = s->l2;
    float bad = 0.0f;  // stays 0 while every value written is finite
#pragma omp parallel for simd reduction(+ : bad)
    for (long i = 0; i < s->n; i++) {
        float gi = effective_grad(g[i], p[i], scale, l1, l2);  // penalties see w before decay
        float update = sgnf(b1 * mm[i] + (1.0f - b1) * gi);
        p[i] = p[i] * shrink - lr * update;
        mm[i] = b2 * mm[i] + (1.0f - b2) * gi;
        bad += p[i] * 0.0f + mm[i] * 0.0f;
    }
    return bad == 0.0f;
}

// simd: several partial sums per thread, so the loop runs at memory speed
// instead of one add's latency per element (the order of a double sum of
// float squares moves only its last bits).
double sum_squares(const float *x, long n) {
    double ss = 0.0;
#pragma omp parallel for simd reduction(+ : ss)
    for (long i = 0; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

// Reduces onto the running totals, as one loop over several tensors would.
void abs_square_sums(const float *x, long n, double *abs_sum, double *sq_sum) {
    double a = *abs_sum, q = *sq_sum;
#pragma omp parallel for simd reduction(+ : a, q)
    for (long i = 0; i < n; i++) {
        a += fabs((double)x[i]);
        q += (double)x[i] * x[i];
    }
    *abs_sum = a;
    *sq_sum = q;
}
