// control.h: live control of a running trainer. Write RUN/control, a file of
// `key: value` lines (# comments allowed), and the trainer applies it at the
// next step (or at once on SIGUSR1), logs each change with its step, and
// renames the file to RUN/control.applied; a file with any bad line is applied
// not at all and renamed to RUN/control.rejected, with the error logged.
//   lr_mult: 0.5          multiply the scheduled learning rate (persists), in (0, 1000]
//   weight_decay: 0.05    in [0, 10]      grad_clip: 0.5    in [0, 1e6], 0: off
//   optimizer: lion       adamw | sgd | lion (the new optimizer starts with zeroed state)
//   activation: relu      gelu | gelu_erf | relu (swiglu changes the shapes: refused)
//   checkpoint: now       write a checkpoint at the end of this step
//   eval: now             evaluate the validation split now
//   stop: now             checkpoint and exit (status 75), as SIGTERM does
#ifndef KILN_CONTROL_H
#define KILN_CONTROL_H

#include "kiln/config.h"

// Ranges of the live numbers: a value outside is a typo, not a setting (1e30
// as weight_decay wipes the weights in one step).
#define KILN_CONTROL_MAX_WD 10.0f
#define KILN_CONTROL_MAX_CLIP 1e6f

typedef struct {
    int set_lr_mult, set_weight_decay, set_grad_clip, set_optimizer, set_act;
    float lr_mult, weight_decay, grad_clip;
    int optimizer;  // KilnOptimizer
    KilnAct act;
    int checkpoint_now, eval_now, stop;
} KilnControl;

// Parses a control file's text; name is used in messages ("RUN/control:3: ...").
int control_parse(const char *text, size_t len, const char *name, KilnControl *c, KilnErr *err);

#endif
