// track.c: what a run records: metrics.jsonl (one JSON object per line, cut back
// to the resumed step on resume), TensorBoard scalars beside it, and the run's
// config.yaml and env.json (everything needed to reproduce it).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/rundir.h"
#include "kiln/core.h"
#include "run/track.h"

#include "backend/backend.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <libxml/xmlversion.h>
#include <math.h>
#include <openssl/crypto.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>
#include <xxhash.h>
#include <yaml.h>
#include <zlib.h>
#include <zstd.h>

// ---------------------------------------------------------------- metrics.jsonl lines
// Integral values (step counts, token totals) print exactly; other values with
// %.9g, which round-trips a float. NaN and Inf have no JSON form: null.
static int put_number(KilnBuf *b, double v) {
    if (!isfinite(v)) return kbuf_puts(b, "null");
    if (v == floor(v) && fabs(v) < 1e15) return kbuf_printf(b, "%.0f", v);
    return kbuf_printf(b, "%.9g", v);
}

// {"step":S,"time":T — the start every record shares; time to the millisecond.
static int put_head(KilnBuf *b, int step, double wall_time) {
    return kbuf_printf(b, "{\"step\":%d,\"time\":", step) ||
           (isfinite(wall_time) ? kbuf_printf(b, "%.3f", wall_time) : kbuf_puts(b, "null"));
}

static int put_string(KilnBuf *b, const char *s) {
    return kbuf_putc(b, '"') || kbuf_json_escape(b, s, strlen(s)) || kbuf_putc(b, '"');
}

// One whole line in one write, so a killed writer can only leave a cut-off last line.
static int write_line(KilnTracker *t, const KilnBuf *b, KilnErr *err) {
    if (fwrite(b->data, 1, b->len, t->metrics) != b->len)
        return kiln_fail(err, "%s/" RUNDIR_METRICS ": write failed: %s", t->dir, strerror(errno));
    return 0;
}

// The TensorBoard tag of a series: "val_<rest>" -> "val/<rest>", a name with a
// slash (eval/hellaswag/acc_norm) as it is, else "train/<name>".
static int tb_tag(KilnBuf *tag, const char *name) {
    kbuf_clear(tag);
    if (!strncmp(name, "val_", 4) && name[4]) return kbuf_printf(tag, "val/%s", name + 4);
    if (strchr(name, '/')) return kbuf_printf(tag, "%s", name);
    return kbuf_printf(tag, "train/%s", name);
}

int tracker_log(KilnTracker *t, int step, double wall_time, const KilnMetric *m, int n, KilnErr *err) {
    KilnBuf line = {0}, tag = {0};
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        if (!strcmp(m[i].name, "step") || !strcmp(m[i].name, "time") || !strcmp(m[i].name, "event"))
            rc = kiln_fail(err, "metric name '%s' is reserved for the record itself", m[i].name);
    int oom = rc ? 0 : put_head(&line, step, wall_time);
    for (int i = 0; i < n && !rc && !oom; i++)
        oom = kbuf_putc(&line, ',') || put_string(&line, m[i].name) || kbuf_putc(&line, ':') ||
              put_number(&line, m[i].value);
    if (!rc && !oom) oom = kbuf_puts(&line, "}\n");
    if (oom) rc = kiln_fail(err, "%s/" RUNDIR_METRICS ": out of memory", t->dir);
    if (!rc) rc = write_line(t, &line, err);
    for (int i = 0; i < n && !rc; i++) {
        float v = (float)m[i].value;  // a finite double beyond float range becomes Inf: left out too
        if (!isfinite(v)) continue;
        if (tb_tag(&tag, m[i].name)) rc = kiln_fail(err, "%s: out of memory", t->tb.path);
        else rc = tb_scalar(&t->tb, tag.data, step, v, wall_time, err);
    }
    kbuf_free(&line);
    kbuf_free(&tag);
    return rc;
}

int tracker_event(KilnTracker *t, int step, double wall_time, const char *kind, const char *detail_json,
                  KilnErr *err) {
    char *detail = NULL;  // re-printed on one line: a pretty-printed object would break the JSONL
    if (detail_json) {
        cJSON *j = cJSON_ParseWithOpts(detail_json, NULL, 1);
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            return kiln_fail(err, "event '%s' at step %d: detail is not one JSON object", kind, step);
        }
        detail = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!detail) return kiln_fail(err, "%s/" RUNDIR_METRICS ": out of memory", t->dir);
    }
    KilnBuf line = {0};
    int oom = put_head(&line, step, wall_time) || kbuf_puts(&line, ",\"event\":") || put_string(&line, kind) ||
              (detail && (kbuf_puts(&line, ",\"detail\":") || kbuf_puts(&line, detail))) || kbuf_puts(&line, "}\n");
    int rc = oom ? kiln_fail(err, "%s/" RUNDIR_METRICS ": out of memory", t->dir) : write_line(t, &line, err);
    cJSON_free(detail);
    kbuf_free(&line);
    return rc;
}

// ---------------------------------------------------------------- resume: cut metrics.jsonl back
// The step of one record line, and whether it is an event. -1 unless the line is
// one JSON object with an integer "step".
static int parse_record(const char *s, size_t n, long long *step, int *is_event) {
    static const char *const names[2] = {"step", "event"};
    size_t spans[2][2];
    if (kiln_json_fields(s, n, names, 2, spans) || spans[0][1] == 0) return -1;
    const char *p = s + spans[0][0], *end = s + spans[0][1];
    int neg = p < end && *p == '-';
    p += neg;
    if (p == end || end - p > 15) return -1;  // digits only, well inside long long
    long long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    *step = neg ? -v : v;
    *is_event = spans[1][1] != 0;
    return 0;
}

// Keeps the lines of path whose step <= resume_step plus every event line, and
// rewrites the file atomically. A cut-off last line (no newline: the writer was
// killed mid-line) is dropped; a malformed line anywhere else is an error.
static int cut_metrics(const char *path, int resume_step, KilnErr *err) {
    char *text;
    size_t len;
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;
    if (kiln_read_file(path, &text, &len, err)) return -1;
    KilnBuf out = {0};
    int rc = 0;
    long lineno = 0;
    for (size_t pos = 0; pos < len && !rc; lineno++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *s = text + pos;
        size_t n = end - pos;
        pos = nl ? end + 1 : len;
        if (n == 0) continue;
        long long step;
        int is_event;
        if (parse_record(s, n, &step, &is_event)) {
            if (!nl) break;  // cut off by a kill: the record never finished
            rc = kiln_fail(err, "%s:%ld: not a metrics record (one JSON object with an integer \"step\")", path,
                           lineno + 1);
        } else if (is_event || step <= resume_step) {
            if (kbuf_append(&out, s, n) || kbuf_putc(&out, '\n'))
                rc = kiln_fail(err, "%s: out of memory", path);
        }
    }
    free(text);
    KilnAtomicFile af;
    if (!rc && !(rc = kiln_atomic_open(&af, path, err))) {
        if (kiln_atomic_write(&af, out.data, out.len, err)) {
            kiln_atomic_abort(&af);
            rc = -1;
        } else {
            rc = kiln_atomic_commit(&af, err);
        }
    }
    kbuf_free(&out);
    return rc;
}

// ---------------------------------------------------------------- tracker
int tracker_open(KilnTracker *t, const char *run_dir, int resume_step, double wall_time, KilnErr *err) {
    memset(t, 0, sizeof *t);
    char path[1200];
    int n = snprintf(t->dir, sizeof t->dir, "%s", run_dir);
    if (n < 0 || (size_t)n >= sizeof t->dir) return kiln_fail(err, "%s: run directory path too long", run_dir);
    snprintf(path, sizeof path, "%s/" RUNDIR_METRICS, run_dir);
    if (kiln_mkdirs(run_dir, err)) return -1;
    if (resume_step >= 0 && cut_metrics(path, resume_step, err)) return -1;
    t->metrics = fopen(path, resume_step >= 0 ? "ab" : "wb");
    if (!t->metrics) return kiln_fail(err, "%s: cannot open: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/" RUNDIR_TB, run_dir);
    // TensorBoard keeps only the points before a session START's step: START at
    // resume_step + 1 drops what a killed run wrote past it (a fresh run: everything
    // an earlier run left in tb/), matching metrics.jsonl.
    long long start = resume_step >= 0 ? (long long)resume_step + 1 : 0;
    if (tb_open(&t->tb, path, wall_time, err) || tb_session_start(&t->tb, start, wall_time, err) ||
        tb_flush(&t->tb, err)) {
        tracker_close(t);
        return -1;
    }
    return 0;
}

static int flush_file(FILE *f, const char *what, const char *dir, KilnErr *err) {
    if (f && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        return kiln_fail(err, "%s%s: write failed: %s", dir, what, strerror(errno));
    return 0;
}

int tracker_flush(KilnTracker *t, KilnErr *err) {
    return flush_file(t->metrics, "/" RUNDIR_METRICS, t->dir, err) || flush_file(t->tb.f, "", t->tb.path, err)
               ? -1
               : 0;
}

void tracker_close(KilnTracker *t) {
    if (t->metrics) fclose(t->metrics);
    t->metrics = NULL;
    tb_close(&t->tb);
}

// ---------------------------------------------------------------- config.yaml and env.json
static void add_libraries(cJSON *j) {
    char pcre[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    unsigned xxh = XXH_versionNumber();
    char xxhs[32];
    snprintf(xxhs, sizeof xxhs, "%u.%u.%u", xxh / 10000, xxh / 100 % 100, xxh % 100);
    cJSON *lib = cJSON_AddObjectToObject(j, "libraries");
    cJSON_AddStringToObject(lib, "libyaml", yaml_get_version_string());
    cJSON_AddStringToObject(lib, "cjson", cJSON_Version());
    cJSON_AddStringToObject(lib, "zlib", zlibVersion());
    cJSON_AddStringToObject(lib, "zstd", ZSTD_versionString());
    cJSON_AddStringToObject(lib, "openssl", OpenSSL_version(OPENSSL_VERSION));
    cJSON_AddStringToObject(lib, "libxml2", LIBXML_DOTTED_VERSION);  // the headers built against
    cJSON_AddStringToObject(lib, "pcre2", pcre);
    cJSON_AddStringToObject(lib, "utf8proc", utf8proc_version());
    cJSON_AddStringToObject(lib, "xxhash", xxhs);
    KilnBackendInfo be = backend_info();
    cJSON_AddStringToObject(j, "backend", be.name);
    if (be.blas) {
        cJSON *blas = cJSON_AddObjectToObject(j, be.blas);
        cJSON_AddStringToObject(blas, "config", be.blas_config);
        cJSON_AddStringToObject(blas, "corename", be.blas_core);
        cJSON_AddStringToObject(blas, "corename_why", be.blas_core_why);
        cJSON_AddNumberToObject(blas, "threads", be.blas_threads);
    }
}

// The environment as a JSON object; NULL when out of memory.
static cJSON *env_json(int argc, char **argv, int threads) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kiln_version", kiln_version());
    cJSON_AddStringToObject(j, "git_commit", kiln_git_commit());
    cJSON *cmd = cJSON_AddArrayToObject(j, "command_line");
    for (int i = 0; i < argc && cmd; i++) cJSON_AddItemToArray(cmd, cJSON_CreateString(argv[i]));
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
    cJSON_AddStringToObject(j, "hostname", host);
    struct utsname u;
    cJSON *os = cJSON_AddObjectToObject(j, "os");
    if (uname(&u) == 0) {
        cJSON_AddStringToObject(os, "sysname", u.sysname);
        cJSON_AddStringToObject(os, "release", u.release);
        cJSON_AddStringToObject(os, "version", u.version);
        cJSON_AddStringToObject(os, "machine", u.machine);
    }
    char model[256];
    cJSON *cpu = cJSON_AddObjectToObject(j, "cpu");
    if (backend_cpu_model(model, sizeof model)) cJSON_AddStringToObject(cpu, "model", model);
    else cJSON_AddNullToObject(cpu, "model");
    KilnCpuIsa isa;
    backend_cpu_isa(&isa);
    backend_isa_names(&isa, model, sizeof model);
    cJSON_AddStringToObject(cpu, "isa", model);
    cJSON_AddNumberToObject(cpu, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(j, "threads", threads);
    KilnThreadPlan plan;  // what `kiln env` says: the wait policy in effect and why
    backend_thread_plan(&plan);
    cJSON *omp = cJSON_AddObjectToObject(j, "openmp_wait");
    cJSON_AddStringToObject(omp, "OMP_WAIT_POLICY", plan.wait_policy);
    cJSON_AddStringToObject(omp, "GOMP_SPINCOUNT", plan.spincount);
    cJSON_AddStringToObject(omp, "why", plan.wait_why);
#if defined(__GNUC__) && !defined(__clang__)
    cJSON_AddStringToObject(j, "compiler", "gcc " __VERSION__);  // gcc's __VERSION__ is the number alone
#else
    cJSON_AddStringToObject(j, "compiler", __VERSION__);
#endif
#ifdef _OPENMP
    cJSON_AddNumberToObject(j, "openmp", _OPENMP);  // the spec date, yyyymm
#endif
    add_libraries(j);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char iso[32];
    struct tm tm;
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&ts.tv_sec, &tm));
    cJSON_AddNumberToObject(j, "start_time", (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    cJSON_AddStringToObject(j, "start_time_utc", iso);
    return j;
}

int run_env_write(const char *run_dir, const KilnConfig *cfg, int argc, char **argv, int threads,
                  const KilnPeak *peak, const char *kernel, KilnErr *err) {
    char path[1200];
    if (kiln_mkdirs(run_dir, err)) return -1;
    char *yaml = NULL;
    size_t ylen = 0;
    FILE *mf = open_memstream(&yaml, &ylen);
    if (!mf) return kiln_fail(err, "%s: out of memory", run_dir);
    kiln_config_write_yaml(cfg, mf);
    fclose(mf);
    snprintf(path, sizeof path, "%s/" RUNDIR_CONFIG, run_dir);
    int rc = kiln_write_file_atomic(path, yaml, ylen, "", err);
    free(yaml);
    if (rc) return -1;
    cJSON *j = env_json(argc, argv, threads);
    if (j && peak) {  // the figures MFU is measured against, with their inputs
        cJSON *pk = cJSON_AddObjectToObject(j, "peak_flops");
        cJSON_AddNumberToObject(pk, "used", peak->peak);
        cJSON_AddStringToObject(pk, "used_is", peak->peak_is ? peak->peak_is : "");
        cJSON_AddNumberToObject(pk, "theoretical", peak->theoretical);
        cJSON_AddNumberToObject(pk, "measured", peak->measured);
        cJSON_AddStringToObject(pk, "measured_kernel", kernel);
        cJSON_AddNumberToObject(pk, "cores", peak->cores);
        cJSON_AddNumberToObject(pk, "ghz", peak->ghz);
        cJSON_AddStringToObject(pk, "clock_from", peak->clock_from);
        cJSON_AddNumberToObject(pk, "flops_per_cycle", peak->flops_per_cycle);
        cJSON_AddStringToObject(pk, "flops_per_cycle_why", peak->per_cycle_why);
    }
    snprintf(path, sizeof path, "%s/" RUNDIR_ENV, run_dir);
    rc = j ? kiln_write_json(path, j, err) : kiln_fail(err, "%s: out of memory", path);
    cJSON_Delete(j);
    return rc;
}
