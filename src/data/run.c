// run.c: streams documents through consecutive per-document stages. Documents
// are read in batches; each batch is processed on all threads (a document goes
// through every stage on one thread), then written in input order, so the
// output does not depend on the thread count.
#include "kiln/data.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_DOCS 4096
#define BATCH_BYTES (64u << 20)

typedef struct {
    int dropped_at;      // stage index that dropped it, or -1
    const char *reason;  // that stage's reason
    long *len;           // text length after each stage: len[0] = input
    unsigned char *changed;
} DocFate;

// Did the stage rewrite the text? The usual idiom swaps the old buffer into the
// scratch, so compare against it there; otherwise a length change tells.
static int text_changed(const KilnDoc *d, const char *old, size_t old_len, const KilnScratch *s) {
    if (d->text.data == old) return d->text.len != old_len;
    if (d->text.len != old_len) return 1;
    if (s->a.data == old) return memcmp(d->text.data, old, old_len) != 0;
    if (s->b.data == old) return memcmp(d->text.data, old, old_len) != 0;
    return 1;
}

static int source_listed(const KilnStage *st, const KilnDoc *d) {
    for (int i = 0; i < st->nonly; i++)
        if (!strcmp(st->only[i], d->source.data)) return 1;
    return 0;
}

static void apply_stages(KilnStage *stages, int nstages, KilnDoc *d, DocFate *f, KilnScratch *s,
                         double *secs) {
    f->dropped_at = -1;
    f->len[0] = (long)d->text.len;
    for (int k = 0; k < nstages; k++) {
        if (stages[k].nonly && !source_listed(&stages[k], d)) {
            f->len[k + 1] = (long)d->text.len;
            f->changed[k] = 0;
            continue;
        }
        const char *old = d->text.data;
        size_t old_len = d->text.len;
        double t0 = omp_get_wtime();
        const char *reason = stages[k].def->apply(stages[k].state, d, s);
        secs[k] += omp_get_wtime() - t0;
        f->len[k + 1] = (long)d->text.len;
        f->changed[k] = text_changed(d, old, old_len, s);
        if (reason) {
            f->dropped_at = k;
            f->reason = reason;
            return;
        }
    }
}

int stages_run_stream(KilnStage *stages, int nstages, KilnDocSource in, KilnDocWriter *out,
                      KilnDocWriter *rejects, KilnStageReport *reps, KilnErr *err) {
    int nthreads = omp_get_max_threads(), rc = 0;
    KilnDoc *docs = calloc(BATCH_DOCS, sizeof *docs);
    DocFate *fate = calloc(BATCH_DOCS, sizeof *fate);
    long *lens = calloc((size_t)BATCH_DOCS * (size_t)(nstages + 1), sizeof *lens);
    unsigned char *changed = calloc((size_t)BATCH_DOCS * (size_t)(nstages + 1), 1);
    KilnScratch *scratch = calloc((size_t)nthreads, sizeof *scratch);
    double *secs = calloc((size_t)nthreads * (size_t)(nstages + 1), sizeof *secs);
    KilnBuf extra = {0};
    if (!docs || !fate || !lens || !changed || !scratch || !secs) {
        rc = kiln_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < BATCH_DOCS; i++) {
        fate[i].len = lens + (size_t)i * (size_t)(nstages + 1);
        fate[i].changed = changed + (size_t)i * (size_t)(nstages + 1);
    }
    for (int eof = 0; !eof;) {
        int n = 0;
        size_t bytes = 0;
        while (n < BATCH_DOCS && bytes < BATCH_BYTES) {
            int got = in.next(in.ctx, &docs[n], err);
            if (got < 0) {
                rc = -1;
                goto done;
            }
            if (got == 0) {
                eof = 1;
                break;
            }
            bytes += docs[n].text.len;
            n++;
        }
#pragma omp parallel for schedule(dynamic, 8)
        for (int i = 0; i < n; i++) {
            int t = omp_get_thread_num();
            apply_stages(stages, nstages, &docs[i], &fate[i], &scratch[t], secs + (size_t)t * (size_t)(nstages + 1));
        }
        for (int i = 0; i < n; i++) {
            const DocFate *f = &fate[i];
            int last = f->dropped_at < 0 ? nstages - 1 : f->dropped_at;
            for (int k = 0; k <= last; k++) {
                reps[k].docs_in++;
                reps[k].bytes_in += f->len[k];
                reps[k].docs_changed += f->changed[k];
                if (k < f->dropped_at || f->dropped_at < 0) {
                    reps[k].docs_out++;
                    reps[k].bytes_out += f->len[k + 1];
                }
            }
            if (f->dropped_at >= 0) {
                stage_report_drop(&reps[f->dropped_at], f->reason, &docs[i]);
                if (rejects) {
                    kbuf_clear(&extra);
                    if (kbuf_puts(&extra, "\"drop\":\"") || kbuf_json_escape(&extra, f->reason, strlen(f->reason)) ||
                        kbuf_putc(&extra, '"')) {
                        rc = kiln_fail(err, "out of memory");
                        goto done;
                    }
                    if (docwriter_put(rejects, &docs[i], extra.data, err)) {
                        rc = -1;
                        goto done;
                    }
                }
            } else if (out && docwriter_put(out, &docs[i], NULL, err)) {
                rc = -1;
                goto done;
            }
        }
    }
done:
    if (secs)
        for (int t = 0; t < nthreads; t++)
            for (int k = 0; k < nstages; k++) reps[k].seconds += secs[(size_t)t * (size_t)(nstages + 1) + (size_t)k];
    if (docs)
        for (int i = 0; i < BATCH_DOCS; i++) doc_free(&docs[i]);
    if (scratch)
        for (int t = 0; t < nthreads; t++) scratch_free(&scratch[t]);
    free(docs);
    free(fate);
    free(lens);
    free(changed);
    free(scratch);
    free(secs);
    kbuf_free(&extra);
    return rc;
}
