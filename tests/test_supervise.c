// test_supervise.c: the supervisor's parts: heartbeat parsing (core/rundir.c, with fuzzing),
// back-off, the --resume rewrite of a restart, and supervise_run's errors and
// outcomes with /bin/sh children. The end-to-end behaviour with a fake trainer
// is in test_supervise.py.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

#include "core/rundir.h"
#include "kiln/supervise.h"

#include <stdlib.h>
#include <string.h>

static int parse(const char *s, KilnHeartbeat *hb) { return rundir_parse_heartbeat(s, strlen(s), hb); }

static void test_heartbeat_parse(void **st) {
    (void)st;
    KilnHeartbeat hb;
    assert_int_equal(parse("123 45 1732870000.5\n", &hb), 0);
    assert_int_equal(hb.pid, 123);
    assert_int_equal(hb.step, 45);
    assert_true(hb.time == 1732870000.5);
    assert_int_equal(parse("7 0 1732870000", &hb), 0);
    assert_int_equal(hb.step, 0);
    const char *bad[] = {"", "\n", "123 45", "123 45 ", "a 4 5", "1 b 5", "1 4 x", "-1 4 5", "1 -4 5", "0 4 5",
                         "1 4 -5", "+1 4 5", " 1 4 5", "1  4 5", "1 4  5", "1 4 5 6", "1 4 5x", "1 4 nan",
                         "1 4 inf", "99999999999999999999 1 1", "1 99999999999999999999 1", "1 4 1e400",
                         "1\t4\t5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &hb) != -1) fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(rundir_parse_heartbeat("1 2 3\0", 6, &hb), -1);  // NUL inside
    char big[200];
    memset(big, '1', sizeof big);
    big[1] = ' ', big[3] = ' ';
    assert_int_equal(rundir_parse_heartbeat(big, sizeof big, &hb), -1);  // longer than any heartbeat
}

static int read_heartbeat(const char *path, void *ctx) {
    char *data;
    size_t len;
    KilnHeartbeat hb;
    if (kiln_read_file(path, &data, &len, NULL)) return -1;
    int rc = rundir_parse_heartbeat(data, len, &hb);
    if (!rc && (hb.pid <= 0 || hb.step < 0)) fail_msg("accepted a negative field");
    free(data);
    (*(int *)ctx) += !rc;
    return rc;
}

static void test_heartbeat_fuzz(void **st) {
    (void)st;
    const char hb[] = "4242 1234 1732870000.123\n";
    int accepted = 0;
    int refused = fuzz_mutants(hb, sizeof hb - 1, sizeof hb - 1, tmp("hb"), 2000, 5, read_heartbeat, &accepted);
    assert_true(refused > 100);  // most mutants are junk...
    assert_true(accepted > 10);  // ...but digit flips and truncations still parse
}

static void test_backoff(void **st) {
    (void)st;
    KilnSuperviseOptions o;
    supervise_defaults(&o);
    assert_true(supervise_backoff(&o, 0) == 5);
    assert_true(supervise_backoff(&o, 1) == 10);
    assert_true(supervise_backoff(&o, 5) == 160);
    assert_true(supervise_backoff(&o, 6) == 300);  // 320, capped
    assert_true(supervise_backoff(&o, 1000000) == 300);
    o.backoff_initial_s = 0;
    assert_true(supervise_backoff(&o, 3) == 0);
}

static void expect_args(char *const in[], const char *const want[]) {
    const char *out[16];
    int n = supervise_resume_args(in, out, 16);
    int k = 0;
    while (want[k]) k++;
    assert_int_equal(n, k);
    for (int i = 0; i < k; i++) assert_string_equal(out[i], want[i]);
    assert_null(out[k]);
}

static void test_resume_args(void **st) {
    (void)st;
    char *a[] = {"kiln", "pretrain", "c.yaml", NULL};
    expect_args(a, (const char *[]){"kiln", "pretrain", "c.yaml", "--resume", "latest", NULL});
    char *b[] = {"kiln", "pretrain", "--resume", "run/ckpt-00000100", "c.yaml", NULL};
    expect_args(b, (const char *[]){"kiln", "pretrain", "--resume", "latest", "c.yaml", NULL});
    char *c[] = {"kiln", "pretrain", "c.yaml", "--resume=old", NULL};
    expect_args(c, (const char *[]){"kiln", "pretrain", "c.yaml", "--resume", "latest", NULL});
    char *d[] = {"kiln", "pretrain", "c.yaml", "--resume", NULL};  // no value: given one
    expect_args(d, (const char *[]){"kiln", "pretrain", "c.yaml", "--resume", "latest", NULL});
    char *e[] = {"kiln", "--resume", "latest", NULL};  // already there: unchanged
    expect_args(e, (const char *[]){"kiln", "--resume", "latest", NULL});
    const char *out[4];
    assert_int_equal(supervise_resume_args(a, out, 4), -1);  // 5 + NULL do not fit
}

static KilnSuperviseOptions quiet_options(const char *run) {
    KilnSuperviseOptions o;
    supervise_defaults(&o);
    snprintf(o.run_dir, sizeof o.run_dir, "%s", run);
    o.backoff_initial_s = 0.01, o.max_restarts = 1;
    return o;
}

static void test_run_errors(void **st) {
    (void)st;
    KilnSuperviseOptions o = quiet_options(tmp("run_err"));
    KilnErr err;
    int code = -5;
    char *missing[] = {"/nonexistent/trainer", NULL};
    assert_int_equal(supervise_run(&o, missing, &code, &err), -1);
    assert_non_null(strstr(err.msg, "cannot run /nonexistent/trainer"));
    assert_int_equal(code, 1);
    char *ok[] = {"/bin/sh", "-c", "exit 0", NULL};
    o.heartbeat_timeout_s = 0;
    assert_int_equal(supervise_run(&o, ok, &code, &err), -1);
    o = quiet_options(tmp("afile"));
    write_bytes(o.run_dir, "x", 1);  // RUN is a file
    assert_int_equal(supervise_run(&o, ok, &code, &err), -1);
    o.run_dir[0] = 0;
    assert_int_equal(supervise_run(&o, ok, &code, &err), -1);
}

static void test_run_outcomes(void **st) {
    (void)st;
    KilnSuperviseOptions o = quiet_options(tmp("run_ok"));
    KilnErr err;
    int code = -5;
    char *ok[] = {"/bin/sh", "-c", "exit 0", NULL};
    assert_int_equal(supervise_run(&o, ok, &code, &err), 0);
    assert_int_equal(code, 0);
    char *stop[] = {"/bin/sh", "-c", "exit 75", NULL};
    assert_int_equal(supervise_run(&o, stop, &code, &err), 0);
    assert_int_equal(code, 75);
    // killed by SIGKILL each time: one restart, then the budget of 1 is spent
    o = quiet_options(tmp("run_kill"));
    char *killed[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
    assert_int_equal(supervise_run(&o, killed, &code, &err), -1);
    assert_int_equal(code, 1);
    assert_non_null(strstr(err.msg, "gave up"));
    char path[1200], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/incidents.jsonl", o.run_dir);
    assert_int_equal(kiln_read_file(path, &text, &len, &err), 0);
    const char *kinds[] = {"\"kind\":\"crash\"", "\"kind\":\"restart\"", "\"kind\":\"crash\"", "\"kind\":\"giveup\""};
    const char *p = text;
    for (int i = 0; i < 4; i++) {
        p = strstr(p, kinds[i]);
        if (!p) fail_msg("incident %d (%s) missing in %s", i, kinds[i], text);
        p = strchr(p, '\n');
        assert_non_null(p);
    }
    assert_non_null(strstr(text, "\"signal\":9"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat_parse), cmocka_unit_test(test_heartbeat_fuzz),
        cmocka_unit_test(test_backoff),         cmocka_unit_test(test_resume_args),
        cmocka_unit_test(test_run_errors),      cmocka_unit_test(test_run_outcomes),
    };
    return TEST_RUN("supervise", tests);
}
