// async.c: asynchronous SGD (parallel.mode: async), run.h.
#include "run/run.h"

// ---- asynchronous SGD (parallel.mode: async), as Downpour SGD: rank 0 holds
// the weights and the optimizer and runs the run manager (checkpoints, metrics,
// control file, evaluation); each worker takes the weights, computes a whole
// step's gradient on its own batches and sends it back with the version of
// the weights it used; the server applies each gradient as it arrives (one
// optimizer step each) unless it is more than parallel.staleness updates old,
// and answers with the current weights. Worker w of W takes the global batches
// w-1, w-1+W, ..., so no batch is computed twice. Not reproducible run to run:
// the order of arrival decides.
enum { TAG_GRAD = 11, TAG_WEIGHTS = 12, TAG_STOP = 13 };

// What travels with a gradient (and, for the version, with weights).
typedef struct {
    double version;  // updates the weights had seen
    double loss;     // the batch's mean loss
    double batch;    // global batch index
    double micro;    // micro-batches in it
} AsyncHeader;

static void async_send_weights(Run *r, int worker, long version) {
    AsyncHeader h = {(double)version, 0, 0, 0};
    comm_send(&r->comm, &h, sizeof h, worker, TAG_WEIGHTS);
    comm_send(&r->comm, r->m.params, sizeof(float) * r->m.layout.total, worker, TAG_WEIGHTS);
}

int run_async_server(Run *r, KilnErr *err) {
    const KilnTrainConfig *t = &r->cfg->train;
    const KilnPretrainOptions *o = r->opt;
    int running = r->comm.size - 1, bound = r->cfg->parallel.staleness;
    long version = 0, dropped = 0;
    for (int w = 1; w <= running; w++) async_send_weights(r, w, version);
    double t_prev = kiln_now();
    while (running > 0) {
        AsyncHeader h;
        int tag = TAG_GRAD;
        int src = comm_recv(&r->comm, &h, sizeof h, -1, &tag);
        tag = TAG_GRAD;
        comm_recv(&r->comm, r->m.grads, sizeof(float) * r->m.layout.total, src, &tag);
        // between steps, as run_loop: signals, the control file, a checkpoint or evaluation asked for
        int signalled = o->control_requested && *o->control_requested;
        if (signalled) *o->control_requested = 0;
        if (run_read_control(r, signalled, err)) return -1;
        if (o->stop_requested && *o->stop_requested) r->want_stop = 1;
        if (r->want_checkpoint && !r->want_stop) {
            if (run_save_checkpoint(r, "requested", err)) return -1;
            r->want_checkpoint = 0;
        }
        if (r->have_val && r->want_eval) {
            if (run_eval(r, err)) return -1;
            r->want_eval = 0;
        }
        if (r->st.step >= t->steps || r->want_stop) {  // this worker is done
            comm_send(&r->comm, &h, sizeof h, src, TAG_STOP);
            running--;
            continue;
        }
        int stale = (int)(version - (long)h.version);
        if (stale > bound) {
            dropped++;
        } else {
            KilnMetric extra[] = {{"staleness", stale}, {"stale_dropped", (double)dropped}};
            int rc = run_apply_step(r, (int)h.micro, h.loss, t_prev, extra, 2, err);
            if (rc < 0) return -1;
            t_prev = kiln_now();
            if (rc == 0) {
                version++;
                if (run_after_step(r, err)) return -1;
            }
        }
        async_send_weights(r, src, version);
        run_heartbeat(r, 0);
    }
    if (r->want_stop) {
        if (run_save_checkpoint(r, "stop", err)) return -1;
        run_say(r, "stopped at step %d with a checkpoint; resume with --resume latest\n", r->st.step);
        return run_event(r, "stop", NULL, err) ? -1 : KILN_TRAIN_STOPPED;
    }
    if (run_save_checkpoint(r, "final", err)) return -1;
    run_say(r, "finished: %d steps, %.1f s of training; %ld stale gradients dropped\n", r->st.step,
        r->st.train_seconds, dropped);
    return run_event(r, "end", NULL, err);
}

int run_async_worker(Run *r, KilnErr *err) {
    int workers = r->comm.size - 1, me = r->comm.rank - 1;
    int B = r->live.batch_size, T = r->live.seq_len, micro = r->live.grad_accum;
    // a resumed run goes on after the batches the server has applied
    long done = (long)(r->st.tokens_seen / ((long long)micro * B * T)), next = done + (me - done % workers +
                                                                                       workers) % workers;
    long at = 0;  // global batches read so far (the loader starts at the data's beginning)
    for (;;) {
        AsyncHeader h;
        int tag = -1;
        comm_recv(&r->comm, &h, sizeof h, 0, &tag);
        if (tag == TAG_STOP) return 0;
        tag = TAG_WEIGHTS;
        comm_recv(&r->comm, r->m.params, sizeof(float) * r->m.layout.total, 0, &tag);
        for (; at < next; at++)  // the other workers' batches
            for (int i = 0; i < micro; i++) loader_next(&r->train, r->tok, r->tgt);
        gpt_zero_grad(&r->m);
        double loss = 0;
        for (int i = 0; i < micro; i++) {
            loader_next(&r->train, r->tok, r->tgt);
            uint64_t seed = kiln_hash64(r->cfg->train.seed ^ kiln_hash64(((uint64_t)next << 16) + i));
            if (gpt_forward(&r->m, r->tok, r->tgt, B, T, 1.0f / micro, seed, err)) return -1;
            gpt_backward(&r->m);
            loss += r->m.loss / micro;
        }
        at++;
        AsyncHeader g = {h.version, loss, (double)next, (double)micro};
        comm_send(&r->comm, &g, sizeof g, 0, TAG_GRAD);
        comm_send(&r->comm, r->m.grads, sizeof(float) * r->m.layout.total, 0, TAG_GRAD);
        next += workers;
    }
}
