// run.c: streams documents through consecutive per-document stages. Documents
// are read in batches; each batch is processed on all threads (a document is
// parsed, goes through every stage and is serialised back to JSONL on one
// thread), then counted and written in input order, so the output does not
// depend on the thread count. Only reading raw lines and writing them out is
// serial.
#include "kiln/data.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_DOCS 4096
#define BATCH_BYTES (64u << 20)

enum { FATE_KEPT, FATE_DROPPED, FATE_BLANK, FATE_SKIPPED, FATE_OOM };

typedef struct {
    int fate;
    int dropped_at;      // stage index that dropped it
    const char *reason;  // that stage's reason
    long *len;           // text length after each stage: len[0] = input
    unsigned char *changed;
    KilnLineOutcome parse;  // JSONL fast path: skip message, repair flag
} DocFate;

typedef struct {
    KilnDoc *docs;
    KilnBuf *lines;  // raw input lines, then the output JSONL of each document
    long *lineno;
    DocFate *fate;
    long *lens;
    unsigned char *changed;
    KilnScratch *scratch;  // per thread
    KilnBuf *tmp;          // per thread
    double *secs;          // per thread x stage
} Batch;

static int source_listed(const KilnStage *st, const KilnDoc *d) {
    for (int i = 0; i < st->nonly; i++)
        if (!strcmp(st->only[i], d->source.data)) return 1;
    return 0;
}

// Did the stage rewrite the text? The usual idiom swaps the old buffer into the
// scratch, so compare against it there; otherwise a length change tells.
static int text_changed(const KilnDoc *d, const char *old, size_t old_len, const KilnScratch *s) {
    if (d->text.data == old) return d->text.len != old_len;
    if (d->text.len != old_len) return 1;
    if (s->a.data == old) return memcmp(d->text.data, old, old_len) != 0;
    if (s->b.data == old) return memcmp(d->text.data, old, old_len) != 0;
    return 1;
}

static void apply_stages(KilnStage *stages, int nstages, KilnDoc *d, DocFate *f, KilnScratch *s,
                         double *secs) {
    f->fate = FATE_KEPT;
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
            f->fate = FATE_DROPPED;
            f->dropped_at = k;
            f->reason = reason;
            return;
        }
    }
}

// One document's whole parallel part: parse (fast path), stages, serialise.
static void process(KilnStage *stages, int nstages, const KilnDocReader *reader, Batch *b, int i, int t) {
    DocFate *f = &b->fate[i];
    KilnDoc *d = &b->docs[i];
    if (reader) {
        int rc = docreader_parse(reader, &b->lines[i], b->lineno[i], d, &b->tmp[t], &f->parse);
        if (rc != 1) {
            f->fate = rc == 0 ? FATE_BLANK : rc == 2 ? FATE_SKIPPED : FATE_OOM;
            return;
        }
    }
    apply_stages(stages, nstages, d, f, &b->scratch[t], b->secs + (size_t)t * (size_t)(nstages + 1));
    if (f->fate == FATE_KEPT) {
        if (doc_to_jsonl(d, NULL, &b->lines[i])) f->fate = FATE_OOM;
    } else if (stages[f->dropped_at].rejects) {
        KilnBuf *x = &b->tmp[t];
        kbuf_clear(x);
        if (kbuf_puts(x, "\"drop\":\"") || kbuf_json_escape(x, f->reason, strlen(f->reason)) || kbuf_putc(x, '"') ||
            doc_to_jsonl(d, x->data, &b->lines[i]))
            f->fate = FATE_OOM;
    }
}

static void batch_free(Batch *b, int nthreads) {
    for (int i = 0; i < BATCH_DOCS; i++) {
        if (b->docs) doc_free(&b->docs[i]);
        if (b->lines) kbuf_free(&b->lines[i]);
    }
    for (int t = 0; t < nthreads; t++) {
        if (b->scratch) scratch_free(&b->scratch[t]);
        if (b->tmp) kbuf_free(&b->tmp[t]);
    }
    free(b->docs), free(b->lines), free(b->lineno), free(b->fate), free(b->lens), free(b->changed);
    free(b->scratch), free(b->tmp), free(b->secs);
}

// Counts one document's passage through the stages.
static void count(KilnStageReport *reps, int nstages, const DocFate *f, const KilnDoc *d) {
    int last = f->fate == FATE_DROPPED ? f->dropped_at : nstages - 1;
    for (int k = 0; k <= last; k++) {
        reps[k].docs_in++;
        reps[k].bytes_in += f->len[k];
        reps[k].docs_changed += f->changed[k];
        if (f->fate == FATE_KEPT || k < f->dropped_at) {
            reps[k].docs_out++;
            reps[k].bytes_out += f->len[k + 1];
        }
    }
    if (f->fate == FATE_DROPPED) stage_report_drop(&reps[f->dropped_at], f->reason, d);
}

int stages_run_stream(KilnStage *stages, int nstages, KilnDocSource in, KilnDocWriter *out, KilnStageReport *reps,
                      KilnErr *err) {
    int nthreads = omp_get_max_threads(), rc = 0;
    size_t per = (size_t)(nstages + 1);
    Batch b = {
        .docs = calloc(BATCH_DOCS, sizeof *b.docs),
        .lines = calloc(BATCH_DOCS, sizeof *b.lines),
        .lineno = calloc(BATCH_DOCS, sizeof *b.lineno),
        .fate = calloc(BATCH_DOCS, sizeof *b.fate),
        .lens = calloc(BATCH_DOCS * per, sizeof *b.lens),
        .changed = calloc(BATCH_DOCS * per, 1),
        .scratch = calloc((size_t)nthreads, sizeof *b.scratch),
        .tmp = calloc((size_t)nthreads, sizeof *b.tmp),
        .secs = calloc((size_t)nthreads * per, sizeof *b.secs),
    };
    if (!b.docs || !b.lines || !b.lineno || !b.fate || !b.lens || !b.changed || !b.scratch || !b.tmp || !b.secs) {
        batch_free(&b, nthreads);
        return kiln_fail(err, "out of memory");
    }
    for (int i = 0; i < BATCH_DOCS; i++) {
        b.fate[i].len = b.lens + (size_t)i * per;
        b.fate[i].changed = b.changed + (size_t)i * per;
    }
    for (int eof = 0; !eof && !rc;) {
        int n = 0;
        size_t bytes = 0;
        while (n < BATCH_DOCS && bytes < BATCH_BYTES) {
            int got = in.reader ? docreader_next_line(in.reader, &b.lines[n], &b.lineno[n], err)
                                : in.next(in.ctx, &b.docs[n], err);
            if (got < 0) {
                rc = -1;
                break;
            }
            if (got == 0) {
                eof = 1;
                break;
            }
            bytes += in.reader ? b.lines[n].len : b.docs[n].text.len;
            n++;
        }
        if (rc) break;
        const KilnDocReader *reader = in.reader;
#pragma omp parallel for schedule(dynamic, 8)
        for (int i = 0; i < n; i++) process(stages, nstages, reader, &b, i, omp_get_thread_num());
        for (int i = 0; i < n && !rc; i++) {
            const DocFate *f = &b.fate[i];
            if (in.reader) docreader_note(in.reader, &f->parse);
            if (f->fate == FATE_OOM) rc = kiln_fail(err, "out of memory");
            if (rc || f->fate == FATE_BLANK || f->fate == FATE_SKIPPED) continue;
            count(reps, nstages, f, &b.docs[i]);
            KilnDocWriter *w = f->fate == FATE_KEPT ? out : stages[f->dropped_at].rejects;
            if (w && docwriter_put_line(w, b.lines[i].data, b.lines[i].len, err)) rc = -1;
        }
    }
    for (int t = 0; t < nthreads; t++)
        for (int k = 0; k < nstages; k++) reps[k].seconds += b.secs[(size_t)t * per + (size_t)k];
    batch_free(&b, nthreads);
    return rc;
}

static int reader_next_cb(void *ctx, KilnDoc *doc, KilnErr *err) { return docreader_next(ctx, doc, err); }
KilnDocSource docreader_source(KilnDocReader *r) { return (KilnDocSource){.next = reader_next_cb, .ctx = r, .reader = r}; }
