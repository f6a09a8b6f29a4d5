// schedule.h: how the global batch grows during a run (the learning-rate
// schedule, lr_at, is in optim.h).
#ifndef KILN_SCHEDULE_H
#define KILN_SCHEDULE_H

#include "kiln/config.h"

// Micro-batches (of batch_size x seq_len tokens) in the step that starts after
// tokens_seen tokens. Without a ramp it is train.grad_accum. With one, the batch
// starts at batch_ramp_start tokens (rounded up to whole micro-batches) and grows
// to grad_accum micro-batches over the first batch_ramp_tokens tokens: linearly
// (one micro-batch at a time, as GPT-3's ramp) or in batch_ramp_stages equal steps.
int batch_micro_steps(const KilnTrainConfig *t, long long tokens_seen);

#endif
