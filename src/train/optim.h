// optim.h: the optimizers (AdamW, SGD with momentum, Lion), L1/L2 penalties,
// global-norm clipping and the learning-rate schedule.
#ifndef KILN_OPTIM_H
#define KILN_OPTIM_H

#include "kiln/config.h"
#include "kiln/model.h"

// L2 norm of all gradients (accumulated in double).
double grad_global_norm(const KilnModel *m);
// The factor that brings the global norm down to max_norm, or 1 if it is below
// (torch.nn.utils.clip_grad_norm_); max_norm <= 0 disables clipping.
float grad_clip_coef(double norm, float max_norm);

// One step of t->optimizer on every parameter. Each gradient is read as
//   g = grad * grad_scale (the clip coefficient) + l1*sign(w) + l2*w
// where the penalty terms apply to the weight-decayed tensors only (layout.decay,
// plus embeddings if decay_embeddings), i.e. the penalties are added after
// clipping and do not count in the clipped norm. Then, per element:
//   adamw  torch.optim.AdamW: m,v moments, bias correction by opt_step,
//          w -= lr*wd*w (decoupled) on decayed tensors
//   sgd    torch.optim.SGD, dampening 0: g += wd*w (COUPLED, as torch) on decayed
//          tensors; buf = momentum*buf + g (buf = g on the first step, since the
//          state starts at zero); g = nesterov ? g + momentum*buf : buf; w -= lr*g
//   lion   Chen et al. 2023 / lion-pytorch: w -= lr*wd*w (decoupled, decayed
//          tensors); w -= lr*sign(beta1*m + (1-beta1)*g); m = beta2*m + (1-beta2)*g
// State: AdamW keeps m and v, SGD its momentum buffer in m, Lion its momentum in m.
// opt_step counts from 1 since the state was last reset (AdamW's bias correction).
// Returns 1 when every weight and moment it wrote is finite, 0 when the update
// overflowed one (such a state must be neither trained on nor checkpointed).
int optimizer_step(KilnModel *m, const KilnTrainConfig *t, float lr, int opt_step, float grad_scale);
// Zeroes the optimizer state (m and v), e.g. when the optimizer is swapped mid-run;
// the next optimizer_step then takes opt_step = 1.
void optimizer_reset_state(KilnModel *m);
// l1*sum|w| + l2/2*sum w^2 over the weight-decayed tensors (what the penalty
// gradients above are the gradient of), for logging.
double penalty_value(const KilnModel *m, const KilnTrainConfig *t);

// AdamW whatever t->optimizer says (kept for callers not yet on optimizer_step).
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
