// adamw.c: the optimizer step, gradient clipping and the learning-rate schedule.
#include "kiln/optim.h"

#include <math.h>

double grad_global_norm(const KilnModel *m) {
    double ss = 0.0;
    const float *g = m->grads;
#pragma omp parallel for reduction(+ : ss)
    for (long i = 0; i < m->layout.total; i++) ss += (double)g[i] * g[i];
    return sqrt(ss);
}

float grad_clip_coef(double norm, float max_norm) {
    if (max_norm <= 0.0f) return 1.0f;
    float coef = (float)(max_norm / (norm + 1e-6));  // same epsilon as torch
    return coef < 1.0f ? coef : 1.0f;
}

void adamw_step(KilnModel *m, const KilnTrainConfig *t, float lr, int step, float grad_scale) {
    float b1 = t->beta1, b2 = t->beta2, eps = t->eps;
    float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    for (int id = 0; id < PT_COUNT; id++) {
        long n = m->layout.size[id], off = m->layout.offset[id];
        if (!n) continue;
        int decay = m->layout.decay[id] ||
                    (t->decay_embeddings && (id == PT_WTE || id == PT_WPE));
        float shrink = decay ? 1.0f - lr * t->weight_decay : 1.0f;
        float *restrict p = m->params + off, *restrict mm = m->m + off, *restrict vv = m->v + off;
        const float *restrict g = m->grads + off;
#pragma omp parallel for simd
        for (long i = 0; i < n; i++) {
            float gi = g[i] * grad_scale;
            mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
            vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
            float denom = sqrtf(vv[i]) / bc2_sqrt + eps;
            p[i] = p[i] * shrink - step_size * mm[i] / denom;
        }
    }
}

float lr_at(const KilnTrainConfig *t, int step) {
    // step counts from 0 here, as nanoGPT's iteration number
    int w = t->warmup_steps, end = t->decay_steps;
    if (step < w) return t->lr * (float)(step + 1) / (float)(w + 1);
    double lr = t->lr, lo = t->min_lr, v;
    double done = end > w ? (double)(step - w) / (double)(end - w) : 1.0;  // progress through the decay
    if (done > 1) done = 1;
    switch (t->schedule) {
    case KILN_LR_COSINE: v = lo + 0.5 * (1.0 + cos(M_PI * done)) * (lr - lo); break;
    case KILN_LR_LINEAR: v = lr - done * (lr - lo); break;
    case KILN_LR_STEP: v = lr * pow(t->step_factor, (double)((step - w) / t->step_every)); break;
    case KILN_LR_INV_SQRT: v = lr * sqrt((double)(w > 0 ? w : 1) / (double)(step - w + (w > 0 ? w : 1))); break;
    case KILN_LR_WSD: {
        // stable at lr, then the last wsd_decay_frac of the decay span falls linearly to min_lr
        double start = 1.0 - t->wsd_decay_frac;
        v = done <= start ? lr : lr - (done - start) / (t->wsd_decay_frac > 0 ? t->wsd_decay_frac : 1) * (lr - lo);
        break;
    }
    default: v = lr; break;
    }
    return (float)(v > lo ? v : lo);  // min_lr is the floor of every shape
}
