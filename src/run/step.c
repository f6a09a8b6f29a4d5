// step.c: one optimizer step's forward and backward passes over the ranks
// (run.h): each data-parallel replica computes its share of the micro-batches,
// through its pipeline stages in the 1F1B order when there are several, and
// the gradients are summed over the replicas (all-reduced while the backward
// pass goes on, or reduce-scattered into ZeRO's shards).
#include "run/run.h"

#include "run/pipeline.h"

#include "train/optim.h"

#include <math.h>
#include <string.h>

// The model's tensor-parallel all-reduce (KilnTensorParallel) over the group.
void run_tp_allreduce(void *ctx, float *x, long n, int max) { comm_allreduce_f32(ctx, x, n, max); }

// gpt_backward's grad_ready hook on a rank's last micro-batch: the sum over
// ranks of each gradient starts as soon as it is final, while the backward
// pass goes on with the blocks below (as PyTorch DDP's buckets do).
static void send_grads(void *ctx, float *grad, long offset, long n) {
    KilnComm *c = ctx;
    (void)offset;
    comm_progress(c);  // MPI moves the sums already started only inside MPI calls
    comm_iallreduce_sum_f32(c, grad, n);
}

// ZeRO-2: the sum over the replicas of layout range [offset, offset + n), of
// which this rank keeps its shard's part, added to its summed gradients.
static void shard_grads(Run *r, const float *grad, long offset, long n) {
    const KilnModel *m = &r->m;
    long at = comm_reduce_scatter_range(&r->dpc, grad, offset, n, m->layout.total, r->gpiece);
    long lo = at > m->opt_lo ? at : m->opt_lo, hi = offset + n < m->opt_lo + m->opt_n ? offset + n : m->opt_lo + m->opt_n;
    for (long i = lo; i < hi; i++) r->gshard[i - m->opt_lo] += r->gpiece[i - at];
}

// ZeRO-2's grad_ready hook, on every micro-batch: a block's gradients go to
// their shards as the block's backward pass ends (its buffer is reused by the
// next); the other tensors' are taken after the step's last micro-batch. The
// reduce-scatters are blocking: OpenMPI's non-blocking one (libnbc) reduces to
// one rank and scatters back, 35% more bytes a step than the blocking one's
// (bench_dp), which is the ring's volume.
static void send_block_grads(void *ctx, float *grad, long offset, long n) {
    Run *r = ctx;
    long id_end = r->m.layout.offset[PT_FCPROJB] + r->m.layout.size[PT_FCPROJB];
    if (offset >= r->m.layout.offset[PT_LN1W] && offset < id_end) shard_grads(r, grad, offset, n);
}

// Micro-batch number micro of the step: forward with its dropout masks
// (a function of seed, step and micro-batch: nothing to save for resume).
static int micro_forward(Run *r, const int32_t *tok, const int32_t *tgt, int micro, int micro_batches,
                         KilnErr *err) {
    uint64_t seed = kiln_hash64(r->cfg->train.seed ^ kiln_hash64(((uint64_t)r->st.step << 16) + micro));
    return gpt_forward(&r->m, tok, tgt, r->live.batch_size, r->live.seq_len, 1.0f / micro_batches, seed, err);
}

// Backward; on the replica's last micro-batch of the step (last) the sums
// over the replicas start as each gradient is final, while the pass goes on.
static void micro_backward(Run *r, int last) {
    r->m.grad_ready = r->zero == 2 ? send_block_grads : r->dp > 1 && last && !r->zero ? send_grads : NULL;
    r->m.grad_ready_ctx = r->zero == 2 ? (void *)r : (void *)&r->dpc;
    gpt_backward(&r->m);
    r->m.grad_ready = NULL;
}

// The pipeline's view of the step (KilnPipeWork): this replica's micro-batch i.
typedef struct {
    Run *r;
    int micro_batches;
    double loss;
} PipeStep;

static int pipe_forward(void *ctx, int i, KilnErr *err) {
    PipeStep *p = ctx;
    Run *r = p->r;
    long BT = (long)r->live.batch_size * r->live.seq_len;
    if (micro_forward(r, r->pipe_tok + i * BT, r->pipe_tgt + i * BT, r->pipe_micro[i], p->micro_batches, err))
        return -1;
    p->loss += r->m.loss / p->micro_batches;  // the last stage's; 0 on the others
    return 0;
}

static void pipe_backward(void *ctx, int i) {
    PipeStep *p = ctx;
    micro_backward(p->r, i == p->r->pipe_n - 1);
}

// Forward and backward over this step's micro-batches; mean loss in *loss.
// With several replicas each reads every micro-batch (the loader's position
// stays the same on all) but computes only its share, micro-batch i on
// replica i mod N, so the sums over replicas are the one-process step's and
// no sequence is trained twice. With pipeline stages, the replica's share runs
// through them in the 1F1B order once read.
int run_forward_backward(Run *r, int micro_batches, double *loss, KilnErr *err) {
    int step = r->st.step, ranks = r->dp;
    long BT = (long)r->live.batch_size * r->live.seq_len;
    if (micro_batches % ranks)
        return kiln_fail(err, "step %d has %d micro-batches (train.grad_accum and the batch ramp), which do not "
                              "divide among %d data-parallel replicas", step + 1, micro_batches, ranks);
    gpt_zero_grad(&r->m);
    if (r->zero == 2) memset(r->gshard, 0, sizeof(float) * (size_t)r->m.opt_n);  // summed into, micro-batch by micro-batch
    *loss = 0.0;
    r->nrows = 0;
    r->pipe_n = 0;
    for (int micro = 0; micro < micro_batches; micro++) {
        run_next_micro_batch(r);
        if (micro % ranks != r->dpc.rank) continue;
        if (r->pp > 1) {  // kept for the schedule
            memcpy(r->pipe_tok + r->pipe_n * BT, r->tok, sizeof(int32_t) * (size_t)BT);
            memcpy(r->pipe_tgt + r->pipe_n * BT, r->tgt, sizeof(int32_t) * (size_t)BT);
            r->pipe_micro[r->pipe_n++] = micro;
            continue;
        }
        if (micro_forward(r, r->tok, r->tgt, micro, micro_batches, err)) return -1;
        micro_backward(r, micro + ranks >= micro_batches);  // no sums on accumulation micro-steps
        *loss += r->m.loss / micro_batches;
    }
    if (r->pp > 1) {
        PipeStep ps = {r, micro_batches, 0.0};
        KilnPipeWork w = {pipe_forward, pipe_backward, &ps};
        if (pipeline_1f1b(&r->m, &r->ppc, r->pipe_n, BT * r->m.cfg.n_embd, &w, &r->pipe_wait_s, err)) return -1;
        *loss = ps.loss;
        comm_allreduce_sum_f64(&r->ppc, loss, 1);  // the last stage's loss to every stage
    }
    comm_wait_all(&r->dpc);
    if (r->embc.size > 1) {  // a tied head's gradient on the last stage joins the embedding's on the first
        float *g = r->m.g.t[PT_WTE];
        comm_allreduce_f32(&r->embc, g, r->m.layout.size[PT_WTE], 0);
    }
    if (r->zero == 1)  // only this rank's shard of the sum: the rest it neither updates nor reads
        comm_reduce_scatter_f32(&r->dpc, r->m.grads, r->m.layout.total, r->gshard);
    for (int id = 0; r->zero == 2 && id < PT_COUNT; id++)  // the tensors that are not per block
        if (r->m.g.t[id]) shard_grads(r, r->m.g.t[id], r->m.layout.offset[id], r->m.layout.size[id]);
    comm_allreduce_sum_f64(&r->dpc, loss, 1);  // the tensor-parallel ranks of a replica have the same loss
    return 0;
}

// The norm of the gradients summed over ranks (ZeRO-1: of the shards, summed;
// tensor parallelism: of the split tensors' shares, summed, and of the whole
// ones, which every rank of a stage holds alike, counted once; pipeline
// parallelism: summed over the stages, a tied head's copy of the embedding
// not counted twice).
double run_grad_norm(Run *r) {
    const KilnModel *m = &r->m;
    if (!r->zero && r->mp == 1) return grad_global_norm(m);
    if (r->mp == 1) {
        double ss = sum_squares(m->gopt, m->opt_n);
        comm_allreduce_sum_f64(&r->dpc, &ss, 1);
        return sqrt(ss);
    }
    long lo = r->zero ? m->opt_lo : 0, hi = r->zero ? m->opt_lo + m->opt_n : m->layout.total;
    double ss[2] = {0, 0};  // split, whole
    for (int id = 0; id < PT_COUNT; id++) {
        if (id == PT_WTE && !m->first) continue;  // the tied head's copy: counted on the first stage
        long a = m->layout.offset[id], b = a + m->layout.size[id];
        a = a > lo ? a : lo, b = b < hi ? b : hi;
        if (a < b) ss[gpt_tp_split(id) ? 0 : 1] += sum_squares(m->gopt + (a - m->opt_lo), b - a);
    }
    if (r->zero) comm_allreduce_sum_f64(&r->dpc, ss, 2);
    comm_allreduce_sum_f64(&r->tpc, ss, 1);
    comm_allreduce_sum_f64(&r->ppc, ss, 2);
    return sqrt(ss[0] + ss[1]);
}
