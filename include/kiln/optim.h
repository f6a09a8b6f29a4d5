// optim.h: AdamW with decoupled weight decay, global-norm clipping, LR schedule.
#ifndef KILN_OPTIM_H
#define KILN_OPTIM_H

#include "kiln/config.h"
#include "kiln/model.h"

// L2 norm of all gradients (accumulated in double).
double grad_global_norm(const KilnModel *m);
// Scales gradients so their global norm is at most max_norm (torch.nn.utils.clip_grad_norm_).
void grad_clip(KilnModel *m, double norm, float max_norm);

// One AdamW step on every parameter; step counts from 1 (bias correction).
// Weight decay applies where layout.decay says, plus embeddings if decay_embeddings.
void adamw_step(KilnModel *m, const KilnTrainConfig *t, float lr, int step);

// Linear warmup to lr, cosine decay to min_lr at decay_steps, then min_lr.
float lr_at(const KilnTrainConfig *t, int step);

#endif
