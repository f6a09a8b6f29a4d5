// sample.c: the `sample` corpus stage: per-source up- and down-sampling to a
// target mixture (GPT-3 style). Each source s of size n_s bytes gets a
// multiplier m_s (its epoch count): small high-quality sources are repeated up
// to max_epochs, large ones are thinned. A document is written floor(m_s) times
// plus once more with probability frac(m_s); the draw is a hash of (seed,
// source, id), so the result does not depend on order or threads. Repeats are
// written in later sweeps over the input (epoch 2 after all of epoch 1), with
// "#2", "#3"... appended to their ids so every copy stays traceable.
#include "kiln/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

typedef struct {
    char *name;
    double weight;  // < 0: not given (keeps its natural share)
    long docs_in, docs_out;
    double bytes_in, bytes_out, mult;
} SampleSource;

typedef struct {
    SampleSource *src;
    int nsrc;
    double max_epochs, total;  // total <= 0: the input's total
    uint64_t seed;
    char *json;
} Sample;

static SampleSource *source_get(Sample *s, const char *name, size_t len) {
    for (int i = 0; i < s->nsrc; i++)
        if (strlen(s->src[i].name) == len && !memcmp(s->src[i].name, name, len)) return &s->src[i];
    SampleSource *n = realloc(s->src, (size_t)(s->nsrc + 1) * sizeof *n);
    if (!n) return NULL;
    s->src = n;
    SampleSource *x = &s->src[s->nsrc++];
    memset(x, 0, sizeof *x);
    x->name = strndup(name, len);
    x->weight = -1;
    return x->name ? x : NULL;
}

static void sample_destroy(void *state) {
    Sample *s = state;
    if (!s) return;
    for (int i = 0; i < s->nsrc; i++) free(s->src[i].name);
    free(s->src);
    free(s->json);
    free(s);
}

static int sample_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    Sample *s = calloc(1, sizeof *s);
    if (!s) return kiln_fail(err, "out of memory");
    s->seed = seed;
    s->max_epochs = 4;
    const char *const *w;
    int nw;
    if (params_list(ps, "weights", &w, &nw, err) || params_double(ps, "max_epochs", &s->max_epochs, err) ||
        params_double(ps, "total_mb", &s->total, err))
        goto fail;
    s->total *= 1 << 20;
    if (s->max_epochs <= 0) {
        kiln_fail(err, "sample: max_epochs must be > 0");
        goto fail;
    }
    for (int i = 0; i < nw; i++) {
        const char *eq = strchr(w[i], '=');
        char *end;
        double v = eq ? strtod(eq + 1, &end) : -1;
        if (!eq || eq == w[i] || *end || v < 0 || v != v) {
            kiln_fail(err, "sample: weights: '%s' is not SOURCE=WEIGHT with a weight >= 0", w[i]);
            goto fail;
        }
        SampleSource *x = source_get(s, w[i], (size_t)(eq - w[i]));
        if (!x) goto oom;
        x->weight = v;
    }
    *state = s;
    return 0;
oom:
    kiln_fail(err, "out of memory");
fail:
    sample_destroy(s);
    return -1;
}

// Target shares: given weights are normalised over the given sources' share of
// the output; sources without a weight keep their natural share. Multipliers are
// capped at max_epochs and the shortfall goes to the uncapped sources
// (water-filling), so the total is met unless every source is capped.
static void plan_multipliers(Sample *s) {
    double total_in = 0, natural_given = 0, wsum = 0;
    for (int i = 0; i < s->nsrc; i++) {
        total_in += s->src[i].bytes_in;
        if (s->src[i].weight >= 0) {
            natural_given += s->src[i].bytes_in;
            wsum += s->src[i].weight;
        }
    }
    double total = s->total > 0 ? s->total : total_in;
    double *target = calloc((size_t)s->nsrc, sizeof *target);
    int *capped = calloc((size_t)s->nsrc, sizeof *capped);
    if (!target || !capped || total_in <= 0) {
        for (int i = 0; i < s->nsrc; i++) s->src[i].mult = 1;
        free(target);
        free(capped);
        return;
    }
    for (int i = 0; i < s->nsrc; i++) {
        SampleSource *x = &s->src[i];
        target[i] = x->weight >= 0 ? (wsum > 0 ? x->weight / wsum * natural_given / total_in * total : 0)
                                   : x->bytes_in / total_in * total;
    }
    for (int round = 0; round < s->nsrc; round++) {
        double excess = 0, free_target = 0;
        for (int i = 0; i < s->nsrc; i++) {
            SampleSource *x = &s->src[i];
            if (capped[i]) continue;
            double cap = x->bytes_in * s->max_epochs;
            if (target[i] > cap) {
                excess += target[i] - cap;
                target[i] = cap;
                capped[i] = 1;
            } else {
                free_target += target[i];
            }
        }
        if (excess <= 0 || free_target <= 0) break;
        for (int i = 0; i < s->nsrc; i++)
            if (!capped[i]) target[i] += excess * target[i] / free_target;
    }
    for (int i = 0; i < s->nsrc; i++) s->src[i].mult = s->src[i].bytes_in > 0 ? target[i] / s->src[i].bytes_in : 0;
    free(target);
    free(capped);
}

// How many copies of this document: floor(m) plus one with probability frac(m).
static long copies(const Sample *s, const SampleSource *x, const KilnDoc *d) {
    double m = x->mult, whole = floor(m);
    uint64_t h = XXH3_64bits_withSeed(d->id.data, d->id.len, s->seed ^ XXH3_64bits(d->source.data, d->source.len));
    double u = (double)(h >> 11) * 0x1.0p-53;
    return (long)whole + (u < m - whole ? 1 : 0);
}

static int sample_run(void *state, const char *in_path, KilnDocWriter *out, KilnDocWriter *rejects,
                      const char *work_dir, KilnStageReport *rep, KilnErr *err) {
    Sample *s = state;
    KilnDocReader *r = NULL;
    KilnDoc d = {0};
    int rc = 0, got;
    // pass 1: bytes per source
    if (docreader_open(&r, in_path, NULL, NULL, err)) return -1;
    while ((got = docreader_next(r, &d, err)) > 0) {
        SampleSource *x = source_get(s, d.source.data, d.source.len);
        if (!x) {
            rc = kiln_fail(err, "out of memory");
            break;
        }
        x->docs_in++;
        x->bytes_in += (double)d.text.len;
    }
    skips_merge(&rep->skips, docreader_skips(r));
    docreader_close(r);
    if (got < 0 || rc) goto done;
    // a weight for a source the input does not have is a typo, or a mixture that cannot be met
    for (int i = 0; i < s->nsrc; i++)
        if (s->src[i].weight >= 0 && s->src[i].docs_in == 0) {
            KilnBuf have = {0};
            for (int k = 0; k < s->nsrc; k++)
                if (s->src[k].docs_in) kbuf_puts(&have, have.len ? ", " : ""), kbuf_puts(&have, s->src[k].name);
            rc = kiln_fail(err, "weights: no document of source '%s' reached this stage (its input has: %s)",
                           s->src[i].name, have.len ? have.data : "no documents");
            kbuf_free(&have);
            goto done;
        }
    plan_multipliers(s);
    double max_mult = 0;
    for (int i = 0; i < s->nsrc; i++) max_mult = fmax(max_mult, s->src[i].mult);
    // one sweep per epoch: copy e of a document is written in sweep e
    for (long e = 0; e < (long)ceil(max_mult) || e == 0; e++) {
        if (docreader_open(&r, in_path, NULL, NULL, err)) {
            rc = -1;
            break;
        }
        while ((got = docreader_next(r, &d, err)) > 0) {
            SampleSource *x = source_get(s, d.source.data, d.source.len);
            long c = x ? copies(s, x, &d) : 0;
            if (e == 0) {
                rep->docs_in++;
                rep->bytes_in += (long)d.text.len;
                if (c == 0 && stage_reject(rejects, rep, "sample:downsampled", &d, err)) {
                    rc = -1;
                    break;
                }
            }
            if (c <= e) continue;
            if (e > 0) {
                if (kbuf_printf(&d.id, "#%ld", e + 1)) {
                    rc = kiln_fail(err, "out of memory");
                    break;
                }
            }
            if (docwriter_put(out, &d, NULL, err)) {
                rc = -1;
                break;
            }
            x->docs_out++;
            x->bytes_out += (double)d.text.len;
            rep->docs_out++;
            rep->bytes_out += (long)d.text.len;
        }
        docreader_close(r);
        if (got < 0) rc = -1;
        if (rc) break;
    }
    // details: per source multiplier and bytes
    KilnBuf j = {0};
    kbuf_puts(&j, "{\"sources\":{");
    for (int i = 0; i < s->nsrc; i++) {
        const SampleSource *x = &s->src[i];
        kbuf_puts(&j, i ? "," : "");
        kbuf_json_str(&j, x->name);
        kbuf_printf(&j, ":{\"docs_in\":%ld,\"bytes_in\":%.0f,\"multiplier\":%.6g,\"docs_out\":%ld,\"bytes_out\":%.0f}",
                    x->docs_in, x->bytes_in, x->mult, x->docs_out, x->bytes_out);
    }
    kbuf_puts(&j, "}}");
    free(s->json);
    s->json = j.data;
done:
    doc_free(&d);
    (void)work_dir;
    return rc;
}

static char *sample_report(void *state) {
    Sample *s = state;
    return s->json ? strdup(s->json) : NULL;
}

const KilnStageDef STAGE_SAMPLE = {
    .name = "sample",
    .summary = "up- and down-sample sources to a target mixture (repeat small ones up to max_epochs)",
    .params_help = "  weights (none): SOURCE=WEIGHT, repeated; sources without one keep their natural share\n"
                   "  max_epochs (4): the most times one document is repeated\n"
                   "  total_mb (input size): output size to aim for, in MiB of text\n",
    .create = sample_create,
    .destroy = sample_destroy,
    .run_corpus = sample_run,
    .report_json = sample_report,
};
