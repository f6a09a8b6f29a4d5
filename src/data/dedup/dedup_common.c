// dedup_common.c: what the three dedup stages share around their cores: reading
// documents in batches (the next batch is read while the current one is being
// worked on), parallel loops that also work inside those passes, CPU time for
// the report, the input-skip summary in it, and the writing pass's bookkeeping.
#include "data/dedup/dedup.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int dedup_read_batch(KilnDocReader *r, KilnDoc *docs, int max, size_t max_bytes, int *n, KilnErr *err) {
    size_t bytes = 0;
    *n = 0;
    while (*n < max && bytes < max_bytes) {
        int got = docreader_next(r, &docs[*n], err);
        if (got < 0) return -1;
        if (got == 0) break;
        bytes += docs[*n].text.len;
        (*n)++;
    }
    return 0;
}

double dedup_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int dedup_report_json(char **json, const char *head, const KilnSkips *s) {
    KilnBuf j = {0};
    char num[32];
    snprintf(num, sizeof num, "%ld", s->count);
    int rc = kbuf_puts(&j, head) || kbuf_puts(&j, "\"input_skipped\":") || kbuf_puts(&j, num) ||
             kbuf_puts(&j, ",\"input_skip_examples\":[");
    for (long i = 0; !rc && i < s->count && i < KILN_SKIP_EXAMPLES; i++)
        rc = kbuf_puts(&j, i ? ",\"" : "\"") || kbuf_json_escape(&j, s->examples[i], strlen(s->examples[i])) ||
             kbuf_putc(&j, '"');
    if (rc || kbuf_puts(&j, "]}")) {
        kbuf_free(&j);
        return -1;
    }
    free(*json);
    *json = j.data;
    return 0;
}

int dedup_keep(KilnDocWriter *out, KilnStageReport *rep, const KilnDoc *d, KilnErr *err) {
    if (docwriter_put(out, d, NULL, err)) return -1;
    rep->docs_out++;
    rep->bytes_out += (long)d->text.len;
    return 0;
}

int dedup_check_seen(const KilnStageReport *rep, long in, const char *stage, const char *in_path, KilnErr *err) {
    long seen = rep->docs_out;
    for (int i = 0; i < rep->nreasons; i++) seen += rep->reasons[i].docs;
    if (seen != in)
        return kiln_fail(err, "%s: %s changed between passes (%ld documents, then %ld)", stage, in_path, in, seen);
    return 0;
}

int dedup_batch_alloc(DedupBatch *b, KilnErr *err) {
    memset(b, 0, sizeof *b);
    b->docs = calloc(DEDUP_BATCH_DOCS, sizeof *b->docs);
    b->texts = calloc(DEDUP_BATCH_DOCS, sizeof *b->texts);
    b->lens = calloc(DEDUP_BATCH_DOCS, sizeof *b->lens);
    if (!b->docs || !b->texts || !b->lens) {
        dedup_batch_free(b);
        return kiln_fail(err, "out of memory");
    }
    return 0;
}

int dedup_batch_read(DedupBatch *b, KilnDocReader *r, KilnErr *err) {
    if (dedup_read_batch(r, b->docs, DEDUP_BATCH_DOCS, DEDUP_BATCH_BYTES, &b->n, err)) return -1;
    for (int i = 0; i < b->n; i++) {
        b->texts[i] = b->docs[i].text.data ? b->docs[i].text.data : "";
        b->lens[i] = b->docs[i].text.len;
    }
    return 0;
}

void dedup_batch_free(DedupBatch *b) {
    if (b->docs)
        for (int i = 0; i < DEDUP_BATCH_DOCS; i++) doc_free(&b->docs[i]);
    free(b->docs);
    free(b->texts);
    free(b->lens);
    memset(b, 0, sizeof *b);
}

int dedup_team_size(void) { return omp_in_parallel() ? omp_get_num_threads() : omp_get_max_threads(); }

void dedup_parallel_for(int n, void (*fn)(void *ctx, int i, int thread), void *ctx) {
    if (omp_in_parallel()) {
        // clang-14 crashes generating this taskloop when fn and ctx are captured
        // implicitly, and warns of a sign compare with an int counter: name them
        // firstprivate (their implicit sharing anyway) and count unsigned.
        unsigned un = n > 0 ? (unsigned)n : 0;
#pragma omp taskloop grainsize(8) firstprivate(fn, ctx)
        for (unsigned i = 0; i < un; i++) fn(ctx, (int)i, omp_get_thread_num());
    } else {
#pragma omp parallel for schedule(dynamic, 8)
        for (int i = 0; i < n; i++) fn(ctx, i, omp_get_thread_num());
    }
}

int dedup_pass(const char *in_path, DedupBatchFn fn, void *ctx, KilnSkips *skips, KilnErr *err) {
    KilnDocReader *r = NULL;
    DedupBatch b[2];
    int rc = -1, rrc = 0;
    KilnErr rerr = {{0}};
    long first = 0;
    if (dedup_batch_alloc(&b[0], err)) return -1;
    if (dedup_batch_alloc(&b[1], err)) {
        dedup_batch_free(&b[0]);
        return -1;
    }
    if (docreader_open(&r, in_path, NULL, NULL, err) || dedup_batch_read(&b[0], r, err)) goto done;
    rc = 0;
#pragma omp parallel
#pragma omp single
    for (int cur = 0; !rc && b[cur].n; cur = 1 - cur) {
        DedupBatch *next = &b[1 - cur];
#pragma omp task shared(rrc, rerr, r)
        rrc = dedup_batch_read(next, r, &rerr);
        rc = fn(ctx, &b[cur], first, err);
#pragma omp taskwait
        if (!rc && rrc) {
            *err = rerr;
            rc = -1;
        }
        first += b[cur].n;
    }
    if (!rc && skips) *skips = *docreader_skips(r);
done:
    docreader_close(r);
    dedup_batch_free(&b[0]);
    dedup_batch_free(&b[1]);
    return rc;
}
