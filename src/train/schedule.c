// schedule.c: the batch-size ramp.
#include "train/schedule.h"

int batch_micro_steps(const KilnTrainConfig *t, long long tokens_seen) {
    int target = t->grad_accum;
    if (t->batch_ramp_start == 0 || tokens_seen >= (long long)t->batch_ramp_tokens) return target;
    unsigned long long micro_tokens = (unsigned long long)t->batch_size * t->seq_len;
    unsigned long long s = (t->batch_ramp_start + micro_tokens - 1) / micro_tokens;
    int start = s < 1 ? 1 : s > (unsigned long long)target ? target : (int)s;
    // integer arithmetic, so stage boundaries fall exactly where they should
    unsigned long long span = (unsigned long long)(target - start), seen = (unsigned long long)tokens_seen;
    int n;
    if (t->batch_ramp == KILN_RAMP_STEP) {
        unsigned long long stage = seen * (unsigned long long)t->batch_ramp_stages / t->batch_ramp_tokens;
        n = start + (int)(span * stage / (unsigned long long)t->batch_ramp_stages);
    } else {
        n = start + (int)(span * seen / t->batch_ramp_tokens);
    }
    return n < target ? n : target;
}
