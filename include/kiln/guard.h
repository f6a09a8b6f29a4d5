// guard.h: the loss-spike guard. It keeps the losses and gradient norms of the
// last train.spike_window good steps and judges each new step before its
// update is applied: a spike is a non-finite loss or norm, or a value whose
// z-score over the window exceeds train.spike_z (loss) or train.spike_grad_z
// (norm). Only upward jumps count. The window is part of the checkpoint, so a
// resumed run judges exactly as an uninterrupted one.
#ifndef KILN_GUARD_H
#define KILN_GUARD_H

#include "kiln/config.h"

typedef struct {
    int n;     // values held (<= window)
    int head;  // slot the next value goes to
    float loss[KILN_SPIKE_WINDOW_MAX], norm[KILN_SPIKE_WINDOW_MAX];
} KilnGuardWindow;

typedef struct {
    int spike;          // 1: this step is a spike
    const char *why;    // "loss is not finite", "loss z-score", "gradient-norm z-score"
    double z_loss, z_norm;
    double mean_loss, std_loss, mean_norm, std_norm;
} KilnSpikeVerdict;

// 1 when either z check is configured (the guard is on).
int guard_enabled(const KilnTrainConfig *t);
// Judges (loss, norm) against the window; the window is not changed.
void guard_check(const KilnGuardWindow *w, const KilnTrainConfig *t, double loss, double norm,
                 KilnSpikeVerdict *v);
// Adds a good step's values, dropping the oldest beyond train.spike_window.
void guard_push(KilnGuardWindow *w, const KilnTrainConfig *t, double loss, double norm);

#endif
