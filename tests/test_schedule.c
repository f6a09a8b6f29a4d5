// test_schedule.c: learning-rate schedules at hand-computed points, and the
// config errors for schedules that cannot run, and the batch-size ramp.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kiln/config.h"
#include "train/optim.h"
#include "train/schedule.h"

#include <math.h>
#include <string.h>

static KilnTrainConfig base(KilnLrSchedule s) {
    KilnTrainConfig t;
    memset(&t, 0, sizeof t);
    t.lr = 1.0f, t.min_lr = 0.1f, t.warmup_steps = 9, t.decay_steps = 109, t.steps = 120;
    t.schedule = s, t.step_every = 25, t.step_factor = 0.5f, t.wsd_decay_frac = 0.2f;
    return t;
}

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) < 1e-6)

static void test_warmup_and_floor(void **st) {
    (void)st;
    for (int s = KILN_LR_COSINE; s <= KILN_LR_CONSTANT; s++) {
        KilnTrainConfig t = base((KilnLrSchedule)s);
        NEAR(lr_at(&t, 0), 0.1);  // (step+1)/(warmup+1)
        NEAR(lr_at(&t, 4), 0.5);
        NEAR(lr_at(&t, 9), 1.0);  // first step after warmup: the peak
        for (int k = 0; k < 400; k++) assert_true(lr_at(&t, k) >= t.min_lr - 1e-7f);
    }
}

static void test_shapes(void **st) {
    (void)st;
    KilnTrainConfig t = base(KILN_LR_COSINE);  // decay over steps 9..109 (100 steps)
    NEAR(lr_at(&t, 59), 0.55);                  // halfway: min + (lr-min)/2
    NEAR(lr_at(&t, 34), 0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 0.25)));
    NEAR(lr_at(&t, 109), 0.1);
    NEAR(lr_at(&t, 115), 0.1);
    t = base(KILN_LR_LINEAR);
    NEAR(lr_at(&t, 59), 0.55);
    NEAR(lr_at(&t, 89), 1.0 - 0.8 * 0.9);
    t = base(KILN_LR_STEP);
    NEAR(lr_at(&t, 33), 1.0);  // 24 steps after warmup
    NEAR(lr_at(&t, 34), 0.5);
    NEAR(lr_at(&t, 59), 0.25);
    NEAR(lr_at(&t, 109), 0.1);  // 0.0625 is under the floor
    t = base(KILN_LR_INV_SQRT);
    NEAR(lr_at(&t, 9), 1.0);
    NEAR(lr_at(&t, 36), sqrt(9.0 / 36.0));  // lr * sqrt(W/(step-w+W))
    t = base(KILN_LR_WSD);  // stable until 80% of the decay span, then linear
    NEAR(lr_at(&t, 89), 1.0);
    NEAR(lr_at(&t, 99), 0.55);
    NEAR(lr_at(&t, 109), 0.1);
    t = base(KILN_LR_CONSTANT);
    NEAR(lr_at(&t, 100), 1.0);
}

// A resumed run given more steps (issue 12): the planned schedule is unchanged
// up to extend_from, then the lr holds at extend_lr (constant), or holds and
// decays the extension's last wsd_decay_frac linearly to min_lr (decay).
static void test_extension(void **st) {
    (void)st;
    KilnTrainConfig t = base(KILN_LR_COSINE);
    float planned = lr_at(&t, 100);
    t.steps = 200, t.extend_from = 120, t.extend_lr = 0.3f;
    NEAR(lr_at(&t, 100), planned);  // before the extension: as planned
    NEAR(lr_at(&t, 120), 0.3);
    NEAR(lr_at(&t, 199), 0.3);
    t.extend = KILN_EXTEND_DECAY, t.min_lr = 0.01f;  // 80 steps: flat for 64, then down
    NEAR(lr_at(&t, 184), 0.3);
    NEAR(lr_at(&t, 192), 0.3 - 0.5 * (0.3 - 0.01));
    assert_true(lr_at(&t, 199) < lr_at(&t, 198) && lr_at(&t, 199) >= 0.01f);
}

static void test_config_errors(void **st) {
    (void)st;
    const char *bad[][2] = {
        {"train.warmup_steps", "500"},  // with steps 100: warmup exceeds the run
        {"train.min_lr", "0.5"},        // floor above the peak
        {"train.step_factor", "0"},
        {"train.schedule", "exponential"},
        {"train.batch_ramp_start", "100"},  // without batch_ramp_tokens
        {"train.spike_window", "1"},
        {"train.spike_lr_factor", "2"},
        {"train.keep_last", "-1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        KilnConfig c;
        KilnErr err;
        kiln_config_defaults(&c);
        c.train.steps = 100;
        c.train.lr = 0.1f;
        int rc = kiln_config_set(&c, bad[i][0], bad[i][1], "test", &err);
        if (!rc) rc = kiln_config_finalize(&c, &err);
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err.msg, strchr(bad[i][0], '.') + 1));
    }
    KilnConfig c;
    KilnErr err;
    // a 20-step trial of a config with a long warmup: the message says how to fix it (issue 12)
    kiln_config_defaults(&c);
    c.train.steps = 20;
    c.train.warmup_steps = 100;
    assert_int_equal(kiln_config_finalize(&c, &err), -1);
    assert_non_null(strstr(err.msg, "--set train.warmup_steps=2"));
    kiln_config_defaults(&c);
    assert_int_equal(kiln_config_set(&c, "train.schedule", "wsd", "test", &err), 0);
    assert_int_equal(c.train.schedule, KILN_LR_WSD);
}

static void test_batch_ramp(void **st) {
    (void)st;
    KilnTrainConfig t;
    memset(&t, 0, sizeof t);
    t.batch_size = 2, t.seq_len = 8, t.grad_accum = 8;  // micro-batch 16 tokens, target 128
    assert_int_equal(batch_micro_steps(&t, 0), 8);      // no ramp
    t.batch_ramp_start = 20, t.batch_ramp_tokens = 1000;  // 20 tokens -> 2 micro-batches
    assert_int_equal(batch_micro_steps(&t, 0), 2);
    assert_int_equal(batch_micro_steps(&t, 166), 2);  // 6*166/1000 = 0.996
    assert_int_equal(batch_micro_steps(&t, 167), 3);  // 6*167/1000 = 1.002
    assert_int_equal(batch_micro_steps(&t, 500), 5);
    assert_int_equal(batch_micro_steps(&t, 999), 7);
    assert_int_equal(batch_micro_steps(&t, 1000), 8);
    assert_int_equal(batch_micro_steps(&t, 1 << 30), 8);
    t.batch_ramp = KILN_RAMP_STEP, t.batch_ramp_stages = 3;  // 2, then 4 from 334 tokens, 6 from 667, 8 at 1000
    assert_int_equal(batch_micro_steps(&t, 333), 2);
    assert_int_equal(batch_micro_steps(&t, 334), 4);
    assert_int_equal(batch_micro_steps(&t, 666), 4);
    assert_int_equal(batch_micro_steps(&t, 667), 6);
    assert_int_equal(batch_micro_steps(&t, 999), 6);
    assert_int_equal(batch_micro_steps(&t, 1000), 8);
    t.batch_ramp_start = 1, t.batch_ramp = KILN_RAMP_LINEAR;  // less than a micro-batch: one
    assert_int_equal(batch_micro_steps(&t, 0), 1);
    t.batch_ramp_start = 100000;  // more than the target: the target
    assert_int_equal(batch_micro_steps(&t, 0), 8);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warmup_and_floor),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_extension),
        cmocka_unit_test(test_batch_ramp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
