// test_control.c: the live-control file parser (every key, its errors with
// file:line, and a fuzz) and the spike guard's judgement (z-scores at their
// boundary, the std floor, NaN/Inf, the window).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "run/control.h"
#include "kiln/guard.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, KilnControl *c, KilnErr *err) {
    return control_parse(text, strlen(text), "RUN/control", c, err);
}

static void test_control_keys(void **st) {
    (void)st;
    KilnControl c;
    KilnErr err;
    const char *text = "# a comment line\r\n"
                       "lr_mult: 0.5   # trailing comment\n"
                       "  weight_decay :0.05\n"
                       "grad_clip: 2\n"
                       "\n"
                       "optimizer: sgd\n"
                       "activation: gelu_erf\n"
                       "checkpoint: now\n"
                       "eval: now\n"
                       "stop: true";  // no final newline
    assert_int_equal(parse(text, &c, &err), 0);
    assert_true(c.set_lr_mult && c.lr_mult == 0.5f);
    assert_true(c.set_weight_decay && c.weight_decay == 0.05f);
    assert_true(c.set_grad_clip && c.grad_clip == 2.0f);
    assert_true(c.set_optimizer && c.optimizer == KILN_OPT_SGD);
    assert_true(c.set_act && c.act == KILN_ACT_GELU_ERF);
    assert_true(c.checkpoint_now && c.eval_now && c.stop);
    assert_int_equal(parse("", &c, &err), 0);  // an empty file changes nothing
    assert_false(c.set_lr_mult || c.set_optimizer || c.stop);
}

static void test_control_errors(void **st) {
    (void)st;
    const char *bad[][2] = {
        {"lr_mult: 0.5\nlearning_rate: 1\n", "RUN/control:2: unknown control key 'learning_rate'"},
        {"lr_mult: 0\n", "RUN/control:1: lr_mult wants a number in (0, 1000]"},
        {"lr_mult: abc\n", "RUN/control:1: lr_mult"},
        {"lr_mult: 2000\n", "RUN/control:1: lr_mult"},
        {"weight_decay: -1\n", "RUN/control:1: weight_decay must not be negative"},
        // issue 12: every live number has a range; an absurd value is refused with file:line
        {"lr_mult: 1\nweight_decay: 1e30\n", "RUN/control:2: weight_decay must not be negative, nor above 10"},
        {"weight_decay: nan\n", "RUN/control:1: key 'train.weight_decay' wants a number"},
        {"grad_clip: 1e30\n", "RUN/control:1: grad_clip must not be negative, nor above 1e+06"},
        {"grad_clip: -0.5\n", "RUN/control:1: grad_clip must not be negative"},
        {"grad_clip: inf\n", "RUN/control:1: "},
        {"lr_mult: nan\n", "RUN/control:1: lr_mult"},
        {"optimizer: adam\n", "RUN/control:1: key 'train.optimizer' must be one of adamw, sgd, lion"},
        {"activation: swiglu\n", "swiglu changes the parameter shapes"},
        {"\n\nstop: later\n", "RUN/control:3: stop wants 'now'"},
        {"just words\n", "RUN/control:1: expected 'key: value'"},
        {"lr_mult:\n", "RUN/control:1: expected 'key: value'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        KilnControl c;
        KilnErr err;
        assert_int_equal(parse(bad[i][0], &c, &err), -1);
        if (!strstr(err.msg, bad[i][1])) fail_msg("'%s': got '%s', want '%s'", bad[i][0], err.msg, bad[i][1]);
    }
    // a NUL inside a line is an error, not a truncated key
    KilnControl c;
    KilnErr err;
    assert_int_equal(control_parse("stop: now\0x\n", 12, "RUN/control", &c, &err), -1);
    assert_non_null(strstr(err.msg, "NUL"));
}

static int read_control(const char *path, void *ctx) {
    (void)ctx;
    char *text;
    size_t len;
    KilnErr err;
    KilnControl c;
    if (kiln_read_file(path, &text, &len, &err)) return -1;
    int rc = control_parse(text, len, path, &c, &err);
    free(text);
    return rc;
}

static void test_control_fuzz(void **st) {
    (void)st;
    const char *text = "lr_mult: 0.5\nweight_decay: 0.05\ngrad_clip: 1\noptimizer: lion\nactivation: relu\n"
                       "checkpoint: now\n# done\n";
    int errors = fuzz_mutants(text, strlen(text), 64, tmp("control"), 3000, 7, read_control, NULL);
    assert_true(errors > 0 && errors < 3000);  // some mutants still parse, many do not; none crash
}

static KilnTrainConfig guard_cfg(void) {
    KilnTrainConfig t;
    memset(&t, 0, sizeof t);
    t.spike_z = 6, t.spike_grad_z = 0, t.spike_window = 4, t.spike_min_history = 3;
    return t;
}

static void test_guard(void **st) {
    (void)st;
    KilnTrainConfig t = guard_cfg();
    KilnGuardWindow *w = calloc(1, sizeof *w);
    KilnSpikeVerdict v;
    assert_true(guard_enabled(&t));
    guard_check(w, &t, NAN, 1.0, &v);  // non-finite is a spike even without history
    assert_true(v.spike && !strcmp(v.why, "loss is not finite"));
    guard_check(w, &t, 2.0, INFINITY, &v);
    assert_true(v.spike && !strcmp(v.why, "gradient norm is not finite"));
    guard_check(w, &t, 100.0, 1.0, &v);  // too little history to judge
    assert_false(v.spike);
    // window 2, 3, 4 (mean 3, population std sqrt(2/3)): z = (x - 3) / 0.8165
    guard_push(w, &t, 2.0, 1.0);
    guard_push(w, &t, 3.0, 1.0);
    guard_push(w, &t, 4.0, 1.0);
    double sd = sqrt(2.0 / 3.0);
    guard_check(w, &t, 3.0 + 6.0 * sd - 1e-6, 1.0, &v);
    assert_false(v.spike);
    assert_true(fabs(v.z_loss - (6.0 - 1e-6 / sd)) < 1e-5);
    guard_check(w, &t, 3.0 + 6.0 * sd + 1e-4, 1.0, &v);
    assert_true(v.spike && !strcmp(v.why, "loss z-score"));
    guard_check(w, &t, -100.0, 1.0, &v);  // a drop is never a spike
    assert_false(v.spike);
    // the window keeps the last 4: after 10, 10, 10, 10 the mean is 10 and the
    // std is floored at 1% of it, so 10.5 (z 5) passes and 10.7 (z 7) does not
    for (int i = 0; i < 4; i++) guard_push(w, &t, 10.0, 1.0);
    assert_int_equal(w->n, 4);
    guard_check(w, &t, 10.5, 1.0, &v);
    assert_false(v.spike);
    assert_true(fabs(v.std_loss - 0.1) < 1e-9);
    guard_check(w, &t, 10.7, 1.0, &v);
    assert_true(v.spike);
    // the gradient-norm check, on its own
    t.spike_z = 0, t.spike_grad_z = 3;
    guard_check(w, &t, 1000.0, 1.0, &v);
    assert_false(v.spike);
    guard_check(w, &t, 1.0, 1.04, &v);  // norm std floored at 0.01: z 4
    assert_true(v.spike && !strcmp(v.why, "gradient-norm z-score"));
    t.spike_grad_z = 0;
    assert_false(guard_enabled(&t));
    free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_keys), cmocka_unit_test(test_control_errors), cmocka_unit_test(test_control_fuzz),
        cmocka_unit_test(test_guard),
    };
    return TEST_RUN("control", tests);
}
