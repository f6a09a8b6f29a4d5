// params.c: a stage's parameters (key -> values) with typed getters whose
// errors name the stage, the key, the value and where it was written.
#include "kiln/data.h"

#include "core/parse.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static KilnParam *find(KilnParams *ps, const char *key) {
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->p[i].key, key)) return &ps->p[i];
    return NULL;
}

int params_add(KilnParams *ps, const char *key, const char *val, const char *where, KilnErr *err) {
    KilnParam *p = find(ps, key);
    if (!p) {
        KilnParam *np = realloc(ps->p, (size_t)(ps->n + 1) * sizeof *np);
        if (!np) return kiln_fail(err, "out of memory");
        ps->p = np;
        p = &ps->p[ps->n++];
        memset(p, 0, sizeof *p);
        p->key = strdup(key);
        p->where = strdup(where ? where : "command line");
        if (!p->key || !p->where) return kiln_fail(err, "out of memory");
    }
    char **nv = realloc(p->vals, (size_t)(p->nvals + 1) * sizeof *nv);
    if (!nv) return kiln_fail(err, "out of memory");
    p->vals = nv;
    if (!(p->vals[p->nvals] = strdup(val))) return kiln_fail(err, "out of memory");
    p->nvals++;
    return 0;
}

void params_free(KilnParams *ps) {
    for (int i = 0; i < ps->n; i++) {
        for (int k = 0; k < ps->p[i].nvals; k++) free(ps->p[i].vals[k]);
        free(ps->p[i].vals);
        free(ps->p[i].key);
        free(ps->p[i].where);
    }
    free(ps->p);
    free(ps->stage);
    memset(ps, 0, sizeof *ps);
}

// The single value of key, or NULL when absent; an error for a list.
static int scalar(KilnParams *ps, const char *key, const char **val, KilnParam **pp, KilnErr *err) {
    KilnParam *p = find(ps, key);
    *val = NULL;
    if (pp) *pp = p;
    if (!p) return 0;
    p->used = 1;
    if (p->nvals != 1)
        return kiln_fail(err, "%s: %s: '%s' takes one value, got %d", p->where, ps->stage ? ps->stage : "stage",
                         key, p->nvals);
    *val = p->vals[0];
    return 0;
}

static int bad(KilnParams *ps, KilnParam *p, const char *val, const char *want, KilnErr *err) {
    return kiln_fail(err, "%s: %s: '%s' wants %s, got '%s'", p->where, ps->stage ? ps->stage : "stage", p->key,
                     want, val);
}

int params_int(KilnParams *ps, const char *key, long *out, KilnErr *err) {
    const char *v;
    KilnParam *p;
    if (scalar(ps, key, &v, &p, err)) return -1;
    if (!v) return 0;
    return kiln_parse_long(v, LONG_MIN, LONG_MAX, out) ? bad(ps, p, v, "an integer", err) : 0;
}

int params_double(KilnParams *ps, const char *key, double *out, KilnErr *err) {
    const char *v;
    KilnParam *p;
    if (scalar(ps, key, &v, &p, err)) return -1;
    if (!v) return 0;
    return kiln_parse_double(v, out) ? bad(ps, p, v, "a number", err) : 0;
}

int params_bool(KilnParams *ps, const char *key, int *out, KilnErr *err) {
    const char *v;
    KilnParam *p;
    if (scalar(ps, key, &v, &p, err)) return -1;
    if (!v) return 0;
    return kiln_parse_bool(v, out) ? bad(ps, p, v, "true or false", err) : 0;
}

int params_str(KilnParams *ps, const char *key, const char **out, KilnErr *err) {
    const char *v;
    if (scalar(ps, key, &v, NULL, err)) return -1;
    if (v) *out = v;
    return 0;
}

int params_enum(KilnParams *ps, const char *key, const char *const *choices, int *out, KilnErr *err) {
    const char *v;
    KilnParam *p;
    if (scalar(ps, key, &v, &p, err)) return -1;
    if (!v) return 0;
    char want[512] = "one of";
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(v, choices[i])) {
            *out = i;
            return 0;
        }
        strncat(want, i ? ", " : " ", sizeof want - strlen(want) - 1);
        strncat(want, choices[i], sizeof want - strlen(want) - 1);
    }
    return bad(ps, p, v, want, err);
}

int params_list(KilnParams *ps, const char *key, const char *const **vals, int *n, KilnErr *err) {
    KilnParam *p = find(ps, key);
    *vals = NULL;
    *n = 0;
    if (!p) return 0;
    p->used = 1;
    *vals = (const char *const *)p->vals;
    *n = p->nvals;
    return 0;
}

const char *params_where(const KilnParams *ps, const char *key) {
    for (int i = 0; i < ps->n; i++)
        if (!strcmp(ps->p[i].key, key)) return ps->p[i].where;
    return NULL;
}

int params_check_unused(const KilnParams *ps, KilnErr *err) {
    for (int i = 0; i < ps->n; i++)
        if (!ps->p[i].used)
            return kiln_fail(err, "%s: %s has no parameter '%s'", ps->p[i].where, ps->stage ? ps->stage : "stage",
                             ps->p[i].key);
    return 0;
}
