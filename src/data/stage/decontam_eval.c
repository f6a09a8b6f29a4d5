// decontam_eval.c: readers of evaluation sets (HellaSwag, LAMBADA, GSM8K, PIQA
// and any JSONL) into items with ids and texts (see kiln/decontam.h).
#include "kiln/core.h"
#include "data/stage/decontam.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { FMT_HELLASWAG, FMT_LAMBADA, FMT_GSM8K, FMT_PIQA, FMT_JSONL };
static const char *const FORMATS[] = {"hellaswag", "lambada", "gsm8k", "piqa"};
#define NFORMATS 4
#define MAX_TEXTS 8
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

// ---------------------------------------------------------------- text preparation
// lm-evaluation-harness's HellaSwag preprocess, one pass per step as Python's
// str.replace and re.sub: strip, " [title]" -> ". ", remove "[...]" (not across
// a line break), "  " -> " ".
static int hellaswag_clean(const char *s, KilnBuf *out) {
    size_t n = strlen(s), a = 0;
    while (a < n && isspace((unsigned char)s[a])) a++;
    while (n > a && isspace((unsigned char)s[n - 1])) n--;
    KilnBuf t = {0}, u = {0};
    int rc = kbuf_reserve(&t, n - a + 1) || kbuf_reserve(&u, n - a + 1);
    for (size_t i = a; i < n && !rc;) {
        int title = n - i >= 8 && !memcmp(s + i, " [title]", 8);
        rc = title ? kbuf_puts(&t, ". ") : kbuf_putc(&t, s[i]);
        i += title ? 8 : 1;
    }
    for (size_t i = 0; i < t.len && !rc;) {
        if (t.data[i] == '[') {
            size_t j = i + 1;
            while (j < t.len && t.data[j] != ']' && t.data[j] != '\n') j++;
            if (j < t.len && t.data[j] == ']') {
                i = j + 1;
                continue;
            }
        }
        rc = kbuf_putc(&u, t.data[i++]);
    }
    kbuf_clear(out);
    rc = rc || kbuf_reserve(out, u.len + 1);
    for (size_t i = 0; i < u.len && !rc;) {
        int dbl = u.data[i] == ' ' && i + 1 < u.len && u.data[i + 1] == ' ';
        rc = kbuf_putc(out, u.data[i]);
        i += dbl ? 2 : 1;
    }
    kbuf_free(&t);
    kbuf_free(&u);
    return rc;
}

// GSM8K answers without their calculator annotations "<<48/2=24>>"; 1 if any were removed.
static int strip_annotations(const char *s, KilnBuf *out, int *removed) {
    kbuf_clear(out);
    *removed = 0;
    for (const char *p = s; *p;) {
        const char *e;
        if (p[0] == '<' && p[1] == '<' && (e = strstr(p + 2, ">>"))) {
            p = e + 2;
            *removed = 1;
            continue;
        }
        if (kbuf_putc(out, *p++)) return -1;
    }
    return out->data || !kbuf_reserve(out, 1) ? 0 : -1;
}

// ---------------------------------------------------------------- records
typedef struct {
    const Spec *sp;
    long line, index;
    KilnBuf text[MAX_TEXTS], tmp;
    int ntexts;
    char id[320];
} Rec;

static const char *str_field(const cJSON *o, const char *name, const Rec *r, KilnErr *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsString(v)) return v->valuestring;
    kiln_fail(err, "%s:%ld: no string field '%s'", r->sp->path, r->line, name);
    return NULL;
}

// texts[k] = a + " " + b
static int put_pair(Rec *r, const char *a, size_t al, const char *b, size_t bl) {
    KilnBuf *t = &r->text[r->ntexts++];
    kbuf_clear(t);
    return kbuf_append(t, a, al) || kbuf_putc(t, ' ') || kbuf_append(t, b, bl) ? -1 : 0;
}

static void set_id_num(Rec *r, double v) {
    snprintf(r->id, sizeof r->id, "%s/%.0f", r->sp->task, v);
}

static int rec_hellaswag(Rec *r, const cJSON *o, KilnErr *err) {
    const char *ctx = str_field(o, "ctx", r, err);
    const cJSON *ends = cJSON_GetObjectItemCaseSensitive(o, "endings");
    if (!ctx) return -1;
    int ne = cJSON_GetArraySize(ends);
    if (!cJSON_IsArray(ends) || ne < 1) return kiln_fail(err, "%s:%ld: no 'endings' list", r->sp->path, r->line);
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(o, "label");
    int label = -1;
    if (cJSON_IsNumber(lab)) label = lab->valueint;
    else if (cJSON_IsString(lab) && lab->valuestring[0]) label = atoi(lab->valuestring);
    if (label >= ne) return kiln_fail(err, "%s:%ld: label %d but %d endings", r->sp->path, r->line, label, ne);
    if (label < 0 && ne > MAX_TEXTS)
        return kiln_fail(err, "%s:%ld: %d endings and no label (at most %d)", r->sp->path, r->line, ne, MAX_TEXTS);
    KilnBuf c = {0};
    if (hellaswag_clean(ctx, &c)) return kiln_fail(err, "out of memory");
    int rc = 0;
    for (int k = 0; k < ne && !rc; k++) {
        if (label >= 0 && k != label) continue;
        const cJSON *e = cJSON_GetArrayItem(ends, k);
        if (!cJSON_IsString(e)) {
            rc = kiln_fail(err, "%s:%ld: ending %d is not a string", r->sp->path, r->line, k);
            break;
        }
        if (hellaswag_clean(e->valuestring, &r->tmp) || put_pair(r, c.data, c.len, r->tmp.data, r->tmp.len))
            rc = kiln_fail(err, "out of memory");
    }
    kbuf_free(&c);
    const cJSON *ind = cJSON_GetObjectItemCaseSensitive(o, "ind");
    if (cJSON_IsNumber(ind)) set_id_num(r, ind->valuedouble);
    return rc;
}

static int rec_gsm8k(Rec *r, const cJSON *o, KilnErr *err) {
    const char *q = str_field(o, "question", r, err), *a = q ? str_field(o, "answer", r, err) : NULL;
    if (!a) return -1;
    int removed;
    if (put_pair(r, q, strlen(q), a, strlen(a)) || strip_annotations(a, &r->tmp, &removed) ||
        (removed && put_pair(r, q, strlen(q), r->tmp.data, r->tmp.len)))
        return kiln_fail(err, "out of memory");
    return 0;
}

static int rec_piqa(Rec *r, const cJSON *o, KilnErr *err) {
    const char *g = str_field(o, "goal", r, err), *s1 = g ? str_field(o, "sol1", r, err) : NULL,
               *s2 = s1 ? str_field(o, "sol2", r, err) : NULL;
    if (!s2) return -1;
    if (put_pair(r, g, strlen(g), s1, strlen(s1)) || put_pair(r, g, strlen(g), s2, strlen(s2)))
        return kiln_fail(err, "out of memory");
    return 0;
}

static int rec_jsonl(Rec *r, const cJSON *o, const char *const *fields, int nfields, KilnErr *err) {
    KilnBuf *t = &r->text[r->ntexts++];
    kbuf_clear(t);
    for (int f = 0; f < nfields; f++) {
        const char *v = str_field(o, fields[f], r, err);
        if (!v) return -1;
        if ((f && kbuf_putc(t, ' ')) || kbuf_puts(t, v)) return kiln_fail(err, "out of memory");
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (r->sp->fmt == FMT_JSONL && cJSON_IsString(id)) snprintf(r->id, sizeof r->id, "%s/%s", r->sp->task, id->valuestring);
    else if (r->sp->fmt == FMT_JSONL && cJSON_IsNumber(id)) set_id_num(r, id->valuedouble);
    return 0;
}

static int read_record(Rec *r, const char *line, size_t n, KilnErr *err) {
    cJSON *o = cJSON_ParseWithLength(line, n);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return kiln_fail(err, "%s:%ld: not a JSON object", r->sp->path, r->line);
    }
    r->ntexts = 0;
    snprintf(r->id, sizeof r->id, "%s/%ld", r->sp->task, r->index);
    static const char *const LAMBADA[] = {"text"};
    int rc;
    switch (r->sp->fmt) {
    case FMT_HELLASWAG: rc = rec_hellaswag(r, o, err); break;
    case FMT_GSM8K: rc = rec_gsm8k(r, o, err); break;
    case FMT_PIQA: rc = rec_piqa(r, o, err); break;
    case FMT_LAMBADA: rc = rec_jsonl(r, o, LAMBADA, 1, err); break;
    default: rc = rec_jsonl(r, o, (const char *const *)r->sp->fields, r->sp->nfields, err); break;
    }
    cJSON_Delete(o);
    return rc;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

int decontam_read_eval(const char *spec, KilnEvalItemFn fn, void *ctx, char **task_out, KilnErr *err) {
    if (task_out) *task_out = NULL;
    Spec sp;
    if (parse_spec(spec, &sp, err)) {
        spec_free(&sp);
        return -1;
    }
    char *data;
    size_t len;
    if (kiln_read_file(sp.path, &data, &len, err)) {
        kiln_wrap(err, "eval %s", spec);
        spec_free(&sp);
        return -1;
    }
    Rec r = {.sp = &sp};
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        r.line++;
        if (!is_blank(data + i, e - i)) {
            rc = read_record(&r, data + i, e - i, err);
            if (!rc) {
                const char *texts[MAX_TEXTS];
                size_t lens[MAX_TEXTS];
                for (int k = 0; k < r.ntexts; k++) {
                    texts[k] = r.text[k].data;
                    lens[k] = r.text[k].len;
                }
                rc = fn(ctx, sp.task, r.id, texts, lens, r.ntexts, err);
            }
            r.index++;
        }
        i = e + 1;
    }
    for (int k = 0; k < MAX_TEXTS; k++) kbuf_free(&r.text[k]);
    kbuf_free(&r.tmp);
    free(data);
    if (!rc && task_out && !(*task_out = strdup(sp.task))) rc = kiln_fail(err, "out of memory");
    spec_free(&sp);
    return rc;
}
