// optim.h: AdamW with decoupled weight decay, global-norm clipping, LR schedule.
#ifndef KILN_OPTIM_H
#define KILN_OPTIM_H

#include "kiln/config.h"
#include "kiln/model.h"

// L2 norm of all gradients (accumulated in double).
double grad_global_norm(const KilnModel *m);
// The factor that brings the global norm down to max_norm, or 1 if it is below
// (torch.nn.utils.clip_grad_norm_); max_norm <= 0 disables clipping.
float grad_clip_coef(double norm, float max_norm);

// One AdamW step on every parameter, with gradients multiplied by grad_scale
// (the clip coefficient) as they are read; step counts from 1 (bias correction).
// Weight decay applies where layout.decay says, plus embeddings if decay_embeddings.
void adamw_step(KilnModel *m, const KilnTrainConfig *t, float lr, int step, float grad_scale);

// Linear warmup to lr over warmup_steps, then the schedule's shape over
// [warmup_steps, decay_steps], floored at min_lr:
//   cosine    min + (lr-min)(1+cos(pi p))/2, p = progress through the decay
//   linear    lr - p (lr-min)
//   step      lr * step_factor^floor((step-warmup)/step_every)
//   inv_sqrt  lr * sqrt(W/(step-warmup+W)), W = max(warmup, 1)
//   wsd       lr until the last wsd_decay_frac of the decay, then linear to min
//   constant  lr
float lr_at(const KilnTrainConfig *t, int step);

#endif
