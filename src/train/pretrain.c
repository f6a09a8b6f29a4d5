// pretrain.c: the training loop.
#include "kiln/train.h"

#include "kiln/optim.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int evaluate_loss(KilnModel *m, KilnLoader *val, int max_batches, double *loss, KilnErr *err) {
    loader_reset(val);
    int B = val->B, T = val->T;
    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    if (!tok || !tgt) {
        free(tok);
        free(tgt);
        return kiln_fail(err, "out of memory");
    }
    double total = 0.0;
    long rows_total = 0;
    int rc = 0;
    for (int b = 0; max_batches == 0 || b < max_batches; b++) {
        int rows = loader_next_eval(val, tok, tgt);
        if (rows == 0) break;
        if ((rc = gpt_forward(m, tok, tgt, rows, T, 0.0f, 0, err))) break;
        total += m->loss * rows;
        rows_total += rows;
    }
    free(tok);
    free(tgt);
    if (rc) return rc;
    if (rows_total == 0) return kiln_fail(err, "validation split is empty");
    *loss = total / (double)rows_total;
    return 0;
}

static void log_line(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(FILE *f, const char *fmt, ...) {
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fflush(f);
}

int pretrain_run(const KilnConfig *cfg, const KilnPretrainOptions *opt, KilnErr *err) {
    const KilnTrainConfig *t = &cfg->train;
    FILE *log = opt->log;
    if (t->threads > 0) omp_set_num_threads(t->threads);
    int B = t->batch_size, T = t->seq_len;

    KilnLoader train, val;
    int have_val = cfg->data.val[0] != 0;
    if (!cfg->data.train[0]) return kiln_fail(err, "data.train is not set: no training shards");
    if (loader_open(&train, cfg->data.train, B, T, cfg->model.vocab_size, cfg->data.shuffle,
                    kiln_hash64(t->seed + 1), err))
        return kiln_wrap(err, "data.train");
    if (have_val && loader_open(&val, cfg->data.val, B, T, cfg->model.vocab_size, 0, 0, err)) {
        loader_close(&train);
        return kiln_wrap(err, "data.val");
    }
    KilnModel m;
    if (gpt_create(&m, &cfg->model, B, T, err)) {
        loader_close(&train);
        if (have_val) loader_close(&val);
        return -1;
    }
    KilnTrainState st = {0};
    st.val_loss = NAN;
    int rc = 0;
    if (opt->resume) {
        KilnConfig saved;
        rc = checkpoint_read_state(opt->resume, &saved, &st, err);
        if (rc == 0) rc = checkpoint_load(opt->resume, &m, 1, err);
        if (rc == 0) rc = loader_seek(&train, st.loader_epoch, st.loader_shard, st.loader_pos, err);
        if (rc) {
            kiln_wrap(err, "resume from %s", opt->resume);
        } else {
            log_line(log, "resumed from %s at step %d\n", opt->resume, st.step);
        }
    } else {
        gpt_init_weights(&m, t->seed);
    }
    long tokens_per_step = (long)B * T * t->grad_accum;
    log_line(log, "model: %ld parameters, %d layers, %d heads (%d kv), width %d, vocab %d\n",
             gpt_num_params(&m), cfg->model.n_layer, cfg->model.n_head, cfg->model.n_kv_head,
             cfg->model.n_embd, cfg->model.vocab_size);
    log_line(log, "data: %ld training tokens in %d shard(s)%s; %ld tokens per step; %d threads\n",
             loader_total_tokens(&train), train.nshards, have_val ? "" : ", no validation split",
             tokens_per_step, omp_get_max_threads());

    int32_t *tok = malloc(sizeof(int32_t) * B * T), *tgt = malloc(sizeof(int32_t) * B * T);
    if (!tok || !tgt) rc = kiln_fail(err, "out of memory");
    double t_start = kiln_now(), t_log = t_start;
    int steps_since_log = 0;
    while (rc == 0 && st.step < t->steps) {
        int step = st.step;
        if (have_val && t->eval_every > 0 && step > 0 && step % t->eval_every == 0) {
            double vl;
            if ((rc = evaluate_loss(&m, &val, t->eval_batches, &vl, err))) break;
            st.val_loss = (float)vl;
            log_line(log, "step %5d | val loss %.4f\n", step, vl);
        }
        float lr = lr_at(t, step);
        gpt_zero_grad(&m);
        double loss = 0.0;
        for (int micro = 0; micro < t->grad_accum && rc == 0; micro++) {
            loader_next(&train, tok, tgt);
            uint64_t seed = kiln_hash64(t->seed ^ kiln_hash64(((uint64_t)step << 16) + micro));
            rc = gpt_forward(&m, tok, tgt, B, T, 1.0f / t->grad_accum, seed, err);
            if (rc == 0) {
                gpt_backward(&m);
                loss += m.loss / t->grad_accum;
            }
        }
        if (rc) break;
        if (!isfinite(loss)) {
            rc = kiln_fail(err, "loss is %f at step %d: training diverged (lower train.lr?)", loss, step + 1);
            break;
        }
        double norm = grad_global_norm(&m);
        adamw_step(&m, t, lr, step + 1, grad_clip_coef(norm, t->grad_clip));
        st.step++;
        st.tokens_seen += tokens_per_step;
        st.loader_shard = train.shard;
        st.loader_pos = train.pos;
        st.loader_epoch = train.epoch;
        steps_since_log++;
        if (st.step % t->log_every == 0 || st.step == t->steps) {
            double now = kiln_now(), dt = (now - t_log) / steps_since_log;
            int eta = (int)((t->steps - st.step) * dt + 0.5);
            log_line(log, "step %5d/%d | loss %.4f | lr %.2e | norm %.4f | %.1f ms | %.0f tok/s | eta %dm%02ds\n",
                     st.step, t->steps, loss, lr, norm, dt * 1e3, tokens_per_step / dt, eta / 60, eta % 60);
            t_log = now;
            steps_since_log = 0;
        }
        if (t->checkpoint_every > 0 && st.step % t->checkpoint_every == 0 && st.step < t->steps) {
            char path[1024];
            if ((rc = checkpoint_save(cfg->out_dir, cfg, &m, &st, path, err))) break;
            log_line(log, "checkpoint %s\n", path);
        }
    }
    if (rc == 0 && have_val) {
        double vl;
        rc = evaluate_loss(&m, &val, t->eval_batches, &vl, err);
        if (rc == 0) {
            st.val_loss = (float)vl;
            log_line(log, "step %5d | val loss %.4f\n", st.step, vl);
        }
    }
    if (rc == 0) {
        char path[1024];
        rc = checkpoint_save(cfg->out_dir, cfg, &m, &st, path, err);
        if (rc == 0)
            log_line(log, "checkpoint %s (%.1f s of training)\n", path, kiln_now() - t_start);
    }
    free(tok);
    free(tgt);
    gpt_destroy(&m);
    loader_close(&train);
    if (have_val) loader_close(&val);
    return rc;
}
