// line_dedup.c: the `line_dedup` corpus stage: lines (or paragraphs) repeated
// across documents, such as licence boilerplate, navigation and cookie notices,
// are kept only in the first document that has them (CCNet's line dedup and
// datatrove's SentenceDedup keep the first occurrence and remove the others).
//   pass 1  every unit of every document: normalised (dedup_normalize), hashed
//           (XXH3-64); (hash, document) records, once per document, sorted
//           out of core
//   pass 2  runs of equal hashes spanning >= min_docs documents give (document,
//           hash) removal records for all but the first document, sorted again
//   pass 3  re-read the input; each document loses the units whose hash is in
//           its removal list, and is dropped if fewer than min_words remain
// Within the first document every copy of a unit stays (repeats inside one
// document are the business of the Gopher repetition filter).
#include "data/dedup/dedup.h"
#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct KilnLineDedup {
    KilnLineParams p;
    KilnSorter *occ;  // (hash, document)
    KilnSorter *rem;  // (document, hash) to remove
    long n;
    uint64_t pend[2];  // the next removal record, read ahead
    int has_pend, rem_done;
    uint64_t *rh;      // one batch's removal hashes
    size_t rh_cap;
    KilnLineStats st;
};

int line_open(KilnLineDedup **ldp, const KilnLineParams *p, const char *work_dir, KilnErr *err) {
    if (p->min_docs < 2) return kiln_fail(err, "line_dedup: min_docs must be >= 2 (got %ld)", p->min_docs);
    KilnLineDedup *ld = calloc(1, sizeof *ld);
    if (!ld) return kiln_fail(err, "out of memory");
    ld->p = *p;
    // the two sorts are alive together (the first is read while the second fills): half the budget each
    if (sorter_open(&ld->occ, 2, p->mem_bytes / 2, work_dir, "kiln-lines", err) ||
        sorter_open(&ld->rem, 2, p->mem_bytes / 2, work_dir, "kiln-lines-remove", err)) {
        line_close(ld);
        return -1;
    }
    *ldp = ld;
    return 0;
}

static int blank_line(const char *t, size_t s, size_t e) {
    for (size_t i = s; i < e; i++)
        if (t[i] != ' ' && t[i] != '\t' && t[i] != '\r') return 0;
    return 1;
}

static size_t line_end(const char *t, size_t n, size_t s) {
    const char *nl = memchr(t + s, '\n', n - s);
    return nl ? (size_t)(nl - t) : n;
}

// The unit at *pos: content t[*s..*e) is what gets hashed, t[*s..*pos) (after
// the call) what a removal takes away. A paragraph is a run of non-blank lines
// with the blank lines after it; blank lines before the first one form a unit
// with empty content.
static void next_unit(const char *t, size_t n, size_t *pos, int unit, size_t *s, size_t *e) {
    *s = *pos;
    size_t le = line_end(t, n, *pos);
    if (unit == LINE_UNIT_LINE) {
        *e = le;
        *pos = le < n ? le + 1 : n;
        return;
    }
    int blank = blank_line(t, *pos, le);
    size_t p = *pos;
    *e = p;
    while (p < n) {  // the paragraph's lines (or the leading blank lines)
        le = line_end(t, n, p);
        if (blank_line(t, p, le) != blank) break;
        p = le < n ? le + 1 : n;
        if (!blank) *e = le;
    }
    while (!blank && p < n) {  // and the blank lines after it
        le = line_end(t, n, p);
        if (!blank_line(t, p, le)) break;
        p = le < n ? le + 1 : n;
    }
    *pos = p;
}

// 1 with *h when the unit can be removed (its normalised text is not empty and
// has at least min_chars characters); 0 when not; -1 when out of memory.
static int unit_hash(const KilnLineDedup *ld, const char *t, size_t s, size_t e, KilnBuf *norm, uint64_t *h) {
    if (dedup_normalize(t + s, e - s, norm)) return -1;
    if (!norm->len || utf8_chars(norm->data, norm->len) < ld->p.min_chars) return 0;
    *h = XXH3_64bits(norm->data, norm->len);
    return 1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

// The distinct unit hashes of one document, sorted, malloc'd into *out.
static long doc_hashes(const KilnLineDedup *ld, const char *t, size_t n, KilnBuf *norm, uint64_t **out, long *units) {
    size_t cap = 16, k = 0, pos = 0, s, e;
    uint64_t *h = malloc(cap * sizeof *h);
    if (!h) return -1;
    while (pos < n) {
        next_unit(t, n, &pos, ld->p.unit, &s, &e);
        uint64_t x;
        int ok = unit_hash(ld, t, s, e, norm, &x);
        if (ok < 0) goto oom;
        if (!ok) continue;
        (*units)++;
        if (k == cap) {
            uint64_t *g = realloc(h, 2 * cap * sizeof *h);
            if (!g) goto oom;
            h = g;
            cap *= 2;
        }
        h[k++] = x;
    }
    qsort(h, k, sizeof *h, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (!u || h[u - 1] != h[i]) h[u++] = h[i];
    *out = h;
    return (long)u;
oom:
    free(h);
    return -1;
}

typedef struct {
    const KilnLineDedup *ld;
    const char *const *texts;
    const size_t *lens;
    uint64_t **hs;
    long *cnt, units;
    KilnBuf *norm;  // one per thread
    int oom;
} AddJob;

static void add_one(void *ctx, int i, int thread) {
    AddJob *j = ctx;
    long units = 0;
    j->cnt[i] = doc_hashes(j->ld, j->texts[i], j->lens[i], &j->norm[thread], &j->hs[i], &units);
    if (j->cnt[i] < 0) {
#pragma omp atomic write
        j->oom = 1;
    }
#pragma omp atomic
    j->units += units;
}

int line_add(KilnLineDedup *ld, const char *const *texts, const size_t *lens, int n, KilnErr *err) {
    if (n <= 0) return 0;
    int threads = dedup_team_size(), rc = 0;
    AddJob j = {ld, texts, lens, calloc((size_t)n, sizeof(uint64_t *)), calloc((size_t)n, sizeof(long)), 0,
                calloc((size_t)threads, sizeof(KilnBuf)), 0};
    if (!j.hs || !j.cnt || !j.norm) {
        rc = kiln_fail(err, "out of memory");
        goto done;
    }
    dedup_parallel_for(n, add_one, &j);
    if (j.oom) rc = kiln_fail(err, "out of memory hashing lines");
    uint64_t rec[2 * 256];
    for (int i = 0; i < n && !rc; i++) {
        for (long k = 0; k < j.cnt[i] && !rc; k += 256) {
            long m = j.cnt[i] - k < 256 ? j.cnt[i] - k : 256;
            for (long q = 0; q < m; q++) {
                rec[2 * q] = j.hs[i][k + q];
                rec[2 * q + 1] = (uint64_t)(ld->n + i);
            }
            rc = sorter_push(ld->occ, rec, (size_t)m, err);
        }
    }
    if (!rc) {
        ld->n += n;
        ld->st.docs += n;
        ld->st.units += j.units;
    }
done:
    for (int i = 0; j.hs && i < n; i++) free(j.hs[i]);
    for (int t = 0; j.norm && t < threads; t++) kbuf_free(&j.norm[t]);
    free(j.hs);
    free(j.cnt);
    free(j.norm);
    return rc;
}

int line_finish(KilnLineDedup *ld, KilnErr *err) {
    if (sorter_finish(ld->occ, err)) return -1;
    // the first min_docs documents of a run wait here until the run is long enough
    size_t cap = (size_t)ld->p.min_docs;
    uint64_t *first = malloc(2 * sizeof(uint64_t) * cap);
    if (!first) return kiln_fail(err, "out of memory");
    const uint64_t *r;
    uint64_t prev = 0;
    long run = 0;
    int got, rc = 0;
    while (!rc && (got = sorter_next(ld->occ, &r, err)) > 0) {
        if (!run || r[0] != prev) run = 0;
        prev = r[0];
        run++;
        uint64_t rec[2] = {r[1], r[0]};
        if (run < ld->p.min_docs) {
            first[2 * (run - 1)] = rec[0];
            first[2 * (run - 1) + 1] = rec[1];
        } else {
            if (run == ld->p.min_docs && run > 1)  // the waiting ones, but the first document
                rc = sorter_push(ld->rem, first + 2, (size_t)run - 2, err);
            if (!rc) rc = sorter_push(ld->rem, rec, 1, err);
        }
    }
    free(first);
    if (rc || got < 0) return -1;
    if (sorter_finish(ld->rem, err)) return -1;
    ld->st.spilled_runs = sorter_runs(ld->occ) + sorter_runs(ld->rem);
    return 0;
}

// Reads this batch's removal records: rh[off[i] .. off[i+1]) for document first + i.
static int batch_removals(KilnLineDedup *ld, long first, int n, size_t *off, KilnErr *err) {
    size_t k = 0;
    memset(off, 0, sizeof(size_t) * ((size_t)n + 1));
    for (;;) {
        if (!ld->has_pend && !ld->rem_done) {
            const uint64_t *r;
            int got = sorter_next(ld->rem, &r, err);
            if (got < 0) return -1;
            if (got == 0) ld->rem_done = 1;
            else {
                ld->pend[0] = r[0];
                ld->pend[1] = r[1];
                ld->has_pend = 1;
            }
        }
        if (!ld->has_pend || ld->pend[0] >= (uint64_t)(first + n)) break;
        ld->has_pend = 0;
        if (ld->pend[0] < (uint64_t)first) continue;  // a skipped document: not ours
        if (k == ld->rh_cap) {
            size_t c = ld->rh_cap ? 2 * ld->rh_cap : 1024;
            uint64_t *g = realloc(ld->rh, c * sizeof *g);
            if (!g) return kiln_fail(err, "out of memory");
            ld->rh = g;
            ld->rh_cap = c;
        }
        ld->rh[k++] = ld->pend[1];
        off[ld->pend[0] - (uint64_t)first + 1]++;
    }
    for (int i = 0; i < n; i++) off[i + 1] += off[i];
    return 0;
}

static long count_words(const char *t, size_t n) {
    long w = 0;
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        int sp = t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == '\r' || t[i] == '\f' || t[i] == '\v';
        w += !sp && !in;
        in = !sp;
    }
    return w;
}

// Rewrites one document without the units whose hash is in rh[0..nr); returns
// the units removed (-1: out of memory) and adds their bytes to *bytes. With
// gone, the removed units are appended there, in order (for the rejects file).
static long rewrite_doc(const KilnLineDedup *ld, const char *t, size_t n, const uint64_t *rh, size_t nr, KilnBuf *norm,
                        KilnBuf *out, KilnBuf *gone, long *bytes) {
    kbuf_clear(out);
    if (gone) kbuf_clear(gone);
    long removed = 0;
    size_t pos = 0, s, e;
    while (pos < n) {
        next_unit(t, n, &pos, ld->p.unit, &s, &e);
        uint64_t h;
        int ok = unit_hash(ld, t, s, e, norm, &h);
        if (ok < 0) return -1;
        if (ok && bsearch(&h, rh, nr, sizeof h, cmp_u64)) {
            removed++;
            *bytes += (long)(pos - s);
            if (gone && kbuf_append(gone, t + s, pos - s)) return -1;
        } else if (kbuf_append(out, t + s, pos - s)) {
            return -1;
        }
    }
    return removed;
}

typedef struct {
    const KilnLineDedup *ld;
    const char *const *texts;
    const size_t *lens;
    const size_t *off;
    KilnBuf *outs, *gone, *norm;
    unsigned char *keep;
    long removed, bytes, changed;
    int oom;
} RewriteJob;

static void rewrite_one(void *ctx, int i, int thread) {
    RewriteJob *j = ctx;
    const KilnLineDedup *ld = j->ld;
    j->keep[i] = 1;
    if (j->off[i + 1] == j->off[i]) return;
    long bytes = 0;
    long r = rewrite_doc(ld, j->texts[i], j->lens[i], ld->rh + j->off[i], j->off[i + 1] - j->off[i], &j->norm[thread],
                         &j->outs[i], j->gone ? &j->gone[i] : NULL, &bytes);
    if (r < 0) {
#pragma omp atomic write
        j->oom = 1;
        return;
    }
    if (!r) return;  // its hashes matched other units' (cannot happen unless the input changed)
    j->keep[i] = count_words(j->outs[i].data, j->outs[i].len) >= ld->p.min_words ? 2 : 0;
#pragma omp atomic
    j->removed += r;
#pragma omp atomic
    j->bytes += bytes;
#pragma omp atomic
    j->changed++;
}

int line_rewrite(KilnLineDedup *ld, long first, const char *const *texts, const size_t *lens, int n, KilnBuf *outs,
                 KilnBuf *gone, unsigned char *keep, KilnErr *err) {
    if (n <= 0) return 0;
    int threads = dedup_team_size(), rc = 0;
    size_t *off = malloc(sizeof(size_t) * ((size_t)n + 1));
    RewriteJob j = {ld, texts, lens, off, outs, gone, calloc((size_t)threads, sizeof(KilnBuf)), keep, 0, 0, 0, 0};
    if (!off || !j.norm) {
        rc = kiln_fail(err, "out of memory");
        goto done;
    }
    if (batch_removals(ld, first, n, off, err)) {
        rc = -1;
        goto done;
    }
    dedup_parallel_for(n, rewrite_one, &j);
    if (j.oom) {
        rc = kiln_fail(err, "out of memory removing lines");
        goto done;
    }
    ld->st.units_removed += j.removed;
    ld->st.bytes_removed += j.bytes;
    ld->st.docs_changed += j.changed;
done:
    for (int t = 0; j.norm && t < threads; t++) kbuf_free(&j.norm[t]);
    free(j.norm);
    free(off);
    return rc;
}

const KilnLineStats *line_stats(const KilnLineDedup *ld) { return &ld->st; }

void line_close(KilnLineDedup *ld) {
    if (!ld) return;
    sorter_close(ld->occ);
    sorter_close(ld->rem);
    free(ld->rh);
    free(ld);
}

// ---------------------------------------------------------------- the stage
typedef struct {
    KilnLineParams p;
    char *json;
} LineStage;

static int ls_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    static const char *const units[] = {"line", "paragraph", NULL};
    LineStage *s = calloc(1, sizeof *s);
    if (!s) return kiln_fail(err, "out of memory");
    double mem_mb = 256;
    s->p = (KilnLineParams){.unit = LINE_UNIT_LINE, .min_docs = 2, .min_chars = 20, .min_words = 50};
    if (params_enum(ps, "unit", units, &s->p.unit, err) || params_int(ps, "min_docs", &s->p.min_docs, err) ||
        params_int(ps, "min_chars", &s->p.min_chars, err) || params_int(ps, "min_words", &s->p.min_words, err) ||
        params_double(ps, "mem_mb", &mem_mb, err))
        goto fail;
    if (s->p.min_docs < 2 || s->p.min_docs > 1000000 || s->p.min_chars < 0 || s->p.min_words < 0) {
        kiln_fail(err, "line_dedup: need 2 <= min_docs <= 1000000, min_chars >= 0 and min_words >= 0");
        goto fail;
    }
    if (!(mem_mb >= 0.001)) {
        kiln_fail(err, "line_dedup: mem_mb must be >= 0.001 (got %g)", mem_mb);
        goto fail;
    }
    s->p.mem_bytes = (size_t)(mem_mb * 1048576.0);
    *state = s;
    return 0;
fail:
    free(s);
    return -1;
}

static void ls_destroy(void *state) {
    LineStage *s = state;
    if (!s) return;
    free(s->json);
    free(s);
}

static int ls_report_set(LineStage *s, const KilnLineStats *st, long dropped, const KilnSkips *skips, double t1,
                         double t2) {
    char line[512];
    snprintf(line, sizeof line,
             "{\"unit\":\"%s\",\"docs\":%ld,\"units\":%ld,\"units_removed\":%ld,\"bytes_removed\":%ld,"
             "\"docs_changed\":%ld,\"docs_too_short\":%ld,\"spilled_runs\":%ld,\"seconds_hash\":%.3f,"
             "\"seconds_write\":%.3f,",
             s->p.unit == LINE_UNIT_LINE ? "line" : "paragraph", st->docs, st->units, st->units_removed,
             st->bytes_removed, st->docs_changed, dropped, st->spilled_runs, t1, t2);
    return dedup_report_json(&s->json, line, skips);
}

typedef struct {
    KilnLineDedup *ld;
    KilnDocWriter *out, *rejects;
    KilnStageReport *rep;
    KilnBuf *outs, *gone;  // gone: each document's removed units, when there is a rejects file
    unsigned char *keep;
    long dropped;
    const char *reason;  // of removed units in the rejects file
} LineRun;

static int ls_pass1(void *ctx, DedupBatch *b, long first, KilnErr *err) {
    LineRun *e = ctx;
    for (int i = 0; i < b->n; i++) e->rep->bytes_in += (long)b->lens[i];
    e->rep->docs_in += b->n;
    return line_add(e->ld, b->texts, b->lens, b->n, err);
}

static int ls_pass3(void *ctx, DedupBatch *b, long first, KilnErr *err) {
    LineRun *e = ctx;
    if (first + b->n > line_stats(e->ld)->docs)
        return kiln_fail(err, "line_dedup: the input grew between passes (%ld documents first)", line_stats(e->ld)->docs);
    if (line_rewrite(e->ld, first, b->texts, b->lens, b->n, e->outs, e->gone, e->keep, err)) return -1;
    for (int i = 0; i < b->n; i++) {
        KilnDoc *d = &b->docs[i];
        if (e->keep[i] == 0) {  // the whole document, as it came in
            if (stage_reject(e->rejects, e->rep, "line_dedup:too_short", d, err)) return -1;
            e->dropped++;
            continue;
        }
        if (e->keep[i] == 2 && e->rejects) {
            // the document stays; the rejects file gets what it lost, under its id
            KilnDoc lost = {.source = d->source, .id = d->id, .text = e->gone[i]};
            char extra[80];
            snprintf(extra, sizeof extra, "\"drop\":\"%s\"", e->reason);
            if (docwriter_put(e->rejects, &lost, extra, err)) return -1;
        }
        if (e->keep[i] == 2) kbuf_swap(&d->text, &e->outs[i]);
        if (dedup_keep(e->out, e->rep, d, err)) return -1;
    }
    return 0;
}

static int ls_run(void *state, const char *in_path, KilnDocWriter *out, KilnDocWriter *rejects, const char *work_dir,
                  KilnStageReport *rep, KilnErr *err) {
    LineStage *s = state;
    double cpu0 = dedup_cpu_seconds(), t0 = kiln_now(), t1 = t0;
    LineRun e = {NULL, out, rejects, rep, calloc(DEDUP_BATCH_DOCS, sizeof(KilnBuf)),
                 rejects ? calloc(DEDUP_BATCH_DOCS, sizeof(KilnBuf)) : NULL, malloc(DEDUP_BATCH_DOCS), 0,
                 s->p.unit == LINE_UNIT_LINE ? "line_dedup:repeated_lines" : "line_dedup:repeated_paragraphs"};
    KilnSkips skips = {0};
    int rc = -1;
    if (!e.outs || !e.keep || (rejects && !e.gone)) {
        kiln_fail(err, "out of memory");
        goto done;
    }
    if (line_open(&e.ld, &s->p, work_dir, err)) goto done;
    // pass 1: unit hashes per document; pass 2: which units go where; pass 3: rewrite
    if (dedup_pass(in_path, ls_pass1, &e, &skips, err) || line_finish(e.ld, err)) goto done;
    skips_merge(&rep->skips, &skips);
    t1 = kiln_now();
    if (dedup_pass(in_path, ls_pass3, &e, NULL, err)) goto done;
    if (dedup_check_seen(rep, line_stats(e.ld)->docs, "line_dedup", in_path, err)) goto done;
    rep->docs_changed += line_stats(e.ld)->docs_changed;
    if (ls_report_set(s, line_stats(e.ld), e.dropped, &skips, t1 - t0, kiln_now() - t1)) {
        kiln_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    rep->seconds += dedup_cpu_seconds() - cpu0;
    line_close(e.ld);
    for (int i = 0; e.outs && i < DEDUP_BATCH_DOCS; i++) kbuf_free(&e.outs[i]);
    for (int i = 0; e.gone && i < DEDUP_BATCH_DOCS; i++) kbuf_free(&e.gone[i]);
    free(e.outs);
    free(e.gone);
    free(e.keep);
    return rc;
}

static char *ls_report(void *state) {
    LineStage *s = state;
    return s->json ? strdup(s->json) : NULL;
}

const KilnStageDef STAGE_LINE_DEDUP = {
    .name = "line_dedup",
    .summary = "remove lines or paragraphs repeated across documents from all but the first document",
    .params_help = "  unit (line): line | paragraph (non-blank lines between blank ones)\n"
                   "  min_docs (2): a unit is removed when at least this many documents have it (CCNet: 2)\n"
                   "  min_chars (20): units shorter than this, normalised, are never removed\n"
                   "  min_words (50): a document left with fewer words is dropped (datatrove's min_doc_words)\n"
                   "  mem_mb (256): memory for sorting unit hashes; beyond it, runs spill to the work directory\n",
    .create = ls_create,
    .destroy = ls_destroy,
    .run_corpus = ls_run,
    .report_json = ls_report,
};
