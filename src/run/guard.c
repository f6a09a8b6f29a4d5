// guard.c: z-scores of loss and gradient norm over a window of recent good steps.
#include "kiln/guard.h"

#include <math.h>

int guard_enabled(const KilnTrainConfig *t) { return t->spike_z > 0 || t->spike_grad_z > 0; }

// Mean and population std of the window's values; the std is floored at 1% of
// the mean so that a nearly flat series does not turn noise into "spikes".
static void window_stats(const float *x, int n, double *mean, double *std) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    double mu = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    double sd = sqrt(ss / n), floor_sd = 0.01 * fabs(mu);
    *mean = mu;
    *std = sd > floor_sd ? sd : (floor_sd > 1e-12 ? floor_sd : 1e-12);
}

void guard_check(const KilnGuardWindow *w, const KilnTrainConfig *t, double loss, double norm,
                 KilnSpikeVerdict *v) {
    *v = (KilnSpikeVerdict){0};
    if (!isfinite(loss) || !isfinite(norm)) {
        v->spike = 1;
        v->why = isfinite(loss) ? "gradient norm is not finite" : "loss is not finite";
        return;
    }
    if (w->n < t->spike_min_history) return;
    window_stats(w->loss, w->n, &v->mean_loss, &v->std_loss);
    window_stats(w->norm, w->n, &v->mean_norm, &v->std_norm);
    v->z_loss = (loss - v->mean_loss) / v->std_loss;
    v->z_norm = (norm - v->mean_norm) / v->std_norm;
    if (t->spike_z > 0 && v->z_loss > t->spike_z) {
        v->spike = 1;
        v->why = "loss z-score";
    } else if (t->spike_grad_z > 0 && v->z_norm > t->spike_grad_z) {
        v->spike = 1;
        v->why = "gradient-norm z-score";
    }
}

void guard_push(KilnGuardWindow *w, const KilnTrainConfig *t, double loss, double norm) {
    int cap = t->spike_window;
    if (w->head >= cap) w->head = 0;  // the window was shrunk (config changed on resume)
    w->loss[w->head] = (float)loss;
    w->norm[w->head] = (float)norm;
    w->head = (w->head + 1) % cap;
    if (w->n < cap) w->n++;
    if (w->n > cap) w->n = cap;
}
