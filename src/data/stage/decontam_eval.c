// decontam_eval.c: the evaluation sets of the decontaminate stage (see
// decontam.h): a benchmark (hellaswag, lambada, gsm8k, piqa) is read through
// its task file (tasks/NAME.yaml, as `kiln eval` finds it), so the items looked
// for are the items scored; any other JSONL by the fields named.
#include "kiln/core.h"
#include "kiln/task.h"
#include "data/stage/decontam.h"
#include "task/task_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// The benchmarks by the names the stage knows them by, and their task files.
enum { FMT_JSONL = 4 };
static const char *const FORMATS[] = {"hellaswag", "lambada", "gsm8k", "piqa"};
static const char *const TASK_FILES[] = {"hellaswag", "lambada_openai", "gsm8k", "piqa"};
#define NFORMATS 4
#define MAX_FIELDS 16

typedef struct {
    char *task;
    int fmt;
    char *fields[MAX_FIELDS];  // jsonl: the fields joined into the item
    int nfields;
    const char *path;  // inside the spec
} Spec;

static void spec_free(Spec *sp) {
    free(sp->task);
    for (int i = 0; i < sp->nfields; i++) free(sp->fields[i]);
}

// The known format named last in s (case-insensitive), or -1: in
// ".../eval/gsm8k/test.jsonl" the directory tells.
static int guess_format(const char *s) {
    int best = -1;
    size_t best_at = 0;
    for (int f = 0; f < NFORMATS; f++) {
        size_t fl = strlen(FORMATS[f]);
        for (const char *p = s; *p; p++)
            if (!strncasecmp(p, FORMATS[f], fl) && (best < 0 || (size_t)(p - s) >= best_at)) {
                best = f;
                best_at = (size_t)(p - s);
            }
    }
    return best;
}

// A file's base name without its extensions, as the default task of a generic file.
static char *base_stem(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strchr(b, '.');
    return strndup(b, dot && dot > b ? (size_t)(dot - b) : strlen(b));
}

static int split_fields(Spec *sp, const char *s, size_t n, const char *spec, KilnErr *err) {
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && s[j] != '+') j++;
        if (j == i) return kiln_fail(err, "eval %s: empty field name in jsonl:FIELDS=PATH", spec);
        if (sp->nfields == MAX_FIELDS) return kiln_fail(err, "eval %s: more than %d fields", spec, MAX_FIELDS);
        if (!(sp->fields[sp->nfields++] = strndup(s + i, j - i))) return kiln_fail(err, "out of memory");
        i = j + 1;
    }
    return 0;
}

static int parse_spec(const char *spec, Spec *sp, KilnErr *err) {
    memset(sp, 0, sizeof *sp);
    const char *s = spec, *eq = strchr(spec, '=');
    // "TASK=": text before the first '=' with no '/' or ':' (those make it part of a path or format)
    if (eq && eq > s && !memchr(s, '/', (size_t)(eq - s)) && !memchr(s, ':', (size_t)(eq - s))) {
        if (!(sp->task = strndup(s, (size_t)(eq - s)))) return kiln_fail(err, "out of memory");
        s = eq + 1;
    }
    sp->fmt = -1;
    if (!strncmp(s, "jsonl:", 6)) {
        s += 6;
        const char *e = strchr(s, '=');
        if (!e) return kiln_fail(err, "eval %s: expected jsonl:FIELD1+FIELD2=PATH", spec);
        if (split_fields(sp, s, (size_t)(e - s), spec, err)) return -1;
        sp->fmt = FMT_JSONL;
        s = e + 1;
    } else {
        for (int f = 0; f < NFORMATS; f++) {
            size_t fl = strlen(FORMATS[f]);
            if (!strncmp(s, FORMATS[f], fl) && s[fl] == ':') {
                sp->fmt = f;
                s += fl + 1;
            }
        }
    }
    sp->path = s;
    if (!*s) return kiln_fail(err, "eval %s: no file path", spec);
    if (sp->fmt < 0 && sp->task) sp->fmt = guess_format(sp->task);
    if (sp->fmt < 0) sp->fmt = guess_format(s);
    if (sp->fmt < 0)
        return kiln_fail(err,
                         "eval %s: cannot tell the format (hellaswag, lambada, gsm8k, piqa) from the name; "
                         "write FORMAT:PATH or jsonl:FIELD1+FIELD2=PATH",
                         spec);
    if (!sp->task && !(sp->task = sp->fmt == FMT_JSONL ? base_stem(s) : strdup(FORMATS[sp->fmt])))
        return kiln_fail(err, "out of memory");
    if (!*sp->task || strchr(sp->task, '/') || strchr(sp->task, '"') || strchr(sp->task, '\\'))
        return kiln_fail(err, "eval %s: task name '%s' must be non-empty without '/', '\"' or '\\'", spec, sp->task);
    for (const char *p = sp->task; *p; p++)
        if (isspace((unsigned char)*p)) return kiln_fail(err, "eval %s: task name '%s' has a space", spec, sp->task);
    return 0;
}

// ---------------------------------------------------------------- benchmarks
typedef struct {
    const Spec *sp;
    KilnEvalItemFn fn;
    void *ctx;
    int fn_failed;  // the error is fn's own (not wrapped with the spec)
    KilnBuf id;
} Read;

static int give(Read *r, const char *const *texts, const size_t *lens, int ntexts, KilnErr *err) {
    int rc = r->fn(r->ctx, r->sp->task, r->id.data, texts, lens, ntexts, err);
    if (rc) r->fn_failed = 1;
    return rc;
}

// A task's item under the stage's task name: "hellaswag/20022" read as task
// hs is "hs/20022" (the same id when the name is the benchmark's).
static int on_task_item(void *ctx, const char *id, const char *const *texts, const size_t *lens, int ntexts,
                        KilnErr *err) {
    Read *r = ctx;
    const char *slash = strchr(id, '/');
    kbuf_clear(&r->id);
    if (kbuf_printf(&r->id, "%s/%s", r->sp->task, slash ? slash + 1 : id)) return kiln_fail(err, "out of memory");
    return give(r, texts, lens, ntexts, err);
}

static int read_benchmark(Read *r, KilnErr *err) {
    char dir[2048], yaml[4096];
    task_default_dir(dir, sizeof dir);
    task_file_path(dir, TASK_FILES[r->sp->fmt], yaml, sizeof yaml);
    return task_decontam_items(yaml, r->sp->path, on_task_item, r, err);
}

// ---------------------------------------------------------------- any JSONL
static const char *str_field(const cJSON *o, const char *name, const Spec *sp, long line, KilnErr *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsString(v)) return v->valuestring;
    kiln_fail(err, "%s:%ld: no string field '%s'", sp->path, line, name);
    return NULL;
}

// The item: its fields joined by spaces; its id the field "id" when there is one.
static int on_jsonl_record(void *ctx, const cJSON *o, long index, long line, KilnErr *err) {
    Read *r = ctx;
    const Spec *sp = r->sp;
    KilnBuf t = {0};
    int rc = kbuf_reserve(&t, 1) ? kiln_fail(err, "out of memory") : 0;
    for (int f = 0; f < sp->nfields && !rc; f++) {
        const char *v = str_field(o, sp->fields[f], sp, line, err);
        if (!v) rc = -1;
        else if ((f && kbuf_putc(&t, ' ')) || kbuf_puts(&t, v)) rc = kiln_fail(err, "out of memory");
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    kbuf_clear(&r->id);
    int oom = rc                   ? 0
              : cJSON_IsString(id) ? kbuf_printf(&r->id, "%s/%s", sp->task, id->valuestring)
              : cJSON_IsNumber(id) ? kbuf_printf(&r->id, "%s/%.0f", sp->task, id->valuedouble)
                                   : kbuf_printf(&r->id, "%s/%ld", sp->task, index);
    if (oom) rc = kiln_fail(err, "out of memory");
    const char *texts[1] = {t.data};
    if (!rc) rc = give(r, texts, &t.len, 1, err);
    kbuf_free(&t);
    return rc;
}

static int read_jsonl(Read *r, KilnErr *err) {
    DsSpec spec = {.path = r->sp->path, .format = DS_JSONL};
    long nrec;
    return ds_read(&spec, 0, on_jsonl_record, r, &nrec, NULL, err);
}

int decontam_read_eval(const char *spec, KilnEvalItemFn fn, void *ctx, char **task_out, KilnErr *err) {
    if (task_out) *task_out = NULL;
    Spec sp;
    Read r = {.sp = &sp, .fn = fn, .ctx = ctx};
    int rc = parse_spec(spec, &sp, err);
    if (!rc && (rc = sp.fmt == FMT_JSONL ? read_jsonl(&r, err) : read_benchmark(&r, err)) && !r.fn_failed)
        kiln_wrap(err, "eval %s", spec);
    kbuf_free(&r.id);
    if (!rc && task_out && !(*task_out = strdup(sp.task))) rc = kiln_fail(err, "out of memory");
    spec_free(&sp);
    return rc;
}
