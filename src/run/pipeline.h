// pipeline.h: one step of a pipeline stage's micro-batches in the 1F1B order.
#ifndef KILN_RUN_PIPELINE_H
#define KILN_RUN_PIPELINE_H

#include "dist/comm.h"
#include "kiln/model.h"

// What the stage computes of micro-batch i (0 .. n-1, in the order the step
// reads them) in the model's current slot: the forward pass (a stage after
// the first finds its input in place) and the backward pass (a stage before
// the last finds the gradient of its output in place).
typedef struct {
    int (*forward)(void *ctx, int i, KilnErr *err);
    void (*backward)(void *ctx, int i);
    void *ctx;
} KilnPipeWork;

// The stage's n micro-batches under 1F1B (PipeDream-Flush, Megatron-LM's
// default): stage s of S runs min(S - 1 - s, n) forward passes, then one
// forward and one backward in turn, then the backward passes left, so at most
// S - s micro-batches are in flight (m's slots). Activations (B,T,C) go to the
// next stage and their gradients to the one before, over pp (the replica's
// stages, ranked by stage), while the stage computes. *wait_s: the time the
// stage waited for its neighbours, its share of the bubble.
int pipeline_1f1b(KilnModel *m, KilnComm *pp, int n, long act_floats, const KilnPipeWork *w, double *wait_s,
                  KilnErr *err);

// The idle fraction of 1F1B in theory: (S - 1) / (n + S - 1).
double pipeline_bubble(int stages, int n);

#endif
