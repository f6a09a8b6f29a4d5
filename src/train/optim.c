// optim.c: the optimizers (AdamW, SGD with momentum, Lion) with L1/L2 penalties,
// gradient clipping and the learning-rate schedule.
#include "train/optim.h"

#include <math.h>
#include <string.h>

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

// Weight decay and the L1/L2 penalties apply to this tensor.
static int decays(const KilnModel *m, const KilnTrainConfig *t, int id) {
    return m->layout.decay[id] || (t->decay_embeddings && (id == PT_WTE || id == PT_WPE));
}

// One tensor's slices and the terms of its effective gradient
// g = grad*scale + l1*sign(w) + l2*w (l1 = l2 = 0 on tensors without decay).
typedef struct {
    float *restrict p, *restrict m, *restrict v;
    const float *restrict g;
    long n;
    float scale, l1, l2, wd;  // wd: 0 on tensors without decay
} Slice;

static inline float sgnf(float x) { return (float)((x > 0.0f) - (x < 0.0f)); }

// The gradient each optimizer sees: clipped, plus the penalties' gradient.
static inline float effective_grad(float g, float p, float scale, float l1, float l2) {
    return g * scale + l1 * sgnf(p) + l2 * p;
}

static void adamw_slice(const Slice *s, const KilnTrainConfig *t, float lr, int step) {
    float b1 = t->beta1, b2 = t->beta2, eps = t->eps;
    float bc1 = 1.0f - powf(b1, (float)step), bc2 = 1.0f - powf(b2, (float)step);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2), shrink = 1.0f - lr * s->wd;
    float *restrict p = s->p, *restrict mm = s->m, *restrict vv = s->v;
    const float *restrict g = s->g;
    float scale = s->scale, l1 = s->l1, l2 = s->l2;
#pragma omp parallel for simd
    for (long i = 0; i < s->n; i++) {
        float gi = effective_grad(g[i], p[i], scale, l1, l2);
        mm[i] = b1 * mm[i] + (1.0f - b1) * gi;
        vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
        float denom = sqrtf(vv[i]) / bc2_sqrt + eps;
        p[i] = p[i] * shrink - step_size * mm[i] / denom;
    }
}

// dampening 0: with the buffer zeroed at reset, momentum*0 + g is torch's
// "buffer = g on the first step" without a special case.
static void sgd_slice(const Slice *s, const KilnTrainConfig *t, float lr) {
    float mu = t->momentum, wd = s->wd;
    int nesterov = t->nesterov;
    float *restrict p = s->p, *restrict buf = s->m;
    const float *restrict g = s->g;
    float scale = s->scale, l1 = s->l1, l2 = s->l2;
#pragma omp parallel for simd
    for (long i = 0; i < s->n; i++) {
        float gi = effective_grad(g[i], p[i], scale, l1, l2) + wd * p[i];
        if (mu != 0.0f) {
            buf[i] = mu * buf[i] + gi;
            gi = nesterov ? gi + mu * buf[i] : buf[i];
        }
        p[i] -= lr * gi;
    }
}

static void lion_slice(const Slice *s, const KilnTrainConfig *t, float lr) {
    float b1 = t->beta1, b2 = t->beta2, shrink = 1.0f - lr * s->wd;
    float *restrict p = s->p, *restrict mm = s->m;
    const float *restrict g = s->g;
    float scale = s->scale, l1 = s->l1, l2 = s->l2;
#pragma omp parallel for simd
    for (long i = 0; i < s->n; i++) {
        float gi = effective_grad(g[i], p[i], scale, l1, l2);  // penalties see w before decay
        float update = sgnf(b1 * mm[i] + (1.0f - b1) * gi);
        p[i] = p[i] * shrink - lr * update;
        mm[i] = b2 * mm[i] + (1.0f - b2) * gi;
    }
}

void optimizer_step(KilnModel *m, const KilnTrainConfig *t, float lr, int opt_step, float grad_scale) {
    for (int id = 0; id < PT_COUNT; id++) {
        long n = m->layout.size[id], off = m->layout.offset[id];
        if (!n) continue;
        int d = decays(m, t, id);
        Slice s = {m->params + off, m->m + off, m->v + off, m->grads + off, n, grad_scale,
                   d ? t->l1 : 0.0f, d ? t->l2 : 0.0f, d ? t->weight_decay : 0.0f};
        switch (t->optimizer) {
        case KILN_OPT_ADAMW: adamw_slice(&s, t, lr, opt_step); break;
        case KILN_OPT_SGD: sgd_slice(&s, t, lr); break;
        case KILN_OPT_LION: lion_slice(&s, t, lr); break;
        }
    }
}

void optimizer_reset_state(KilnModel *m) {
    memset(m->m, 0, sizeof(float) * m->layout.total);
    memset(m->v, 0, sizeof(float) * m->layout.total);
}

double penalty_value(const KilnModel *m, const KilnTrainConfig *t) {
    if (t->l1 == 0.0f && t->l2 == 0.0f) return 0.0;
    double abs_sum = 0.0, sq_sum = 0.0;
    for (int id = 0; id < PT_COUNT; id++) {
        long n = m->layout.size[id];
        if (!n || !decays(m, t, id)) continue;
        const float *p = m->params + m->layout.offset[id];
#pragma omp parallel for reduction(+ : abs_sum, sq_sum)
        for (long i = 0; i < n; i++) {
            abs_sum += fabs((double)p[i]);
            sq_sum += (double)p[i] * p[i];
        }
    }
    return t->l1 * abs_sum + 0.5 * t->l2 * sq_sum;
}

void adamw_step(KilnModel *m, const KilnTrainConfig *t, float lr, int step, float grad_scale) {
    KilnTrainConfig a = *t;
    a.optimizer = KILN_OPT_ADAMW;
    optimizer_step(m, &a, lr, step, grad_scale);
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
