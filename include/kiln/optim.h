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

// Linear warmup to lr, cosine decay to min_lr at decay_steps, then min_lr.
float lr_at(const KilnTrainConfig *t, int step);

#endif
