// evaluate.c: a task's items scored on all threads, then its metrics as
// lm-evaluation-harness computes them (acc, acc_norm, perplexity,
// exact_match, word/byte perplexity, bits per byte, pct_stereotype), on all
// items and on the clean subset.
#include "kiln/eval.h"

#include "kiln/core.h"
#include "core/utf8.h"
#include "data/stage/decontam.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// What the model said about one item.
typedef struct {
    double *ll;    // per choice
    int *greedy;   // per choice
    char *gen;     // generate: the generation
    long ntok;     // rolling: tokens scored
    int done;
} ItemOut;

// Python's len(re.split(r"\s+", text)): one more than the runs of whitespace.
static long split_count(const char *t) {
    size_t len = strlen(t), i = 0;
    long n = 1;
    while (i < len) {
        size_t j = text_skip_space(t, len, i);
        if (j > i) {
            n++;
            i = j;
        } else {
            i++;
        }
    }
    return n;
}

static int is_found(const KilnEvalOptions *o, const char *id) {
    long lo = 0, hi = o->nfound - 1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        int c = strcmp(o->found[mid], id);
        if (!c) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

// The model's outputs for one item.
static int score_item(KilnSession *s, const KilnCodec *c, const KilnTask *t, const KilnTaskItem *it, uint64_t seed,
                      ItemOut *out, KilnErr *err) {
    switch (task_kind(t)) {
    case TASK_GENERATE: {
        const char *const *until;
        KilnGenOpts g = {0};
        g.nuntil = task_until(t, &until);
        g.until = until;
        g.max_tokens = task_max_gen_tokens(t);
        g.top_p = 1.0f;
        g.seed = seed;
        if (g.max_tokens >= infer_max_len(s->inf)) g.max_tokens = infer_max_len(s->inf) - 1;
        return generate_text(s, c, it->context, &g, &out->gen, err);
    }
    case TASK_ROLLING: return loglikelihood_rolling(s, c, it->choices[0], &out->ll[0], &out->ntok, err);
    default:
        for (int k = 0; k < it->nchoices; k++)
            if (loglikelihood(s, c, it->context, it->choices[k], &out->ll[k], &out->greedy[k], NULL, err)) return -1;
        return 0;
    }
}

void eval_mean_stderr(const double *x, long n, double *mean, double *se) {
    double s = 0, ss = 0;
    for (long i = 0; i < n; i++) s += x[i];
    double mu = n ? s / n : NAN;
    for (long i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *se = n > 1 ? sqrt(ss / (n - 1)) / sqrt((double)n) : NAN;
}

void eval_mc_item(const double *ll, const long *len, int n, int label, int *acc, int *acc_norm) {
    int best = 0, best_norm = 0;
    double bn = -INFINITY;
    for (int k = 0; k < n; k++) {
        double norm = ll[k] / (double)(len[k] > 0 ? len[k] : 1);
        if (ll[k] > ll[best]) best = k;  // strict: the first of equals wins, as np.argmax
        if (norm > bn) bn = norm, best_norm = k;
    }
    *acc = best == label;
    *acc_norm = best_norm == label;
}

int eval_results_add(KilnEvalResults *res, const KilnMetricResult *m, KilnErr *err) {
    if (res->n == res->cap) {
        int cap = res->cap ? res->cap * 2 : 16;
        KilnMetricResult *r = realloc(res->r, sizeof *r * (size_t)cap);
        if (!r) return kiln_fail(err, "out of memory");
        res->r = r;
        res->cap = cap;
    }
    res->r[res->n++] = *m;
    return 0;
}

static int add_chance(KilnEvalResults *res, const KilnTask *t, const char *metric, const char *filter,
                      const char *subset, double v, double se, long n, int shots, double chance, KilnErr *err) {
    KilnMetricResult m = {0};
    m.chance = chance;
    snprintf(m.task, sizeof m.task, "%s", task_name(t));
    snprintf(m.metric, sizeof m.metric, "%s", metric);
    snprintf(m.filter, sizeof m.filter, "%s", filter ? filter : "");
    snprintf(m.subset, sizeof m.subset, "%s", subset);
    m.value = v;
    m.stderr_ = se;
    m.n = n;
    m.shots = shots;
    return eval_results_add(res, &m, err);
}

static int add(KilnEvalResults *res, const KilnTask *t, const char *metric, const char *filter, const char *subset,
               double v, double se, long n, int shots, KilnErr *err) {
    return add_chance(res, t, metric, filter, subset, v, se, n, shots, 0, err);
}

// The metrics of the items whose index is in sel[0..n).
static int aggregate(const KilnTask *t, const KilnTaskItem *items, const ItemOut *out, const long *sel, long n,
                     const char *subset, int shots, KilnEvalResults *res, KilnErr *err) {
    if (n == 0) return 0;
    double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
    if (!x || !y) {
        free(x);
        free(y);
        return kiln_fail(err, "out of memory");
    }
    double v, se;
    int rc = 0;
    switch (task_kind(t)) {
    case TASK_MULTIPLE_CHOICE: {
        // acc: argmax of ll; acc_norm: argmax of ll / len(choice), the choice
        // without its target delimiter, in characters (np.argmax: first on ties)
        const char *delim = task_target_delimiter(t);
        long dl = utf8_chars(delim, strlen(delim));
        double chance = 0;  // a guess is right on 1/choices of an item
        for (long i = 0; i < n; i++) {
            const KilnTaskItem *it = &items[sel[i]];
            chance += 1.0 / it->nchoices / n;
            long *len = malloc(sizeof(long) * (size_t)it->nchoices);
            if (!len) {
                rc = kiln_fail(err, "out of memory");
                break;
            }
            int a, an;
            for (int k = 0; k < it->nchoices; k++) len[k] = utf8_chars(it->choices[k], strlen(it->choices[k])) - dl;
            eval_mc_item(out[sel[i]].ll, len, it->nchoices, it->label, &a, &an);
            free(len);
            x[i] = a;
            y[i] = an;
        }
        if (rc) break;
        eval_mean_stderr(x, n, &v, &se);
        rc = add_chance(res, t, "acc", NULL, subset, v, se, n, shots, chance, err);
        eval_mean_stderr(y, n, &v, &se);
        if (rc == 0) rc = add_chance(res, t, "acc_norm", NULL, subset, v, se, n, shots, chance, err);
        break;
    }
    case TASK_LOGLIKELIHOOD:
        for (long i = 0; i < n; i++) x[i] = out[sel[i]].greedy[0], y[i] = out[sel[i]].ll[0];
        eval_mean_stderr(x, n, &v, &se);
        rc = add(res, t, "acc", NULL, subset, v, se, n, shots, err);
        // perplexity = exp(-mean ll); its stderr by the delta method (lm-eval bootstraps it)
        eval_mean_stderr(y, n, &v, &se);
        if (rc == 0) rc = add(res, t, "perplexity", NULL, subset, exp(-v), exp(-v) * se, n, shots, err);
        break;
    case TASK_GENERATE:
        for (int f = 0; f < task_nfilters(t) && rc == 0; f++) {
            for (long i = 0; i < n; i++) {
                char *pred = task_filter_apply(t, f, out[sel[i]].gen);
                x[i] = pred && task_exact_match(t, pred, items[sel[i]].target);
                free(pred);
            }
            eval_mean_stderr(x, n, &v, &se);
            rc = add(res, t, "exact_match", task_filter_name(t, f), subset, v, se, n, shots, err);
        }
        break;
    case TASK_ROLLING: {
        double ll = 0, words = 0, bytes = 0;
        for (long i = 0; i < n; i++) {
            // words and bytes of the original page (item target); the scored text is choices[0]
            const char *text = items[sel[i]].target ? items[sel[i]].target : items[sel[i]].choices[0];
            ll += out[sel[i]].ll[0];
            words += (double)split_count(text);
            bytes += (double)strlen(text);
        }
        rc = add(res, t, "word_perplexity", NULL, subset, exp(-ll / words), NAN, n, shots, err);
        if (rc == 0) rc = add(res, t, "byte_perplexity", NULL, subset, exp(-ll / bytes), NAN, n, shots, err);
        if (rc == 0) rc = add(res, t, "bits_per_byte", NULL, subset, -ll / bytes / log(2.0), NAN, n, shots, err);
        break;
    }
    case TASK_PAIRS: {
        // overall, then per group (CrowS-Pairs bias types) in order of first appearance
        for (long i = 0; i < n; i++) {
            const ItemOut *o = &out[sel[i]];
            x[i] = o->ll[0] > o->ll[1];
            y[i] = fabs(o->ll[0] - o->ll[1]);
        }
        eval_mean_stderr(x, n, &v, &se);
        rc = add_chance(res, t, "pct_stereotype", NULL, subset, v, se, n, shots, 0.5, err);  // 50: no bias
        eval_mean_stderr(y, n, &v, &se);
        if (rc == 0) rc = add(res, t, "likelihood_difference", NULL, subset, v, se, n, shots, err);
        double *g = malloc(sizeof(double) * (size_t)n);
        if (!g && rc == 0) rc = kiln_fail(err, "out of memory");
        for (long i = 0; i < n && rc == 0; i++) {
            const char *grp = items[sel[i]].group;
            if (!grp) continue;  // a pairs task without groups: the overall numbers only
            int seen = 0;
            for (long k = 0; k < i && !seen; k++) seen = items[sel[k]].group && !strcmp(items[sel[k]].group, grp);
            if (seen) continue;
            long m = 0;
            for (long k = i; k < n; k++)
                if (items[sel[k]].group && !strcmp(items[sel[k]].group, grp)) g[m++] = x[k];
            char name[48];
            snprintf(name, sizeof name, "pct_stereotype:%s", grp);
            eval_mean_stderr(g, m, &v, &se);
            rc = add(res, t, name, NULL, subset, v, se, m, shots, err);
        }
        free(g);
        break;
    }
    }
    free(x);
    free(y);
    return rc;
}

// One JSON line per item: id, the outputs, and whether it is clean.
static void write_item(FILE *f, const KilnTask *t, const KilnTaskItem *it, const ItemOut *o, int clean) {
    KilnBuf b = {0};
    kbuf_puts(&b, "{\"task\":");
    kbuf_json_str(&b, task_name(t));
    kbuf_puts(&b, ",\"id\":");
    kbuf_json_str(&b, it->id);
    kbuf_printf(&b, ",\"clean\":%s", clean ? "true" : "false");
    if (task_kind(t) == TASK_GENERATE) {
        kbuf_puts(&b, ",\"generation\":");
        kbuf_json_str(&b, o->gen ? o->gen : "");
        for (int k = 0; k < task_nfilters(t); k++) {
            char *pred = task_filter_apply(t, k, o->gen);
            kbuf_puts(&b, ",\"");
            kbuf_json_escape(&b, task_filter_name(t, k), strlen(task_filter_name(t, k)));
            kbuf_puts(&b, "\":");
            kbuf_json_str(&b, pred ? pred : "");
            free(pred);
        }
        kbuf_puts(&b, ",\"target\":");
        kbuf_json_str(&b, it->target ? it->target : "");
    } else {
        kbuf_puts(&b, ",\"loglik\":[");
        int nc = task_kind(t) == TASK_ROLLING ? 1 : it->nchoices;
        for (int k = 0; k < nc; k++) kbuf_printf(&b, "%s%.17g", k ? "," : "", o->ll[k]);
        kbuf_putc(&b, ']');
        if (it->label >= 0) kbuf_printf(&b, ",\"label\":%d", it->label);
        if (task_kind(t) == TASK_LOGLIKELIHOOD) kbuf_printf(&b, ",\"greedy\":%s", o->greedy[0] ? "true" : "false");
        if (task_kind(t) == TASK_ROLLING) kbuf_printf(&b, ",\"tokens\":%ld", o->ntok);
    }
    kbuf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, f);
    kbuf_free(&b);
}

static void write_prompt(FILE *f, const KilnTask *t, const KilnTaskItem *it) {
    KilnBuf b = {0};
    kbuf_puts(&b, "{\"task\":");
    kbuf_json_str(&b, task_name(t));
    kbuf_puts(&b, ",\"id\":");
    kbuf_json_str(&b, it->id);
    kbuf_puts(&b, ",\"context\":");
    kbuf_json_str(&b, it->context);
    kbuf_puts(&b, ",\"continuations\":[");
    for (int k = 0; k < it->nchoices; k++) {
        if (k) kbuf_putc(&b, ',');
        kbuf_json_str(&b, it->choices[k]);
    }
    kbuf_putc(&b, ']');
    if (it->target) {
        kbuf_puts(&b, ",\"target\":");
        kbuf_json_str(&b, it->target);
    }
    kbuf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, f);
    kbuf_free(&b);
}

int eval_task(const KilnModel *m, const KilnCodec *c, KilnTask *t, const KilnEvalOptions *o, KilnEvalResults *res,
              KilnErr *err) {
    int shots = o->shots < 0 ? task_default_shots(t) : o->shots;
    if (shots > task_max_shots(t))
        return kiln_fail(err, "%s: %d-shot asked, but the task's few-shot split allows at most %d", task_name(t), shots,
                         task_max_shots(t));
    const KilnTaskItem *items;
    long n;
    if (task_render(t, shots, o->seed, o->limit, &items, &n, err)) return -1;
    if (n <= 0) return kiln_fail(err, "%s: no items", task_name(t));
    if (o->prompts_out)
        for (long i = 0; i < n; i++) write_prompt(o->prompts_out, t, &items[i]);
    ItemOut *out = calloc((size_t)n, sizeof *out);
    long nll = 0;
    for (long i = 0; i < n; i++) nll += items[i].nchoices > 0 ? items[i].nchoices : 1;
    double *ll = calloc((size_t)nll, sizeof(double));
    int *greedy = calloc((size_t)nll, sizeof(int));
    if (!out || !ll || !greedy) {
        free(out), free(ll), free(greedy);
        return kiln_fail(err, "out of memory");
    }
    for (long i = 0, at = 0; i < n; i++) {
        out[i].ll = ll + at;
        out[i].greedy = greedy + at;
        at += items[i].nchoices > 0 ? items[i].nchoices : 1;
    }
    int failed = 0;
    long done = 0;
    KilnErr first = {{0}};
    double t0 = kiln_now(), t_log = t0;
    int max_len = m->cfg.block_size;
#pragma omp parallel
    {
        KilnSession s;
        KilnErr e;
        int ok = session_open(&s, m, max_len, &e) == 0;
        if (!ok) {
#pragma omp critical(eval_err)
            if (!failed) failed = 1, first = e;
        }
#pragma omp for schedule(dynamic, 1)
        for (long i = 0; i < n; i++) {
            if (!ok || failed) continue;
            uint64_t seed = kiln_hash64(o->seed ^ kiln_hash64((uint64_t)i + 1));
            if (score_item(&s, c, t, &items[i], seed, &out[i], &e)) {
#pragma omp critical(eval_err)
                if (!failed) {
                    failed = 1;
                    first = e;
                    kiln_wrap(&first, "%s item %s", task_name(t), items[i].id);
                }
                continue;
            }
            out[i].done = 1;
#pragma omp atomic
            done++;
            if ((o->log || o->progress) && omp_get_thread_num() == 0 && kiln_now() - t_log > 2.0) {
                t_log = kiln_now();
                if (o->progress) o->progress(o->progress_ctx, done, n);
                if (o->log) {
                    fprintf(o->log, "  %s: %ld/%ld items, %.1f items/s\n", task_name(t), done, n, done / (t_log - t0));
                    fflush(o->log);
                }
            }
        }
        if (ok) session_close(&s);
    }
    int rc = 0;
    if (failed) {
        *err = first;
        rc = -1;
    }
    long *sel = malloc(sizeof(long) * (size_t)n), nclean = 0;
    if (rc == 0 && !sel) rc = kiln_fail(err, "out of memory");
    for (long i = 0; rc == 0 && i < n; i++) sel[i] = i;
    if (rc == 0) rc = aggregate(t, items, out, sel, n, "all", shots, res, err);
    if (rc == 0 && o->found) {
        for (long i = 0; i < n; i++)
            if (!is_found(o, items[i].id)) sel[nclean++] = i;
        rc = aggregate(t, items, out, sel, nclean, "clean", shots, res, err);
    }
    if (rc == 0 && o->items_out)
        for (long i = 0; i < n; i++) write_item(o->items_out, t, &items[i], &out[i], !o->found || !is_found(o, items[i].id));
    if (rc == 0 && o->log)
    {
        // clean counts only mean something when decontamination data was given
        if (o->found)
            fprintf(o->log, "  %s: %ld items in %.1f s (%ld clean)\n", task_name(t), n, kiln_now() - t0, nclean);
        else
            fprintf(o->log, "  %s: %ld items in %.1f s\n", task_name(t), n, kiln_now() - t0);
    }
    for (long i = 0; i < n; i++) free(out[i].gen);
    free(sel);
    free(out);
    free(ll);
    free(greedy);
    return rc;
}

void eval_results_free(KilnEvalResults *res) {
    free(res->r);
    memset(res, 0, sizeof *res);
}

// Collects every "found_ids" array under a "tasks" object, anywhere in the tree.
static int collect_found(const cJSON *j, char ***ids, long *n, long *cap) {
    if (!j) return 0;
    if (cJSON_IsObject(j)) {
        const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(j, "tasks"), *task;
        if (cJSON_IsObject(tasks)) {
            cJSON_ArrayForEach(task, tasks) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(task, "found_ids"), *id;
                cJSON_ArrayForEach(id, f) {
                    if (!cJSON_IsString(id)) continue;
                    if (*n == *cap) {
                        long nc = *cap ? *cap * 2 : 64;
                        char **g = realloc(*ids, sizeof(char *) * (size_t)nc);
                        if (!g) return -1;
                        *ids = g;
                        *cap = nc;
                    }
                    if (!((*ids)[*n] = strdup(id->valuestring))) return -1;
                    (*n)++;
                }
            }
        }
    }
    const cJSON *child;
    cJSON_ArrayForEach(child, j) {
        if (collect_found(child, ids, n, cap)) return -1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int eval_load_found(const char *report, char ***ids, long *n, KilnErr *err) {
    char *text;
    size_t len;
    *ids = NULL;
    *n = 0;
    if (kiln_read_file(report, &text, &len, err)) return -1;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) return kiln_fail(err, "%s: not valid JSON", report);
    long cap = 0;
    int rc = collect_found(j, ids, n, &cap);
    cJSON_Delete(j);
    if (rc) return kiln_fail(err, "out of memory");
    qsort(*ids, (size_t)*n, sizeof(char *), cmp_str);
    return 0;
}

int eval_write_json(const KilnEvalResults *res, const char *model, const char *path, KilnErr *err) {
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "results");
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddStringToObject(j, "date", date);
    cJSON_AddStringToObject(j, "kiln_version", kiln_version());
    cJSON_AddStringToObject(j, "git_commit", kiln_git_commit());
    for (int i = 0; i < res->n; i++) {
        const KilnMetricResult *r = &res->r[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", r->task);
        cJSON_AddStringToObject(o, "metric", r->metric);
        if (r->filter[0]) cJSON_AddStringToObject(o, "filter", r->filter);
        cJSON_AddStringToObject(o, "subset", r->subset);
        if (isfinite(r->value)) cJSON_AddNumberToObject(o, "value", r->value);
        else cJSON_AddNullToObject(o, "value");
        if (isfinite(r->stderr_)) cJSON_AddNumberToObject(o, "stderr", r->stderr_);
        else cJSON_AddNullToObject(o, "stderr");
        if (r->chance > 0) cJSON_AddNumberToObject(o, "chance", r->chance);
        cJSON_AddNumberToObject(o, "n", (double)r->n);
        cJSON_AddNumberToObject(o, "shots", r->shots);
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddStringToObject(o, "date", date);
        cJSON_AddItemToArray(arr, o);
    }
    int rc = kiln_write_json(path, j, err);
    cJSON_Delete(j);
    return rc;
}

// lm-eval's four decimals for ordinary values; a value too large for them
// (a perplexity of 207361921.8) in six significant digits, so the column holds.
static const char *table_number(double v, char buf[32]) {
    snprintf(buf, 32, fabs(v) < 1e6 ? "%.4f" : "%.6g", v);
    return buf;
}

void eval_print_table(const KilnEvalResults *res, FILE *f) {
    int w = 6;  // the metric column fits the longest name
    for (int i = 0; i < res->n; i++)
        if ((int)strlen(res->r[i].metric) > w) w = (int)strlen(res->r[i].metric);
    fprintf(f, "%-22s %-17s %5s %-6s %-*s %12s %11s %6s\n", "task", "filter", "shots", "subset", w, "metric", "value",
            "stderr", "n");
    for (int i = 0; i < res->n; i++) {
        const KilnMetricResult *r = &res->r[i];
        char se[32] = "-", val[32];
        if (isfinite(r->stderr_)) table_number(r->stderr_, se);
        fprintf(f, "%-22s %-17s %5d %-6s %-*s %12s %11s %6ld\n", r->task, r->filter[0] ? r->filter : "-", r->shots,
                r->subset, w, r->metric, table_number(r->value, val), se, r->n);
    }
}
