// decontam.c: the `decontaminate` stage: finds the n-grams of evaluation items
// (kiln/decontam.h) in training documents and drops the document or excises
// the matches, GPT-3 style (Brown et al. 2020, appendix C): "we removed the
// colliding 13-gram as well as a 200 character window around it, splitting the
// original document into pieces ... Pieces less than 200 characters long were
// discarded. Documents split into more than 10 pieces were considered
// contaminated and removed entirely."
//
// Our reading: the matched n-grams widened by `margin` characters (code points,
// then out to the nearest whitespace so no word is cut) are removed; windows
// that overlap merge. The text between windows is the pieces (empty ones are
// not pieces); more than max_splits pieces drops the document; pieces shorter
// than min_chars (after trimming whitespace) are discarded, and when none is
// left the document is dropped. The kept pieces stay one document, joined by a
// blank line ("\n\n"): a per-document stage yields one document per document.
// GPT-3 also ignored 13-grams found in more than 10 training documents; that
// needs a pass over the whole corpus first and is not done here.
#include "kiln/data.h"
#include "data/stage/decontam.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MODE_EXCISE, MODE_DROP };
static const char *const MODES[] = {"excise", "drop", NULL};

#define REASON_MATCH "contaminated"
#define REASON_SPLIT "contaminated_too_many_pieces"
#define REASON_SHORT "contaminated_remainder_too_short"
#define REASON_OOM "contaminated_out_of_memory"

typedef struct {
    char *source;
    int task;
    long matched, dropped, excised;
} SourceStat;

typedef struct {
    KilnDecontamIndex *ix;
    int mode;
    long margin, max_splits, min_chars;
    double build_seconds;
    atomic_uchar *found;  // per item: seen in some document
    atomic_long docs_matched, docs_dropped, docs_excised, bytes_removed, ngram_hits;
    pthread_mutex_t mu;   // guards src: taken once per contaminated document
    SourceStat *src;
    int nsrc, src_cap, oom;
} Decontam;

// ---------------------------------------------------------------- excision
typedef struct {
    Decontam *d;
    const char *t;
    size_t len;
    uint64_t tasks;  // bit per task matched in this document
    int open;        // a window [lo, hi) is pending
    size_t lo, hi, cursor;
    long pieces;
    KilnBuf *out;
    int oom;
} Excise;

static int is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }
static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// Back `chars` code points from i, then back to just after whitespace (at most
// 64 more bytes, so a long run without spaces is still cut near the margin).
static size_t widen_left(const char *t, size_t i, long chars) {
    for (long c = 0; c < chars && i > 0; c++)
        do i--; while (i > 0 && is_cont((unsigned char)t[i]));
    for (size_t lim = i > 64 ? i - 64 : 0, j = i; j > lim; j--)
        if (is_ws(t[j - 1])) return j;
    return i > 64 ? i : 0;
}

static size_t widen_right(const char *t, size_t len, size_t i, long chars) {
    for (long c = 0; c < chars && i < len; c++)
        do i++; while (i < len && is_cont((unsigned char)t[i]));
    for (size_t lim = i + 64 < len ? i + 64 : len, j = i; j < lim; j++)
        if (is_ws(t[j])) return j;
    return i + 64 < len ? i : len;
}

static long code_points(const char *s, size_t n) {
    long c = 0;
    for (size_t i = 0; i < n; i++) c += !is_cont((unsigned char)s[i]);
    return c;
}

// The text between two windows: a piece when not blank, kept when long enough.
static void piece(Excise *x, size_t a, size_t b) {
    while (a < b && is_ws(x->t[a])) a++;
    while (b > a && is_ws(x->t[b - 1])) b--;
    if (a == b) return;
    x->pieces++;
    if (code_points(x->t + a, b - a) < x->d->min_chars) return;
    if ((x->out->len && kbuf_append(x->out, "\n\n", 2)) || kbuf_append(x->out, x->t + a, b - a)) x->oom = 1;
}

static int on_hit(void *ctx, const KilnNgramHit *h) {
    Excise *x = ctx;
    for (int k = 0; k < h->nitems; k++) {
        uint32_t it = h->items[k];
        x->tasks |= 1ULL << decontam_item_task(x->d->ix, it);
        if (!atomic_load_explicit(&x->d->found[it], memory_order_relaxed))
            atomic_store_explicit(&x->d->found[it], 1, memory_order_relaxed);
    }
    if (x->d->mode == MODE_DROP) return 0;  // keep scanning: every item found is reported
    size_t lo = widen_left(x->t, h->start, x->d->margin), hi = widen_right(x->t, x->len, h->end, x->d->margin);
    if (x->open && lo <= x->hi) {  // hits come in increasing start: merge overlapping windows
        if (hi > x->hi) x->hi = hi;
        return 0;
    }
    if (x->open) {
        piece(x, x->cursor, x->lo);
        x->cursor = x->hi;
    }
    x->open = 1;
    x->lo = lo;
    x->hi = hi;
    return 0;
}

// ---------------------------------------------------------------- per-source counts
static SourceStat *source_stat(Decontam *d, const char *source, int task) {
    for (int i = 0; i < d->nsrc; i++)
        if (d->src[i].task == task && !strcmp(d->src[i].source, source)) return &d->src[i];
    if (d->nsrc == d->src_cap) {
        int cap = d->src_cap ? 2 * d->src_cap : 16;
        SourceStat *s = realloc(d->src, (size_t)cap * sizeof *s);
        if (!s) return NULL;
        d->src = s;
        d->src_cap = cap;
    }
    SourceStat *s = &d->src[d->nsrc];
    *s = (SourceStat){strdup(source), task, 0, 0, 0};
    if (!s->source) return NULL;
    d->nsrc++;
    return s;
}

static void count_doc(Decontam *d, const KilnDoc *doc, uint64_t tasks, int dropped) {
    atomic_fetch_add(&d->docs_matched, 1);
    atomic_fetch_add(dropped ? &d->docs_dropped : &d->docs_excised, 1);
    const char *source = doc->source.data ? doc->source.data : "";
    pthread_mutex_lock(&d->mu);
    for (int t = 0; t < DECONTAM_MAX_TASKS; t++) {
        if (!(tasks >> t & 1)) continue;
        SourceStat *s = source_stat(d, source, t);
        if (!s) {
            d->oom = 1;
            continue;
        }
        s->matched++;
        if (dropped) s->dropped++;
        else s->excised++;
    }
    pthread_mutex_unlock(&d->mu);
}

static const char *dc_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    Decontam *d = state;
    Excise x = {.d = d, .t = doc->text.data, .len = doc->text.len, .out = &s->a};
    kbuf_clear(&s->a);
    long hits = decontam_scan(d->ix, doc->text.data ? doc->text.data : "", doc->text.len, on_hit, &x);
    if (hits == 0) return NULL;
    if (hits < 0) {  // out of memory on a giant word: we cannot tell, so the document goes
        count_doc(d, doc, x.tasks, 1);
        return REASON_OOM;
    }
    atomic_fetch_add(&d->ngram_hits, hits);
    if (d->mode == MODE_DROP) {
        count_doc(d, doc, x.tasks, 1);
        return REASON_MATCH;
    }
    piece(&x, x.cursor, x.lo);
    piece(&x, x.hi, x.len);
    const char *reason = x.oom ? REASON_OOM : x.pieces > d->max_splits ? REASON_SPLIT : !s->a.len ? REASON_SHORT : NULL;
    count_doc(d, doc, x.tasks, reason != NULL);
    if (reason) return reason;
    atomic_fetch_add(&d->bytes_removed, (long)(doc->text.len - s->a.len));
    kbuf_swap(&doc->text, &s->a);
    return NULL;
}

// ---------------------------------------------------------------- create / report
static void dc_destroy(void *state) {
    Decontam *d = state;
    if (!d) return;
    decontam_index_free(d->ix);
    free(d->found);
    for (int i = 0; i < d->nsrc; i++) free(d->src[i].source);
    free(d->src);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static int dc_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    (void)seed;
    *state = NULL;
    Decontam *d = calloc(1, sizeof *d);
    if (!d) return kiln_fail(err, "decontaminate: out of memory");
    pthread_mutex_init(&d->mu, NULL);
    long n = 13, min_words = 8;
    d->margin = 200;
    d->max_splits = 10;
    d->min_chars = 200;
    const char *const *evals;
    int nevals;
    if (params_list(ps, "eval", &evals, &nevals, err) || params_int(ps, "n", &n, err) ||
        params_enum(ps, "mode", MODES, &d->mode, err) || params_int(ps, "margin", &d->margin, err) ||
        params_int(ps, "max_splits", &d->max_splits, err) || params_int(ps, "min_chars", &d->min_chars, err) ||
        params_int(ps, "min_item_words", &min_words, err))
        goto fail;
    if (!nevals) {
        kiln_fail(err, "decontaminate: no evaluation sets (eval: [hellaswag=PATH, ...])");
        goto fail;
    }
    if (d->margin < 0 || d->max_splits < 1 || d->min_chars < 0) {
        kiln_fail(err, "decontaminate: margin and min_chars must be >= 0 and max_splits >= 1");
        goto fail;
    }
    if (n < 1 || n > DECONTAM_MAX_N || min_words < 1) {
        kiln_fail(err, "decontaminate: n must be in 1..%d and min_item_words >= 1", DECONTAM_MAX_N);
        goto fail;
    }
    if (min_words > n) min_words = n;  // then no shorter item is indexed
    double t0 = kiln_now();
    if (decontam_index_new(&d->ix, (int)n, (int)min_words, err)) goto fail;
    for (int i = 0; i < nevals; i++)
        if (decontam_index_add_file(d->ix, evals[i], err)) goto fail;
    if (decontam_index_build(d->ix, err)) goto fail;
    d->build_seconds = kiln_now() - t0;
    d->found = calloc((size_t)decontam_nitems(d->ix) + 1, sizeof *d->found);
    if (!d->found) {
        kiln_fail(err, "decontaminate: out of memory");
        goto fail;
    }
    *state = d;
    return 0;
fail:
    kiln_wrap(err, "decontaminate");
    dc_destroy(d);
    return -1;
}

static int cmp_source(const void *a, const void *b) {
    const SourceStat *x = a, *y = b;
    int c = strcmp(x->source, y->source);
    return c ? c : (x->task > y->task) - (x->task < y->task);
}

static int report_task(Decontam *d, int t, KilnBuf *b) {
    const KilnDecontamIndex *ix = d->ix;
    long nfound = 0, nitems = decontam_nitems(ix);
    for (long i = 0; i < nitems; i++) nfound += decontam_item_task(ix, i) == t && atomic_load(&d->found[i]);
    int rc = kbuf_json_str(b, decontam_task_name(ix, t)) || kbuf_puts(b, ":{\"file\":") ||
             kbuf_json_str(b, decontam_task_file(ix, t)) ||
             kbuf_printf(b, ",\"items\":%ld,\"items_too_short\":%ld,\"found\":%ld,\"found_ids\":[",
                     decontam_task_items(ix, t), decontam_task_too_short(ix, t), nfound);
    for (long i = 0, k = 0; i < nitems && !rc; i++)
        if (decontam_item_task(ix, i) == t && atomic_load(&d->found[i]))
            rc = (k++ && kbuf_putc(b, ',')) || kbuf_json_str(b, decontam_item_id(ix, i));
    rc = rc || kbuf_puts(b, "],\"sources\":{");
    // sources in name order: the table grows in whatever order threads met them
    // (none met: src is NULL, which qsort must not be given even with 0 items)
    if (d->nsrc) qsort(d->src, (size_t)d->nsrc, sizeof *d->src, cmp_source);
    for (int i = 0, k = 0; i < d->nsrc && !rc; i++) {
        const SourceStat *s = &d->src[i];
        if (s->task != t) continue;
        rc = (k++ && kbuf_putc(b, ',')) || kbuf_json_str(b, s->source) ||
             kbuf_printf(b, ":{\"docs_matched\":%ld,\"docs_dropped\":%ld,\"docs_excised\":%ld}", s->matched, s->dropped,
                     s->excised);
    }
    return rc || kbuf_puts(b, "}}");
}

// {"n":13,"mode":"excise",...,"tasks":{"hellaswag":{"items":793,"found":2,"found_ids":[...],"sources":{...}}}}
static char *dc_report(void *state) {
    Decontam *d = state;
    KilnBuf b = {0};
    pthread_mutex_lock(&d->mu);
    int rc = kbuf_printf(&b,
                     "{\"n\":%d,\"mode\":\"%s\",\"margin\":%ld,\"max_splits\":%ld,\"min_chars\":%ld,"
                     "\"index_ngrams\":%ld,\"index_bytes\":%zu,\"index_seconds\":%.3f,\"docs_matched\":%ld,"
                     "\"docs_dropped\":%ld,\"docs_excised\":%ld,\"bytes_excised\":%ld,\"ngram_hits\":%ld%s,"
                     "\"tasks\":{",
                     decontam_n(d->ix), MODES[d->mode], d->margin, d->max_splits, d->min_chars,
                     decontam_nngrams(d->ix), decontam_index_bytes(d->ix), d->build_seconds,
                     atomic_load(&d->docs_matched), atomic_load(&d->docs_dropped), atomic_load(&d->docs_excised),
                     atomic_load(&d->bytes_removed), atomic_load(&d->ngram_hits),
                     d->oom ? ",\"incomplete\":\"out of memory counting sources\"" : "");
    for (int t = 0; t < decontam_ntasks(d->ix) && !rc; t++) rc = (t && kbuf_putc(&b, ',')) || report_task(d, t, &b);
    rc = rc || kbuf_puts(&b, "}}");
    pthread_mutex_unlock(&d->mu);
    if (rc) {
        kbuf_free(&b);
        return NULL;
    }
    return b.data;
}

const KilnStageDef STAGE_DECONTAMINATE = {
    .name = "decontaminate",
    .summary = "remove evaluation-set text (13-gram overlap, GPT-3 style): excise with a margin or drop",
    .params_help =
        "  eval (required, list): evaluation sets: PATH, TASK=PATH, [TASK=]FORMAT:PATH (hellaswag, lambada,\n"
        "      gsm8k, piqa) or [TASK=]jsonl:FIELD1+FIELD2=PATH\n"
        "  n (13): words per n-gram (GPT-3)\n"
        "  mode (excise): excise | drop\n"
        "  margin (200): characters removed on each side of a matched n-gram (GPT-3)\n"
        "  max_splits (10): a document split into more pieces is dropped (GPT-3)\n"
        "  min_chars (200): shorter pieces are discarded; none left drops the document (GPT-3)\n"
        "  min_item_words (8): items of fewer than n words are one n-gram of their length (GPT-3);\n"
        "      items shorter than this are not indexed (GPT-3's floor of 8 against spurious collisions)\n",
    .create = dc_create,
    .destroy = dc_destroy,
    .apply = dc_apply,
    .report_json = dc_report,
};
