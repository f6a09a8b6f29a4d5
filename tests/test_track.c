// test_track.c: run tracking: CRC-32C vectors, TFRecord framing and Event bytes
// by hand, metrics.jsonl lines, the resume cut (truncated tails, malformed lines,
// fuzzed files), and env.json/config.yaml.
// `test_track --write-events DIR` writes the fixed two-session run that
// tests/track/check_events.py decodes with protoc.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "run/track.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

// ---------------------------------------------------------------- helpers
// Bit-at-a-time CRC-32C, the definition the table-driven one must match.
static uint32_t crc32c_slow(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static uint32_t unmask(uint32_t m) {
    uint32_t r = m - 0xa282ead8u;
    return (r << 15) | (r >> 17);
}

static char *slurp(const char *path, size_t *len) {
    char *data;
    size_t n;
    KilnErr err;
    if (kiln_read_file(path, &data, &n, &err)) fail_msg("%s", err.msg);
    if (len) *len = n;
    return data;
}

static void assert_file_text(const char *path, const char *want) {
    char *got = slurp(path, NULL);
    assert_string_equal(got, want);
    free(got);
}

static uint64_t le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

// Splits a TFRecord file into payloads, checking both CRCs of every record and
// that nothing trails the last one. Returns the record count; payloads kept in rec.
static int read_records(const char *path, char **rec, size_t *rec_len, int max) {
    size_t len;
    char *data = slurp(path, &len);
    const unsigned char *p = (const unsigned char *)data;
    int n = 0;
    size_t pos = 0;
    while (pos < len) {
        assert_true(len - pos >= 16 && n < max);
        uint64_t plen = le(p + pos, 8);
        assert_int_equal(le(p + pos + 8, 4), tb_masked_crc32c(p + pos, 8));
        assert_true(plen <= len - pos - 16);
        assert_int_equal(le(p + pos + 12 + plen, 4), tb_masked_crc32c(p + pos + 12, plen));
        rec[n] = malloc(plen + 1);
        memcpy(rec[n], p + pos + 12, plen);
        rec_len[n++] = plen;
        pos += 16 + plen;
    }
    free(data);
    return n;
}

// The one event file in dir (fails the test when there is not exactly one).
static void only_event_file(const char *dir, char *out, size_t n) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) {
            snprintf(out, n, "%s/%s", dir, e->d_name);
            found++;
        }
    closedir(d);
    assert_int_equal(found, 1);
}

static void rm_tree(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

// ---------------------------------------------------------------- CRC and records
static void test_crc32c(void **st) {
    (void)st;
    // RFC 3720 B.4 and the usual check value
    unsigned char buf[256];
    assert_int_equal(unmask(tb_masked_crc32c("123456789", 9)), 0xE3069283u);
    memset(buf, 0, 32);
    assert_int_equal(unmask(tb_masked_crc32c(buf, 32)), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    assert_int_equal(unmask(tb_masked_crc32c(buf, 32)), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
    assert_int_equal(unmask(tb_masked_crc32c(buf, 32)), 0x46DD794Eu);
    for (int i = 0; i < 256; i++) {  // every table entry, and longer random strings
        buf[0] = (unsigned char)i;
        assert_int_equal(unmask(tb_masked_crc32c(buf, 1)), crc32c_slow(buf, 1));
    }
    KilnRng r;
    kiln_rng_seed(&r, 5);
    for (int it = 0; it < 200; it++) {
        size_t n = kiln_rng_u64(&r) % sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)kiln_rng_u64(&r);
        assert_int_equal(unmask(tb_masked_crc32c(buf, n)), crc32c_slow(buf, n));
    }
}

// Event bytes worked out by hand from event.proto and summary.proto.
static void test_event_bytes(void **st) {
    (void)st;
    KilnTbWriter w;
    KilnErr err;
    const char *dir = tmp("tb_bytes");
    assert_int_equal(tb_open(&w, dir, 1732870000.0, &err), 0);
    assert_non_null(strstr(w.path, "/events.out.tfevents.1732870000."));
    assert_int_equal(tb_scalar(&w, "train/loss", 7, 2.5f, 1.5, &err), 0);
    assert_int_equal(tb_session_start(&w, 300, 1.5, &err), 0);
    assert_int_equal(tb_scalar(&w, "t", -1, -0.0f, 0.0, &err), 0);
    tb_close(&w);
    char *rec[8];
    size_t len[8];
    assert_int_equal(read_records(w.path, rec, len, 8), 4);
    // file_version: wall_time (09 + double LE), file_version (1a len "brain.Event:2")
    static const unsigned char v[] = {0x09, 0, 0, 0, 0xdc, 0x5f, 0xd2, 0xd9, 0x41, 0x1a, 13, 'b', 'r', 'a', 'i', 'n',
                                      '.', 'E', 'v', 'e', 'n', 't', ':', '2'};
    assert_int_equal(len[0], sizeof v);
    assert_memory_equal(rec[0], v, sizeof v);
    // scalar: wall 1.5, step 7 (10 07), summary 2a{ value 0a{ tag 0a "train/loss", simple_value 15 2.5f } }
    static const unsigned char s[] = {0x09, 0,   0,   0,   0,   0,   0,   0xf8, 0x3f, 0x10, 0x07, 0x2a, 19,
                                      0x0a, 17,  0x0a, 10, 't', 'r', 'a', 'i',  'n',  '/',  'l',  'o',  's',
                                      's',  0x15, 0, 0, 0x20, 0x40};
    assert_int_equal(len[1], sizeof s);
    assert_memory_equal(rec[1], s, sizeof s);
    // session START at 300: step varint ac 02, session_log (field 7) 3a 02 { 08 01 }
    static const unsigned char l[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 0xac, 0x02, 0x3a, 2, 0x08, 0x01};
    assert_int_equal(len[2], sizeof l);
    assert_memory_equal(rec[2], l, sizeof l);
    // step -1: ten-byte varint; -0.0f keeps its sign bit
    static const unsigned char m[] = {0x09, 0,    0,    0,    0,    0,    0,    0,    0,    0x10, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x2a, 10,   0x0a, 8,    0x0a, 1,
                                      't',  0x15, 0,    0,    0,    0x80};
    assert_int_equal(len[3], sizeof m);
    assert_memory_equal(rec[3], m, sizeof m);
    for (int i = 0; i < 4; i++) free(rec[i]);
}

static void test_event_file_names(void **st) {
    (void)st;
    KilnTbWriter a, b;
    KilnErr err;
    const char *dir = tmp("tb_names");
    assert_int_equal(tb_open(&a, dir, 1700000000.9, &err), 0);
    assert_int_equal(tb_open(&b, dir, 1700000000.2, &err), 0);  // same second: a new name, not a clobber
    assert_string_not_equal(a.path, b.path);
    char want[2048];
    snprintf(want, sizeof want, "%s.1", a.path);
    assert_string_equal(b.path, want);
    tb_close(&a);
    tb_close(&b);
    struct stat sa, sb;
    assert_int_equal(stat(a.path, &sa), 0);
    assert_int_equal(stat(b.path, &sb), 0);
    assert_true(sa.st_size > 0 && sa.st_size == sb.st_size);  // each holds its own file_version record
    write_bytes(tmp("tb_file"), "x", 1);
    assert_int_not_equal(tb_open(&a, tmp("tb_file"), 0, &err), 0);  // a file where the directory should be
    assert_non_null(strstr(err.msg, "tb_file"));
}

// ---------------------------------------------------------------- metrics.jsonl
static void test_metrics_lines(void **st) {
    (void)st;
    const char *run = tmp("run_lines");
    char path[1200], tbdir[1200], tbfile[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    snprintf(tbdir, sizeof tbdir, "%s/tb", run);
    KilnTracker t;
    KilnErr err;
    assert_int_equal(tracker_open(&t, run, -1, 1732870000.25, &err), 0);
    KilnMetric m[] = {{"loss", 2.3125},  {"lr", (double)0.0006f}, {"grad_norm", NAN},  {"tokens", 12345678901.0},
                      {"mfu", INFINITY}, {"val_loss", 1.0 / 3}, {"na\"me", -1e-30}, {"big", 1e300}};
    assert_int_equal(tracker_log(&t, 10, 1732870000.125, m, 8, &err), 0);
    assert_int_equal(tracker_event(&t, 11, 1732870001.5, "spike", "{\n  \"z\": 6.5,\n  \"docs\": [\"a\", 1]\n}", &err),
                     0);
    assert_int_equal(tracker_event(&t, 12, 1732870002.0, "stop", NULL, &err), 0);
    assert_int_not_equal(tracker_event(&t, 12, 0, "bad", "[1]", &err), 0);  // detail must be an object
    assert_non_null(strstr(err.msg, "bad"));
    assert_int_not_equal(tracker_event(&t, 12, 0, "bad", "{} {}", &err), 0);
    KilnMetric reserved = {"step", 1};
    assert_int_not_equal(tracker_log(&t, 13, 0, &reserved, 1, &err), 0);
    assert_non_null(strstr(err.msg, "step"));
    assert_int_equal(tracker_flush(&t, &err), 0);
    tracker_close(&t);
    assert_file_text(path, "{\"step\":10,\"time\":1732870000.125,\"loss\":2.3125,\"lr\":0.000600000028,"
                           "\"grad_norm\":null,\"tokens\":12345678901,\"mfu\":null,\"val_loss\":0.333333333,"
                           "\"na\\\"me\":-1e-30,\"big\":1e+300}\n"
                           "{\"step\":11,\"time\":1732870001.500,\"event\":\"spike\","
                           "\"detail\":{\"z\":6.5,\"docs\":[\"a\",1]}}\n"
                           "{\"step\":12,\"time\":1732870002.000,\"event\":\"stop\"}\n");
    // TensorBoard got the finite float values only: file_version, START, loss, lr, tokens, val_loss, name
    only_event_file(tbdir, tbfile, sizeof tbfile);
    char *rec[16];
    size_t len[16];
    int n = read_records(tbfile, rec, len, 16);
    assert_int_equal(n, 7);
    const char *tags[] = {"train/loss", "train/lr", "train/tokens", "val/loss", "train/na\"me"};
    for (int i = 0; i < 5; i++) {
        size_t tl = strlen(tags[i]);
        assert_int_equal(rec[2 + i][16], (char)tl);  // the tag's length after 09 d*8, 10 0a, 2a L, 0a L, 0a
        assert_memory_equal(rec[2 + i] + 17, tags[i], tl);
    }
    for (int i = 0; i < n; i++) free(rec[i]);
    // a fresh open truncates
    assert_int_equal(tracker_open(&t, run, -1, 1732870100.0, &err), 0);
    tracker_close(&t);
    assert_file_text(path, "");
}

// Writes text as RUN/metrics.jsonl, opens the tracker resuming at step, and
// returns tracker_open's result (the tracker is closed again).
static int resume_with(const char *run, const char *text, int step, KilnErr *err) {
    char path[1200];
    KilnErr e2;
    assert_int_equal(kiln_mkdirs(run, &e2), 0);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    write_bytes(path, text, strlen(text));
    KilnTracker t;
    int rc = tracker_open(&t, run, step, 1732870000.0 + step, err);
    if (rc == 0) tracker_close(&t);
    return rc;
}

static void test_resume_cut(void **st) {
    (void)st;
    const char *run = tmp("run_cut");
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    KilnErr err;
    const char *lines = "{\"step\":1,\"time\":1.0,\"loss\":3}\n"
                        "{\"step\":2,\"time\":2.0,\"event\":\"checkpoint\"}\n"
                        "\n"
                        "{\"step\":2,\"time\":2.0,\"loss\":2.5}\n"
                        "{\"step\":3,\"time\":3.0,\"val_loss\":2}\n"
                        "{\"step\":4,\"time\":4.0,\"loss\":2.25}\n"
                        "{\"step\":5,\"time\":5.0,\"event\":\"spike\",\"detail\":{\"step\":1}}\n"
                        "{\"step\":5,\"time\":5.0,\"lo";  // the writer was killed mid-line
    assert_int_equal(resume_with(run, lines, 3, &err), 0);
    assert_file_text(path, "{\"step\":1,\"time\":1.0,\"loss\":3}\n"
                           "{\"step\":2,\"time\":2.0,\"event\":\"checkpoint\"}\n"
                           "{\"step\":2,\"time\":2.0,\"loss\":2.5}\n"
                           "{\"step\":3,\"time\":3.0,\"val_loss\":2}\n"
                           "{\"step\":5,\"time\":5.0,\"event\":\"spike\",\"detail\":{\"step\":1}}\n");
    // then appends after what it kept
    KilnTracker t;
    assert_int_equal(tracker_open(&t, run, 3, 100.0, &err), 0);
    KilnMetric m = {"loss", 2};
    assert_int_equal(tracker_log(&t, 4, 101.0, &m, 1, &err), 0);
    tracker_close(&t);
    char *text = slurp(path, NULL);
    assert_non_null(strstr(text, "\"detail\":{\"step\":1}}\n{\"step\":4,\"time\":101.000,\"loss\":2}\n"));
    free(text);
    // a last line that is whole but lacks its newline is kept, the newline restored
    assert_int_equal(resume_with(run, "{\"step\":1,\"time\":1.0}\n{\"step\":2,\"time\":2.0}", 9, &err), 0);
    assert_file_text(path, "{\"step\":1,\"time\":1.0}\n{\"step\":2,\"time\":2.0}\n");
    // resume at 0 keeps step 0 records; no metrics.jsonl at all is a fresh file
    assert_int_equal(resume_with(run, "{\"step\":0,\"time\":1.0}\n{\"step\":1,\"time\":2.0}\n", 0, &err), 0);
    assert_file_text(path, "{\"step\":0,\"time\":1.0}\n");
    unlink(path);
    assert_int_equal(tracker_open(&t, run, 5, 1.0, &err), 0);
    tracker_close(&t);
    assert_file_text(path, "");
    rm_tree(run);
}

static void test_resume_malformed(void **st) {
    (void)st;
    const char *run = tmp("run_bad");
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    KilnErr err;
    const char *bad[] = {
        "{\"step\":1}\n{\"step\":2,\"lo\n{\"step\":3}\n",  // cut mid-file: not a kill's truncation
        "{\"step\":1}\n{\"time\":2}\n{\"step\":3}\n",      // no step
        "{\"step\":1}\n{\"step\":1.5}\n{\"step\":3}\n",    // not an integer
        "{\"step\":1}\n{\"step\":\"2\"}\n{\"step\":3}\n",  // a string
        "{\"step\":1}\n[2]\n{\"step\":3}\n",
        "{\"step\":1}\n{\"step\":2} x\n{\"step\":3}\n",
        "{\"step\":1}\n{\"step\":2}\n",  // fine: a control for the line number below
    };
    for (int i = 0; i < 6; i++) {
        assert_int_not_equal(resume_with(run, bad[i], 5, &err), 0);
        char want[1300];
        snprintf(want, sizeof want, "%s:2:", path);
        assert_non_null(strstr(err.msg, want));
        assert_file_text(path, bad[i]);  // nothing overwritten
    }
    assert_int_equal(resume_with(run, bad[6], 5, &err), 0);
    rm_tree(run);
}

// The fuzz reader: a resume over a mutated metrics.jsonl either fails or leaves
// only whole records with step <= 3 or events.
static int fuzz_resume(const char *path, void *ctx) {
    const char *run = ctx;
    KilnTracker t;
    KilnErr err;
    if (tracker_open(&t, run, 3, 1.0, &err)) return -1;
    unlink(t.tb.path);
    tracker_close(&t);
    size_t len;
    char *text = slurp(path, &len);
    assert_true(len == 0 || text[len - 1] == '\n');
    static const char *const names[2] = {"step", "event"};
    for (char *s = text, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        size_t spans[2][2];
        assert_int_equal(kiln_json_fields(s, (size_t)(nl - s), names, 2, spans), 0);
        assert_true(spans[1][1] != 0 || strtoll(s + spans[0][0], NULL, 10) <= 3);
    }
    free(text);
    return 0;
}

static void test_resume_fuzz(void **st) {
    (void)st;
    const char *run = tmp("run_fuzz");
    KilnErr err;
    assert_int_equal(kiln_mkdirs(run, &err), 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    const char *text = "{\"step\":1,\"time\":1.000,\"loss\":3,\"lr\":0.000600000028}\n"
                       "{\"step\":2,\"time\":2.000,\"event\":\"checkpoint\",\"detail\":{\"dir\":\"ckpt-00000002\"}}\n"
                       "{\"step\":3,\"time\":3.000,\"val_loss\":2,\"grad_norm\":null}\n"
                       "{\"step\":4,\"time\":4.000,\"loss\":2.25,\"tokens\":163840}\n"
                       "{\"step\":5,\"time\":5.000,\"event\":\"spike\",\"detail\":{\"z\":[1,{\"a\":\"}\"}]}}\n";
    int refused = fuzz_mutants(text, strlen(text), 40, path, 600, 11, fuzz_resume, (void *)run);
    assert_true(refused > 0 && refused < 600);
    rm_tree(run);
}

// ---------------------------------------------------------------- env.json, config.yaml
static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsString(v));
    assert_true(v->valuestring[0] != 0);
    return v->valuestring;
}

static void test_env(void **st) {
    (void)st;
    const char *run = tmp("run_env");
    KilnConfig cfg;
    kiln_config_defaults(&cfg);
    cfg.model.n_layer = 3;
    cfg.train.lr = 0.00125f;
    snprintf(cfg.out_dir, sizeof cfg.out_dir, "%s", run);
    char *argv[] = {"kiln", "pretrain", "cfg.yaml", "--set", "train.lr=\"0.00125\""};
    KilnErr err;
    KilnPeak peak = {.measured = 8.5e10, .theoretical = 1.5e11, .cores = 2, .ghz = 2.4, .flops_per_cycle = 32,
                     .clock_from = "/proc/cpuinfo cpu MHz", .per_cycle_why = "AVX2", .peak = 1.5e11,
                     .peak_is = "theoretical"};
    assert_int_equal(run_env_write(run, &cfg, 5, argv, 3, &peak, "sgemm", &err), 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/env.json", run);
    char *text = slurp(path, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    assert_string_equal(json_str(j, "kiln_version"), kiln_version());
    assert_string_equal(json_str(j, "git_commit"), kiln_git_commit());
    json_str(j, "hostname");
    json_str(j, "compiler");
    json_str(j, "start_time_utc");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(j, "command_line");
    assert_int_equal(cJSON_GetArraySize(cmd), 5);
    assert_string_equal(cJSON_GetArrayItem(cmd, 4)->valuestring, argv[4]);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "threads")->valueint, 3);
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(j, "peak_flops");
    assert_true(cJSON_GetObjectItemCaseSensitive(pk, "used")->valuedouble == 1.5e11);
    assert_true(cJSON_GetObjectItemCaseSensitive(pk, "measured")->valuedouble == 8.5e10);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(pk, "measured_kernel")->valuestring, "sgemm");
    assert_string_equal(json_str(pk, "used_is"), "theoretical");
    assert_string_equal(json_str(pk, "clock_from"), "/proc/cpuinfo cpu MHz");
    double t0 = cJSON_GetObjectItemCaseSensitive(j, "start_time")->valuedouble;
    assert_true(t0 > 1.6e9 && t0 < 4e9);
    const cJSON *os = cJSON_GetObjectItemCaseSensitive(j, "os");
    assert_string_equal(json_str(os, "sysname"), "Linux");
    json_str(os, "release");
    json_str(os, "machine");
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(j, "cpu");
    assert_true(cJSON_GetObjectItemCaseSensitive(cpu, "cores")->valueint >= 1);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(cpu, "model"));  // a string, or null off x86
    const cJSON *lib = cJSON_GetObjectItemCaseSensitive(j, "libraries");
    assert_string_equal(json_str(lib, "zlib"), zlibVersion());
    assert_string_equal(json_str(lib, "cjson"), cJSON_Version());
    const char *names[] = {"libyaml", "zstd", "openssl", "libxml2", "pcre2", "utf8proc", "xxhash"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_non_null(strpbrk(json_str(lib, names[i]), "0123456789"));  // a version, whatever its form
    assert_string_equal(json_str(j, "backend"), "cpu");
    const cJSON *blas = cJSON_GetObjectItemCaseSensitive(j, "openblas");
    assert_non_null(strstr(json_str(blas, "config"), "OpenBLAS"));
    json_str(blas, "corename");
    cJSON_Delete(j);
    // config.yaml reads back as the same config
    snprintf(path, sizeof path, "%s/config.yaml", run);
    KilnConfig back;
    kiln_config_defaults(&back);
    assert_int_equal(kiln_config_load_yaml(&back, path, &err), 0);
    assert_int_equal(back.model.n_layer, 3);
    assert_true(back.train.lr == 0.00125f);
    char *a = NULL, *b = NULL;
    size_t al, bl;
    FILE *fa = open_memstream(&a, &al), *fb = open_memstream(&b, &bl);
    kiln_config_write_yaml(&cfg, fa);
    kiln_config_write_yaml(&back, fb);
    fclose(fa);
    fclose(fb);
    assert_string_equal(a, b);
    free(a);
    free(b);
    // a run directory that cannot be made: an error naming it
    write_bytes(tmp("notadir"), "x", 1);
    assert_int_not_equal(run_env_write(tmp("notadir"), &cfg, 5, argv, 3, NULL, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "notadir"));
}

// ---------------------------------------------------------------- for check_events.py
// Session 1 (fresh) logs steps 1..3, session 2 resumes at step 2 and logs 3..4.
static int write_events(const char *run) {
    KilnTracker t;
    KilnErr err;
    int rc = tracker_open(&t, run, -1, 1732870000.0, &err);
    for (int s = 1; s <= 3 && !rc; s++) {
        KilnMetric m[] = {{"loss", 4.0 - s * 0.5}, {"lr", 1e-3 * s}, {"grad_norm", s == 2 ? NAN : 0.25 * s}};
        rc = tracker_log(&t, s, 1732870000.0 + s * 0.25, m, 3, &err);
    }
    if (!rc) {
        KilnMetric v = {"val_loss", 3.125};
        rc = tracker_log(&t, 3, 1732870001.0, &v, 1, &err) ||
             tracker_event(&t, 3, 1732870001.0, "checkpoint", "{\"dir\":\"ckpt-00000003\"}", &err);
    }
    tracker_close(&t);
    if (!rc) rc = tracker_open(&t, run, 2, 1732870100.5, &err);
    for (int s = 3; s <= 4 && !rc; s++) {
        KilnMetric m[] = {{"loss", 10.0 + s}, {"lr", 2e-3 * s}, {"grad_norm", 1.5 * s}};
        rc = tracker_log(&t, s, 1732870100.5 + s, m, 3, &err);
    }
    if (!rc) rc = tracker_event(&t, 4, 1732870105.0, "stop", NULL, &err);
    tracker_close(&t);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-events")) return write_events(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),         cmocka_unit_test(test_event_bytes),
        cmocka_unit_test(test_event_file_names), cmocka_unit_test(test_metrics_lines),
        cmocka_unit_test(test_resume_cut),     cmocka_unit_test(test_resume_malformed),
        cmocka_unit_test(test_resume_fuzz),    cmocka_unit_test(test_env),
    };
    return TEST_RUN("track", tests);
}
