// classifier.c: see classifier.h. A fastText-style bag of hashed word n-grams,
// averaged, then a linear layer; SGD with a linearly decaying learning rate.
#include "kiln/classifier.h"

#include "core/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#define NO_ROW UINT32_MAX
#define FEAT_BATCH 128  // features looked up together (prefetched)
#define FILE_MAGIC "KILNCLS1"
#define FILE_VERSION 1u
#define HEADER_BYTES 36

struct KilnClassifier {
    int dim, nlabels, nout, word_ngrams;  // nout: 1 (logistic) for two labels
    uint32_t buckets, nrows;
    char **labels;
    uint32_t *row_of;      // [buckets]: stored row of a bucket, or NO_ROW
    uint32_t *row_bucket;  // [nrows]
    float *emb;            // [nrows * dim]
    float *w;              // [nout * dim]; no bias: the </s> row is one
};

void classifier_opts_default(KilnClsOpts *o) {
    o->dim = 32;
    o->epoch = 5;
    o->lr = 0.2;
    o->word_ngrams = 2;
    o->buckets = 1L << 21;
    o->seed = 1;
}

int classifier_opts_check(const KilnClsOpts *o, KilnErr *err) {
    if (o->dim < 1 || o->dim > KILN_CLS_MAX_DIM)
        return kiln_fail(err, "classifier: dim must be in [1, %d], got %d", KILN_CLS_MAX_DIM, o->dim);
    if (o->epoch < 1 || o->epoch > 100000) return kiln_fail(err, "classifier: epoch must be >= 1, got %d", o->epoch);
    if (!(o->lr > 0 && o->lr <= 10)) return kiln_fail(err, "classifier: lr must be in (0, 10], got %g", o->lr);
    if (o->word_ngrams < 1 || o->word_ngrams > KILN_CLS_MAX_NGRAMS)
        return kiln_fail(err, "classifier: wordNgrams must be in [1, %d], got %d", KILN_CLS_MAX_NGRAMS,
                         o->word_ngrams);
    if (o->buckets < 1 || o->buckets > KILN_CLS_MAX_BUCKETS)
        return kiln_fail(err, "classifier: buckets must be in [1, %ld], got %ld", KILN_CLS_MAX_BUCKETS, o->buckets);
    return 0;
}

// ---------------------------------------------------------------- features
// Byte classes: 0 separator (whitespace, control), 1 word (ASCII letters,
// digits, '_', any byte of a multi-byte character), 2 ASCII punctuation.
#define W1(c) ((c) == '_' || ((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define CLS(c) ((c) <= ' ' || (c) == 0x7f ? 0 : (c) >= 0x80 || W1(c) ? 1 : 2)
#define R4(c) CLS(c), CLS((c) + 1), CLS((c) + 2), CLS((c) + 3)
#define R16(c) R4(c), R4((c) + 4), R4((c) + 8), R4((c) + 12)
#define R64(c) R16(c), R16((c) + 16), R16((c) + 32), R16((c) + 48)
static const unsigned char BYTE_CLASS[256] = {R64(0), R64(64), R64(128), R64(192)};
static inline int byte_class(unsigned char c) { return BYTE_CLASS[c]; }

// A hash to a bucket by multiply-shift (Lemire's range reduction), not a division.
static inline uint32_t to_bucket(uint64_t h, uint32_t buckets) { return (uint32_t)(((h >> 32) * buckets) >> 32); }

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

// FNV-1a over the lowercased token t[0..n): ASCII directly, other characters
// through utf8proc's simple lowercase mapping (invalid bytes hash as they are).
static uint64_t token_hash(const unsigned char *t, size_t n) {
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n;) {
        unsigned char c = t[i];
        if (c < 0x80) {
            if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
            h = (h ^ c) * FNV_PRIME;
            i++;
            continue;
        }
        uint32_t cp;
        size_t k = utf8_decode((const char *)t + i, n - i, &cp);
        if (!k) {
            h = (h ^ c) * FNV_PRIME;
            i++;
            continue;
        }
        char enc[4];
        size_t m = utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        for (size_t j = 0; j < m; j++) h = (h ^ (unsigned char)enc[j]) * FNV_PRIME;
        i += k;
    }
    return kiln_hash64(h);
}

// Walks a text token by token, yielding each token's unigram and the n-grams
// that end at it.
typedef struct {
    const unsigned char *t;
    size_t n, pos;
    int ngrams;
    uint32_t buckets;
    uint64_t hist[KILN_CLS_MAX_NGRAMS];  // hist[0]: this token, hist[k]: k tokens back
    int nhist;
    uint64_t eos;
    int last_eos, done;
} FeatIter;

// fastText's end-of-line token. Its row acts as a bias whose weight in the
// mean falls with the text's length, and newlines count as it does in fastText
// (worth a point or two of accuracy on quality tasks, see the test).
static uint64_t eos_hash(void) { return token_hash((const unsigned char *)"</s>", 4); }

static void feat_init(FeatIter *it, const char *text, size_t len, int ngrams, uint32_t buckets) {
    memset(it, 0, sizeof *it);
    it->t = (const unsigned char *)text;
    it->n = len;
    it->ngrams = ngrams;
    it->buckets = buckets;
    it->eos = eos_hash();
}

// Writes the next token's features (1..ngrams bucket ids) to out; 0 at the end.
// Tokens: word runs, punctuation runs, "</s>" for each newline and one at the
// end (unless the text ended with a newline).
static int feat_next(FeatIter *it, uint32_t *out) {
    const unsigned char *t = it->t;
    size_t i = it->pos;
    while (i < it->n && t[i] != '\n' && byte_class(t[i]) == 0) i++;
    uint64_t th;
    if (i == it->n) {
        it->pos = i;
        if (it->done || it->last_eos) return 0;
        it->done = 1;
        th = it->eos;
    } else if (t[i] == '\n') {
        it->pos = i + 1;
        th = it->eos;
    } else {
        int cls = byte_class(t[i]);
        size_t s = i;
        while (i < it->n && byte_class(t[i]) == cls) i++;
        it->pos = i;
        th = token_hash(t + s, i - s);
    }
    it->last_eos = th == it->eos;
    memmove(it->hist + 1, it->hist, sizeof(uint64_t) * (size_t)(it->ngrams - 1));
    it->hist[0] = th;
    if (it->nhist < it->ngrams) it->nhist++;
    uint64_t g = it->hist[0];
    out[0] = to_bucket(g, it->buckets);
    for (int k = 1; k < it->nhist; k++) {
        g = kiln_hash64(g * 31 + it->hist[k]);
        out[k] = to_bucket(g, it->buckets);
    }
    return it->nhist;
}

size_t classifier_features(const char *text, size_t len, int word_ngrams, uint32_t buckets, uint32_t *out,
                           size_t cap) {
    FeatIter it;
    uint32_t f[KILN_CLS_MAX_NGRAMS];
    size_t n = 0;
    feat_init(&it, text, len, word_ngrams, buckets);
    for (int c; (c = feat_next(&it, f)) > 0;)
        for (int k = 0; k < c; k++, n++)
            if (n < cap) out[n] = f[k];
    return n;
}

// ---------------------------------------------------------------- example sets
void clsset_init(KilnClsSet *s, int word_ngrams, long buckets) {
    memset(s, 0, sizeof *s);
    s->word_ngrams = word_ngrams;
    s->buckets = (uint32_t)buckets;
}

void clsset_free(KilnClsSet *s) {
    free(s->feat);
    free(s->start);
    free(s->label);
    memset(s, 0, sizeof *s);
}

int clsset_add(KilnClsSet *s, const char *text, size_t len, int label, KilnErr *err) {
    if (s->word_ngrams < 1 || s->word_ngrams > KILN_CLS_MAX_NGRAMS || s->buckets < 1)
        return kiln_fail(err, "classifier: example set has bad wordNgrams %d or buckets %u", s->word_ngrams,
                         s->buckets);
    if (s->n + 1 >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        size_t *st = realloc(s->start, sizeof(size_t) * (cap + 1));
        if (st) s->start = st;
        int *lb = realloc(s->label, sizeof(int) * cap);
        if (lb) s->label = lb;
        if (!st || !lb) return kiln_fail(err, "classifier: out of memory for %zu examples", cap);
        s->cap = cap;
    }
    if (s->n == 0) s->start[0] = 0;
    FeatIter it;
    uint32_t f[KILN_CLS_MAX_NGRAMS];
    feat_init(&it, text, len, s->word_ngrams, s->buckets);
    for (int c; (c = feat_next(&it, f)) > 0;) {
        if (s->nfeat + (size_t)c > s->capfeat) {
            size_t cap = s->capfeat ? s->capfeat * 2 : 1 << 16;
            uint32_t *nf = realloc(s->feat, sizeof(uint32_t) * cap);
            if (!nf) return kiln_fail(err, "classifier: out of memory for %zu features", cap);
            s->feat = nf;
            s->capfeat = cap;
        }
        memcpy(s->feat + s->nfeat, f, sizeof(uint32_t) * (size_t)c);
        s->nfeat += (size_t)c;
        s->tokens++;
    }
    s->label[s->n] = label;
    s->start[++s->n] = s->nfeat;
    return 0;
}

// ---------------------------------------------------------------- model
void classifier_free(KilnClassifier *m) {
    if (!m) return;
    for (int i = 0; i < m->nlabels && m->labels; i++) free(m->labels[i]);
    free(m->labels);
    free(m->row_of);
    free(m->row_bucket);
    free(m->emb);
    free(m->w);
    free(m);
}

int classifier_nlabels(const KilnClassifier *m) { return m->nlabels; }
const char *classifier_label(const KilnClassifier *m, int i) { return i >= 0 && i < m->nlabels ? m->labels[i] : NULL; }
int classifier_dim(const KilnClassifier *m) { return m->dim; }
int classifier_word_ngrams(const KilnClassifier *m) { return m->word_ngrams; }
long classifier_buckets(const KilnClassifier *m) { return (long)m->buckets; }
long classifier_rows(const KilnClassifier *m) { return (long)m->nrows; }

int classifier_find_label(const KilnClassifier *m, const char *name) {
    for (int i = 0; i < m->nlabels; i++)
        if (!strcmp(m->labels[i], name)) return i;
    return -1;
}

// A model shell with labels, output layer and an empty bucket index.
static KilnClassifier *model_new(int dim, int nlabels, int word_ngrams, uint32_t buckets) {
    KilnClassifier *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->dim = dim;
    m->nlabels = nlabels;
    m->nout = nlabels == 2 ? 1 : nlabels;
    m->word_ngrams = word_ngrams;
    m->buckets = buckets;
    m->labels = calloc((size_t)nlabels, sizeof(char *));
    m->row_of = malloc(sizeof(uint32_t) * buckets);
    m->w = calloc((size_t)m->nout * (size_t)dim, sizeof(float));
    if (!m->labels || !m->row_of || !m->w) {
        classifier_free(m);
        return NULL;
    }
    memset(m->row_of, 0xff, sizeof(uint32_t) * buckets);
    return m;
}

// Output probabilities from the document vector h; returns the argmax.
static int output_probs(const KilnClassifier *m, const float *h, float *probs) {
    int d = m->dim;
    if (m->nout == 1) {
        float s = 0;
        for (int j = 0; j < d; j++) s += m->w[j] * h[j];
        float p = 1.0f / (1.0f + expf(-s));
        probs[0] = p;
        probs[1] = 1.0f - p;
        return p >= 0.5f ? 0 : 1;
    }
    float mx = -INFINITY;
    for (int k = 0; k < m->nout; k++) {
        float s = 0;
        const float *wk = m->w + (size_t)k * d;
        for (int j = 0; j < d; j++) s += wk[j] * h[j];
        probs[k] = s;
        if (s > mx) mx = s;
    }
    float z = 0;
    int best = 0;
    for (int k = 0; k < m->nout; k++) {
        probs[k] = expf(probs[k] - mx);
        z += probs[k];
    }
    for (int k = 0; k < m->nout; k++) {
        probs[k] /= z;
        if (probs[k] > probs[best]) best = k;
    }
    return best;
}

static inline void add_row(float *restrict h, const float *restrict row, int d) {
    for (int j = 0; j < d; j++) h[j] += row[j];
}

// Adds the stored rows of buckets f[0..n) to h; returns how many were stored.
// Both lookups miss the cache on a big model, so a batch is walked three
// times: prefetch the index entries, then the rows, then add (2x faster on a 2^21-bucket model).
static long add_rows(const KilnClassifier *m, const uint32_t *f, size_t n, float *h) {
    uint32_t r[FEAT_BATCH];
    int d = m->dim;
    long known = 0;
    for (size_t i = 0; i < n; i++) __builtin_prefetch(m->row_of + f[i]);
    for (size_t i = 0; i < n; i++) {
        r[i] = m->row_of[f[i]];
        if (r[i] == NO_ROW) continue;
        const char *row = (const char *)(m->emb + (size_t)r[i] * d);
        for (int b = 0; b < d * 4; b += 64) __builtin_prefetch(row + b);
    }
    for (size_t i = 0; i < n; i++)
        if (r[i] != NO_ROW) {
            add_row(h, m->emb + (size_t)r[i] * d, d);
            known++;
        }
    return known;
}

static int predict_mean(const KilnClassifier *m, float *h, long known, float *probs) {
    if (known > 1)
        for (int j = 0; j < m->dim; j++) h[j] /= (float)known;
    return output_probs(m, h, probs);
}

int classifier_predict(const KilnClassifier *m, const char *text, size_t len, float *probs) {
    float h[KILN_CLS_MAX_DIM];
    uint32_t batch[FEAT_BATCH];
    memset(h, 0, sizeof(float) * (size_t)m->dim);
    long known = 0;
    size_t nb = 0;
    FeatIter it;
    feat_init(&it, text, len, m->word_ngrams, m->buckets);
    for (int c; (c = feat_next(&it, batch + nb)) > 0;) {
        nb += (size_t)c;
        if (nb + KILN_CLS_MAX_NGRAMS > FEAT_BATCH) {
            known += add_rows(m, batch, nb, h);
            nb = 0;
        }
    }
    known += add_rows(m, batch, nb, h);
    return predict_mean(m, h, known, probs);
}

int classifier_predict_feats(const KilnClassifier *m, const uint32_t *feat, size_t n, float *probs) {
    float h[KILN_CLS_MAX_DIM];
    uint32_t batch[FEAT_BATCH];
    memset(h, 0, sizeof(float) * (size_t)m->dim);
    long known = 0;
    for (size_t i = 0; i < n;) {
        size_t nb = 0;
        for (; nb < FEAT_BATCH && i < n; i++)
            if (feat[i] < m->buckets) batch[nb++] = feat[i];
        known += add_rows(m, batch, nb, h);
    }
    return predict_mean(m, h, known, probs);
}

// ---------------------------------------------------------------- training
static int copy_labels(KilnClassifier *m, const char *const *labels, KilnErr *err) {
    for (int i = 0; i < m->nlabels; i++) {
        if (!labels[i] || !labels[i][0]) return kiln_fail(err, "classifier: label %d has no name", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(labels[i], labels[j])) return kiln_fail(err, "classifier: label '%s' given twice", labels[i]);
        m->labels[i] = strdup(labels[i]);
        if (!m->labels[i]) return kiln_fail(err, "classifier: out of memory");
    }
    return 0;
}

// Gives every bucket of the training set a stored row (first appearance order)
// and rewrites the features as row numbers into *rows.
static int assign_rows(KilnClassifier *m, const KilnClsSet *s, uint32_t **rows, KilnErr *err) {
    *rows = malloc(sizeof(uint32_t) * (s->nfeat ? s->nfeat : 1));
    size_t cap = 1 << 12;
    m->row_bucket = malloc(sizeof(uint32_t) * cap);
    if (!*rows || !m->row_bucket) return kiln_fail(err, "classifier: out of memory for %zu features", s->nfeat);
    for (size_t i = 0; i < s->nfeat; i++) {
        uint32_t b = s->feat[i];
        if (b >= m->buckets) return kiln_fail(err, "classifier: feature %u out of range (buckets %u)", b, m->buckets);
        if (m->row_of[b] == NO_ROW) {
            if (m->nrows == cap) {
                uint32_t *nb = realloc(m->row_bucket, sizeof(uint32_t) * (cap *= 2));
                if (!nb) return kiln_fail(err, "classifier: out of memory for %zu rows", cap);
                m->row_bucket = nb;
            }
            m->row_bucket[m->nrows] = b;
            m->row_of[b] = m->nrows++;
        }
        (*rows)[i] = m->row_of[b];
    }
    return 0;
}

// One SGD step on an example (rows f[0..n), label y) at learning rate lr;
// returns its loss. hid and grad are dim-wide scratch.
static float sgd_step(KilnClassifier *m, const uint32_t *f, size_t n, int y, float lr, float *hid, float *grad) {
    int d = m->dim;
    memset(hid, 0, sizeof(float) * (size_t)d);
    memset(grad, 0, sizeof(float) * (size_t)d);
    for (size_t i = 0; i < n; i++) add_row(hid, m->emb + (size_t)f[i] * d, d);
    float inv = 1.0f / (float)n;
    for (int j = 0; j < d; j++) hid[j] *= inv;
    float probs[KILN_CLS_MAX_LABELS], loss;
    output_probs(m, hid, probs);
    if (m->nout == 1) {  // logistic: probs[0] is p(label 0)
        float target = y == 0 ? 1.0f : 0.0f, a = lr * (target - probs[0]);
        for (int j = 0; j < d; j++) {
            grad[j] += a * m->w[j];
            m->w[j] += a * hid[j];
        }
        loss = -logf(fmaxf(probs[y], 1e-10f));
    } else {
        for (int k = 0; k < m->nout; k++) {
            float a = lr * ((k == y ? 1.0f : 0.0f) - probs[k]);
            float *wk = m->w + (size_t)k * d;
            for (int j = 0; j < d; j++) {
                grad[j] += a * wk[j];
                wk[j] += a * hid[j];
            }
        }
        loss = -logf(fmaxf(probs[y], 1e-10f));
    }
    for (int j = 0; j < d; j++) grad[j] *= inv;
    for (size_t i = 0; i < n; i++) add_row(m->emb + (size_t)f[i] * d, grad, d);
    return loss;
}

static int check_train_args(const KilnClsOpts *o, int nlabels, const KilnClsSet *train, KilnErr *err) {
    if (classifier_opts_check(o, err)) return -1;
    if (nlabels < 2 || nlabels > KILN_CLS_MAX_LABELS)
        return kiln_fail(err, "classifier: need 2 to %d labels, got %d", KILN_CLS_MAX_LABELS, nlabels);
    if (train->word_ngrams != o->word_ngrams || (long)train->buckets != o->buckets)
        return kiln_fail(err, "classifier: examples were hashed with wordNgrams %d and %u buckets, options say %d and %ld",
                         train->word_ngrams, train->buckets, o->word_ngrams, o->buckets);
    if (train->n == 0) return kiln_fail(err, "classifier: no training examples");
    for (size_t i = 0; i < train->n; i++)
        if (train->label[i] < 0 || train->label[i] >= nlabels)
            return kiln_fail(err, "classifier: example %zu has label %d, not in [0, %d)", i, train->label[i], nlabels);
    return 0;
}

// Trains the model whose rows are assigned; rows[]: features as row numbers.
static int train_loop(KilnClassifier *m, const KilnClsOpts *o, const KilnClsSet *s, const uint32_t *rows,
                      KilnClsTrainStats *st, KilnErr *err) {
    size_t *order = malloc(sizeof(size_t) * (s->n ? s->n : 1));
    float *hid = malloc(sizeof(float) * (size_t)m->dim), *grad = malloc(sizeof(float) * (size_t)m->dim);
    if (!order || !hid || !grad) {
        free(order), free(hid), free(grad);
        return kiln_fail(err, "classifier: out of memory for %zu examples", s->n);
    }
    size_t ne = 0, feats = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->start[i + 1] > s->start[i]) {
            order[ne++] = i;
            feats += s->start[i + 1] - s->start[i];
        }
    KilnRng rng;
    kiln_rng_seed(&rng, o->seed ^ 0x5348554646ull);  // "SHUFF": apart from the init stream
    double total = (double)feats * o->epoch, done = 0, t0 = kiln_now();
    for (int ep = 0; ep < o->epoch; ep++) {
        for (size_t i = ne; i > 1; i--) {
            size_t j = kiln_rng_u64(&rng) % i, t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        double loss = 0;
        for (size_t i = 0; i < ne; i++) {
            size_t e = order[i], n = s->start[e + 1] - s->start[e];
            float lr = (float)(o->lr * (1.0 - done / total));
            loss += sgd_step(m, rows + s->start[e], n, s->label[e], lr, hid, grad);
            done += (double)n;
        }
        st->loss = ne ? loss / (double)ne : 0;
    }
    st->seconds = kiln_now() - t0;
    st->examples = (long)ne;
    st->tokens = s->tokens;
    st->tokens_per_s = st->seconds > 0 ? (double)s->tokens * o->epoch / st->seconds : 0;
    free(order), free(hid), free(grad);
    return 0;
}

int classifier_train(KilnClassifier **out, const KilnClsOpts *o, const char *const *labels, int nlabels,
                     const KilnClsSet *train, KilnClsTrainStats *stats, KilnErr *err) {
    *out = NULL;
    if (check_train_args(o, nlabels, train, err)) return -1;
    KilnClassifier *m = model_new(o->dim, nlabels, o->word_ngrams, (uint32_t)o->buckets);
    if (!m) return kiln_fail(err, "classifier: out of memory for %ld buckets", o->buckets);
    uint32_t *rows = NULL;
    KilnClsTrainStats st = {0};
    if (copy_labels(m, labels, err) || assign_rows(m, train, &rows, err)) goto fail;
    m->emb = malloc(sizeof(float) * ((size_t)m->nrows * (size_t)m->dim + 1));
    if (!m->emb) {
        kiln_fail(err, "classifier: out of memory for %u rows of %d", m->nrows, m->dim);
        goto fail;
    }
    // fastText's initialisation: embeddings uniform in +-1/dim, output zero
    KilnRng rng;
    kiln_rng_seed(&rng, o->seed);
    for (size_t i = 0; i < (size_t)m->nrows * (size_t)m->dim; i++)
        m->emb[i] = (2.0f * kiln_rng_uniform(&rng) - 1.0f) / (float)m->dim;
    if (train_loop(m, o, train, rows, &st, err)) goto fail;
    free(rows);
    if (stats) *stats = st;
    *out = m;
    return 0;
fail:
    free(rows);
    classifier_free(m);
    return -1;
}

// ---------------------------------------------------------------- evaluation
typedef struct {
    float score;
    int pos;
} Scored;

static int cmp_scored(const void *a, const void *b) {
    float x = ((const Scored *)a)->score, y = ((const Scored *)b)->score;
    return (x > y) - (x < y);
}

// Area under the ROC curve as the Mann-Whitney statistic, ties counted half.
static double auc_of(Scored *s, size_t n) {
    qsort(s, n, sizeof *s, cmp_scored);
    double npos = 0, rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].score == s[i].score) j++;
        double mid = (double)(i + j + 1) / 2.0;  // mean 1-based rank of the tie group
        for (size_t k = i; k < j; k++)
            if (s[k].pos) {
                rank_sum += mid;
                npos++;
            }
        i = j;
    }
    double nneg = (double)n - npos;
    if (npos == 0 || nneg == 0) return NAN;
    return (rank_sum - npos * (npos + 1) / 2.0) / (npos * nneg);
}

int classifier_eval(const KilnClassifier *m, const KilnClsSet *set, int positive, KilnClsMetrics *out,
                    KilnErr *err) {
    memset(out, 0, sizeof *out);
    if (set->word_ngrams != m->word_ngrams || set->buckets != m->buckets)
        return kiln_fail(err, "classifier: examples hashed with wordNgrams %d and %u buckets, the model uses %d and %u",
                         set->word_ngrams, set->buckets, m->word_ngrams, m->buckets);
    if (positive < 0 || positive >= m->nlabels) positive = 0;
    Scored *sc = m->nlabels == 2 ? malloc(sizeof(Scored) * (set->n ? set->n : 1)) : NULL;
    if (m->nlabels == 2 && !sc) return kiln_fail(err, "classifier: out of memory for %zu scores", set->n);
    float probs[KILN_CLS_MAX_LABELS];
    long right = 0;
    double loss = 0;
    for (size_t i = 0; i < set->n; i++) {
        int y = set->label[i];
        if (y < 0 || y >= m->nlabels) {
            free(sc);
            return kiln_fail(err, "classifier: example %zu has label %d, the model has %d", i, y, m->nlabels);
        }
        int pred = classifier_predict_feats(m, set->feat + set->start[i], set->start[i + 1] - set->start[i], probs);
        right += pred == y;
        loss += -log(fmax(probs[y], 1e-10));
        if (!sc) continue;
        sc[i] = (Scored){probs[positive], y == positive};
        int pp = pred == positive, ap = y == positive;
        out->tp += pp && ap;
        out->fp += pp && !ap;
        out->fn += !pp && ap;
        out->tn += !pp && !ap;
    }
    out->n = (long)set->n;
    out->accuracy = set->n ? (double)right / (double)set->n : 0;
    out->loss = set->n ? loss / (double)set->n : 0;
    if (sc) {
        out->precision = out->tp + out->fp ? (double)out->tp / (double)(out->tp + out->fp) : 0;
        out->recall = out->tp + out->fn ? (double)out->tp / (double)(out->tp + out->fn) : 0;
        double pr = out->precision + out->recall;
        out->f1 = pr > 0 ? 2 * out->precision * out->recall / pr : 0;
        out->auc = auc_of(sc, set->n);
        free(sc);
    }
    return 0;
}

// ---------------------------------------------------------------- model files
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// Writes n little-endian 32-bit words (u32 or float bits) and hashes them.
static int write_words(KilnAtomicFile *af, XXH3_state_t *xs, const void *words, size_t n, KilnErr *err) {
    unsigned char buf[1 << 16];  // large writes: stdio's 4 KiB ones cost a syscall each
    const uint32_t *w = words;
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof buf / 4 && i < n; k++, i++) put_u32(buf + 4 * k, w[i]);
        XXH3_64bits_update(xs, buf, 4 * k);
        if (kiln_atomic_write(af, buf, 4 * k, err)) return -1;
    }
    return 0;
}

static int write_bytes_h(KilnAtomicFile *af, XXH3_state_t *xs, const void *p, size_t n, KilnErr *err) {
    XXH3_64bits_update(xs, p, n);
    return kiln_atomic_write(af, p, n, err);
}

static size_t labels_bytes(const KilnClassifier *m) {
    size_t n = 0;
    for (int i = 0; i < m->nlabels; i++) n += 4 + strlen(m->labels[i]);
    return n;
}

static int write_model(const KilnClassifier *m, KilnAtomicFile *af, KilnErr *err) {
    XXH3_state_t *xs = XXH3_createState();
    if (!xs) return kiln_fail(err, "out of memory");
    XXH3_64bits_reset(xs);
    unsigned char h[HEADER_BYTES];
    memcpy(h, FILE_MAGIC, 8);
    uint32_t fields[7] = {FILE_VERSION, (uint32_t)m->dim, (uint32_t)m->nlabels, (uint32_t)m->word_ngrams,
                          m->buckets, m->nrows, (uint32_t)labels_bytes(m)};
    for (int i = 0; i < 7; i++) put_u32(h + 8 + 4 * i, fields[i]);
    int rc = write_bytes_h(af, xs, h, sizeof h, err);
    for (int i = 0; i < m->nlabels && !rc; i++) {
        unsigned char len[4];
        put_u32(len, (uint32_t)strlen(m->labels[i]));
        rc = write_bytes_h(af, xs, len, 4, err) || write_bytes_h(af, xs, m->labels[i], strlen(m->labels[i]), err);
    }
    if (!rc) rc = write_words(af, xs, m->row_bucket, m->nrows, err);
    if (!rc) rc = write_words(af, xs, m->emb, (size_t)m->nrows * (size_t)m->dim, err);
    if (!rc) rc = write_words(af, xs, m->w, (size_t)m->nout * (size_t)m->dim, err);
    uint64_t sum = XXH3_64bits_digest(xs);
    XXH3_freeState(xs);
    unsigned char tail[8];
    put_u32(tail, (uint32_t)sum);
    put_u32(tail + 4, (uint32_t)(sum >> 32));
    return rc ? -1 : kiln_atomic_write(af, tail, 8, err);
}

int classifier_save(const KilnClassifier *m, const char *path, KilnErr *err) {
    KilnAtomicFile af;
    if (kiln_atomic_open(&af, path, err)) return -1;
    if (write_model(m, &af, err)) {
        kiln_atomic_abort(&af);
        return kiln_wrap(err, "%s", path);
    }
    return kiln_atomic_commit(&af, err);
}

// Label names: non-empty, valid UTF-8 without control characters, unique.
static int read_labels(KilnClassifier *m, const unsigned char *p, size_t n, const char *path, KilnErr *err) {
    size_t o = 0;
    for (int i = 0; i < m->nlabels; i++) {
        if (n - o < 4) return kiln_fail(err, "%s: label section ends inside label %d", path, i);
        uint32_t len = get_u32(p + o);
        o += 4;
        if (len == 0 || len > n - o) return kiln_fail(err, "%s: label %d has bad length %u", path, i, len);
        for (size_t k = 0, cl; k < len; k += cl) {
            uint32_t cp;
            cl = utf8_decode((const char *)p + o + k, len - k, &cp);
            if (!cl || cp < 0x20 || cp == 0x7f)
                return kiln_fail(err, "%s: label %d is not a clean UTF-8 name", path, i);
        }
        m->labels[i] = strndup((const char *)p + o, len);
        if (!m->labels[i]) return kiln_fail(err, "%s: out of memory", path);
        for (int j = 0; j < i; j++)
            if (!strcmp(m->labels[i], m->labels[j])) return kiln_fail(err, "%s: label '%s' appears twice", path, m->labels[i]);
        o += len;
    }
    if (o != n) return kiln_fail(err, "%s: label section has %zu bytes past the last label", path, n - o);
    return 0;
}

// Reads n little-endian floats, refusing NaN and infinities.
static int read_floats(float *dst, const unsigned char *p, size_t n, const char *what, const char *path,
                       KilnErr *err) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = get_u32(p + 4 * i);
        memcpy(dst + i, &u, 4);
        if (!isfinite(dst[i])) return kiln_fail(err, "%s: %s value %zu is not finite", path, what, i);
    }
    return 0;
}

static int read_rows(KilnClassifier *m, const unsigned char *p, const char *path, KilnErr *err) {
    for (uint32_t i = 0; i < m->nrows; i++) {
        uint32_t b = get_u32(p + 4 * (size_t)i);
        if (b >= m->buckets) return kiln_fail(err, "%s: row %u has bucket %u >= %u", path, i, b, m->buckets);
        if (m->row_of[b] != NO_ROW) return kiln_fail(err, "%s: bucket %u stored twice", path, b);
        m->row_bucket[i] = b;
        m->row_of[b] = i;
    }
    return 0;
}

// Checks the header's sizes against limits and the file length.
static int check_header(const unsigned char *d, size_t len, const char *path, uint32_t *f, KilnErr *err) {
    if (len < HEADER_BYTES + 8 || memcmp(d, FILE_MAGIC, 8))
        return kiln_fail(err, "%s: not a kiln classifier model (bad magic or too short: %zu bytes)", path, len);
    for (int i = 0; i < 7; i++) f[i] = get_u32(d + 8 + 4 * i);
    if (f[0] != FILE_VERSION) return kiln_fail(err, "%s: model file version %u, this kiln reads %u", path, f[0], FILE_VERSION);
    if (f[1] < 1 || f[1] > KILN_CLS_MAX_DIM) return kiln_fail(err, "%s: bad dim %u", path, f[1]);
    if (f[2] < 2 || f[2] > KILN_CLS_MAX_LABELS) return kiln_fail(err, "%s: bad label count %u", path, f[2]);
    if (f[3] < 1 || f[3] > KILN_CLS_MAX_NGRAMS) return kiln_fail(err, "%s: bad wordNgrams %u", path, f[3]);
    if (f[4] < 1 || f[4] > KILN_CLS_MAX_BUCKETS) return kiln_fail(err, "%s: bad bucket count %u", path, f[4]);
    if (f[5] > f[4]) return kiln_fail(err, "%s: %u rows but only %u buckets", path, f[5], f[4]);
    uint64_t nout = f[2] == 2 ? 1 : f[2];
    uint64_t want = HEADER_BYTES + (uint64_t)f[6] + 4ull * f[5] + 4ull * f[5] * f[1] + 4ull * nout * f[1] + 8;
    if (want != len)
        return kiln_fail(err, "%s: sizes in the header need %llu bytes, the file has %zu (truncated or corrupt)", path,
                         (unsigned long long)want, len);
    uint64_t sum = XXH3_64bits(d, len - 8);
    if (get_u32(d + len - 8) != (uint32_t)sum || get_u32(d + len - 4) != (uint32_t)(sum >> 32))
        return kiln_fail(err, "%s: checksum mismatch (corrupt model file)", path);
    return 0;
}

static int parse_model(KilnClassifier **out, const unsigned char *d, size_t len, const char *path, KilnErr *err) {
    uint32_t f[7];
    if (check_header(d, len, path, f, err)) return -1;
    KilnClassifier *m = model_new((int)f[1], (int)f[2], (int)f[3], f[4]);
    if (!m) return kiln_fail(err, "%s: out of memory for %u buckets", path, f[4]);
    m->nrows = f[5];
    size_t nemb = (size_t)m->nrows * (size_t)m->dim, nw = (size_t)m->nout * (size_t)m->dim;
    m->row_bucket = malloc(sizeof(uint32_t) * (m->nrows + 1));
    m->emb = malloc(sizeof(float) * (nemb + 1));
    const unsigned char *p = d + HEADER_BYTES;
    int rc = !m->row_bucket || !m->emb ? kiln_fail(err, "%s: out of memory for %u rows", path, m->nrows) : 0;
    if (!rc) rc = read_labels(m, p, f[6], path, err);
    p += f[6];
    if (!rc) rc = read_rows(m, p, path, err);
    p += 4 * (size_t)m->nrows;
    if (!rc) rc = read_floats(m->emb, p, nemb, "embedding", path, err);
    p += 4 * nemb;
    if (!rc) rc = read_floats(m->w, p, nw, "output weight", path, err);
    if (rc) {
        classifier_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int classifier_load(KilnClassifier **out, const char *path, KilnErr *err) {
    *out = NULL;
    char *data;
    size_t len;
    if (kiln_read_file(path, &data, &len, err)) return -1;
    int rc = parse_model(out, (const unsigned char *)data, len, path, err);
    free(data);
    return rc;
}
