// optim.c: the optimizers (AdamW, SGD with momentum, Lion) with L1/L2 penalties,
// gradient clipping and the learning-rate schedule: which update runs on which
// tensor with what settings. The per-element updates are the backend's.
#include "train/optim.h"

#include "backend/backend.h"

#include <math.h>

double grad_global_norm(const KilnModel *m) { return sqrt(sum_squares(m->grads, m->layout.total)); }

float grad_clip_coef(double norm, float max_norm) {
    if (max_norm <= 0.0f) return 1.0f;
    float coef = (float)(max_norm / (norm + 1e-6));  // same epsilon as torch
    return coef < 1.0f ? coef : 1.0f;
}

// Weight decay and the L1/L2 penalties apply to this tensor.
static int decays(const KilnModel *m, const KilnTrainConfig *t, int id) {
    return m->layout.decay[id] || (t->decay_embeddings && (id == PT_WTE || id == PT_WPE));
}

int optimizer_step(KilnModel *m, const KilnTrainConfig *t, float lr, int opt_step, float grad_scale) {
    int finite = 1;
    long lo = m->opt_lo, hi = m->opt_lo + m->opt_n;  // the parameters whose moments we hold (ZeRO: a shard)
    for (int id = 0; id < PT_COUNT; id++) {
        long off = m->layout.offset[id], end = off + m->layout.size[id];
        if (off < lo) off = lo;
        if (end > hi) end = hi;
        long n = end - off;
        if (n <= 0) continue;
        int d = decays(m, t, id);
        OptSlice s = {m->params + off, m->m + (off - lo), m->v + (off - lo), m->gopt + (off - lo), n, grad_scale,
                      d ? t->l1 : 0.0f, d ? t->l2 : 0.0f, d ? t->weight_decay : 0.0f};
        switch (t->optimizer) {
        case KILN_OPT_ADAMW: finite &= adamw_update(&s, lr, t->beta1, t->beta2, t->eps, opt_step); break;
        case KILN_OPT_SGD: finite &= sgd_update(&s, lr, t->momentum, t->nesterov); break;
        case KILN_OPT_LION: finite &= lion_update(&s, lr, t->beta1, t->beta2); break;
        }
    }
    return finite;
}

void optimizer_reset_state(KilnModel *m) {
    backend_zero(m->m, m->opt_n);
    backend_zero(m->v, m->opt_n);
}

double penalty_value(const KilnModel *m, const KilnTrainConfig *t) {
    if (t->l1 == 0.0f && t->l2 == 0.0f) return 0.0;
    double abs_sum = 0.0, sq_sum = 0.0;
    for (int id = 0; id < PT_COUNT; id++) {
        long n = m->layout.size[id];
        if (!n || !decays(m, t, id)) continue;
        abs_square_sums(m->params + m->layout.offset[id], n, &abs_sum, &sq_sum);
    }
    return t->l1 * abs_sum + 0.5 * t->l2 * sq_sum;
}

void adamw_step(KilnModel *m, const KilnTrainConfig *t, float lr, int step, float grad_scale) {
    KilnTrainConfig a = *t;
    a.optimizer = KILN_OPT_ADAMW;
    optimizer_step(m, &a, lr, step, grad_scale);
}

// An extension (steps from extend_from on): the planned schedule's last lr,
// held, or held and then decayed over the extension's last wsd_decay_frac.
static float extension_lr(const KilnTrainConfig *t, int step) {
    double fin = t->extend_lr, lo = t->min_lr, v = fin;
    int span = t->steps - t->extend_from;
    if (t->extend == KILN_EXTEND_DECAY && span > 0) {
        double done = (double)(step - t->extend_from) / span, start = 1.0 - t->wsd_decay_frac;
        if (done > 1) done = 1;
        if (done > start) v = fin - (done - start) / (t->wsd_decay_frac > 0 ? t->wsd_decay_frac : 1) * (fin - lo);
    }
    return (float)(v > lo ? v : lo);
}

float lr_at(const KilnTrainConfig *t, int step) {
    // step counts from 0 here, as nanoGPT's iteration number
    if (t->extend_from > 0 && step >= t->extend_from) return extension_lr(t, step);
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
