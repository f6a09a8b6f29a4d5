// exact_dedup.c: the `exact_dedup` corpus stage. Pass 1 hashes every document's
// normalised text (dedup_normalize, datatrove's simplify_text) with XXH3-128 and
// sorts (hash, index) records out of core; equal hashes after the first index
// are duplicates (one bit per document). Pass 2 writes the documents that are
// not. Memory: the sort budget plus N/8 bytes; disk: 24 bytes per document.
#include "data/dedup/dedup.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct KilnExactDedup {
    KilnSorter *sort;
    long n, dups;
    uint64_t *bits;  // duplicate flags, after finish
};

int exact_open(KilnExactDedup **xp, size_t mem_bytes, const char *work_dir, KilnErr *err) {
    KilnExactDedup *x = calloc(1, sizeof *x);
    if (!x) return kiln_fail(err, "out of memory");
    if (sorter_open(&x->sort, 3, mem_bytes, work_dir, "kiln-exact", err)) {
        free(x);
        return -1;
    }
    *xp = x;
    return 0;
}

typedef struct {
    const char *const *texts;
    const size_t *lens;
    uint64_t *recs, first;
    KilnBuf *norm;  // one per thread
    int oom;
} HashJob;

static void hash_one(void *ctx, int i, int thread) {
    HashJob *j = ctx;
    KilnBuf *norm = &j->norm[thread];
    if (dedup_normalize(j->texts[i], j->lens[i], norm)) {
#pragma omp atomic write
        j->oom = 1;
        return;
    }
    XXH128_hash_t h = XXH3_128bits(norm->data, norm->len);
    j->recs[3 * i] = h.high64;
    j->recs[3 * i + 1] = h.low64;
    j->recs[3 * i + 2] = j->first + (uint64_t)i;
}

int exact_add(KilnExactDedup *x, const char *const *texts, const size_t *lens, int n, KilnErr *err) {
    if (n <= 0) return 0;
    int threads = dedup_team_size();
    HashJob j = {texts, lens, malloc(sizeof(uint64_t) * 3 * (size_t)n), (uint64_t)x->n,
                 calloc((size_t)threads, sizeof(KilnBuf)), 0};
    int rc = -1;
    if (!j.recs || !j.norm) {
        kiln_fail(err, "out of memory");
        goto done;
    }
    dedup_parallel_for(n, hash_one, &j);
    if (j.oom) {
        kiln_fail(err, "out of memory normalising documents");
        goto done;
    }
    if (sorter_push(x->sort, j.recs, (size_t)n, err)) goto done;
    x->n += n;
    rc = 0;
done:
    for (int t = 0; j.norm && t < threads; t++) kbuf_free(&j.norm[t]);
    free(j.norm);
    free(j.recs);
    return rc;
}

int exact_finish(KilnExactDedup *x, KilnErr *err) {
    if (sorter_finish(x->sort, err)) return -1;
    x->bits = calloc((size_t)(x->n + 63) / 64 + 1, sizeof(uint64_t));
    if (!x->bits) return kiln_fail(err, "out of memory for %ld duplicate flags", x->n);
    const uint64_t *r;
    uint64_t hi = 0, lo = 0;
    int got, first = 1;
    while ((got = sorter_next(x->sort, &r, err)) > 0) {
        if (!first && r[0] == hi && r[1] == lo) {  // records of one hash come smallest index first
            x->bits[r[2] / 64] |= 1ull << (r[2] % 64);
            x->dups++;
        }
        hi = r[0];
        lo = r[1];
        first = 0;
    }
    return got < 0 ? -1 : 0;
}

int exact_is_dup(const KilnExactDedup *x, long idx) {
    return idx >= 0 && idx < x->n && x->bits && (x->bits[idx / 64] >> (idx % 64) & 1);
}
long exact_docs(const KilnExactDedup *x) { return x->n; }
long exact_dups(const KilnExactDedup *x) { return x->dups; }
long exact_runs(const KilnExactDedup *x) { return sorter_runs(x->sort); }

void exact_close(KilnExactDedup *x) {
    if (!x) return;
    sorter_close(x->sort);
    free(x->bits);
    free(x);
}

// ---------------------------------------------------------------- the stage
typedef struct {
    double mem_mb;
    char *json;
} ExactStage;

static int exact_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    ExactStage *s = calloc(1, sizeof *s);
    if (!s) return kiln_fail(err, "out of memory");
    s->mem_mb = 256;
    if (params_double(ps, "mem_mb", &s->mem_mb, err)) {
        free(s);
        return -1;
    }
    if (!(s->mem_mb >= 0.001)) {
        kiln_fail(err, "exact_dedup: mem_mb must be >= 0.001 (got %g)", s->mem_mb);
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static void exact_destroy(void *state) {
    ExactStage *s = state;
    if (!s) return;
    free(s->json);
    free(s);
}

typedef struct {
    KilnExactDedup *x;
    KilnDocWriter *out, *rejects;
    KilnStageReport *rep;
} ExactRun;

static int exact_pass1(void *ctx, DedupBatch *b, long first, KilnErr *err) {
    ExactRun *e = ctx;
    for (int i = 0; i < b->n; i++) e->rep->bytes_in += (long)b->lens[i];
    e->rep->docs_in += b->n;
    return exact_add(e->x, b->texts, b->lens, b->n, err);
}

static int exact_pass2(void *ctx, DedupBatch *b, long first, KilnErr *err) {
    ExactRun *e = ctx;
    for (int i = 0; i < b->n; i++) {
        if (first + i >= exact_docs(e->x))
            return kiln_fail(err, "exact_dedup: the input grew between passes (%ld documents first)", exact_docs(e->x));
        if (exact_is_dup(e->x, first + i)) {
            if (stage_reject(e->rejects, e->rep, "exact_dedup:duplicate", &b->docs[i], err)) return -1;
            continue;
        }
        if (dedup_keep(e->out, e->rep, &b->docs[i], err)) return -1;
    }
    return 0;
}

static int exact_run(void *state, const char *in_path, KilnDocWriter *out, KilnDocWriter *rejects,
                     const char *work_dir, KilnStageReport *rep, KilnErr *err) {
    ExactStage *s = state;
    double cpu0 = dedup_cpu_seconds(), t0 = kiln_now(), t1 = t0;
    ExactRun e = {NULL, out, rejects, rep};
    KilnSkips skips = {0};
    int rc = -1;
    if (exact_open(&e.x, (size_t)(s->mem_mb * 1048576.0), work_dir, err)) goto done;
    // pass 1: hashes; pass 2: the first of each hash
    if (dedup_pass(in_path, exact_pass1, &e, &skips, err) || exact_finish(e.x, err)) goto done;
    skips_merge(&rep->skips, &skips);
    t1 = kiln_now();
    long in = rep->docs_in;
    if (dedup_pass(in_path, exact_pass2, &e, NULL, err)) goto done;
    if (dedup_check_seen(rep, in, "exact_dedup", in_path, err)) goto done;
    char head[256];
    snprintf(head, sizeof head,
             "{\"docs\":%ld,\"duplicates\":%ld,\"spilled_runs\":%ld,\"seconds_hash\":%.3f,\"seconds_write\":%.3f,",
             exact_docs(e.x), exact_dups(e.x), exact_runs(e.x), t1 - t0, kiln_now() - t1);
    if (dedup_report_json(&s->json, head, &skips)) {
        kiln_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    rep->seconds += dedup_cpu_seconds() - cpu0;
    exact_close(e.x);
    return rc;
}

static char *exact_report(void *state) {
    ExactStage *s = state;
    return s->json ? strdup(s->json) : NULL;
}

const KilnStageDef STAGE_EXACT_DEDUP = {
    .name = "exact_dedup",
    .summary = "drop documents whose normalised text repeats an earlier one (XXH3-128)",
    .params_help = "  mem_mb (256): memory for sorting hashes; beyond it, sorted runs spill to the work directory\n",
    .create = exact_create,
    .destroy = exact_destroy,
    .run_corpus = exact_run,
    .report_json = exact_report,
};
