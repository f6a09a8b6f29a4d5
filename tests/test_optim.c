// test_optim.c: optimizer_step's rules that torch parity (tests/parity/check_optim.py)
// does not isolate: the L1/L2 penalty gradient against finite differences of
// penalty_value, which tensors it touches, SGD's first step, Lion's step size,
// state reset, the adamw_step wrapper, and the config keys and their errors.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kiln/config.h"
#include "kiln/model.h"
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// A small model with every parameter random (norms around 1) and zero gradients.
static void make_model(KilnModel *m, KilnConfig *cfg, uint64_t seed) {
    kiln_config_defaults(cfg);
    cfg->model.vocab_size = 32, cfg->model.block_size = 8, cfg->model.n_layer = 2;
    cfg->model.n_head = 2, cfg->model.n_embd = 16;
    KilnErr err;
    assert_int_equal(kiln_config_finalize(cfg, &err), 0);
    assert_int_equal(gpt_create(m, &cfg->model, 1, 4, &err), 0);
    KilnRng rng;
    kiln_rng_seed(&rng, seed);
    for (long i = 0; i < m->layout.total; i++) m->params[i] = 0.5f * kiln_rng_normal(&rng);
    gpt_zero_grad(m);
    optimizer_reset_state(m);
}

static int decayed(const KilnModel *m, const KilnTrainConfig *t, int id) {
    return m->layout.decay[id] || (t->decay_embeddings && (id == PT_WTE || id == PT_WPE));
}

// optimizer_step with plain SGD, lr 1, no decay and zero gradients moves each weight by
// minus its penalty gradient; that must equal the central difference of penalty_value.
static void test_penalty_gradient_vs_finite_differences(void **st) {
    (void)st;
    for (int emb = 0; emb <= 1; emb++) {
        KilnModel m;
        KilnConfig cfg;
        make_model(&m, &cfg, 11 + emb);
        KilnTrainConfig t = cfg.train;
        t.optimizer = KILN_OPT_SGD, t.momentum = 0, t.weight_decay = 0, t.l1 = 0.3f, t.l2 = 0.7f;
        t.decay_embeddings = emb;
        float *before = malloc(sizeof(float) * m.layout.total);
        memcpy(before, m.params, sizeof(float) * m.layout.total);
        optimizer_step(&m, &t, 1.0f, 1, 1.0f);
        float *after = malloc(sizeof(float) * m.layout.total);
        memcpy(after, m.params, sizeof(float) * m.layout.total);
        memcpy(m.params, before, sizeof(float) * m.layout.total);
        int checked = 0;
        for (int id = 0; id < PT_COUNT; id++) {
            long n = m.layout.size[id], off = m.layout.offset[id];
            for (long k = 0; k < n; k += 1 + n / 7) {
                long i = off + k;
                double grad = (double)before[i] - after[i];
                if (!decayed(&m, &t, id)) {  // norms, biases (and embeddings unless decayed): untouched
                    assert_true(grad == 0.0);
                    continue;
                }
                float *p = m.params, h = 1e-2f, x = p[i];
                if (fabsf(x) <= h) continue;  // |w| is smooth away from 0 only
                p[i] = x + h;
                double up = penalty_value(&m, &t), xp = p[i];
                p[i] = x - h;
                double down = penalty_value(&m, &t), xm = p[i];
                p[i] = x;
                double fd = (up - down) / (xp - xm);
                assert_true(fabs(fd - grad) < 1e-5 * (1 + fabs(fd)));
                assert_true(fabs(grad - (0.3 * (x > 0 ? 1 : -1) + 0.7 * x)) < 1e-6);
                checked++;
            }
        }
        assert_true(checked >= 10);
        // the value itself: a sum over the decayed tensors only
        double abs_sum = 0, sq = 0;
        for (int id = 0; id < PT_COUNT; id++) {
            if (!decayed(&m, &t, id)) continue;
            for (long k = 0; k < m.layout.size[id]; k++) {
                double w = m.params[m.layout.offset[id] + k];
                abs_sum += fabs(w), sq += w * w;
            }
        }
        assert_true(fabs(penalty_value(&m, &t) - ((double)t.l1 * abs_sum + 0.5 * (double)t.l2 * sq)) < 1e-9 * abs_sum);
        t.l1 = t.l2 = 0;
        assert_true(penalty_value(&m, &t) == 0.0);
        free(before);
        free(after);
        gpt_destroy(&m);
    }
}

// torch.optim.SGD: the first step's buffer is the gradient; then buf = mu*buf + g.
// Weight decay is coupled (added to the gradient) and only on decayed tensors.
static void test_sgd_momentum_and_reset(void **st) {
    (void)st;
    KilnModel m;
    KilnConfig cfg;
    make_model(&m, &cfg, 3);
    KilnTrainConfig t = cfg.train;
    t.optimizer = KILN_OPT_SGD, t.momentum = 0.9f, t.weight_decay = 0.1f;
    long q = m.layout.offset[PT_QKVW] + 5, b = m.layout.offset[PT_LN1B] + 2;  // decayed / not
    float wq = m.params[q], wb = m.params[b];
    m.grads[q] = 2.0f, m.grads[b] = -1.0f;
    optimizer_step(&m, &t, 0.5f, 1, 1.0f);
    float gq = 2.0f + 0.1f * wq;
    assert_true(fabsf(m.params[q] - (wq - 0.5f * gq)) < 1e-6f);
    assert_true(fabsf(m.params[b] - (wb + 0.5f)) < 1e-6f);
    float wq1 = m.params[q], wb1 = m.params[b];
    optimizer_step(&m, &t, 0.5f, 2, 0.5f);  // grad_scale halves the gradient
    float gq2 = 1.0f + 0.1f * wq1;
    assert_true(fabsf(m.params[q] - (wq1 - 0.5f * (0.9f * gq + gq2))) < 1e-6f);
    assert_true(fabsf(m.params[b] - (wb1 - 0.5f * (0.9f * -1.0f - 0.5f))) < 1e-6f);
    optimizer_reset_state(&m);
    for (long i = 0; i < m.layout.total; i++) assert_true(m.m[i] == 0.0f && m.v[i] == 0.0f);
    gpt_destroy(&m);
}

// Every optimizer says when its update overflowed a weight or moment (the
// trainer then rolls back instead of training on or checkpointing it).
static void test_update_reports_overflow(void **st) {
    (void)st;
    const int opts[] = {KILN_OPT_ADAMW, KILN_OPT_SGD, KILN_OPT_LION};
    for (int k = 0; k < 3; k++) {
        KilnModel m;
        KilnConfig cfg;
        make_model(&m, &cfg, 3);
        KilnTrainConfig t = cfg.train;
        t.optimizer = opts[k], t.momentum = 0.9f, t.weight_decay = 0.0f;
        for (long i = 0; i < m.layout.total; i++) m.grads[i] = 1e-3f;
        assert_int_equal(optimizer_step(&m, &t, 1e-3f, 1, 1.0f), 1);
        long q = m.layout.offset[PT_QKVW] + 5;
        m.grads[q] = 3e38f;  // AdamW: v = inf; SGD: p = -3e38 - 1e38 * 3e38; Lion: p = -3e38 - 1e38
        m.params[q] = -3e38f;
        assert_int_equal(optimizer_step(&m, &t, 1e38f, 2, 1.0f), 0);
        gpt_destroy(&m);
    }
}

// Lion moves every weight by exactly lr (no decay), AdamW's first step by ~lr.
static void test_lion_and_adamw_step_size(void **st) {
    (void)st;
    KilnModel m;
    KilnConfig cfg;
    make_model(&m, &cfg, 5);
    KilnRng rng;
    kiln_rng_seed(&rng, 9);
    for (long i = 0; i < m.layout.total; i++) m.grads[i] = kiln_rng_normal(&rng);
    float *before = malloc(sizeof(float) * m.layout.total);
    memcpy(before, m.params, sizeof(float) * m.layout.total);
    KilnTrainConfig t = cfg.train;
    t.optimizer = KILN_OPT_LION, t.weight_decay = 0;
    optimizer_step(&m, &t, 0.01f, 1, 1.0f);
    for (int id = 0; id < PT_COUNT; id++) {
        for (long k = 0; k < m.layout.size[id]; k++) {
            long i = m.layout.offset[id] + k;
            float d = before[i] - m.params[i];
            assert_true(fabsf(fabsf(d) - 0.01f) < 1e-6f);
            assert_true((d > 0) == (m.grads[i] > 0));  // first step: sign of the gradient
            assert_true(fabsf(m.m[i] - (1 - t.beta2) * m.grads[i]) < 1e-6f);
        }
    }
    // adamw_step is AdamW whatever t.optimizer says, and equals optimizer_step(adamw)
    float *a = malloc(sizeof(float) * m.layout.total);
    memcpy(m.params, before, sizeof(float) * m.layout.total);
    optimizer_reset_state(&m);
    adamw_step(&m, &t, 0.01f, 1, 1.0f);
    memcpy(a, m.params, sizeof(float) * m.layout.total);
    memcpy(m.params, before, sizeof(float) * m.layout.total);
    optimizer_reset_state(&m);
    t.optimizer = KILN_OPT_ADAMW;
    optimizer_step(&m, &t, 0.01f, 1, 1.0f);
    assert_memory_equal(a, m.params, sizeof(float) * m.layout.total);
    long q = m.layout.offset[PT_FCW];
    assert_true(fabsf(before[q] * (1 - 0.01f * t.weight_decay) - m.params[q]) > 0.0099f);
    free(a);
    free(before);
    gpt_destroy(&m);
}

static void test_config_keys(void **st) {
    (void)st;
    KilnConfig c;
    KilnErr err;
    kiln_config_defaults(&c);
    assert_int_equal(c.train.optimizer, KILN_OPT_ADAMW);
    assert_int_equal(c.model.init, KILN_INIT_GPT2);
    assert_true(c.train.momentum == 0.9f && !c.train.nesterov && c.train.l1 == 0 && c.train.l2 == 0);
    const char *good[][2] = {{"train.optimizer", "lion"}, {"train.momentum", "0.5"}, {"train.nesterov", "true"},
                             {"train.l1", "1e-5"},        {"train.l2", "0.01"},      {"model.init", "tfixup"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(kiln_config_set(&c, good[i][0], good[i][1], "test", &err), 0);
    assert_int_equal(kiln_config_finalize(&c, &err), 0);
    assert_int_equal(c.train.optimizer, KILN_OPT_LION);
    assert_int_equal(c.model.init, KILN_INIT_TFIXUP);
    assert_true(c.train.l2 == 0.01f && c.train.momentum == 0.5f && c.train.nesterov);
    const char *bad[][4] = {
        {"train.optimizer", "adam", NULL, NULL},  // unknown name: the error lists the choices
        {"model.init", "xavier", NULL, NULL},
        {"train.momentum", "1", NULL, NULL},
        {"train.l1", "-0.1", NULL, NULL},
        {"train.nesterov", "true", "train.momentum", "0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kiln_config_defaults(&c);
        int rc = kiln_config_set(&c, bad[i][0], bad[i][1], "test", &err);
        if (!rc && bad[i][2]) rc = kiln_config_set(&c, bad[i][2], bad[i][3], "test", &err);
        if (!rc) rc = kiln_config_finalize(&c, &err);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err.msg, strchr(bad[i][0], '.') + 1));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_penalty_gradient_vs_finite_differences),
        cmocka_unit_test(test_sgd_momentum_and_reset),
        cmocka_unit_test(test_lion_and_adamw_step_size),
        cmocka_unit_test(test_update_reports_overflow),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
