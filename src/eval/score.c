// score.c: log-likelihoods and generations over a KV cache that keeps the
// longest common prefix between calls (shared contexts and few-shot examples
// are computed once per thread).
#include "kiln/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK = 32 };  // logits rows computed per infer_append while scoring

int session_open(KilnSession *s, const KilnModel *m, int max_len, KilnErr *err) {
    memset(s, 0, sizeof *s);
    s->toks = malloc(sizeof(int32_t) * (size_t)max_len);
    if (!s->toks) return kiln_fail(err, "out of memory");
    s->V = m->cfg.vocab_size;
    s->buf = malloc(sizeof(float) * (size_t)CHUNK * (size_t)s->V);
    if (!s->buf) {
        free(s->toks);
        return kiln_fail(err, "out of memory");
    }
    if (infer_create(&s->inf, m, max_len, err)) {
        free(s->buf);
        free(s->toks);
        s->toks = NULL;
        return -1;
    }
    return 0;
}

void session_close(KilnSession *s) {
    if (s->inf) infer_free(s->inf);
    free(s->toks);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

// Makes the cache hold toks[0..n); only what differs from the cached prefix is
// computed, except that positions first..n-1 are always computed and each of
// their logits rows is handed to row(ctx, position, logits) (first = n: none).
// Rows are computed in chunks, so a long window never needs (n,V) floats.
typedef void (*RowFn)(void *ctx, int pos, const float *logits);

static int feed(KilnSession *s, const int32_t *toks, int n, int first, RowFn row, void *ctx, KilnErr *err) {
    int p = 0;
    while (p < s->n && p < n && s->toks[p] == toks[p]) p++;
    if (p > first) p = first;
    infer_truncate(s->inf, p);
    s->n = p;
    if (first > p && infer_append(s->inf, toks + p, first - p, NULL, err)) return -1;
    int V = s->V;
    for (int at = first; at < n; at += CHUNK) {
        int k = n - at < CHUNK ? n - at : CHUNK;
        if (infer_append(s->inf, toks + at, k, s->buf, err)) return -1;
        for (int i = 0; i < k; i++) row(ctx, at + i, s->buf + (size_t)i * V);
    }
    memcpy(s->toks + p, toks + p, sizeof(int32_t) * (size_t)(n - p));
    s->n = n;
    return 0;
}

// Sums log P(toks[pos+1]) over the rows it is given, and whether each is the argmax.
typedef struct {
    const int32_t *toks;
    int V;
    double ll;
    int greedy;
} Score;

static void score_row(void *ctx, int pos, const float *logits) {
    Score *sc = ctx;
    int32_t want = sc->toks[pos + 1];
    sc->ll += logprob_at(logits, sc->V, want);
    sc->greedy &= argmax_token(logits, sc->V) == want;
}

// Keeps the last row it is given (generation needs only the newest logits).
typedef struct {
    float *dst;
    int V;
} Keep;

static void keep_row(void *ctx, int pos, const float *logits) {
    (void)pos;
    Keep *k = ctx;
    memcpy(k->dst, logits, sizeof(float) * (size_t)k->V);
}

static size_t rstrip_len(const char *s, size_t n) {
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\v' ||
                 s[n - 1] == '\f'))
        n--;
    return n;
}

// lm-evaluation-harness's _encode_pair: (context tokens, continuation tokens)
// into full, with *nctx the context's count.
static int encode_pair(const KilnCodec *c, const char *context, const char *continuation, KilnIds *full, long *nctx,
                       KilnErr *err) {
    size_t cl = strlen(context), kept = rstrip_len(context, cl);
    if (cl == 0) {  // no context: the continuation follows the end-of-text token
        *nctx = 1;
        return ids_push(full, (uint32_t)c->eot) ? kiln_fail(err, "out of memory")
                                                : codec_encode(c, continuation, strlen(continuation), full, err);
    }
    // trailing spaces of the context belong to the continuation
    size_t wl = cl + strlen(continuation);
    char *whole = malloc(wl + 1);
    if (!whole) return kiln_fail(err, "out of memory");
    memcpy(whole, context, cl);
    memcpy(whole + cl, continuation, wl - cl + 1);
    KilnIds ctx = {0};
    int rc = codec_encode(c, whole, kept, &ctx, err);
    if (rc == 0) rc = codec_encode(c, whole, wl, full, err);
    *nctx = ctx.n;
    ids_free(&ctx);
    free(whole);
    return rc;
}

// Sums log P(toks[j] | toks[..j]) for j in [from, n), in windows of at most
// the model's length: each window predicts as many new tokens as fit and
// conditions them on as much preceding text as fits. When the span fits in
// one window this is lm-evaluation-harness's single scoring pass; for
// rolling text it is its rolling windows.
static int score_span(KilnSession *s, const int32_t *toks, long n, long from, double *ll, int *greedy,
                      KilnErr *err) {
    int max = infer_max_len(s->inf);
    *ll = 0;
    *greedy = 1;
    for (long a = from; a < n;) {
        long b = n - a < max ? n : a + max, st = b - 1 - max > 0 ? b - 1 - max : 0;
        Score sc = {toks + st, s->V, 0.0, 1};
        if (feed(s, toks + st, (int)(b - 1 - st), (int)(a - 1 - st), score_row, &sc, err)) return -1;
        *ll += sc.ll;
        *greedy &= sc.greedy;
        a = b;
    }
    return 0;
}

static int32_t *to_i32(const KilnIds *ids, KilnErr *err) {
    int32_t *t = malloc(sizeof(int32_t) * (size_t)(ids->n ? ids->n : 1));
    if (!t) return kiln_fail(err, "out of memory"), NULL;
    for (long i = 0; i < ids->n; i++) t[i] = (int32_t)ids->ids[i];
    return t;
}

int loglikelihood(KilnSession *s, const KilnCodec *c, const char *context, const char *continuation, double *ll,
                  int *greedy, int *ntok, KilnErr *err) {
    KilnIds full = {0};
    long nctx = 0;
    int rc = encode_pair(c, context, continuation, &full, &nctx, err);
    if (rc == 0 && full.n - nctx <= 0)
        rc = kiln_fail(err, "the continuation \"%.40s\" has no tokens of its own", continuation);
    int32_t *toks = rc ? NULL : to_i32(&full, err);
    if (rc == 0 && !toks) rc = -1;
    int g = 1;
    if (rc == 0) rc = score_span(s, toks, full.n, nctx, ll, &g, err);
    if (rc == 0) {
        if (greedy) *greedy = g;
        if (ntok) *ntok = (int)(full.n - nctx);
    }
    free(toks);
    ids_free(&full);
    return rc;
}

int loglikelihood_rolling(KilnSession *s, const KilnCodec *c, const char *text, double *ll, long *ntok,
                          KilnErr *err) {
    KilnIds seq = {0};  // [eot] + the text's tokens
    int rc = ids_push(&seq, (uint32_t)c->eot) ? kiln_fail(err, "out of memory") : 0;
    if (rc == 0) rc = codec_encode(c, text, strlen(text), &seq, err);
    int32_t *toks = rc ? NULL : to_i32(&seq, err);
    if (rc == 0 && !toks) rc = -1;
    int g;
    if (rc == 0) rc = score_span(s, toks, seq.n, 1, ll, &g, err);
    if (rc == 0) *ntok = seq.n - 1;
    free(toks);
    ids_free(&seq);
    return rc;
}

// The first until string in text, or NULL.
static char *find_stop(char *text, const KilnGenOpts *o) {
    char *best = NULL;
    for (int i = 0; i < o->nuntil; i++) {
        if (!o->until[i][0]) continue;
        char *at = strstr(text, o->until[i]);
        if (at && (!best || at < best)) best = at;
    }
    return best;
}

int generate_text(KilnSession *s, const KilnCodec *c, const char *prompt, const KilnGenOpts *o, char **out,
                  KilnErr *err) {
    int max = infer_max_len(s->inf), V = c->vocab_size;
    if (o->max_tokens < 1 || o->max_tokens >= max)
        return kiln_fail(err, "max_tokens (%d) must be in 1..%d (the model's length - 1)", o->max_tokens, max - 1);
    KilnIds p = {0};
    if (!*prompt) {
        if (ids_push(&p, (uint32_t)c->eot)) return kiln_fail(err, "out of memory");
    } else if (codec_encode(c, prompt, strlen(prompt), &p, err)) {
        ids_free(&p);
        return -1;
    }
    long keep = p.n < max - o->max_tokens ? p.n : max - o->max_tokens;  // cut from the left
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)max);
    uint32_t *gen = malloc(sizeof(uint32_t) * (size_t)o->max_tokens);
    float *logits = malloc(sizeof(float) * (size_t)V);
    int rc = (!toks || !gen || !logits) ? kiln_fail(err, "out of memory") : 0;
    for (long i = 0; rc == 0 && i < keep; i++) toks[i] = (int32_t)p.ids[p.n - keep + i];
    ids_free(&p);
    Keep kp = {logits, V};
    if (rc == 0) rc = feed(s, toks, (int)keep, (int)keep - 1, keep_row, &kp, err);
    int n = 0;
    char *text = NULL;
    size_t tlen = 0;
    while (rc == 0 && n < o->max_tokens) {
        uint64_t h = kiln_hash64(o->seed ^ kiln_hash64((uint64_t)n + 1));
        float u = (float)((h >> 40) * (1.0 / 16777216.0));  // 24 random bits: [0, 1) exactly in float
        int t = sample_token(logits, V, o->temperature, o->top_k, o->top_p, u);
        if (t == c->eot) break;
        gen[n++] = (uint32_t)t;
        free(text);
        text = NULL;
        if ((rc = codec_decode(c, gen, n, &text, &tlen, err))) break;
        char *stop = find_stop(text, o);
        if (stop) {
            *stop = 0;
            break;
        }
        if (n == o->max_tokens) break;
        int32_t tok = t;
        rc = infer_append(s->inf, &tok, 1, logits, err);
        if (rc == 0) s->toks[s->n++] = tok;
    }
    if (rc == 0 && !text) {
        text = malloc(1);
        if (text) text[0] = 0;
        else rc = kiln_fail(err, "out of memory");
    }
    free(toks);
    free(gen);
    free(logits);
    if (rc) {
        free(text);
        return -1;
    }
    *out = text;
    return 0;
}
