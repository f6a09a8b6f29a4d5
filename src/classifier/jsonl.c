// jsonl.c: the classifier on JSONL documents: labelled files into training and
// held-out sets, and prediction from one JSONL file to another (see
// classifier.h).
#include "kiln/classifier.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

int classifier_held_out(const KilnDoc *d, uint64_t seed, double fraction) {
    if (fraction <= 0) return 0;
    uint64_t h = XXH3_64bits_withSeed(d->id.data, d->id.len, kiln_hash64(seed) ^ XXH3_64bits(d->source.data, d->source.len));
    return (double)(h >> 11) * 0x1.0p-53 < fraction;
}

// One file's documents, all with one label.
static int read_file(const KilnClsData *d, const KilnClsFile *f, int label, KilnClsSet *train, KilnClsSet *valid,
                     long *count, KilnSkips *skips, KilnErr *err) {
    KilnDocReader *r;
    if (docreader_open(&r, f->path, d->field, NULL, err)) return -1;
    KilnDoc doc = {0};
    int rc;
    while ((rc = docreader_next(r, &doc, err)) == 1) {
        KilnClsSet *to = valid && classifier_held_out(&doc, d->seed, d->valid_fraction) ? valid : train;
        if (clsset_add(to, doc.text.data ? doc.text.data : "", doc.text.len, label, err)) {
            rc = -1;
            break;
        }
        (*count)++;
    }
    if (skips) *skips = *docreader_skips(r);
    docreader_close(r);
    doc_free(&doc);
    return rc < 0 ? -1 : 0;
}

int classifier_read_files(const KilnClsData *d, const char *const *labels, int nlabels, KilnClsSet *train,
                          KilnClsSet *valid, long *per_label, KilnSkips *skips, KilnErr *err) {
    for (int f = 0; f < d->nfiles; f++) {
        const KilnClsFile *file = &d->files[f];
        int label = 0;
        while (label < nlabels && strcmp(labels[label], file->label)) label++;
        if (label == nlabels)
            return kiln_fail(err, "classifier: label '%s' (for %s) is not in the model", file->label, file->path);
        if (read_file(d, file, label, train, valid, &per_label[label], skips ? &skips[f] : NULL, err)) return -1;
    }
    return 0;
}

// ---------------------------------------------------------------- prediction
// Where predictions go: a JSONL writer, or TSV lines to stdout or a file
// written atomically.
typedef struct {
    KilnDocWriter *w;
    KilnAtomicFile af;
    int tsv, to_file;
} Out;

static int tsv_write(Out *o, const KilnBuf *line, KilnErr *err) {
    if (o->to_file) return kiln_atomic_write(&o->af, line->data, line->len, err);
    if (fwrite(line->data, 1, line->len, stdout) != line->len) return kiln_fail(err, "stdout: write failed");
    return 0;
}

// One output record: the document with "label" and "score", or a TSV line.
static int put_prediction(Out *o, const KilnDoc *d, const char *label, float score, float best, KilnBuf *line,
                          KilnErr *err) {
    kbuf_clear(line);
    char num[64];
    if (o->tsv) {
        // tabs and newlines inside ids would break the columns
        for (const KilnBuf *f = &d->source;; f = &d->id) {
            for (size_t i = 0; i < f->len; i++) kbuf_putc(line, f->data[i] == '\t' || f->data[i] == '\n' ? ' ' : f->data[i]);
            kbuf_putc(line, '\t');
            if (f == &d->id) break;
        }
        snprintf(num, sizeof num, "\t%.6f\n", best);
        if (kbuf_puts(line, label) || kbuf_puts(line, num)) return kiln_fail(err, "out of memory");
        return tsv_write(o, line, err);
    }
    snprintf(num, sizeof num, "\",\"score\":%.6f", score);
    if (kbuf_puts(line, "\"label\":\"") || kbuf_json_escape(line, label, strlen(label)) || kbuf_puts(line, num))
        return kiln_fail(err, "out of memory");
    return docwriter_put(o->w, d, line->data, err);
}

static int predict_stream(const KilnClassifier *m, int pos, KilnDocReader *r, Out *o, KilnClsPredictStats *st,
                          KilnErr *err) {
    KilnDoc doc = {0};
    KilnBuf line = {0};
    float probs[KILN_CLS_MAX_LABELS];
    int rc;
    while ((rc = docreader_next(r, &doc, err)) == 1) {
        double t0 = kiln_now();
        int best = classifier_predict(m, doc.text.data ? doc.text.data : "", doc.text.len, probs);
        st->seconds += kiln_now() - t0;
        st->text_bytes += (double)doc.text.len;
        st->docs++;
        if (put_prediction(o, &doc, classifier_label(m, best), probs[pos], probs[best], &line, err)) {
            rc = -1;
            break;
        }
    }
    doc_free(&doc);
    kbuf_free(&line);
    return rc < 0 ? -1 : 0;
}

static int open_out(const KilnClsPredictOpts *p, Out *o, KilnErr *err) {
    memset(o, 0, sizeof *o);
    o->tsv = p->tsv;
    o->to_file = p->tsv && p->output && strcmp(p->output, "-");
    if (!p->tsv) return docwriter_open(&o->w, p->output ? p->output : "-", err);
    return o->to_file ? kiln_atomic_open(&o->af, p->output, err) : 0;
}

// Commits the output when ok, else removes its temp file.
static int close_out(Out *o, int ok, KilnErr *err) {
    if (o->w && !ok) docwriter_abort(o->w);
    if (o->w && ok) return docwriter_commit(o->w, err);
    if (o->to_file && !ok) kiln_atomic_abort(&o->af);
    if (o->to_file && ok) return kiln_atomic_commit(&o->af, err);
    if (o->tsv && ok && fflush(stdout)) return kiln_fail(err, "stdout: write failed");
    return 0;
}

int classifier_predict_jsonl(const KilnClassifier *m, const KilnClsPredictOpts *p, KilnClsPredictStats *st,
                             KilnErr *err) {
    memset(st, 0, sizeof *st);
    KilnDocReader *r;
    Out o;
    if (docreader_open(&r, p->input, p->field, NULL, err)) return -1;
    if (open_out(p, &o, err)) {
        docreader_close(r);
        return -1;
    }
    int rc = predict_stream(m, p->positive, r, &o, st, err);
    st->streamed = rc == 0;
    st->skips = *docreader_skips(r);
    if (close_out(&o, rc == 0, err)) rc = -1;  // after a failed stream it only removes the output
    docreader_close(r);
    return rc;
}
