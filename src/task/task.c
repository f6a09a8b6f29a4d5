// task.c: evaluation tasks (kiln/task.h): loads a task file and its dataset,
// renders every record once (so bad records surface at load, with file:line),
// and builds n-shot prompts as lm-evaluation-harness's ContextSampler does:
// examples drawn at random from the few-shot pool (never the item itself),
// each "text + target_delimiter + gold + fewshot_delimiter", then the item.
#include "task/task_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- records
void task_rec_free(TaskRec *r) {
    free(r->id);
    free(r->text);
    for (int k = 0; k < r->nchoices; k++) free(r->choices[k]);
    free(r->choices);
    free(r->target);
    free(r->group);
    free(r->count);
    free(r->example);
    memset(r, 0, sizeof *r);
}

static char *render(const Template *tpl, const cJSON *rec, long index, KilnBuf *b, char *why, size_t n, int *st) {
    if (*st) return NULL;
    if (tpl_render(tpl, rec, index, b, why, n)) {
        *st = strcmp(why, "out of memory") ? REC_BAD : REC_OOM;
        return NULL;
    }
    char *s = strdup(b->data);
    if (!s) *st = REC_OOM;
    return s;
}

// s = prefix + body (malloc'd)
static char *concat(const char *prefix, const char *body) {
    size_t a = strlen(prefix), b = strlen(body);
    char *s = malloc(a + b + 1);
    if (s) {
        memcpy(s, prefix, a);
        memcpy(s + a, body, b + 1);
    }
    return s;
}

int task_rec_choices(const KilnTask *t, const cJSON *rec, long index, TaskRec *r, KilnBuf *b, char *why, size_t n) {
    const char *pre = t->kind == TASK_MULTIPLE_CHOICE ? t->target_delim : "";
    int cnt = t->nchoice_tpl;
    const cJSON *list = NULL;
    if (!cnt) {
        list = tpl_lookup(&t->choice_list, rec);
        if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
            snprintf(why, n, "choices: field '%s' is %s", t->choice_list.path[0], list ? "not a non-empty list" : "missing");
            return REC_BAD;
        }
        cnt = cJSON_GetArraySize(list);
    }
    if (t->kind == TASK_PAIRS && cnt != 2) {
        snprintf(why, n, "a pair needs 2 sentences, the record has %d", cnt);
        return REC_BAD;
    }
    if (!(r->choices = calloc((size_t)cnt, sizeof *r->choices))) return REC_OOM;
    const cJSON *el = list ? list->child : NULL;
    for (int k = 0; k < cnt; k++, el = el ? el->next : NULL) {
        int rc = list ? tpl_render_value(&t->choice_list, el, index, b, why, n)
                      : tpl_render(t->choice_tpl[k], rec, index, b, why, n);
        if (rc) return strcmp(why, "out of memory") ? REC_BAD : REC_OOM;
        if (!(r->choices[k] = concat(pre, b->data))) return REC_OOM;
        r->nchoices++;
    }
    return REC_OK;
}

// The gold choice: an integer, or text holding one ("3", as HF datasets and label files).
static int rec_label(const KilnTask *t, const cJSON *rec, TaskRec *r, char *why, size_t n) {
    const cJSON *v = tpl_lookup(&t->label, rec);
    long k = -1;
    int ok = 0;
    if (cJSON_IsNumber(v)) {
        ok = v->valuedouble == (double)(long)v->valuedouble;
        k = (long)v->valuedouble;
    } else if (cJSON_IsString(v)) {
        char *end;
        const char *s = v->valuestring;
        while (*s == ' ' || *s == '\t') s++;
        k = strtol(s, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r') end++;
        ok = s[0] && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) && !*end;
    }
    if (!v) snprintf(why, n, "no label field '%s'", t->label.path[0]);
    else if (!ok) snprintf(why, n, "label is not a choice number");
    else if (k < 0 || k >= r->nchoices) snprintf(why, n, "label %ld out of range (%d choices)", k, r->nchoices);
    else return r->label = (int)k, REC_OK;
    return REC_BAD;
}

// The record as a few-shot example: text + target_delimiter + gold +
// fewshot_delimiter; an empty gold text leaves out all but the text (as
// lm-evaluation-harness's `if doc_target != ""`; a choice index always counts).
static int rec_example(const KilnTask *t, TaskRec *r, KilnBuf *b) {
    const char *gold = t->kind == TASK_MULTIPLE_CHOICE ? r->choices[r->label] + strlen(t->target_delim) : r->target;
    kbuf_clear(b);
    int rc = kbuf_puts(b, r->text);
    if (!rc && (t->kind == TASK_MULTIPLE_CHOICE || gold[0]))
        rc = kbuf_puts(b, t->target_delim) || kbuf_puts(b, gold) || kbuf_puts(b, t->fewshot_delim);
    if (rc || !(r->example = strdup(b->data))) return REC_OOM;
    return REC_OK;
}

static int rec_build(const KilnTask *t, const cJSON *rec, long index, long line, TaskRec *r, char *why, size_t n) {
    KilnBuf b = {0};
    int st = REC_OK;
    r->index = index;
    r->line = line;
    r->label = -1;
    r->id = render(t->id, rec, index, &b, why, n, &st);
    if (t->text) r->text = render(t->text, rec, index, &b, why, n, &st);
    if (t->target) r->target = render(t->target, rec, index, &b, why, n, &st);
    if (t->group) r->group = render(t->group, rec, index, &b, why, n, &st);
    if (t->kind == TASK_ROLLING)
        r->count = t->count ? render(t->count, rec, index, &b, why, n, &st) : st ? NULL : strdup(r->target);
    if (!st && t->kind == TASK_ROLLING && !r->count) st = REC_OOM;
    if (!st && (t->kind == TASK_MULTIPLE_CHOICE || t->kind == TASK_PAIRS))
        st = task_rec_choices(t, rec, index, r, &b, why, n);
    if (!st && t->kind == TASK_MULTIPLE_CHOICE) st = rec_label(t, rec, r, why, n);
    if (!st && (t->kind == TASK_LOGLIKELIHOOD || t->kind == TASK_ROLLING)) {  // [continuation] / [the text]
        if (!(r->choices = calloc(1, sizeof *r->choices)) || !(r->choices[0] = strdup(r->target))) st = REC_OOM;
        else r->nchoices = 1;
    }
    if (!st && t->text) st = rec_example(t, r, &b);
    kbuf_free(&b);
    if (st == REC_OOM) snprintf(why, n, "out of memory");
    return st;
}

// ---------------------------------------------------------------- loading
typedef struct {
    KilnTask *t;
    TaskRec **list;
    long *n, cap;
    const char *file;
    int skip_bad;
} Load;

static int on_record(void *ctx, const cJSON *rec, long index, long line, KilnErr *err) {
    Load *L = ctx;
    TaskRec r = {0};
    char why[600];
    int st = rec_build(L->t, rec, index, line, &r, why, sizeof why);
    if (st) {
        task_rec_free(&r);
        if (st == REC_OOM) return kiln_fail(err, "out of memory");
        if (L->skip_bad) {
            L->t->skipped++;
            return 0;
        }
        return kiln_fail(err, "%s:%ld: %s", L->file, line, why);
    }
    if (*L->n == L->cap) {
        long cap = L->cap ? L->cap * 2 : 256;
        TaskRec *v = realloc(*L->list, sizeof *v * (size_t)cap);
        if (!v) {
            task_rec_free(&r);
            return kiln_fail(err, "out of memory");
        }
        *L->list = v;
        L->cap = cap;
    }
    (*L->list)[(*L->n)++] = r;
    return 0;
}

static int load_records(KilnTask *t, const DsSpec *spec, TaskRec **list, long *n, int skip_bad, KilnErr *err) {
    Load L = {.t = t, .list = list, .n = n, .file = spec->path, .skip_bad = skip_bad};
    long nrec;
    return ds_read(spec, skip_bad, on_record, &L, &nrec, &t->skipped, err);
}

int task_load(KilnTask **out, const char *yaml_path, const char *data_dir, int skip_bad, KilnErr *err) {
    *out = NULL;
    KilnTask *t = calloc(1, sizeof *t);
    if (!t || !(t->file = strdup(yaml_path))) {
        free(t);
        return kiln_fail(err, "out of memory");
    }
    KilnYaml y;
    int rc = ky_load(&y, yaml_path, KY_STRICT, err);
    if (!rc) {
        rc = ky_root(&y) ? task_spec_read(t, ky_root(&y), data_dir, err)
                         : kiln_fail(err, "%s: empty task file", yaml_path);
        ky_free(&y);
    }
    if (!rc) rc = load_records(t, &t->data, &t->recs, &t->nrecs, skip_bad, err);
    if (!rc && t->fs_path && !t->fs_same_file) rc = load_records(t, &t->fs, &t->pool, &t->npool, skip_bad, err);
    if (!rc && t->split_from_data >= 0) {
        while (t->nsplit < t->nrecs && t->recs[t->nsplit].index < t->split_from_data) t->nsplit++;
        if (t->nsplit == t->nrecs)
            rc = kiln_fail(err, "%s: split_from_data %ld leaves no records of %s to score", yaml_path, t->split_from_data,
                           t->data_path);
    }
    if (!rc && t->default_shots > task_max_shots(t))
        rc = kiln_fail(err, "%s: default_shots %d, but the few-shot pool allows at most %d", yaml_path, t->default_shots,
                       task_max_shots(t));
    if (rc) {
        task_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static void render_free(KilnTask *t) {
    for (long i = 0; i < t->ncontexts; i++) free(t->contexts[i]);
    free(t->contexts);
    free(t->items);
    t->contexts = NULL;
    t->items = NULL;
    t->ncontexts = t->nitems = 0;
}

void task_free(KilnTask *t) {
    if (!t) return;
    render_free(t);
    for (long i = 0; i < t->nrecs; i++) task_rec_free(&t->recs[i]);
    for (long i = 0; i < t->npool; i++) task_rec_free(&t->pool[i]);
    free(t->recs);
    free(t->pool);
    task_spec_free(t);
    free(t->file);
    free(t);
}

// ---------------------------------------------------------------- accessors
const char *task_name(const KilnTask *t) { return t->name; }
KilnTaskKind task_kind(const KilnTask *t) { return t->kind; }
long task_skipped(const KilnTask *t) { return t->skipped; }
int task_default_shots(const KilnTask *t) { return t->default_shots; }
const char *task_target_delimiter(const KilnTask *t) { return t->target_delim; }

// The few-shot pool: records to draw from, and whether the item itself may be among them.
static const TaskRec *pool_of(const KilnTask *t, long *n, int *same) {
    *same = 0;
    if (t->split_from_data >= 0) return *n = t->nsplit, t->recs;
    if (t->fs_same_file) return *same = 1, *n = t->nrecs, t->recs;
    if (t->fs_path) return *n = t->npool, t->pool;
    return *n = 0, NULL;
}

int task_max_shots(const KilnTask *t) {
    long n;
    int same;
    pool_of(t, &n, &same);
    long m = same && n > 0 ? n - 1 : n;
    if (t->max_shots_cfg >= 0 && m > t->max_shots_cfg) m = t->max_shots_cfg;
    return m > 1000 ? 1000 : (int)m;
}

int task_until(const KilnTask *t, const char *const **until) {
    *until = (const char *const *)t->until;
    return t->kind == TASK_GENERATE ? t->nuntil : 0;
}
int task_max_gen_tokens(const KilnTask *t) { return t->max_tokens; }
int task_nfilters(const KilnTask *t) { return t->nfilters; }
const char *task_filter_name(const KilnTask *t, int f) { return f >= 0 && f < t->nfilters ? t->filters[f].name : NULL; }

char *task_filter_apply(const KilnTask *t, int f, const char *generation) {
    if (f < 0 || f >= t->nfilters) return NULL;
    const TaskFilter *tf = &t->filters[f];
    if (!generation) generation = "";
    if (!tf->re) return strdup(generation);
    char *s = ans_regex_select(tf->re, generation, tf->group_select);
    return s ? s : strdup(tf->fallback);
}

int task_exact_match(const KilnTask *t, const char *pred, const char *target) {
    return ans_exact_match(&t->exact, pred, target);
}

// ---------------------------------------------------------------- rendering
// Uniform in [0, n) without modulo bias.
static uint64_t below(KilnRng *rng, uint64_t n) {
    uint64_t lim = -n % n, x;
    do x = kiln_rng_u64(rng);
    while (x < lim);
    return x % n;
}

// context = the examples of `shots` pool records drawn for item r, then r's text.
static char *fewshot_context(const KilnTask *t, const TaskRec *r, int shots, uint64_t seed, long *pick, KilnBuf *b) {
    long np;
    int same;
    const TaskRec *pool = pool_of(t, &np, &same);
    // lm-evaluation-harness draws one more from the item's own split and drops the item
    long draw = shots + (same ? 1 : 0);
    if (draw > np) draw = np;
    KilnRng rng;
    kiln_rng_seed(&rng, kiln_hash64(seed) ^ kiln_hash64(0x6b696c6e00000000ull + (uint64_t)r->index));
    for (long k = 0; k < draw; k++) {  // distinct, in the order drawn (random.sample)
        long x, j;
        do {
            x = (long)below(&rng, (uint64_t)np);
            for (j = 0; j < k && pick[j] != x; j++) {}
        } while (j < k);
        pick[k] = x;
    }
    kbuf_clear(b);
    int used = 0, rc = kbuf_reserve(b, 1);
    for (long k = 0; k < draw && used < shots && !rc; k++) {
        if (same && pool[pick[k]].index == r->index) continue;
        rc = kbuf_puts(b, pool[pick[k]].example);
        used++;
    }
    if (rc || kbuf_puts(b, r->text)) return NULL;
    return strdup(b->data);
}

int task_render(KilnTask *t, int shots, uint64_t seed, long limit, const KilnTaskItem **items, long *n, KilnErr *err) {
    *items = NULL;
    *n = 0;
    render_free(t);
    if (shots < 0 || shots > task_max_shots(t))
        return kiln_fail(err, "%s: %d-shot, but the task allows 0 to %d", t->name, shots, task_max_shots(t));
    // with a pool split from the data, its records are examples, not items
    long first = shots > 0 && t->split_from_data >= 0 ? t->nsplit : 0, cnt = t->nrecs - first;
    if (limit > 0 && cnt > limit) cnt = limit;
    t->items = calloc((size_t)(cnt ? cnt : 1), sizeof *t->items);
    t->contexts = shots > 0 ? calloc((size_t)(cnt ? cnt : 1), sizeof *t->contexts) : NULL;
    long *pick = shots > 0 ? malloc(sizeof *pick * (size_t)(shots + 1)) : NULL;
    if (!t->items || (shots > 0 && (!t->contexts || !pick))) {
        free(pick);
        render_free(t);
        return kiln_fail(err, "out of memory");
    }
    KilnBuf b = {0};
    for (long i = 0; i < cnt; i++) {
        const TaskRec *r = &t->recs[first + i];
        KilnTaskItem *it = &t->items[i];
        it->id = r->id;
        it->context = r->text ? r->text : "";
        if (shots > 0) {
            char *c = fewshot_context(t, r, shots, seed, pick, &b);
            if (!c) {
                kbuf_free(&b);
                free(pick);
                render_free(t);
                return kiln_fail(err, "out of memory");
            }
            it->context = t->contexts[t->ncontexts++] = c;
        }
        it->choices = (const char **)r->choices;
        it->nchoices = r->nchoices;
        it->label = r->label;
        it->target = t->kind == TASK_GENERATE ? r->target : t->kind == TASK_ROLLING ? r->count : NULL;
        it->group = r->group;
        it->line = r->line;
    }
    kbuf_free(&b);
    free(pick);
    t->nitems = cnt;
    *items = t->items;
    *n = cnt;
    return 0;
}
