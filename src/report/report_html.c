// report_html.c: `kiln report`: reads a run directory (metrics.jsonl,
// incidents.jsonl, config.yaml, env.json, trainer.pid, heartbeat) and renders
// one self-contained HTML page: summary cards, a chart per series (svg_plot.c),
// the events, the config and the environment.
#include "kiln/report.h"
#include "core/parse.h"
#include "core/rundir.h"
#include "core/utf8.h"
#include "core/yaml.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_SERIES 64        // distinct metric names kept; more are ignored
#define MAX_MINOR_MARKERS 200  // checkpoint ticks drawn only up to this many
#define DETAIL_INLINE 160    // longer event details fold into <details>

// ---------------------------------------------------------------- run data
typedef struct {
    char *name;
    double *x, *y;  // step, value (NaN for null)
    size_t n, cap;
} Series;

typedef struct {
    double step, time;  // time NaN when unknown
    char *kind;
    char *detail;       // compact JSON, or NULL
    int incident;       // from incidents.jsonl (the supervisor)
    size_t order;       // input order, for a stable sort
} Event;

typedef struct {
    Series s[MAX_SERIES];
    int ns;
    Event *ev;
    size_t nev, cap_ev;
    struct { double time, step; } *rec;  // step records with a time: to place incidents that have none
    size_t nrec, cap_rec;
    size_t nrecords;              // step and val records
    double t_first, t_last, step_max;
    int have_time, have_step;
    int metrics_state;            // 0: missing, 1: empty, 2: has lines
    int partial_last;             // a last line still being written was skipped
} Run;

static void run_free(Run *r) {
    for (int i = 0; i < r->ns; i++) free(r->s[i].name), free(r->s[i].x), free(r->s[i].y);
    for (size_t i = 0; i < r->nev; i++) free(r->ev[i].kind), free(r->ev[i].detail);
    free(r->ev), free(r->rec);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

static Series *series_get(Run *r, const char *name) {
    for (int i = 0; i < r->ns; i++)
        if (!strcmp(r->s[i].name, name)) return &r->s[i];
    if (r->ns == MAX_SERIES) return NULL;
    Series *s = &r->s[r->ns];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name))) return NULL;
    r->ns++;
    return s;
}

static const Series *series_find(const Run *r, const char *name) {
    for (int i = 0; i < r->ns; i++)
        if (!strcmp(r->s[i].name, name) && r->s[i].n) return &r->s[i];
    return NULL;
}

// A point at step x. A step at or before the last one means a resumed run
// rewrote it: later records win, as in TensorBoard.
static int series_add(Series *s, double x, double y) {
    while (s->n > 0 && s->x[s->n - 1] >= x) s->n--;
    size_t cap = s->cap;
    if (grow((void **)&s->x, &cap, s->n + 1, sizeof *s->x)) return -1;
    cap = s->cap;
    if (grow((void **)&s->y, &cap, s->n + 1, sizeof *s->y)) return -1;
    s->cap = cap;
    s->x[s->n] = x, s->y[s->n] = y, s->n++;
    return 0;
}

static int event_add(Run *r, double step, double time, const char *kind, const cJSON *detail, int incident) {
    if (grow((void **)&r->ev, &r->cap_ev, r->nev + 1, sizeof *r->ev)) return -1;
    Event *e = &r->ev[r->nev];
    memset(e, 0, sizeof *e);
    e->step = step, e->time = time, e->incident = incident, e->order = r->nev;
    e->kind = strdup(kind);
    if (detail && !(e->detail = cJSON_PrintUnformatted(detail))) return free(e->kind), -1;
    if (!e->kind) return free(e->detail), -1;
    r->nev++;
    return 0;
}

static void note_time(Run *r, double t) {
    if (!isfinite(t)) return;
    if (!r->have_time || t < r->t_first) r->t_first = t;
    if (!r->have_time || t > r->t_last) r->t_last = t;
    r->have_time = 1;
}

// One JSON object from line[0..n), nothing but spaces after it; NULL otherwise.
static cJSON *parse_object(const char *line, size_t n) {
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, n, &end, 0);
    if (!o) return NULL;
    while (end && end < line + n && isspace((unsigned char)*end)) end++;
    if (!cJSON_IsObject(o) || !end || end != line + n) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static double num_or_nan(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}

// One metrics.jsonl record: an event, or step/val values by name.
static int metrics_record(Run *r, const cJSON *o, const char *path, long lineno, KilnErr *err) {
    double step = num_or_nan(o, "step"), t = num_or_nan(o, "time");
    if (!(step >= 0 && step <= 1e15)) return kiln_fail(err, "%s:%ld: no \"step\" number (0 or more)", path, lineno);
    note_time(r, t);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "event");
    if (ev) {
        if (!cJSON_IsString(ev)) return kiln_fail(err, "%s:%ld: \"event\" is not a string", path, lineno);
        if (event_add(r, step, t, ev->valuestring, cJSON_GetObjectItemCaseSensitive(o, "detail"), 0))
            return kiln_fail(err, "%s:%ld: out of memory", path, lineno);
        return 0;
    }
    r->nrecords++;
    if (isfinite(t)) {
        if (grow((void **)&r->rec, &r->cap_rec, r->nrec + 1, sizeof *r->rec))
            return kiln_fail(err, "%s:%ld: out of memory", path, lineno);
        r->rec[r->nrec].time = t, r->rec[r->nrec++].step = step;
    }
    for (const cJSON *v = o->child; v; v = v->next) {
        if (!v->string || !strcmp(v->string, "step") || !strcmp(v->string, "time")) continue;
        if (!cJSON_IsNumber(v) && !cJSON_IsNull(v)) continue;  // strings, flags: not a series
        Series *s = series_get(r, v->string);
        double y = cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
        if (s && series_add(s, step, y)) return kiln_fail(err, "%s:%ld: out of memory", path, lineno);
    }
    return 0;
}

// The step a supervisor incident happened at: its own "step" (or its detail's:
// the last heartbeat's), else that of the last step record written before its
// time, else the first step.
static double incident_step(const Run *r, const cJSON *o) {
    double step = num_or_nan(o, "step"), t = num_or_nan(o, "time");
    if (!(step >= 0 && step <= 1e15)) step = num_or_nan(cJSON_GetObjectItemCaseSensitive(o, "detail"), "step");
    if (step >= 0 && step <= 1e15) return step;
    double best = r->nrec ? r->rec[0].step : 0;
    for (size_t i = 0; i < r->nrec && isfinite(t); i++)
        if (r->rec[i].time <= t) best = r->rec[i].step;
    return best;
}

static int incident_record(Run *r, cJSON *o, const char *path, long lineno, KilnErr *err) {
    static const char *const kind_keys[] = {"event", "kind", "type", "reason", "what"};
    double step = incident_step(r, o), t = num_or_nan(o, "time");
    note_time(r, t);
    char kind[128] = "incident";
    for (size_t k = 0; k < sizeof kind_keys / sizeof *kind_keys; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(o, kind_keys[k]);
        if (cJSON_IsString(v)) {
            snprintf(kind, sizeof kind, "%s", v->valuestring);
            cJSON_DeleteItemFromObjectCaseSensitive(o, kind_keys[k]);
            break;
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "step");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "time");
    // {"time","kind","detail":{...}} (supervise.c): the detail alone; other shapes: the rest of the object
    const cJSON *detail = o->child && !o->child->next && o->child->string && !strcmp(o->child->string, "detail")
                              ? o->child
                              : o->child ? o : NULL;
    if (event_add(r, step, t, kind, detail, 1)) return kiln_fail(err, "%s:%ld: out of memory", path, lineno);
    return 0;
}

typedef int (*RecordFn)(Run *r, cJSON *o, const char *path, long lineno, KilnErr *err);

static int metrics_fn(Run *r, cJSON *o, const char *path, long lineno, KilnErr *err) {
    return metrics_record(r, o, path, lineno, err);
}

// Every line of a JSONL file through fn. *state: 0 missing, 1 empty, 2 lines.
// A last line without its newline that does not parse is being written now.
static int read_jsonl(Run *r, const char *path, RecordFn fn, int *state, KilnErr *err) {
    char *data = NULL;
    size_t len = 0;
    struct stat st;
    *state = 0;
    if (stat(path, &st) && errno == ENOENT) return 0;
    if (kiln_read_file(path, &data, &len, err)) return -1;
    *state = 1;
    long lineno = 0;
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t j = i;
        while (j < len && data[j] != '\n') j++;
        lineno++;
        size_t e = j;
        while (e > i && isspace((unsigned char)data[e - 1])) e--;
        size_t b = i;
        while (b < e && isspace((unsigned char)data[b])) b++;
        if (b < e) {
            *state = 2;
            cJSON *o = parse_object(data + b, e - b);
            if (!o && j == len) {
                r->partial_last = 1;
            } else if (!o) {
                rc = kiln_fail(err, "%s:%ld: not a JSON object", path, lineno);
            } else {
                rc = fn(r, o, path, lineno, err);
                cJSON_Delete(o);
            }
        }
        i = j + 1;
    }
    free(data);
    return rc;
}

// The last step of the run as it stands: records a resume rewrote do not count.
static void find_last_step(Run *r) {
    for (int i = 0; i < r->ns; i++)
        if (r->s[i].n && (!r->have_step || r->s[i].x[r->s[i].n - 1] > r->step_max))
            r->step_max = r->s[i].x[r->s[i].n - 1], r->have_step = 1;
    for (size_t i = 0; i < r->nev; i++)
        if (!r->have_step || r->ev[i].step > r->step_max) r->step_max = r->ev[i].step, r->have_step = 1;
}

static int event_cmp(const void *a, const void *b) {
    const Event *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    if (x->incident != y->incident) return x->incident - y->incident;
    return x->order < y->order ? -1 : x->order > y->order;
}

// ---------------------------------------------------------------- text helpers
int html_escape(KilnBuf *b, const char *s, size_t n) {
    static const char fffd[] = "\xEF\xBF\xBD";
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            switch (c) {
            case '&': rc = kbuf_puts(b, "&amp;"); break;
            case '<': rc = kbuf_puts(b, "&lt;"); break;
            case '>': rc = kbuf_puts(b, "&gt;"); break;
            case '"': rc = kbuf_puts(b, "&quot;"); break;
            case '\'': rc = kbuf_puts(b, "&#39;"); break;
            default: rc = (c < 0x20 && c != '\t' && c != '\n') || c == 0x7F ? kbuf_puts(b, fffd) : kbuf_putc(b, (char)c);
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_decode(s + i, n - i, &cp);
        if (k) {
            rc = kbuf_append(b, s + i, k);
            i += k;
        } else {
            rc = kbuf_puts(b, fffd);
            i++;
        }
    }
    return rc;
}

static int esc(KilnBuf *b, const char *s) { return s ? html_escape(b, s, strlen(s)) : 0; }

// s cut to at most max bytes on a character boundary, "…" added when cut (malloc'd).
static char *truncated(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max) return strdup(s);
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    char *t = malloc(max + 4);
    if (!t) return NULL;
    memcpy(t, s, max);
    memcpy(t + max, "\xE2\x80\xA6", 4);
    return t;
}

static void fmt_commas(char *buf, size_t n, double v) {
    char digits[64];
    snprintf(digits, sizeof digits, "%.0f", fabs(v) < 1e18 ? fabs(v) : 1e18);
    size_t len = strlen(digits), o = 0;
    if (v < 0 && o + 1 < n) buf[o++] = '-';
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

// 1234567 -> "1.23M"; below 1000 as an integer or with 3 significant digits.
static void fmt_si(char *buf, size_t n, double v) {
    static const char *const suffix[] = {"", "k", "M", "B", "T"};
    double a = fabs(v);
    int u = 0;
    while (a >= 999.5 && u < 4) a /= 1000, v /= 1000, u++;
    if (u == 0 && v == floor(v)) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%.*f%s", a >= 99.95 ? 0 : a >= 9.995 ? 1 : 2, v, suffix[u]);
}

// s comes from the run's own clock readings, which an edited or damaged
// metrics.jsonl can make anything: past a century it is no duration (and past
// a long, converting it would be undefined behaviour).
static void fmt_duration(char *buf, size_t n, double s) {
    if (!(s >= 0) || !(s < 100 * 365.25 * 86400)) {
        snprintf(buf, n, "—");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 86400) snprintf(buf, n, "%ldd %ldh %02ldm", t / 86400, t % 86400 / 3600, t % 3600 / 60);
    else if (t >= 3600) snprintf(buf, n, "%ldh %02ldm %02lds", t / 3600, t % 3600 / 60, t % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm %02lds", t / 60, t % 60);
    else snprintf(buf, n, "%.1fs", s);
}

// t is NaN for an event without a time: range-check before the cast, as
// converting NaN or a double past time_t's range is undefined behaviour.
static void fmt_utc(char *buf, size_t n, double t) {
    struct tm tm;
    if (!(t >= 0 && t <= 32503680000.0)) {  // NaN fails both comparisons
        snprintf(buf, n, "—");
        return;
    }
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, n, "—");
        return;
    }
    strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

// ---------------------------------------------------------------- run state
typedef enum { ST_EMPTY, ST_RUNNING, ST_FINISHED, ST_STOPPED } Status;
static const char *const STATUS_NAME[] = {"no data", "running", "finished", "stopped"};

typedef struct {
    Status status;
    char detail[256];
    double target_steps;  // train.steps from config.yaml, NaN when unknown
} RunState;

static int file_text(const char *dir, const char *name, char **data, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    KilnErr e;
    return kiln_read_file(path, data, len, &e);
}

// The trainer runs while the process named by RUN/trainer.pid exists.
static int trainer_alive(const char *dir, long *pid_out) {
    long pid;
    if (rundir_read_pid(dir, &pid)) return 0;
    *pid_out = pid;
    if (pid <= 1 || pid > 1L << 30) return 0;  // never kill(0 or -1, ...)
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static const char *last_event_kind(const Run *r) { return r->nev ? r->ev[r->nev - 1].kind : ""; }

static int is_finish_kind(const char *k) {
    return !strcmp(k, "finish") || !strcmp(k, "finished") || !strcmp(k, "done") || !strcmp(k, "end") ||
           !strcmp(k, "complete");
}

static void run_state(const char *dir, const Run *r, RunState *st) {
    long pid = 0;
    double last_step = r->have_step ? r->step_max : NAN;
    const char *last = last_event_kind(r);
    KilnHeartbeat hb;
    double hb_time = rundir_read_heartbeat(dir, &hb) ? NAN : hb.time;  // none or odd: no age shown
    if (trainer_alive(dir, &pid)) {
        st->status = ST_RUNNING;
        int k = snprintf(st->detail, sizeof st->detail, "trainer pid %ld", pid);
        double age = fmax(0, (double)time(NULL) - hb_time);
        if (isfinite(hb_time) && k > 0)  // the supervisor's default hang timeout is 300 s
            snprintf(st->detail + k, sizeof st->detail - (size_t)k, " · heartbeat %.0fs ago%s", age,
                     age > 300 ? " (hung?)" : "");
    } else if (!r->have_step) {
        st->status = ST_EMPTY;
        snprintf(st->detail, sizeof st->detail, "no records yet");
    } else if ((isfinite(st->target_steps) && last_step >= st->target_steps) || is_finish_kind(last)) {
        st->status = ST_FINISHED;
        snprintf(st->detail, sizeof st->detail, "reached step %.0f", last_step);
    } else {
        st->status = ST_STOPPED;
        if (!strcmp(last, "stop") || !strcmp(last, "error"))
            snprintf(st->detail, sizeof st->detail, "%s event at step %.0f", last, r->ev[r->nev - 1].step);
        else
            snprintf(st->detail, sizeof st->detail, "no stop event after step %.0f: killed or crashed?", last_step);
    }
}

// ---------------------------------------------------------------- config.yaml
typedef struct {
    char key[256];
    char value[1024];
} KeyVal;

// A config key as a table row takes: a plain scalar of letters, digits, '_', '-', '.'.
static int row_key(const KyNode *k) {
    if (k->type != KY_SCALAR || k->style || !k->str[0]) return 0;
    for (const char *c = k->str; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.') return 0;
    return 1;
}

// One "prefix.key" = value row; a quoted value is shown in its quotes, as written.
static int add_row(KeyVal **rows, size_t *nrows, size_t *cap, const char *prefix, const KyNode *k, const KyNode *v) {
    if (grow((void **)rows, cap, *nrows + 1, sizeof **rows)) return -1;
    KeyVal *kv = &(*rows)[(*nrows)++];
    snprintf(kv->key, sizeof kv->key, "%s%s%s", prefix, *prefix ? "." : "", k->str);
    const char *q = ky_quoted(v) ? (v->style == '"' ? "\"" : "'") : "";
    snprintf(kv->value, sizeof kv->value, "%s%s%s", q, v->str, q);
    return 0;
}

// config.yaml as kiln_config_write_yaml writes it ("section:\n  key: value")
// into "section.key" = "value" rows; -1 when the file has another shape (then
// it is shown as text).
static int yaml_rows(const char *text, KeyVal **rows, size_t *nrows) {
    KilnYaml y;
    KilnErr err;
    size_t cap = 0;
    *rows = NULL, *nrows = 0;
    if (ky_parse(&y, text, strlen(text), "config.yaml", KY_NO_ALIASES, &err)) return -1;
    const KyNode *root = ky_root(&y);
    int rc = y.ndocs > 1 || (root && root->type != KY_MAP && (root->type != KY_SCALAR || root->str[0])) ? -1 : 0;
    for (int i = 0; !rc && root && root->type == KY_MAP && i < root->nkids; i += 2) {
        const KyNode *k = root->kids[i], *v = root->kids[i + 1];
        if (!row_key(k) || v->type == KY_SEQ) rc = -1;
        else if (v->type == KY_SCALAR && (v->str[0] || v->style)) rc = add_row(rows, nrows, &cap, "", k, v);
        for (int j = 0; !rc && v->type == KY_MAP && j < v->nkids; j += 2) {
            if (!row_key(v->kids[j]) || v->kids[j + 1]->type != KY_SCALAR) rc = -1;
            else rc = add_row(rows, nrows, &cap, k->str, v->kids[j], v->kids[j + 1]);
        }
    }
    ky_free(&y);
    return rc;
}

static double config_steps(const KeyVal *rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v;
        if (!strcmp(rows[i].key, "train.steps")) return !kiln_parse_double(rows[i].value, &v) && v > 0 ? v : NAN;
    }
    return NAN;
}

// ---------------------------------------------------------------- env.json
// Flattens nested objects to "a.b" rows; arrays of scalars become one line.
static int env_rows(const cJSON *o, const char *prefix, KeyVal **rows, size_t *n, size_t *cap) {
    for (const cJSON *v = o->child; v; v = v->next) {
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", v->string ? v->string : "?");
        if (cJSON_IsObject(v) && v->child) {
            if (env_rows(v, key, rows, n, cap)) return -1;
            continue;
        }
        if (grow((void **)rows, cap, *n + 1, sizeof **rows)) return -1;
        KeyVal *kv = &(*rows)[(*n)++];
        snprintf(kv->key, sizeof kv->key, "%s", key);
        kv->value[0] = 0;
        if (cJSON_IsString(v)) {
            snprintf(kv->value, sizeof kv->value, "%s", v->valuestring);
        } else if (cJSON_IsNumber(v)) {
            double d = v->valuedouble;
            if (d == floor(d) && fabs(d) < 1e15) snprintf(kv->value, sizeof kv->value, "%.0f", d);
            else if (fabs(d) >= 1e5 && fabs(d) < 1e15) snprintf(kv->value, sizeof kv->value, "%.3f", d);  // clocks
            else snprintf(kv->value, sizeof kv->value, "%.9g", d);
            // unix times (a key ending in "time", after 2001) also as a date
            size_t kl = strlen(key);
            if (kl >= 4 && !strcmp(key + kl - 4, "time") && d > 1e9 && d < 1e10) {
                char utc[64];
                fmt_utc(utc, sizeof utc, d);
                size_t l = strlen(kv->value);
                snprintf(kv->value + l, sizeof kv->value - l, " (%s)", utc);
            }
        } else if (cJSON_IsArray(v)) {
            int scalars = 1;
            for (const cJSON *a = v->child; a; a = a->next) scalars &= !cJSON_IsObject(a) && !cJSON_IsArray(a);
            size_t l = 0;
            for (const cJSON *a = v->child; a && scalars && l < sizeof kv->value - 1; a = a->next) {
                char *s = cJSON_IsString(a) ? NULL : cJSON_PrintUnformatted(a);
                const char *t = cJSON_IsString(a) ? a->valuestring : s ? s : "";
                int quote = !*t || strpbrk(t, " \t\"'") != NULL;
                l += (size_t)snprintf(kv->value + l, sizeof kv->value - l, "%s%s%s%s", l ? " " : "", quote ? "'" : "",
                                      t, quote ? "'" : "");
                free(s);
            }
            if (!scalars) {
                char *s = cJSON_PrintUnformatted(v);
                snprintf(kv->value, sizeof kv->value, "%s", s ? s : "");
                free(s);
            }
        } else {
            char *s = cJSON_PrintUnformatted(v);
            snprintf(kv->value, sizeof kv->value, "%s", s ? s : "");
            free(s);
        }
    }
    return 0;
}

// The first row whose last key component is one of names (NULL-terminated).
static const char *env_find(const KeyVal *rows, size_t n, const char *const *names) {
    for (const char *const *nm = names; *nm; nm++)
        for (size_t i = 0; i < n; i++) {
            const char *dot = strrchr(rows[i].key, '.');
            if (!strcmp(dot ? dot + 1 : rows[i].key, *nm) && rows[i].value[0]) return rows[i].value;
        }
    return NULL;
}

// ---------------------------------------------------------------- the page
static const char CSS[] =
    "*{box-sizing:border-box}"
    "body{margin:0;background:#f4f5f7;color:#1f2328;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,"
    "'Helvetica Neue',Arial,sans-serif}"
    "main{max-width:1200px;margin:0 auto;padding:20px 24px 40px}"
    "header{display:flex;align-items:center;gap:12px;flex-wrap:wrap}"
    "h1{font-size:22px;margin:0;font-weight:650;word-break:break-all}"
    "h2{font-size:15px;margin:28px 0 10px;font-weight:650;color:#30363d}"
    "h3{font-size:13px;margin:0;font-weight:600}"
    ".sub{color:#656d76;font-size:12.5px;margin:4px 0 16px;word-break:break-all}"
    ".badge{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600;"
    "color:#fff;text-transform:uppercase;letter-spacing:.04em}"
    ".st-running{background:#1c7ed6}.st-finished{background:#2b8a3e}.st-stopped{background:#e8590c}"
    ".st-empty{background:#868e96}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}"
    ".card{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:10px 14px}"
    ".card .k{color:#656d76;font-size:11.5px;text-transform:uppercase;letter-spacing:.05em}"
    ".card .v{font-size:20px;font-weight:600;margin-top:2px;font-variant-numeric:tabular-nums}"
    ".card .d{color:#656d76;font-size:12px;margin-top:1px}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}"
    ".chart{padding:10px 10px 4px}"
    ".chead{display:flex;align-items:baseline;gap:10px;padding:0 4px 4px}"
    ".chead .last{margin-left:auto;color:#656d76;font-size:12px;font-variant-numeric:tabular-nums}"
    ".legend{font-size:12px;color:#656d76}"
    ".legend i{display:inline-block;width:14px;height:3px;border-radius:2px;vertical-align:middle;margin:0 4px 0 8px}"
    "svg{display:block;width:100%;height:auto;font-size:11px}"
    "svg .grid{stroke:#eef0f2;stroke-width:1}svg .axis{stroke:#c9ced4;stroke-width:1}"
    "svg .tick{fill:#8c959f;font-variant-numeric:tabular-nums}"
    "svg .line{fill:none;stroke-width:1.8;stroke-linejoin:round;stroke-linecap:round}"
    "svg .raw{stroke-width:1.2;opacity:.4}"
    "svg .nodata{fill:#8c959f;font-size:13px}"
    "svg .hit{stroke:transparent;stroke-width:10}svg .ev:hover line{stroke-width:2.5}"
    ".ylog{display:none}#logy:checked~.grid .ylog{display:block}#logy:checked~.grid .ylin{display:none}"
    ".tgl{margin:0 6px 10px 0;vertical-align:middle}.tglbl{color:#656d76;font-size:12.5px;vertical-align:middle}"
    ".notice{background:#fff8e6;border:1px solid #f1d48a;border-radius:8px;padding:14px 16px;color:#5c4400}"
    "table{border-collapse:collapse;width:100%;background:#fff;font-size:12.5px}"
    "th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #eef0f2;vertical-align:top}"
    "th{background:#f6f8fa;color:#57606a;font-weight:600;position:sticky;top:0}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "td.nowrap{white-space:nowrap}"
    "td.key{color:#57606a;white-space:nowrap}td.val{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,monospace;"
    "word-break:break-all}"
    "tr.sec td{background:#fafbfc;font-weight:600;color:#30363d}"
    ".tbl{border:1px solid #e1e4e8;border-radius:8px;overflow:auto}.tbl.events{max-height:460px}"
    ".kind{display:inline-block;border:1px solid;border-radius:4px;padding:0 6px;font-size:11.5px;"
    "font-weight:600;white-space:nowrap}"
    "code,pre{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,monospace;font-size:12px;word-break:break-all;"
    "white-space:pre-wrap}"
    "pre{margin:6px 0 0}summary{cursor:pointer}"
    ".cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px}"
    ".counts{color:#656d76;font-size:12.5px;margin:-4px 0 8px}"
    "footer{color:#8c959f;font-size:12px;margin-top:28px}";

// Each chart: the metric, its title, colour, whether it gets the log toggle,
// and whether it is noisy (drawn faint with a moving average over it).
typedef struct {
    const char *name, *title, *color;
    int log_toggle, smooth;
} ChartDef;
static const ChartDef KNOWN[] = {
    {"loss", "Loss", "#3b5bdb", 1, 1},
    {"lr", "Learning rate", "#0c8599", 0, 0},
    {"grad_norm", "Gradient norm", "#c2255c", 1, 1},
    {"tokens_per_s", "Throughput (tokens/s)", "#2f9e44", 0, 1},
    {"batch_tokens", "Batch size (tokens)", "#7950f2", 0, 0},
    {"mfu", "MFU (model FLOPs utilisation)", "#e67700", 0, 1},
    {"peak_rss_mb", "Peak resident memory per step (MiB)", "#495057", 0, 0},
};
#define VAL_COLOR "#f76707"
static const char *const EXTRA_COLORS[] = {"#1098ad", "#9c36b5", "#5c940d", "#d6336c", "#1864ab", "#a61e4d"};
// Not charted on their own: the x axis, the clock, a running total, val_loss (drawn with loss).
static const char *const NOT_CHARTED[] = {"step", "time", "tokens", "ms", "val_loss"};

static const char *event_color(const Event *e) {
    const char *k = e->kind;
    if (e->incident) return "#ae3ec9";
    if (!strcmp(k, "spike") || !strcmp(k, "rollback") || !strcmp(k, "skip") || !strcmp(k, "error"))
        return "#e03131";
    if (!strcmp(k, "restart") || !strcmp(k, "resume")) return "#ae3ec9";
    if (!strcmp(k, "control")) return "#0ca678";
    if (!strcmp(k, "stop")) return "#495057";
    if (!strcmp(k, "checkpoint")) return "#adb5bd";
    return "#868e96";
}

static double last_finite(const Series *s, double *at) {
    for (size_t i = s ? s->n : 0; i-- > 0;)
        if (isfinite(s->y[i])) return *at = s->x[i], s->y[i];
    return NAN;
}

static double min_finite(const Series *s, double *at) {
    double best = NAN;
    for (size_t i = 0; s && i < s->n; i++)
        if (isfinite(s->y[i]) && !(s->y[i] >= best)) best = s->y[i], *at = s->x[i];
    return best;
}

// ---------------------------------------------------------------- RUN/eval
static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Every RUN/eval/*.json that `kiln eval --model RUN` kept (or a user put there),
// in name order: checkpoint, then time. A file that is not a results object
// ({"results": [...]}) is bad input, named.
static int load_evals(const char *dir, cJSON ***evals, char ***files, int *n, KilnErr *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/" RUNDIR_EVAL, dir);
    *evals = NULL, *files = NULL, *n = 0;
    DIR *d = opendir(path);
    if (!d) return 0;  // none yet
    size_t cap = 0;
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 6 || strcmp(e->d_name + l - 5, ".json")) continue;
        if (grow((void **)files, &cap, (size_t)*n + 1, sizeof **files)) rc = -1;
        else if (!((*files)[*n] = strdup(e->d_name))) rc = -1;
        else (*n)++;
    }
    closedir(d);
    if (rc) return kiln_fail(err, "%s: out of memory", path);
    qsort(*files, (size_t)*n, sizeof **files, name_cmp);
    *evals = calloc((size_t)*n + 1, sizeof **evals);
    if (!*evals) return kiln_fail(err, "%s: out of memory", path);
    for (int i = 0; i < *n; i++) {
        char *text = NULL, name[4400];
        size_t len;
        snprintf(name, sizeof name, "%s/%s", RUNDIR_EVAL, (*files)[i]);
        if (file_text(dir, name, &text, &len)) return kiln_fail(err, "%s/%s: cannot read", dir, name);
        cJSON *o = cJSON_ParseWithLength(text, len);
        free(text);
        if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "results"))) {
            cJSON_Delete(o);
            return kiln_fail(err, "%s/%s: not a kiln eval results file (an object with \"results\": [...])", dir,
                             name);
        }
        (*evals)[i] = o;
    }
    return 0;
}

static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

// ---------------------------------------------------------------- sessions
// A run trained in sessions (a start, then resumes) with idle gaps between
// them; each session spans from its start or resume event to the last record
// before the next one. Wall time counts the gaps, training time does not.
typedef struct {
    const Event *ev;     // its start/resume event; NULL for a run that logged none
    double start, end;   // unix times
} Session;

static int is_session_event(const Event *e) {
    return !e->incident && isfinite(e->time) && (!strcmp(e->kind, "start") || !strcmp(e->kind, "resume"));
}

static int session_cmp(const void *a, const void *b) {
    double x = ((const Session *)a)->start, y = ((const Session *)b)->start;
    return x < y ? -1 : x > y;
}

static void session_note(Session *s, int n, double t) {
    if (!isfinite(t) || n == 0) return;
    int k = 0;
    while (k + 1 < n && s[k + 1].start <= t) k++;
    if (t < s[k].start) s[k].start = t;  // before the first start (an older run's records)
    if (t > s[k].end) s[k].end = t;
}

// The sessions in time order (*out malloc'd); 0 sessions when nothing has a time.
static int find_sessions(const Run *r, Session **out, int *n) {
    *out = NULL, *n = 0;
    size_t cap = 1;
    for (size_t i = 0; i < r->nev; i++) cap += is_session_event(&r->ev[i]);
    Session *s = calloc(cap, sizeof *s);
    if (!s) return -1;
    int k = 0;
    for (size_t i = 0; i < r->nev; i++)
        if (is_session_event(&r->ev[i])) s[k].ev = &r->ev[i], s[k].start = s[k].end = r->ev[i].time, k++;
    if (k == 0 && r->have_time) s[k].start = s[k].end = r->t_first, k++;
    qsort(s, (size_t)k, sizeof *s, session_cmp);
    for (size_t i = 0; i < r->nrec; i++) session_note(s, k, r->rec[i].time);
    for (size_t i = 0; i < r->nev; i++)
        if (!r->ev[i].incident) session_note(s, k, r->ev[i].time);
    *out = s, *n = k;
    return 0;
}

typedef struct {
    const char *run_dir;
    char name[512];
    Run run;
    RunState state;
    KeyVal *cfg;
    size_t ncfg;
    int cfg_ok;          // 1: rows; 0: shown as text; -1: missing
    char *cfg_text;
    KeyVal *env;
    size_t nenv;
    int env_state;       // -1 missing, 0 not JSON, 1 rows
    int incidents_state;
    SvgMarker *markers;
    int nmarkers;
    char **marker_titles;
    Session *sessions;
    int nsessions;
    cJSON **evals;           // RUN/eval/*.json (kiln eval --model RUN), by file name
    char **eval_files;
    int nevals;
    int ref;                 // the chart being drawn gets a reference line (chance level)
    double ref_y;
    const char *ref_label;
} Page;

static int card(KilnBuf *b, const char *k, const char *v, const char *d) {
    int rc = kbuf_puts(b, "<div class=\"card\"><div class=\"k\">");
    rc |= esc(b, k);
    rc |= kbuf_puts(b, "</div><div class=\"v\">");
    rc |= esc(b, v);
    rc |= kbuf_puts(b, "</div><div class=\"d\">");
    rc |= esc(b, d ? d : "");
    return rc | kbuf_puts(b, "</div></div>");
}

static int render_header(KilnBuf *b, const Page *p) {
    const Run *r = &p->run;
    char v1[128], d1[256], t[64];
    int rc = kbuf_puts(b, "<header><h1>");
    rc |= esc(b, p->name);
    rc |= kbuf_printf(b, "</h1><span class=\"badge st-%s\">%s</span></header><div class=\"sub\">",
                      p->state.status == ST_EMPTY ? "empty" : STATUS_NAME[p->state.status],
                      STATUS_NAME[p->state.status]);
    rc |= esc(b, p->run_dir);
    static const char *const ver[] = {"kiln_version", "version", NULL}, *const com[] = {"git_commit", "commit", NULL},
                             *const host[] = {"host", "hostname", NULL};
    const char *v = env_find(p->env, p->nenv, ver), *c = env_find(p->env, p->nenv, com),
               *h = env_find(p->env, p->nenv, host);
    if (v) rc |= kbuf_puts(b, " · kiln "), rc |= esc(b, v);
    if (c) rc |= kbuf_puts(b, " · commit "), rc |= esc(b, c);
    if (h) rc |= kbuf_puts(b, " · host "), rc |= esc(b, h);
    if (r->have_time) fmt_utc(t, sizeof t, r->t_first), rc |= kbuf_printf(b, " · started %s", t);
    rc |= kbuf_puts(b, "</div><div class=\"cards\">");
    double at = 0;
    rc |= card(b, "Status", STATUS_NAME[p->state.status], p->state.detail);
    if (r->have_step) fmt_commas(v1, sizeof v1, r->step_max);
    else snprintf(v1, sizeof v1, "—");
    d1[0] = 0;
    if (isfinite(p->state.target_steps)) {
        fmt_commas(t, sizeof t, p->state.target_steps);
        snprintf(d1, sizeof d1, "of %s (%.0f%%)", t, 100 * (r->have_step ? r->step_max : 0) / p->state.target_steps);
    }
    rc |= card(b, "Steps", v1, d1);
    double tok = last_finite(series_find(r, "tokens"), &at), bt = last_finite(series_find(r, "batch_tokens"), &at);
    if (isfinite(tok)) fmt_si(v1, sizeof v1, tok);
    else snprintf(v1, sizeof v1, "—");
    d1[0] = 0;
    if (isfinite(bt)) fmt_si(t, sizeof t, bt), snprintf(d1, sizeof d1, "%s per step (last)", t);
    rc |= card(b, "Tokens", v1, d1);
    double loss = last_finite(series_find(r, "loss"), &at);
    snprintf(v1, sizeof v1, isfinite(loss) ? "%.4f" : "—", loss);
    d1[0] = 0;
    if (isfinite(loss)) snprintf(d1, sizeof d1, "at step %.0f", at);
    rc |= card(b, "Final loss", v1, d1);
    double vl = min_finite(series_find(r, "val_loss"), &at);
    snprintf(v1, sizeof v1, isfinite(vl) ? "%.4f" : "—", vl);
    snprintf(d1, sizeof d1, isfinite(vl) ? "at step %.0f" : "no validation yet", at);
    rc |= card(b, "Best val loss", v1, d1);
    double train = 0;
    for (int i = 0; i < p->nsessions; i++) train += p->sessions[i].end - p->sessions[i].start;
    fmt_duration(v1, sizeof v1, p->nsessions ? train : NAN);
    fmt_duration(t, sizeof t, r->have_time ? r->t_last - r->t_first : NAN);
    if (p->nsessions > 1) snprintf(d1, sizeof d1, "in %d sessions; %s wall, with the gaps", p->nsessions, t);
    else snprintf(d1, sizeof d1, "%s", p->nsessions ? "one session" : "");
    rc |= card(b, "Training time", v1, d1);
    double tps = last_finite(series_find(r, "tokens_per_s"), &at), mfu = last_finite(series_find(r, "mfu"), &at);
    if (isfinite(tps)) fmt_si(t, sizeof t, tps), snprintf(v1, sizeof v1, "%s tok/s", t);
    else snprintf(v1, sizeof v1, "—");
    snprintf(d1, sizeof d1, isfinite(mfu) ? "MFU %.1f%% (last)" : "last logged", 100 * mfu);
    rc |= card(b, "Throughput", v1, d1);
    return rc | kbuf_puts(b, "</div>");
}

// Events with their counts by kind: "2 spike · 1 rollback".
static int event_counts(KilnBuf *b, const Run *r) {
    int rc = 0, first = 1;
    for (size_t i = 0; i < r->nev; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = r->ev[j].incident == r->ev[i].incident && !strcmp(r->ev[j].kind, r->ev[i].kind);
        if (seen) continue;
        size_t c = 0;
        for (size_t j = i; j < r->nev; j++)
            c += r->ev[j].incident == r->ev[i].incident && !strcmp(r->ev[j].kind, r->ev[i].kind);
        rc |= kbuf_printf(b, "%s%zu ", first ? "" : " · ", c);
        rc |= esc(b, r->ev[i].kind);
        if (r->ev[i].incident) rc |= kbuf_puts(b, " (supervisor)");
        first = 0;
    }
    return rc;
}

static int build_markers(Page *p) {
    const Run *r = &p->run;
    size_t minor = 0;
    for (size_t i = 0; i < r->nev; i++) minor += !strcmp(r->ev[i].kind, "checkpoint") && !r->ev[i].incident;
    p->markers = calloc(r->nev + 1, sizeof *p->markers);
    p->marker_titles = calloc(r->nev + 1, sizeof *p->marker_titles);
    if (!p->markers || !p->marker_titles) return -1;
    for (size_t i = 0; i < r->nev; i++) {
        const Event *e = &r->ev[i];
        int is_minor = !strcmp(e->kind, "checkpoint") && !e->incident;
        if (is_minor && minor > MAX_MINOR_MARKERS) continue;
        char *d = e->detail ? truncated(e->detail, 200) : NULL;
        size_t n = strlen(e->kind) + (d ? strlen(d) : 0) + 64;
        char *t = malloc(n);
        if (!t) return free(d), -1;
        snprintf(t, n, "step %.0f: %s%s%s%s", e->step, e->kind, e->incident ? " (supervisor)" : "", d ? " " : "",
                 d ? d : "");
        free(d);
        p->marker_titles[p->nmarkers] = t;
        p->markers[p->nmarkers++] = (SvgMarker){e->step, event_color(e), t, is_minor};
    }
    return 0;
}

static int chart_card(KilnBuf *b, Page *p, int *id, const char *title, const SvgSeries *ser, int nser,
                      const char *const *labels, int log_toggle, const char *metric) {
    const Run *r = &p->run;
    double x0 = 0, x1 = r->step_max;
    for (size_t i = 0; i < r->nev; i++) x1 = fmax(x1, r->ev[i].step);
    int rc = kbuf_puts(b, "<div class=\"card chart\"><div class=\"chead\"><h3>");
    rc |= esc(b, title);
    rc |= kbuf_puts(b, "</h3>");
    if (nser > 1) {
        rc |= kbuf_puts(b, "<span class=\"legend\">");
        for (int s = 0; s < nser; s++) {
            rc |= kbuf_printf(b, "<i style=\"background:%s\"></i>", ser[s].color);
            rc |= esc(b, labels[s]);
        }
        rc |= kbuf_puts(b, "</span>");
    }
    double at = 0, last = NAN;
    const Series *s0 = series_find(r, metric);
    if (s0) last = last_finite(s0, &at);
    if (isfinite(last)) {
        char v[64], step[64];
        if (fabs(last) >= 1e4) fmt_si(v, sizeof v, last);
        else snprintf(v, sizeof v, "%.5g", last);
        fmt_commas(step, sizeof step, at);
        rc |= kbuf_printf(b, "<span class=\"last\">%s at step %s</span>", v, step);
    }
    rc |= kbuf_puts(b, "</div>");
    SvgChart c = {.id = (*id)++, .width = 560, .height = 230, .x_min = x0, .x_max = x1, .series = ser,
                  .nseries = nser, .markers = p->markers, .nmarkers = p->nmarkers,
                  .css_class = log_toggle ? "ylin" : NULL, .has_ref = p->ref, .ref_y = p->ref_y,
                  .ref_label = p->ref_label};
    rc |= svg_chart(b, &c);
    if (log_toggle) {
        c.id = (*id)++, c.log_y = 1, c.css_class = "ylog";
        rc |= svg_chart(b, &c);
    }
    return rc | kbuf_puts(b, "</div>");
}

// The series NAME_SUFFIX that goes with NAME (a benchmark's _stderr or _chance), or NULL.
static const Series *companion(const Run *r, const char *name, const char *suffix) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", name, suffix);
    return series_find(r, full);
}

// NAME_stderr or NAME_chance beside a series NAME: drawn on NAME's chart.
static int is_companion(const Run *r, const char *name) {
    static const char *const suffixes[] = {"_stderr", "_chance"};
    size_t n = strlen(name);
    for (size_t k = 0; k < 2; k++) {
        size_t l = strlen(suffixes[k]);
        if (n <= l || strcmp(name + n - l, suffixes[k])) continue;
        char base[512];
        snprintf(base, sizeof base, "%.*s", (int)(n - l), name);
        if (series_find(r, base)) return 1;
    }
    return 0;
}

static int charted_elsewhere(const Run *r, const char *name) {
    if (is_companion(r, name)) return 1;
    for (size_t i = 0; i < sizeof NOT_CHARTED / sizeof *NOT_CHARTED; i++)
        if (!strcmp(name, NOT_CHARTED[i])) return 1;
    for (size_t i = 0; i < sizeof KNOWN / sizeof *KNOWN; i++)
        if (!strcmp(name, KNOWN[i].name)) return 1;
    return 0;
}

static SvgSeries svg_series(const Series *s, const char *color, int dots, int smooth) {
    return (SvgSeries){color, s->x, s->y, s->n, dots, smooth, s->name, NULL};
}

static int render_charts(KilnBuf *b, Page *p) {
    const Run *r = &p->run;
    int rc = kbuf_puts(b, "<h2>Charts</h2>");
    if (!r->nrecords) {
        rc |= kbuf_puts(b, "<div class=\"notice\">");
        const char *why = p->run.metrics_state == 0   ? "No metrics yet: " RUNDIR_METRICS " is missing from this run."
                          : p->run.metrics_state == 1 ? "No metrics yet: " RUNDIR_METRICS " is empty."
                                                      : "No training or validation records yet in " RUNDIR_METRICS " "
                                                        "(only events).";
        rc |= esc(b, why);
        return rc | kbuf_puts(b, "</div>");
    }
    int toggles = 0;
    for (size_t i = 0; i < sizeof KNOWN / sizeof *KNOWN; i++)
        toggles += KNOWN[i].log_toggle && series_find(r, KNOWN[i].name) != NULL;
    if (toggles)
        rc |= kbuf_puts(b, "<input type=\"checkbox\" id=\"logy\" class=\"tgl\"><label for=\"logy\" class=\"tglbl\">"
                           "log scale for loss and gradient norm</label>");
    rc |= kbuf_puts(b, "<div class=\"grid\">");
    int id = 0;
    for (size_t i = 0; i < sizeof KNOWN / sizeof *KNOWN; i++) {
        const ChartDef *d = &KNOWN[i];
        const Series *s = series_find(r, d->name);
        const Series *val = !strcmp(d->name, "loss") ? series_find(r, "val_loss") : NULL;
        if (!s && !val) continue;
        SvgSeries ser[2];
        const char *labels[2];
        int n = 0;
        if (s) labels[n] = "train", ser[n++] = svg_series(s, d->color, s->n <= 1, d->smooth);
        if (val) labels[n] = "val", ser[n++] = svg_series(val, VAL_COLOR, 1, 0);
        rc |= chart_card(b, p, &id, d->title, ser, n, labels, d->log_toggle, s ? d->name : "val_loss");
    }
    int extra = 0;
    for (int i = 0; i < r->ns; i++) {
        const Series *s = &r->s[i];
        if (!s->n || charted_elsewhere(r, s->name)) continue;
        const char *color = EXTRA_COLORS[extra++ % (int)(sizeof EXTRA_COLORS / sizeof *EXTRA_COLORS)];
        SvgSeries ser = svg_series(s, color, s->n <= 1 || !strncmp(s->name, "val_", 4), 0);
        const char *label = s->name;
        // a benchmark's standard error as a band (matched by step) and its chance level as a line
        const Series *se = companion(r, s->name, "_stderr"), *ch = companion(r, s->name, "_chance");
        double *band = se ? malloc(s->n * sizeof *band) : NULL;
        if (se && !band) return -1;
        for (size_t k = 0, j = 0; band && k < s->n; k++) {
            while (j < se->n && se->x[j] < s->x[k]) j++;
            band[k] = j < se->n && se->x[j] == s->x[k] ? se->y[j] : NAN;
        }
        ser.band = band;
        double at = 0, chance = last_finite(ch, &at);
        char ref[64];
        snprintf(ref, sizeof ref, "chance %.3g", chance);
        p->ref = isfinite(chance), p->ref_y = chance, p->ref_label = ref;
        rc |= chart_card(b, p, &id, s->name, &ser, 1, &label, 0, s->name);
        p->ref = 0;
        free(band);
    }
    rc |= kbuf_puts(b, "</div>");
    if (r->partial_last)
        rc |= kbuf_puts(b, "<p class=\"counts\">The last line of " RUNDIR_METRICS " is still being written; "
                           "it is left out.</p>");
    return rc;
}

static int render_detail(KilnBuf *b, const char *detail) {
    if (!detail) return 0;
    if (strlen(detail) <= DETAIL_INLINE) {
        int rc = kbuf_puts(b, "<code>");
        rc |= esc(b, detail);
        return rc | kbuf_puts(b, "</code>");
    }
    char *head = truncated(detail, 120);
    cJSON *o = cJSON_Parse(detail);
    char *pretty = o ? cJSON_Print(o) : NULL;
    int rc = kbuf_puts(b, "<details><summary><code>");
    rc |= esc(b, head ? head : "");
    rc |= kbuf_printf(b, "</code> (%zu bytes)</summary><pre>", strlen(detail));
    rc |= esc(b, pretty ? pretty : detail);
    rc |= kbuf_puts(b, "</pre></details>");
    free(head), free(pretty), cJSON_Delete(o);
    return rc;
}

// The results `kiln eval` kept in RUN/eval/: one row per metric.
static int render_evals(KilnBuf *b, const Page *p) {
    if (!p->nevals) return 0;
    int rc = kbuf_puts(b, "<h2>Benchmarks <small>(kiln eval, " RUNDIR_EVAL "/)</small></h2><div class=\"tbl\"><table>"
                          "<thead><tr><th>checkpoint</th><th>date</th><th>task</th><th>metric</th><th>subset</th>"
                          "<th>value</th><th>stderr</th><th>chance</th><th>n</th><th>shots</th></tr></thead><tbody>");
    for (int i = 0; i < p->nevals; i++) {
        const cJSON *o = p->evals[i], *res = cJSON_GetObjectItemCaseSensitive(o, "results");
        const char *model = json_str(o, "model"), *slash = strrchr(model, '/');
        for (const cJSON *x = res->child; x; x = x->next) {
            char v[64] = "—", se[64] = "—", ch[64] = "—", n[64] = "—", shots[64] = "—";
            double val = num_or_nan(x, "value"), s = num_or_nan(x, "stderr"), c = num_or_nan(x, "chance"),
                   nn = num_or_nan(x, "n"), sh = num_or_nan(x, "shots");
            if (isfinite(val)) snprintf(v, sizeof v, fabs(val) < 1e6 ? "%.4f" : "%.6g", val);
            if (isfinite(s)) snprintf(se, sizeof se, fabs(s) < 1e6 ? "%.4f" : "%.6g", s);
            if (isfinite(c)) snprintf(ch, sizeof ch, "%.4f", c);
            if (isfinite(nn)) snprintf(n, sizeof n, "%.0f", nn);
            if (isfinite(sh)) snprintf(shots, sizeof shots, "%.0f", sh);
            const char *date = json_str(x, "date")[0] ? json_str(x, "date") : json_str(o, "date");
            rc |= kbuf_puts(b, "<tr><td class=\"nowrap\">");
            rc |= esc(b, slash ? slash + 1 : model);
            rc |= kbuf_puts(b, "</td><td class=\"nowrap\">");
            rc |= esc(b, date);
            rc |= kbuf_puts(b, "</td><td>");
            rc |= esc(b, json_str(x, "task"));
            rc |= kbuf_puts(b, "</td><td>");
            rc |= esc(b, json_str(x, "metric"));
            if (json_str(x, "filter")[0]) rc |= kbuf_puts(b, " <small>"), rc |= esc(b, json_str(x, "filter")),
                                          rc |= kbuf_puts(b, "</small>");
            rc |= kbuf_puts(b, "</td><td>");
            rc |= esc(b, json_str(x, "subset"));
            rc |= kbuf_printf(b, "</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                                 "<td class=\"num\">%s</td><td class=\"num\">%s</td></tr>",
                              v, se, ch, n, shots);
        }
    }
    return rc | kbuf_puts(b, "</tbody></table></div>");
}

// Each session: when, from which step, for how long, and the command that ran
// it (from its start/resume event; env.json holds only the last session's).
static int render_sessions(KilnBuf *b, const Page *p) {
    if (p->nsessions == 0 || !p->sessions[0].ev) return 0;
    int rc = kbuf_puts(b, "<h2>Sessions</h2><div class=\"tbl\"><table><thead><tr><th>#</th><th>kind</th>"
                          "<th>from step</th><th>started</th><th>trained</th><th>command</th></tr></thead><tbody>");
    for (int i = 0; i < p->nsessions; i++) {
        const Session *s = &p->sessions[i];
        char step[64], t[64], d[64];
        fmt_commas(step, sizeof step, s->ev ? s->ev->step : 0);
        fmt_utc(t, sizeof t, s->start);
        fmt_duration(d, sizeof d, s->end - s->start);
        rc |= kbuf_printf(b, "<tr><td class=\"num\">%d</td><td>", i + 1);
        rc |= esc(b, s->ev ? s->ev->kind : "");
        rc |= kbuf_printf(b, "</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                             "<td class=\"val\">",
                          step, t, d);
        cJSON *o = s->ev && s->ev->detail ? cJSON_Parse(s->ev->detail) : NULL;
        const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(o, "command");
        if (!cJSON_IsArray(cmd) || !cJSON_GetArraySize(cmd)) rc |= kbuf_puts(b, "—");
        for (const cJSON *a = cJSON_IsArray(cmd) ? cmd->child : NULL; a; a = a->next) {
            if (!cJSON_IsString(a)) continue;
            if (a != cmd->child) rc |= kbuf_putc(b, ' ');
            rc |= esc(b, a->valuestring);
        }
        cJSON_Delete(o);
        rc |= kbuf_puts(b, "</td></tr>");
    }
    return rc | kbuf_puts(b, "</tbody></table></div>");
}

static int render_events(KilnBuf *b, const Page *p) {
    const Run *r = &p->run;
    int rc = kbuf_puts(b, "<h2>Events</h2>");
    if (!r->nev) return rc | kbuf_puts(b, "<p class=\"counts\">No events recorded.</p>");
    rc |= kbuf_puts(b, "<p class=\"counts\">");
    rc |= event_counts(b, r);
    rc |= kbuf_puts(b, "</p><div class=\"tbl events\"><table><thead><tr><th>step</th><th>time</th><th>kind</th>"
                       "<th>detail</th></tr></thead><tbody>");
    for (size_t i = 0; i < r->nev; i++) {
        const Event *e = &r->ev[i];
        char step[64], t[64];
        fmt_commas(step, sizeof step, e->step);
        fmt_utc(t, sizeof t, e->time);
        rc |= kbuf_printf(b, "<tr><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"nowrap\"><span class=\"kind\" "
                             "style=\"color:%s\">",
                          step, t, event_color(e));
        rc |= esc(b, e->kind);
        rc |= kbuf_printf(b, "</span>%s</td><td>", e->incident ? " <small>supervisor</small>" : "");
        rc |= render_detail(b, e->detail);
        rc |= kbuf_puts(b, "</td></tr>");
    }
    return rc | kbuf_puts(b, "</tbody></table></div>");
}

static int kv_row(KilnBuf *b, const char *key, const char *value) {
    int rc = kbuf_puts(b, "<tr><td class=\"key\">");
    rc |= esc(b, key);
    rc |= kbuf_puts(b, "</td><td class=\"val\">");
    rc |= esc(b, value);
    return rc | kbuf_puts(b, "</td></tr>");
}

// Top-level keys first, then each section ("a" of "a.b") under its heading, in
// order of first appearance.
static int kv_table(KilnBuf *b, const KeyVal *rows, size_t n) {
    int rc = kbuf_puts(b, "<div class=\"tbl\"><table><tbody>");
    for (size_t i = 0; i < n; i++)
        if (!strchr(rows[i].key, '.')) rc |= kv_row(b, rows[i].key, rows[i].value);
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(rows[i].key, '.');
        size_t sl = dot ? (size_t)(dot - rows[i].key) + 1 : 0;
        int seen = !dot;
        for (size_t j = 0; j < i && !seen; j++) seen = !strncmp(rows[j].key, rows[i].key, sl);
        if (seen) continue;
        rc |= kbuf_puts(b, "<tr class=\"sec\"><td colspan=\"2\">");
        rc |= html_escape(b, rows[i].key, sl - 1);
        rc |= kbuf_puts(b, "</td></tr>");
        for (size_t j = i; j < n; j++)
            if (!strncmp(rows[j].key, rows[i].key, sl)) rc |= kv_row(b, rows[j].key + sl, rows[j].value);
    }
    return rc | kbuf_puts(b, "</tbody></table></div>");
}

static int render_config_env(KilnBuf *b, const Page *p) {
    int rc = kbuf_puts(b, "<div class=\"cols\"><div><h2>Config <small>(" RUNDIR_CONFIG ")</small></h2>");
    if (p->cfg_ok < 0) {
        rc |= kbuf_puts(b, "<div class=\"notice\">No " RUNDIR_CONFIG " in this run.</div>");
    } else if (p->cfg_ok == 0) {
        rc |= kbuf_puts(b, "<div class=\"card\"><pre>");
        rc |= esc(b, p->cfg_text);
        rc |= kbuf_puts(b, "</pre></div>");
    } else {
        rc |= kv_table(b, p->cfg, p->ncfg);
    }
    rc |= kbuf_puts(b, "</div><div><h2>Environment <small>(" RUNDIR_ENV ")</small></h2>");
    if (p->env_state < 0) rc |= kbuf_puts(b, "<div class=\"notice\">No " RUNDIR_ENV " in this run.</div>");
    else if (p->env_state == 0) rc |= kbuf_puts(b, "<div class=\"notice\">" RUNDIR_ENV " is not a JSON object.</div>");
    else rc |= kv_table(b, p->env, p->nenv);
    return rc | kbuf_puts(b, "</div></div>");
}

// The run's name: the directory's last component (of its real path for ".").
static void run_name(const char *dir, char *out, size_t n) {
    char real[4096];
    const char *d = realpath(dir, real) ? real : dir;
    size_t len = strlen(d);
    while (len > 1 && d[len - 1] == '/') len--;
    size_t s = len;
    while (s > 0 && d[s - 1] != '/') s--;
    snprintf(out, n, "%.*s", (int)(len - s), d + s);
    if (!*out) snprintf(out, n, "%s", dir);
}

static int load_page(Page *p, const char *dir, KilnErr *err) {
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return kiln_fail(err, "%s: not a run directory", dir);
    p->run_dir = dir;
    run_name(dir, p->name, sizeof p->name);
    char path[4096];
    snprintf(path, sizeof path, "%s/" RUNDIR_METRICS, dir);
    if (read_jsonl(&p->run, path, metrics_fn, &p->run.metrics_state, err)) return -1;
    snprintf(path, sizeof path, "%s/" RUNDIR_INCIDENTS, dir);
    if (read_jsonl(&p->run, path, incident_record, &p->incidents_state, err)) return -1;
    if (p->run.nev) qsort(p->run.ev, p->run.nev, sizeof *p->run.ev, event_cmp);
    find_last_step(&p->run);
    size_t n;
    p->cfg_ok = -1;
    if (!file_text(dir, RUNDIR_CONFIG, &p->cfg_text, &n)) p->cfg_ok = yaml_rows(p->cfg_text, &p->cfg, &p->ncfg) == 0;
    p->state.target_steps = p->cfg_ok == 1 ? config_steps(p->cfg, p->ncfg) : NAN;
    char *env = NULL;
    p->env_state = -1;
    if (!file_text(dir, RUNDIR_ENV, &env, &n)) {
        cJSON *o = cJSON_ParseWithLength(env, n);
        size_t cap = 0;
        p->env_state = cJSON_IsObject(o) && env_rows(o, "", &p->env, &p->nenv, &cap) == 0;
        cJSON_Delete(o);
        free(env);
    }
    run_state(dir, &p->run, &p->state);
    if (find_sessions(&p->run, &p->sessions, &p->nsessions)) return kiln_fail(err, "out of memory");
    if (load_evals(dir, &p->evals, &p->eval_files, &p->nevals, err)) return -1;
    return build_markers(p) ? kiln_fail(err, "out of memory") : 0;
}

static void page_free(Page *p) {
    run_free(&p->run);
    free(p->cfg), free(p->cfg_text), free(p->env), free(p->markers), free(p->sessions);
    for (int i = 0; i < p->nevals; i++) cJSON_Delete(p->evals ? p->evals[i] : NULL), free(p->eval_files[i]);
    free(p->evals), free(p->eval_files);
    for (int i = 0; p->marker_titles && i < p->nmarkers; i++) free(p->marker_titles[i]);
    free(p->marker_titles);
}

int report_render(const char *run_dir, KilnBuf *out, KilnErr *err) {
    Page *p = calloc(1, sizeof *p);
    if (!p) return kiln_fail(err, "out of memory");
    if (load_page(p, run_dir, err)) {
        page_free(p), free(p);
        return -1;
    }
    int rc = kbuf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    rc |= esc(out, p->name);
    rc |= kbuf_printf(out, " · kiln run</title><style>%s</style></head><body><main>", CSS);
    rc |= render_header(out, p);
    rc |= render_charts(out, p);
    rc |= render_evals(out, p);
    rc |= render_sessions(out, p);
    rc |= render_events(out, p);
    rc |= render_config_env(out, p);
    char now[64];
    fmt_utc(now, sizeof now, (double)time(NULL));
    rc |= kbuf_printf(out, "<footer>Rendered by <code>kiln report</code> %s at %s.</footer></main></body></html>\n",
                      kiln_version(), now);
    page_free(p), free(p);
    return rc ? kiln_fail(err, "out of memory rendering the report") : 0;
}

int report_write(const char *run_dir, const char *path, int *bad_input, KilnErr *err) {
    KilnBuf page = {0};
    if (bad_input) *bad_input = 1;
    if (report_render(run_dir, &page, err)) return kbuf_free(&page), -1;
    if (bad_input) *bad_input = 0;
    int rc = 0;
    if (!strcmp(path, "-")) {
        if (fwrite(page.data, 1, page.len, stdout) != page.len || fflush(stdout))
            rc = kiln_fail(err, "writing the report to stdout: %s", strerror(errno));
    } else {
        KilnAtomicFile af;
        if (kiln_atomic_open(&af, path, err)) rc = -1;
        else if (kiln_atomic_write(&af, page.data, page.len, err)) kiln_atomic_abort(&af), rc = -1;
        else rc = kiln_atomic_commit(&af, err);
    }
    kbuf_free(&page);
    return rc;
}
