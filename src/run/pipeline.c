// pipeline.c: 1F1B over a replica's pipeline stages (pipeline.h).
//
// Stage s of S, n micro-batches, w = min(S - 1 - s, n) warm-up forwards:
//   F0 .. F(w-1) | F(w) B0 F(w+1) B1 ... F(n-1) B(n-1-w) | B(n-w) .. B(n-1)
// Micro-batch i lives in slot i mod (S - s) from its forward to its backward.
// Sends are non-blocking: a stage never waits for its neighbour to take what
// it sends, only for what it needs; a slot's sends are finished before the
// slot is written again (by then the neighbour has taken them: the stage has
// already received what the neighbour computed from them).
#include "run/pipeline.h"

#include <stdlib.h>
#include <time.h>

enum { TAG_ACT = 11, TAG_GRAD = 12 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    KilnModel *m;
    KilnComm *pp;
    long bytes;          // one micro-batch's activations
    KilnReq *fwd, *bwd;  // per slot: the activations sent on, the gradient sent back
    double wait;
} Stage;

// Slot i's sends finished: its buffers may be written.
static void free_slot(Stage *st, int slot) {
    double t0 = now_s();
    comm_wait(st->pp, &st->fwd[slot]);
    comm_wait(st->pp, &st->bwd[slot]);
    st->wait += now_s() - t0;
}

static void take(Stage *st, float *into, int from, int tag) {
    double t0 = now_s();
    comm_recv(st->pp, into, st->bytes, from, &tag);
    st->wait += now_s() - t0;
}

static int forward(Stage *st, const KilnPipeWork *w, int i, KilnErr *err) {
    KilnModel *m = st->m;
    int slot = i % m->pp.slots, s = st->pp->rank;
    gpt_slot(m, slot);
    free_slot(st, slot);
    if (!m->first) take(st, gpt_stage_input(m), s - 1, TAG_ACT);
    if (w->forward(w->ctx, i, err)) return -1;
    if (!m->last) comm_isend(st->pp, gpt_stage_output(m), st->bytes, s + 1, TAG_ACT, &st->fwd[slot]);
    return 0;
}

static void backward(Stage *st, const KilnPipeWork *w, int i) {
    KilnModel *m = st->m;
    int slot = i % m->pp.slots, s = st->pp->rank;
    gpt_slot(m, slot);
    double t0 = now_s();
    comm_wait(st->pp, &st->bwd[slot]);  // the gradient buffer's last send
    st->wait += now_s() - t0;
    if (!m->last) take(st, gpt_stage_grad(m), s + 1, TAG_GRAD);
    w->backward(w->ctx, i);
    if (!m->first) comm_isend(st->pp, gpt_stage_grad(m), st->bytes, s - 1, TAG_GRAD, &st->bwd[slot]);
}

int pipeline_1f1b(KilnModel *m, KilnComm *pp, int n, long act_floats, const KilnPipeWork *w, double *wait_s,
                  KilnErr *err) {
    int S = pp->size, s = pp->rank, warm = S - 1 - s < n ? S - 1 - s : n;
    if (m->pp.slots < S - s) return kiln_fail(err, "stage %d of %d has %d activation slots, 1F1B needs %d", s, S,
                                              m->pp.slots, S - s);
    Stage st = {m, pp, act_floats * (long)sizeof(float), calloc((size_t)m->pp.slots, sizeof(KilnReq)),
                calloc((size_t)m->pp.slots, sizeof(KilnReq)), 0.0};
    int rc = st.fwd && st.bwd ? 0 : kiln_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < warm; i++) rc = forward(&st, w, i, err);
    for (int i = warm; rc == 0 && i < n; i++) {
        rc = forward(&st, w, i, err);
        if (rc == 0) backward(&st, w, i - warm);
    }
    for (int i = n - warm; rc == 0 && i < n; i++) backward(&st, w, i);
    for (int k = 0; st.fwd && st.bwd && k < m->pp.slots; k++) free_slot(&st, k);
    gpt_slot(m, 0);
    free(st.fwd);
    free(st.bwd);
    *wait_s = st.wait;
    return rc;
}

double pipeline_bubble(int stages, int n) { return (stages - 1.0) / (n + stages - 1.0); }
