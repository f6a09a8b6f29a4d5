// template.c: the prompt template language of task files. A template is text
// with fields: "Question: {goal}\nAnswer:", "{ctx_b|capitalize}". A field is a
// path into the record (names, list indices: "endings.0"; "_index" is the
// record's 0-based index) followed by filters (textfilter.c). "{{" and "}}"
// are literal braces; Jinja's "{{field}}" is refused rather than rendered
// literally by mistake.
#include "task/task_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int is_expr;
    char *lit;  // literal text (is_expr 0)
    size_t litlen;
    TplExpr e;
} Part;

struct Template {
    Part *parts;
    int nparts;
    unsigned char post[TPL_MAX_FILTERS];  // applied to the whole rendered text
    int npost;
};

static int why_set(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why_set(char *why, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

void tpl_expr_free(TplExpr *e) {
    for (int i = 0; i < e->npath; i++) free(e->path[i]);
    free(e->path);
    memset(e, 0, sizeof *e);
}

static int name_char(unsigned char c) { return isalnum(c) || c == '_' || c == '-' || c >= 0x80; }

static void trim(const char **s, const char **e) {
    while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
}

static void known_filters(char *buf, size_t n) {
    buf[0] = 0;
    for (int f = 0; f < TF_COUNT; f++) {
        strncat(buf, f ? ", " : "", n - strlen(buf) - 1);
        strncat(buf, tpl_filter_name(f), n - strlen(buf) - 1);
    }
}

static int add_filter(unsigned char *list, int *n, const char *name, size_t len, char *why, size_t whylen) {
    int f = tpl_filter_by_name(name, len);
    if (f < 0) {
        char known[160];
        known_filters(known, sizeof known);
        return why_set(why, whylen, "unknown filter '%.*s' (known: %s)", (int)(len > 60 ? 60 : len), name, known);
    }
    if (*n == TPL_MAX_FILTERS) return why_set(why, whylen, "more than %d filters", TPL_MAX_FILTERS);
    list[(*n)++] = (unsigned char)f;
    return 0;
}

// The expression s[0..len): path|filter|filter
static int expr_parse(const char *s, size_t len, TplExpr *e, char *why, size_t whylen) {
    memset(e, 0, sizeof *e);
    const char *end = s + len, *bar = memchr(s, '|', len);
    const char *ps = s, *pe = bar ? bar : end;
    trim(&ps, &pe);
    if (ps == pe) return why_set(why, whylen, "empty field name in '{%.*s}'", (int)(len > 60 ? 60 : len), s);
    for (const char *p = ps; p <= pe; p++) {  // the path: names separated by '.'
        const char *q = p;
        while (q < pe && *q != '.') q++;
        if (q == p) {
            tpl_expr_free(e);
            return why_set(why, whylen, "empty name in field path '%.*s'", (int)(pe - ps), ps);
        }
        for (const char *c = p; c < q; c++)
            if (!name_char((unsigned char)*c)) {
                tpl_expr_free(e);
                return why_set(why, whylen, "bad character '%c' in field '%.*s'", *c, (int)(pe - ps), ps);
            }
        char **np = realloc(e->path, sizeof *np * (size_t)(e->npath + 1));
        if (!np || !(np[e->npath] = strndup(p, (size_t)(q - p)))) {
            if (np) e->path = np;
            tpl_expr_free(e);
            return why_set(why, whylen, "out of memory");
        }
        e->path = np;
        e->npath++;
        p = q;
    }
    for (const char *p = bar; p && p < end;) {  // the filters
        const char *fs = p + 1, *fe = fs;
        while (fe < end && *fe != '|') fe++;
        p = fe < end ? fe : NULL;
        trim(&fs, &fe);
        if (add_filter(e->filters, &e->nfilters, fs, (size_t)(fe - fs), why, whylen)) {
            tpl_expr_free(e);
            return -1;
        }
    }
    return 0;
}

int tpl_expr_parse(const char *src, TplExpr *e, char *why, size_t whylen) {
    return expr_parse(src, strlen(src), e, why, whylen);
}

void tpl_free(Template *t) {
    if (!t) return;
    for (int i = 0; i < t->nparts; i++) {
        free(t->parts[i].lit);
        tpl_expr_free(&t->parts[i].e);
    }
    free(t->parts);
    free(t);
}

static Part *add_part(Template *t) {
    Part *p = realloc(t->parts, sizeof *p * (size_t)(t->nparts + 1));
    if (!p) return NULL;
    t->parts = p;
    memset(&p[t->nparts], 0, sizeof *p);
    return &p[t->nparts++];
}

static int flush_literal(Template *t, KilnBuf *lit) {
    if (!lit->len) return 0;
    Part *p = add_part(t);
    if (!p || !(p->lit = malloc(lit->len + 1))) return -1;
    memcpy(p->lit, lit->data, lit->len + 1);
    p->litlen = lit->len;
    kbuf_clear(lit);
    return 0;
}

// "{{name}}" (Jinja): a field the author meant, not literal braces.
static int looks_like_jinja(const char *s) {
    const char *p = s + 2;
    while (*p == ' ') p++;
    const char *n = p;
    while (name_char((unsigned char)*p) || *p == '.' || *p == '|' || *p == ' ') p++;
    return p > n && p[0] == '}' && p[1] == '}';
}

int tpl_parse(const char *src, Template **out, char *why, size_t whylen) {
    *out = NULL;
    Template *t = calloc(1, sizeof *t);
    KilnBuf lit = {0};
    int rc = t ? 0 : why_set(why, whylen, "out of memory");
    for (size_t i = 0; rc == 0 && src[i];) {
        if (src[i] == '{' && src[i + 1] == '{') {
            if (looks_like_jinja(src + i))
                rc = why_set(why, whylen, "'{{field}}' at offset %zu: fields are written {field} ('{{' is a literal brace)",
                             i);
            else if (kbuf_putc(&lit, '{'))
                rc = why_set(why, whylen, "out of memory");
            i += 2;
        } else if (src[i] == '{') {
            const char *close = strchr(src + i + 1, '}'), *open = strchr(src + i + 1, '{');
            if (!close) {
                rc = why_set(why, whylen, "unclosed '{' at offset %zu", i);
                break;
            }
            if (open && open < close) {
                rc = why_set(why, whylen, "'{' inside a field at offset %zu", (size_t)(open - src));
                break;
            }
            TplExpr e;
            if (expr_parse(src + i + 1, (size_t)(close - src - i - 1), &e, why, whylen)) {
                rc = -1;
                break;
            }
            Part *p = flush_literal(t, &lit) ? NULL : add_part(t);
            if (!p) {
                tpl_expr_free(&e);
                rc = why_set(why, whylen, "out of memory");
                break;
            }
            p->is_expr = 1;
            p->e = e;
            i = (size_t)(close - src) + 1;
        } else if (src[i] == '}') {
            if (src[i + 1] != '}') rc = why_set(why, whylen, "a single '}' at offset %zu (a literal brace is '}}')", i);
            else if (kbuf_putc(&lit, '}')) rc = why_set(why, whylen, "out of memory");
            i += 2;
        } else {
            if (kbuf_putc(&lit, src[i++])) rc = why_set(why, whylen, "out of memory");
        }
    }
    if (rc == 0 && flush_literal(t, &lit)) rc = why_set(why, whylen, "out of memory");
    kbuf_free(&lit);
    if (rc) {
        tpl_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tpl_add_post_filter(Template *t, const char *name, char *why, size_t whylen) {
    return add_filter(t->post, &t->npost, name, strlen(name), why, whylen);
}

const cJSON *tpl_lookup(const TplExpr *e, const cJSON *rec) {
    const cJSON *cur = rec;
    for (int i = 0; i < e->npath && cur; i++) {
        const char *name = e->path[i];
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, name);
        } else if (cJSON_IsArray(cur)) {
            char *end;
            long k = strtol(name, &end, 10);
            cur = *end || !isdigit((unsigned char)name[0]) || k > 1000000 ? NULL : cJSON_GetArrayItem(cur, (int)k);
        } else {
            cur = NULL;
        }
    }
    return cur;
}

static void path_str(const TplExpr *e, char *buf, size_t n) {
    buf[0] = 0;
    for (int i = 0; i < e->npath; i++) {
        strncat(buf, i ? "." : "", n - strlen(buf) - 1);
        strncat(buf, e->path[i], n - strlen(buf) - 1);
    }
}

// A number as Jinja prints a Python int (integral values), else the shortest
// %g text that reads back as the same double.
static int put_number(KilnBuf *out, double v) {
    if (isfinite(v) && v == floor(v) && fabs(v) < 1e17) return kbuf_printf(out, "%.0f", v);
    for (int prec = 15; prec <= 17; prec++) {
        char tmp[40];
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v || prec == 17) return kbuf_puts(out, tmp);
    }
    return 0;
}

int tpl_render_value(const TplExpr *e, const cJSON *v, long index, KilnBuf *out, char *why, size_t whylen) {
    kbuf_clear(out);
    char path[200];
    int rc;
    if (!v && e->npath == 1 && !strcmp(e->path[0], "_index")) {
        rc = kbuf_printf(out, "%ld", index);
    } else if (!v) {
        path_str(e, path, sizeof path);
        return why_set(why, whylen, "no field '%s'", path);
    } else if (cJSON_IsString(v)) {
        rc = kbuf_puts(out, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        rc = put_number(out, v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        rc = kbuf_puts(out, cJSON_IsTrue(v) ? "True" : "False");
    } else {
        path_str(e, path, sizeof path);
        return why_set(why, whylen, "field '%s' is %s, not text", path,
                       cJSON_IsArray(v) ? "a list" : cJSON_IsObject(v) ? "a mapping" : "null");
    }
    if (!rc && !out->data) rc = kbuf_reserve(out, 1);
    for (int f = 0; f < e->nfilters && !rc; f++) rc = tpl_filter_apply(e->filters[f], out);
    return rc ? why_set(why, whylen, "out of memory") : 0;
}

int tpl_render(const Template *t, const cJSON *rec, long index, KilnBuf *out, char *why, size_t whylen) {
    kbuf_clear(out);
    if (!out->data && kbuf_reserve(out, 1)) return why_set(why, whylen, "out of memory");
    KilnBuf v = {0};
    int rc = 0;
    for (int i = 0; i < t->nparts && !rc; i++) {
        const Part *p = &t->parts[i];
        if (!p->is_expr) {
            rc = kbuf_append(out, p->lit, p->litlen) ? why_set(why, whylen, "out of memory") : 0;
            continue;
        }
        rc = tpl_render_value(&p->e, tpl_lookup(&p->e, rec), index, &v, why, whylen);
        if (!rc && kbuf_append(out, v.data, v.len)) rc = why_set(why, whylen, "out of memory");
    }
    for (int f = 0; f < t->npost && !rc; f++)
        if (tpl_filter_apply(t->post[f], out)) rc = why_set(why, whylen, "out of memory");
    kbuf_free(&v);
    return rc;
}
