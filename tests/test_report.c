// test_report.c: `kiln report`'s page from a synthetic run directory: a chart
// per series, event markers and table, escaping, no external resources, run
// status, located errors for malformed lines, pages for runs without metrics,
// axis ticks and labels, min/max downsampling, and metrics.jsonl fuzzing.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kiln/report.h"
#include "core/utf8.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

// A run dir "<tmp>/NAME" with metrics of `steps` steps (val every 20, a spike
// event at 34 whose detail needs escaping), config (train.steps = target),
// env.json and one supervisor incident.
static const char *make_run(const char *name, int steps, int target) {
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), name);
    mkdir(dir, 0755);
    KilnBuf m = {0};
    kbuf_printf(&m, "{\"step\":0,\"time\":1000,\"event\":\"start\",\"detail\":{\"argv\":\"kiln pretrain\"}}\n");
    for (int s = 1; s <= steps; s++) {
        kbuf_printf(&m,
                    "{\"step\":%d,\"time\":%.3f,\"loss\":%.6f,\"lr\":%.9g,\"grad_norm\":%s,\"batch_tokens\":4096,"
                    "\"tokens\":%d,\"tokens_per_s\":%.1f,\"mfu\":0.3,\"ms\":80,\"custom_metric\":%d}\n",
                    s, 1000 + 0.1 * s, 3 + 5.0 / s, 6e-4 * s / steps, s == 50 ? "null" : "1.5", 4096 * s,
                    40000.0 + s, s % 7);
        if (s % 20 == 0) kbuf_printf(&m, "{\"step\":%d,\"time\":%.3f,\"val_loss\":%.6f}\n", s, 1000.05 + 0.1 * s, 3.2 + 4.0 / s);
        if (s == 34)
            kbuf_printf(&m, "{\"step\":34,\"time\":1003.4,\"event\":\"spike\",\"detail\":{\"z\":9.1,"
                            "\"doc\":\"<script>alert(1)</script> & \\\"q\\\" \xff\"}}\n");
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    write_bytes(path, m.data, m.len);
    kbuf_free(&m);
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "model:\n  n_layer: 2\n  n_embd: 64\ntrain:\n  steps: %d\n  lr: 0.0006\nout_dir: \"r\"\n",
             target);
    write_text(path, cfg);
    snprintf(path, sizeof path, "%s/env.json", dir);
    write_text(path, "{\"kiln_version\":\"0.1.0\",\"git_commit\":\"abc123def\",\"argv\":[\"kiln\",\"pretrain\",\"a b.yaml\"],"
                     "\"cpu\":{\"model\":\"Test CPU <fast>\",\"cores\":8},\"threads\":8,\"start_time\":1000}");
    snprintf(path, sizeof path, "%s/incidents.jsonl", dir);
    write_text(path, "{\"time\":1002.05,\"kind\":\"restart\",\"detail\":{\"restart\":1,\"resume\":\"latest\"}}\n"
                     "{\"time\":1003,\"kind\":\"crash\",\"detail\":{\"exit_code\":1,\"step\":25}}\n");
    return dir;
}

static char *render(const char *dir) {
    KilnBuf out = {0};
    KilnErr err;
    if (report_render(dir, &out, &err)) fail_msg("report_render: %s", err.msg);
    return out.data;
}

static void test_page(void **st) {
    (void)st;
    const char *dir = make_run("run <b>&amp;", 60, 60);
    char *h = render(dir);
    // one <svg> per series: loss (linear + log), lr, grad_norm (linear + log), tokens_per_s, batch_tokens, mfu,
    // custom_metric; not for tokens, ms (shown elsewhere)
    assert_int_equal(count(h, "<svg"), 9);
    const char *titles[] = {">Loss<", ">Learning rate<", ">Gradient norm<", ">Throughput (tokens/s)<",
                            ">Batch size (tokens)<", ">MFU (model FLOPs utilisation)<", ">custom_metric<"};
    for (size_t i = 0; i < sizeof titles / sizeof *titles; i++) assert_non_null(strstr(h, titles[i]));
    assert_null(strstr(h, ">ms<"));
    // val points with tooltips, the spike marker on every chart, the events table
    assert_int_equal(count(h, "<title>val_loss "), 2 * 3);  // linear and log loss charts
    assert_int_equal(count(h, "<g class=\"ev\"><title>step 34: spike"), 9);
    assert_non_null(strstr(h, "<title>step 20: restart (supervisor) {&quot;restart&quot;:1,"));  // by its time
    assert_non_null(strstr(h, "<title>step 25: crash (supervisor)"));  // by its detail's step
    assert_non_null(strstr(h, "\">spike</span>"));
    // escaping: the run name, the event detail, the environment
    assert_non_null(strstr(h, "<h1>run &lt;b&gt;&amp;amp;</h1>"));
    assert_null(strstr(h, "<b>"));
    assert_non_null(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; \\&quot;q\\&quot;"));
    assert_null(strstr(h, "<script"));
    assert_non_null(strstr(h, "Test CPU &lt;fast&gt;"));
    assert_true(utf8_valid(h, strlen(h)));  // the \xff in the detail became U+FFFD
    // self-contained: nothing fetched from elsewhere
    assert_null(strstr(h, "src="));
    assert_null(strstr(h, "http://"));
    assert_null(strstr(h, "https://"));
    assert_null(strstr(h, "@import"));
    for (const char *p = h; (p = strstr(p, "url(")); p += 4) assert_int_equal(p[4], '#');
    // header, config and environment
    assert_non_null(strstr(h, "badge st-finished"));
    assert_non_null(strstr(h, ">3.0833<"));  // final loss 3 + 5/60
    assert_non_null(strstr(h, ">3.2667<"));  // best val loss 3.2 + 4/60 at step 60
    assert_non_null(strstr(h, ">n_layer</td><td class=\"val\">2<"));
    assert_non_null(strstr(h, ">argv</td><td class=\"val\">kiln pretrain &#39;a b.yaml&#39;<"));
    assert_non_null(strstr(h, "<tr class=\"sec\"><td colspan=\"2\">cpu</td></tr>"));
    free(h);
}

// Issue 12: a run trained in two sessions with a long idle gap, benchmarks
// logged with their stderr and chance level, and a `kiln eval` result kept in
// RUN/eval/. The page shows training time apart from wall time, each session's
// command, the chance line and stderr band on the benchmark chart (not charts
// of their own), and the kept results.
static void test_sessions_and_benchmarks(void **st) {
    (void)st;
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/sessions", test_tmpdir());
    mkdir(dir, 0755);
    KilnBuf m = {0};
    kbuf_puts(&m, "{\"step\":0,\"time\":1000,\"event\":\"start\",\"detail\":{\"pid\":1,\"from\":\"init\","
                  "\"command\":[\"kiln\",\"pretrain\",\"first.yaml\"]}}\n");
    for (int s = 1; s <= 20; s++) {
        if (s == 11)  // an hour later
            kbuf_puts(&m, "{\"step\":10,\"time\":5000,\"event\":\"resume\",\"detail\":{\"pid\":2,\"from\":\"latest\","
                          "\"command\":[\"kiln\",\"pretrain\",\"first.yaml\",\"--resume\",\"latest\"]}}\n");
        kbuf_printf(&m, "{\"step\":%d,\"time\":%d,\"loss\":%.3f}\n", s, s <= 10 ? 1000 + s : 5000 + s - 10, 4.0 - 0.1 * s);
        if (s % 10 == 0)
            kbuf_printf(&m, "{\"step\":%d,\"time\":%d,\"eval/hellaswag/acc_norm\":%.3f,"
                            "\"eval/hellaswag/acc_norm_stderr\":0.04,\"eval/hellaswag/acc_norm_chance\":0.25}\n",
                        s, s <= 10 ? 1000 + s : 5000 + s - 10, 0.26 + 0.001 * s);
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    write_bytes(path, m.data, m.len);
    kbuf_free(&m);
    snprintf(path, sizeof path, "%s/eval", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/eval/ckpt-00000020-20261207T000000Z.json", dir);
    write_text(path, "{\"model\":\"runs/x/ckpt-00000020\",\"date\":\"2026-12-07T00:00:00Z\",\"results\":["
                     "{\"task\":\"lambada_openai\",\"metric\":\"perplexity\",\"subset\":\"all\",\"value\":207361921.8,"
                     "\"stderr\":null,\"n\":100,\"shots\":0},{\"task\":\"hellaswag\",\"metric\":\"acc\","
                     "\"subset\":\"all\",\"value\":0.27,\"stderr\":0.044,\"chance\":0.25,\"n\":100,\"shots\":0}]}");
    char *h = render(dir);
    // 20 s of training in two sessions, 4010 s of wall time
    assert_non_null(strstr(h, ">Training time</div><div class=\"v\">20.0s<"));
    assert_non_null(strstr(h, "in 2 sessions; 1h 06m 50s wall"));
    // each session's command
    assert_non_null(strstr(h, "<h2>Sessions</h2>"));
    assert_non_null(strstr(h, ">kiln pretrain first.yaml<"));
    assert_non_null(strstr(h, ">kiln pretrain first.yaml --resume latest<"));
    // the benchmark chart: a stderr band and the chance line; no charts of their own
    assert_non_null(strstr(h, "class=\"band\""));
    assert_non_null(strstr(h, ">chance 0.25<"));
    assert_null(strstr(h, ">eval/hellaswag/acc_norm_stderr<"));
    assert_null(strstr(h, ">eval/hellaswag/acc_norm_chance<"));
    // kiln eval's kept results
    assert_non_null(strstr(h, "<h2>Benchmarks"));
    assert_non_null(strstr(h, ">ckpt-00000020<"));
    assert_non_null(strstr(h, ">2.07362e+08<"));
    assert_non_null(strstr(h, ">0.2700<"));
    free(h);
    // a file there that is not a results file is named
    snprintf(path, sizeof path, "%s/eval/notes.json", dir);
    write_text(path, "[1, 2]");
    KilnBuf out = {0};
    KilnErr err;
    assert_int_equal(report_render(dir, &out, &err), -1);
    assert_non_null(strstr(err.msg, "eval/notes.json: not a kiln eval results file"));
    kbuf_free(&out);
}

static void test_status(void **st) {
    (void)st;
    char path[1200], *h;
    const char *dir = make_run("short", 40, 100);  // stopped short of train.steps
    h = render(dir);
    assert_non_null(strstr(h, "badge st-stopped"));
    assert_non_null(strstr(h, "killed or crashed?"));
    free(h);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "a");
    fprintf(f, "{\"step\":40,\"time\":1005,\"event\":\"stop\",\"detail\":{\"signal\":\"SIGTERM\"}}\n");
    fclose(f);
    h = render(dir);
    assert_non_null(strstr(h, "stop event at step 40"));
    free(h);
    snprintf(path, sizeof path, "%s/trainer.pid", dir);  // a live trainer: this process
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    write_text(path, pid);
    h = render(dir);
    assert_non_null(strstr(h, "badge st-running"));
    free(h);
}

static void test_errors(void **st) {
    (void)st;
    char path[1200];
    KilnBuf out = {0};
    KilnErr err;
    const char *dir = make_run("bad", 10, 10);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    write_text(path, "{\"step\":1,\"loss\":2}\n\n{\"step\":2,\"loss\":}\n{\"step\":3,\"loss\":1}\n");
    assert_int_equal(report_render(dir, &out, &err), -1);
    assert_non_null(strstr(err.msg, "metrics.jsonl:3"));
    write_text(path, "{\"step\":1,\"loss\":2}\n[1,2]\n");
    assert_int_equal(report_render(dir, &out, &err), -1);
    assert_non_null(strstr(err.msg, "metrics.jsonl:2: not a JSON object"));
    write_text(path, "{\"step\":1,\"loss\":2} x\n");  // trailing garbage
    assert_int_equal(report_render(dir, &out, &err), -1);
    write_text(path, "{\"loss\":2}\n");
    assert_int_equal(report_render(dir, &out, &err), -1);
    assert_non_null(strstr(err.msg, "metrics.jsonl:1: no \"step\""));
    write_text(path, "{\"step\":1,\"event\":7}\n");
    assert_int_equal(report_render(dir, &out, &err), -1);
    // a last line still being written (no newline yet) is left out, not an error
    write_text(path, "{\"step\":1,\"loss\":2}\n{\"step\":2,\"lo");
    kbuf_clear(&out);
    assert_int_equal(report_render(dir, &out, &err), 0);
    assert_non_null(strstr(out.data, "still being written"));
    // incidents.jsonl is checked the same way
    snprintf(path, sizeof path, "%s/incidents.jsonl", dir);
    write_text(path, "{\"time\":1}\nnot json\n");
    assert_int_equal(report_render(dir, &out, &err), -1);
    assert_non_null(strstr(err.msg, "incidents.jsonl:2"));
    assert_int_equal(report_render(tmp("no-such-run"), &out, &err), -1);
    assert_non_null(strstr(err.msg, "not a run directory"));
    kbuf_free(&out);
}

static void test_no_metrics(void **st) {
    (void)st;
    char dir[1200], path[1300], *h;
    snprintf(dir, sizeof dir, "%s/fresh", test_tmpdir());
    mkdir(dir, 0755);
    h = render(dir);
    assert_non_null(strstr(h, "metrics.jsonl is missing"));
    assert_non_null(strstr(h, "No config.yaml"));
    assert_non_null(strstr(h, "badge st-empty"));
    assert_int_equal(count(h, "<svg"), 0);
    free(h);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    write_text(path, "");
    h = render(dir);
    assert_non_null(strstr(h, "metrics.jsonl is empty"));
    free(h);
    write_text(path, "{\"step\":0,\"time\":5,\"event\":\"start\"}\n");
    h = render(dir);
    assert_non_null(strstr(h, "only events"));
    assert_non_null(strstr(h, "\">start</span>"));
    free(h);
    // an event without a time: "—" in its time cell (fuzz_report: the NaN
    // time was converted to time_t before the range check, undefined behaviour)
    write_text(path, "{\"step\":0,\"time\":5,\"event\":\"start\"}\n{\"step\":3,\"event\":\"checkpoint\"}\n");
    h = render(dir);
    assert_non_null(strstr(h, "<td class=\"num\">3</td><td class=\"num\">—</td>"));
    free(h);
    // a session that ends 1.8e19 s after it began (a damaged time; fuzz_report:
    // the duration was converted to long, undefined behaviour): no duration
    write_text(path, "{\"step\":0,\"time\":5,\"event\":\"start\"}\n{\"step\":1,\"time\":6,\"loss\":2}\n"
                     "{\"step\":1,\"time\":17966265011796626501.6,\"event\":\"end\"}\n");
    h = render(dir);
    assert_non_null(strstr(h, "<div class=\"k\">Training time</div><div class=\"v\">—</div>"));
    free(h);
    // all-null values: a chart that says it has no data
    write_text(path, "{\"step\":1,\"loss\":null}\n{\"step\":2,\"loss\":null}\n");
    h = render(dir);
    assert_non_null(strstr(h, ">no data</text>"));
    free(h);
}

// A resumed run that rewrote steps 6..8: the later records win.
static void test_rewritten_steps(void **st) {
    (void)st;
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s/resumed", test_tmpdir());
    mkdir(dir, 0755);
    KilnBuf m = {0};
    for (int s = 1; s <= 10; s++) kbuf_printf(&m, "{\"step\":%d,\"loss\":1.5}\n", s);
    for (int s = 6; s <= 8; s++) kbuf_printf(&m, "{\"step\":%d,\"loss\":2.25}\n", s);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    write_bytes(path, m.data, m.len);
    kbuf_free(&m);
    char *h = render(dir);
    assert_non_null(strstr(h, ">2.2500</div><div class=\"d\">at step 8<"));
    free(h);
}

// A long run: charts stay small (min/max per pixel column), the spike survives.
static void test_long_run(void **st) {
    (void)st;
    char dir[1200], path[1300];
    snprintf(dir, sizeof dir, "%s/long", test_tmpdir());
    mkdir(dir, 0755);
    KilnBuf m = {0};
    for (int s = 1; s <= 20000; s++) kbuf_printf(&m, "{\"step\":%d,\"loss\":%.4f}\n", s, s == 12345 ? 50.0 : 3.0 + (s % 13) * 0.01);
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    write_bytes(path, m.data, m.len);
    kbuf_free(&m);
    char *h = render(dir);
    assert_true(strlen(h) < 200000);
    assert_non_null(strstr(h, ">50<"));  // the y axis reaches the spike
    free(h);
}

static void test_ticks(void **st) {
    (void)st;
    double t[16], s, steps[16];
    int n = svg_ticks(0, 9.7, 6, t, &s);
    assert_int_equal(n, 5);
    assert_true(s == 2 && t[0] == 0 && t[4] == 8);
    n = svg_ticks(-0.3, 0.45, 6, t, &s);
    assert_true(fabs(s - 0.2) < 1e-12 && n == 4 && t[0] == -0.2 && t[1] == 0);
    assert_int_equal(svg_ticks(1, 1, 6, t, &s), 0);
    assert_int_equal(svg_ticks(0, INFINITY, 6, t, &s), 0);
    n = svg_ticks_log(1e-3, 20, 6, t, steps);  // decades
    assert_int_equal(n, 5);
    assert_true(fabs(t[0] - 1e-3) < 1e-15 && fabs(t[4] - 10) < 1e-12);
    n = svg_ticks_log(0.15, 1.2, 6, t, steps);  // 1-2-5 inside a decade: 0.2 0.5 1
    assert_int_equal(n, 3);
    assert_true(fabs(t[1] - 0.5) < 1e-12);
    n = svg_ticks_log(2.5, 11, 6, t, steps);  // too few: plain ticks 4 6 8 10
    assert_int_equal(n, 4);
    assert_true(t[0] == 4 && t[3] == 10);
    const struct {
        double v, step;
        const char *want;
    } cases[] = {{0, 1, "0"},        {2, 1, "2"},       {0.25, 0.05, "0.25"}, {0.5, 0.5, "0.5"},
                 {1500, 500, "1.5k"}, {1000, 500, "1k"}, {12e6, 2e6, "12M"},   {6e-4, 1e-4, "6e-4"},
                 {-3e-5, 1e-5, "-3e-5"}, {2.5e-4, 5e-5, "2.5e-4"}, {1e-17, 0.2, "0"}, {3e9, 1e9, "3G"}};
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        svg_format_tick(buf, sizeof buf, cases[i].v, cases[i].step);
        if (strcmp(buf, cases[i].want)) fail_msg("tick %g (step %g): \"%s\", want \"%s\"", cases[i].v, cases[i].step, buf, cases[i].want);
    }
}

static void test_downsample(void **st) {
    (void)st;
    enum { N = 10000, B = 500 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), ox[2 * B], oy[2 * B];
    for (int i = 0; i < N; i++) x[i] = i, y[i] = 1 + (i % 10) * 0.1;
    y[5555] = 100, y[7000] = -5;
    for (int i = 8000; i < 8100; i++) y[i] = NAN;  // a gap of 5 buckets
    size_t n = svg_downsample(x, y, N, 0, N - 1, B, ox, oy);
    assert_true(n <= 2 * B && n > B);
    double hi = -1e9, lo = 1e9;
    int gaps = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(oy[i])) {
            gaps++;
            continue;
        }
        hi = fmax(hi, oy[i]), lo = fmin(lo, oy[i]);
        if (i) assert_true(ox[i] >= ox[i - 1]);
    }
    assert_true(hi == 100 && lo == -5);
    assert_int_equal(gaps, 1);  // consecutive empty buckets make one gap
    free(x), free(y);
    double e[5], in[5] = {2, 2, NAN, 2, 2};
    svg_ema(in, 5, 10, e);  // debiased: a constant stays itself from the first point
    assert_true(e[0] == 2 && isnan(e[2]) && fabs(e[4] - 2) < 1e-12);
}

static void test_escape(void **st) {
    (void)st;
    KilnBuf b = {0};
    const char s[] = "<a href='x'>&\"\x01\xff\xc3\xa9\t";
    assert_int_equal(html_escape(&b, s, sizeof s - 1), 0);
    assert_string_equal(b.data, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;\xEF\xBF\xBD\xEF\xBF\xBD\xc3\xa9\t");
    kbuf_free(&b);
}

typedef struct {
    const char *dir, *file;
} FuzzCtx;

static int render_fuzzed(const char *path, void *ctx) {
    const FuzzCtx *fc = ctx;
    KilnBuf out = {0};
    KilnErr err;
    int rc = report_render(fc->dir, &out, &err);
    if (rc == 0) assert_true(utf8_valid(out.data, out.len) && strstr(out.data, "</html>"));
    else assert_non_null(strstr(err.msg, fc->file));  // every refusal names the file
    kbuf_free(&out);
    (void)path;
    return rc;
}

// Mutants of each input file; only the JSONL files may be refused (config.yaml
// and env.json that cannot be read as tables are shown as they are).
static void test_fuzz(void **st) {
    (void)st;
    const char *dir = make_run("fuzz", 40, 40);
    const char *files[] = {"metrics.jsonl", "incidents.jsonl", "config.yaml", "env.json"};
    const int iters[] = {300, 100, 100, 100};
    for (int f = 0; f < 4; f++) {
        char path[1200], *data;
        size_t len;
        KilnErr err;
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        assert_int_equal(kiln_read_file(path, &data, &len, &err), 0);
        FuzzCtx ctx = {dir, files[f]};
        int refused = fuzz_mutants(data, len, 200, path, iters[f], 5 + (uint64_t)f, render_fuzzed, &ctx);
        if (f == 0) assert_true(refused > 0 && refused < iters[f]);
        if (f >= 2) assert_int_equal(refused, 0);
        write_bytes(path, data, len);  // the original back for the next file
        free(data);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page),       cmocka_unit_test(test_status),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_no_metrics), cmocka_unit_test(test_rewritten_steps), cmocka_unit_test(test_long_run),
        cmocka_unit_test(test_ticks),      cmocka_unit_test(test_downsample), cmocka_unit_test(test_escape),
        cmocka_unit_test(test_fuzz),       cmocka_unit_test(test_sessions_and_benchmarks),
    };
    return TEST_RUN("report", tests);
}
