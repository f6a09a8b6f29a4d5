// layout.c: where the model's state lives across ranks (run.h): ZeRO's
// shards of the optimizer's moments, and under tensor and pipeline parallelism
// each rank's share of the model, gathered into rank 0's whole model for
// checkpoints and evaluations and shared out from it, so that a checkpoint is
// the one model whatever the layout.
#include "run/run.h"

#include "backend/backend.h"

// The model's moments pointed elsewhere (run.h).
Moments run_moments_swap(KilnModel *m, Moments x) {
    Moments old = {m->m, m->v, m->opt_lo, m->opt_n};
    m->m = x.m, m->v = x.v, m->opt_lo = x.lo, m->opt_n = x.n;
    return old;
}

// ZeRO-1: every rank reads the checkpoint's weights; rank 0 reads the moments
// too and sends each rank its shard.
int run_load_sharded(Run *r, const char *path, KilnErr *err) {
    long P = r->m.layout.total;
    float *full = NULL;
    int rc;
    if (!r->writer) rc = checkpoint_load(path, &r->m, 0, err);
    else if (!(full = backend_alloc(2 * P, err))) rc = -1;
    else {
        Moments own = run_moments_swap(&r->m, (Moments){full, full + P, 0, P});
        rc = checkpoint_load(path, &r->m, 1, err);
        run_moments_swap(&r->m, own);
    }
    int bad = rc != 0;
    comm_allreduce_max_int(&r->comm, &bad, 1);  // all go on, or all stop
    if (bad) {
        backend_free(full);
        return rc ? -1 : kiln_fail(err, "%s: another rank could not read this checkpoint", path);
    }
    comm_scatter_f32(&r->comm, full, P, r->m.m);
    comm_scatter_f32(&r->comm, full ? full + P : NULL, P, r->m.v);
    backend_free(full);
    return 0;
}

// ---- model parallelism: the whole model on rank 0, shares on the ranks ----

// The model that checkpoints and evaluations read: rank 0's whole one.
KilnModel *run_whole(Run *r) { return r->mp > 1 ? &r->full : &r->m; }

enum { TAG_SHARE = 7 };

// The layout of replica member j's share (j = stage x tp + tensor-parallel rank).
void run_share_plan(const Run *r, int j, KilnModel *plan) {
    KilnTensorParallel tp = {r->tp, j % r->tp, NULL, NULL};
    KilnPipeStage pp = {r->pp, j / r->tp, 0};
    gpt_plan(plan, &r->m.cfg, &tp, &pp, NULL);  // the same config that planned every rank's share
}

// Replica 0's shares of the weights into rank 0's whole model (checkpoints'
// model.safetensors, evaluations; the moments stay in the ranks' parts).
// Called by replica 0's ranks (dpc.rank 0) only.
void run_share_gather(Run *r) {
    KilnModel *m = &r->m;
    if (r->mpc.rank) {
        comm_send(&r->mpc, m->params, sizeof(float) * m->layout.total, 0, TAG_SHARE);
        return;
    }
    gpt_share_copy(m, 0, m->params, &r->full, r->full.params, 1);
    for (int j = 1; j < r->mp; j++) {
        KilnModel plan;
        run_share_plan(r, j, &plan);
        int tag = TAG_SHARE;
        comm_recv(&r->mpc, r->sharebuf, sizeof(float) * plan.layout.total, j, &tag);
        gpt_share_copy(&plan, j % r->tp, r->sharebuf, &r->full, r->full.params, 1);
    }
}

// The reverse: rank 0's whole model to replica 0's shares.
static void share_scatter(Run *r, int moments) {
    KilnModel *m = &r->m;
    long P = m->layout.total;
    float *mine[3] = {m->params, m->m, m->v}, *whole_of[3] = {r->full.params, r->full.m, r->full.v};
    for (int i = 0; i < (moments ? 3 : 1); i++) {
        if (r->mpc.rank) {
            int tag = TAG_SHARE;
            comm_recv(&r->mpc, mine[i], sizeof(float) * P, 0, &tag);
            continue;
        }
        for (int j = 1; j < r->mp; j++) {
            KilnModel plan;
            run_share_plan(r, j, &plan);
            gpt_share_copy(&plan, j % r->tp, r->sharebuf, &r->full, whole_of[i], 0);
            comm_send(&r->mpc, r->sharebuf, sizeof(float) * plan.layout.total, j, TAG_SHARE);
        }
        gpt_share_copy(m, 0, mine[i], &r->full, whole_of[i], 0);
    }
}

// Rank 0's whole model (weights; with moments, also m and v) to every rank's
// share: replica 0 by share_scatter, the other replicas from it (ZeRO: each
// rank its piece of the moments).
void run_share_distribute(Run *r, int moments) {
    KilnModel *m = &r->m;
    long P = m->layout.total;
    float *mv = r->zero && moments && r->dpc.rank == 0 ? r->mvbuf : NULL;
    Moments own = {0};
    if (mv) own = run_moments_swap(m, (Moments){mv, mv + P, 0, P});
    if (r->dpc.rank == 0) share_scatter(r, moments);
    if (mv) run_moments_swap(m, own);
    comm_bcast(&r->dpc, m->params, sizeof(float) * P, 0);
    if (!moments) return;
    if (r->zero) {
        comm_scatter_f32(&r->dpc, mv, P, m->m);
        comm_scatter_f32(&r->dpc, mv ? mv + P : NULL, P, m->v);
    } else {
        comm_bcast(&r->dpc, m->m, sizeof(float) * P, 0);
        comm_bcast(&r->dpc, m->v, sizeof(float) * P, 0);
    }
}

// Rank 0 reads the checkpoint into the whole model; every rank gets its share.
int run_load_shares(Run *r, const char *path, KilnErr *err) {
    int rc = r->writer ? checkpoint_load(path, &r->full, 1, err) : 0, bad = rc != 0;
    comm_allreduce_max_int(&r->comm, &bad, 1);  // all go on, or all stop
    if (bad) return rc ? -1 : kiln_fail(err, "%s: rank 0 could not read this checkpoint", path);
    run_share_distribute(r, 1);
    return 0;
}

// This rank's part of a sharded checkpoint: its share's weights if it is the
// share's first replica, and the moments it holds (ZeRO: its piece; else the
// first replica's whole share).
KilnShardInfo run_part(const Run *r) {
    const KilnModel *m = &r->m;
    int first = r->dpc.rank == 0;
    KilnShardInfo si = {r->dp, r->tp, r->pp, r->zero, r->comm.rank, r->dpc.rank, r->tpc.rank, r->ppc.rank, first,
                        r->zero ? m->opt_lo : 0, r->zero ? m->opt_n : first ? m->layout.total : 0};
    return si;
}
