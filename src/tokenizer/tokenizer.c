// tokenizer.c: vocabulary tables, pre-tokenization and the encode/decode drivers.
#define _GNU_SOURCE  // memmem
#include "tokenizer/tokenizer_internal.h"

#include "tokenizer/unicode_classes.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static uint64_t bytes_hash(const uint8_t *b, size_t n) {
    uint64_t h = XXH3_64bits(b, n);
    return h ? h : 1;  // 0 marks an empty slot
}

int ids_push(KilnIds *ids, uint32_t id) {
    if (ids->n == ids->cap) {
        long cap = ids->cap ? 2 * ids->cap : 256;
        uint32_t *p = realloc(ids->ids, sizeof(uint32_t) * cap);
        if (!p) return -1;
        ids->ids = p;
        ids->cap = cap;
    }
    ids->ids[ids->n++] = id;
    return 0;
}

int ids_append(KilnIds *ids, const uint32_t *src, long n) {
    if (ids->n + n > ids->cap) {
        long cap = ids->cap ? ids->cap : 256;
        while (cap < ids->n + n) cap *= 2;
        uint32_t *p = realloc(ids->ids, sizeof(uint32_t) * cap);
        if (!p) return -1;
        ids->ids = p;
        ids->cap = cap;
    }
    memcpy(ids->ids + ids->n, src, sizeof(uint32_t) * n);
    ids->n += n;
    return 0;
}

void ids_free(KilnIds *ids) {
    free(ids->ids);
    memset(ids, 0, sizeof *ids);
}

static uint64_t pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

int tok_init(KilnTokenizer *t, int n_vocab, size_t blob_bytes, KilnErr *err) {
    memset(t, 0, sizeof *t);
    t->n_vocab = n_vocab;
    t->blob_cap = blob_bytes ? blob_bytes : 1;
    t->blob = malloc(t->blob_cap);
    t->off = calloc((size_t)n_vocab, sizeof *t->off);
    t->len = calloc((size_t)n_vocab, sizeof *t->len);
    if (!t->blob || !t->off || !t->len) return kiln_fail(err, "out of memory for a vocabulary of %d tokens", n_vocab);
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return 0;
}

int tok_set_token(KilnTokenizer *t, int id, const uint8_t *bytes, int len, KilnErr *err) {
    if (id < 0 || id >= t->n_vocab) return kiln_fail(err, "token id %d outside 0..%d", id, t->n_vocab - 1);
    if (len <= 0) return kiln_fail(err, "token id %d is empty", id);
    if (t->len[id]) return kiln_fail(err, "token id %d appears twice", id);
    if (t->blob_used + (uint64_t)len > t->blob_cap) {
        uint64_t cap = 2 * (t->blob_cap + (uint64_t)len);
        uint8_t *b = realloc(t->blob, cap);
        if (!b) return kiln_fail(err, "out of memory");
        t->blob = b;
        t->blob_cap = cap;
    }
    memcpy(t->blob + t->blob_used, bytes, (size_t)len);
    t->off[id] = t->blob_used;
    t->len[id] = (uint32_t)len;
    t->blob_used += (uint64_t)len;
    return 0;
}

int tok_add_special(KilnTokenizer *t, const char *text, int id, KilnErr *err) {
    int n = t->n_special + 1;
    char **s = realloc(t->special, sizeof(char *) * n);
    if (s) t->special = s;
    int *l = realloc(t->special_len, sizeof(int) * n);
    if (l) t->special_len = l;
    int *d = realloc(t->special_id, sizeof(int) * n);
    if (d) t->special_id = d;
    if (!s || !l || !d) return kiln_fail(err, "out of memory");
    size_t len = strlen(text);
    if (len == 0) return kiln_fail(err, "empty special token (id %d)", id);
    t->special[t->n_special] = strdup(text);
    t->special_len[t->n_special] = (int)len;
    t->special_id[t->n_special] = id;
    t->n_special = n;
    if (!t->special[n - 1]) return kiln_fail(err, "out of memory");
    return tok_set_token(t, id, (const uint8_t *)text, (int)len, err);
}

static int token_map_put(TokenMap *m, uint64_t h, int32_t id) {
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        if (m->hash[i] == 0) {
            m->hash[i] = h;
            m->id[i] = id;
            return 0;
        }
    }
}

int32_t tok_lookup(const KilnTokenizer *t, const uint8_t *bytes, size_t len) {
    uint64_t h = bytes_hash(bytes, len);
    const TokenMap *m = &t->tokens;
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        if (m->hash[i] == 0) return -1;
        if (m->hash[i] == h) {
            int32_t id = m->id[i];
            if (t->len[id] == len && memcmp(t->blob + t->off[id], bytes, len) == 0) return id;
        }
    }
}

int tok_alloc_pairs(PairMap *p, uint64_t n, KilnErr *err) {
    uint64_t cap = pow2_at_least(2 * n + 16);
    p->key = malloc(cap * sizeof(uint64_t));
    p->prio = malloc(cap * sizeof(uint32_t));
    p->id = malloc(cap * sizeof(uint32_t));
    if (!p->key || !p->prio || !p->id) return kiln_fail(err, "out of memory for the merge table");
    memset(p->key, 0xff, cap * sizeof(uint64_t));
    p->mask = cap - 1;
    return 0;
}

int tok_add_pair(KilnTokenizer *t, int left, int right, uint32_t prio, int id, KilnErr *err) {
    PairMap *p = &t->pairs;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint64_t i = kiln_hash64(key) & p->mask;; i = (i + 1) & p->mask) {
        if (p->key[i] == UINT64_MAX) {
            p->key[i] = key;
            p->prio[i] = prio;
            p->id[i] = (uint32_t)id;
            return 0;
        }
        if (p->key[i] == key) {
            if (prio < p->prio[i]) {  // a merge listed twice keeps its first (best) priority
                p->prio[i] = prio;
                p->id[i] = (uint32_t)id;
            }
            return 0;
        }
    }
    (void)err;
}

int tok_finish(KilnTokenizer *t, int pairs_from_ranks, KilnErr *err) {
    uint64_t cap = pow2_at_least(2 * (uint64_t)t->n_vocab);
    t->tokens.hash = calloc(cap, sizeof(uint64_t));
    t->tokens.id = calloc(cap, sizeof(int32_t));
    t->tokens.mask = cap - 1;
    if (!t->tokens.hash || !t->tokens.id) return kiln_fail(err, "out of memory");
    uint64_t npairs = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        if (!t->len[id]) continue;
        int special = 0;
        for (int s = 0; s < t->n_special; s++) special |= t->special_id[s] == id;
        if (special) continue;
        const uint8_t *b = t->blob + t->off[id];
        if (tok_lookup(t, b, t->len[id]) >= 0)
            return kiln_fail(err, "token id %d duplicates the bytes of token %d", id, tok_lookup(t, b, t->len[id]));
        token_map_put(&t->tokens, bytes_hash(b, t->len[id]), id);
        if (t->len[id] == 1) t->byte_id[b[0]] = id;
        npairs += t->len[id] - 1;
    }
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0) return kiln_fail(err, "no token for byte 0x%02x: not a byte-level vocabulary", b);
    if (pairs_from_ranks) {
        // tiktoken's rule: any two tokens whose bytes join into a token merge, with
        // that token's rank (= id) as priority
        if (tok_alloc_pairs(&t->pairs, npairs, err)) return -1;
        for (int id = 0; id < t->n_vocab; id++) {
            if (t->len[id] < 2) continue;
            int special = 0;
            for (int s = 0; s < t->n_special; s++) special |= t->special_id[s] == id;
            if (special) continue;
            const uint8_t *b = t->blob + t->off[id];
            for (uint32_t k = 1; k < t->len[id]; k++) {
                int32_t l = tok_lookup(t, b, k), r = tok_lookup(t, b + k, t->len[id] - k);
                if (l >= 0 && r >= 0) tok_add_pair(t, l, r, (uint32_t)id, id, err);
            }
        }
        t->whole_piece = 1;
    }
    return 0;
}

static const char *unicode_ranges(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof UNICODE_CLASSES / sizeof UNICODE_CLASSES[0]; i++)
        if (strlen(UNICODE_CLASSES[i].name) == n && !strncmp(UNICODE_CLASSES[i].name, name, n))
            return UNICODE_CLASSES[i].ranges;
    return NULL;
}

// Rewrites \p{X}, \pX, \P{X} and \s, \S into explicit Unicode 15 ranges
// (unicode_classes.h), so matching does not depend on PCRE2's own tables: the
// references use Unicode 15 and count U+180E as not a space; Debian's PCRE2
// has Unicode 14 and counts it as one. Inside [...] only the positive forms
// can be spliced in; \P and \S there, and names not in the table, stay as they
// are. (Under (?i) a spliced range also matches the other case, where PCRE2's
// \p would not; no published pattern puts \p inside (?i).)
static char *unicode_pattern(const char *pat) {
    KilnBuf b = {0};
    int in_class = 0, rc = 0;
    for (size_t i = 0; pat[i] && rc == 0;) {
        char c = pat[i];
        if (c == '\\' && pat[i + 1]) {
            char e = pat[i + 1];
            const char *name = NULL, *ranges = NULL;
            size_t nlen = 0, used = 2;
            if (e == 'p' || e == 'P') {
                if (pat[i + 2] == '{') {
                    const char *close = strchr(pat + i + 3, '}');
                    if (close) {
                        name = pat + i + 3;
                        nlen = (size_t)(close - name);
                        used = 3 + nlen + 1;
                    }
                } else if (pat[i + 2]) {
                    name = pat + i + 2;
                    nlen = 1;
                    used = 3;
                }
                if (name) ranges = unicode_ranges(name, nlen);
            } else if (e == 's' || e == 'S') {
                ranges = unicode_ranges("White_Space", 11);
            }
            int negated = e == 'P' || e == 'S';
            if (ranges && !(in_class && negated)) {
                if (!in_class) rc |= kbuf_append(&b, negated ? "[^" : "[", negated ? 2 : 1);
                rc |= kbuf_append(&b, ranges, strlen(ranges));
                if (!in_class) rc |= kbuf_append(&b, "]", 1);
                i += used;
            } else {
                rc |= kbuf_append(&b, pat + i, 2);  // any other escape, kept whole
                i += 2;
            }
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            rc |= kbuf_append(&b, pat + i, 1);
            i++;
            // a ']' right after '[' or '[^' is a literal
            if (pat[i] == '^') rc |= kbuf_append(&b, pat + i++, 1);
            if (pat[i] == ']') rc |= kbuf_append(&b, pat + i++, 1);
            continue;
        }
        if (c == ']' && in_class) in_class = 0;
        rc |= kbuf_append(&b, pat + i, 1);
        i++;
    }
    if (rc) {
        kbuf_free(&b);
        return NULL;
    }
    return b.data ? b.data : strdup("");
}

int tok_compile_pattern(KilnTokenizer *t, const char *pattern, KilnErr *err) {
    int code;
    PCRE2_SIZE at;
    char *rewritten = unicode_pattern(pattern);
    if (!rewritten) return kiln_fail(err, "out of memory");
    t->re = pcre2_compile((PCRE2_SPTR)rewritten, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    free(rewritten);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return kiln_fail(err, "pre-tokenizer pattern: %s (pattern '%.200s')", (char *)msg, pattern);
    }
    if (pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) != 0)
        return kiln_fail(err, "pre-tokenizer pattern: PCRE2 JIT compilation failed");
    t->pattern = strdup(pattern);
    return t->pattern ? 0 : kiln_fail(err, "out of memory");
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

int tokenizer_load(KilnTokenizer **out, const char *path, KilnErr *err) {
    KilnTokenizer *t = calloc(1, sizeof *t);
    if (!t) return kiln_fail(err, "out of memory");
    int rc;
    if (has_suffix(path, ".tiktoken"))
        rc = tiktoken_load(t, path, err);
    else if (has_suffix(path, ".json"))  // a tiktoken sidecar passed by mistake is named in the error
        rc = hf_json_load(t, path, err);
    else
        rc = kiln_fail(err, "%s: unknown tokenizer format (expected NAME.tiktoken or tokenizer.json)", path);
    if (rc) {
        tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void tokenizer_free(KilnTokenizer *t) {
    if (!t) return;
    free(t->blob);
    free(t->off);
    free(t->len);
    free(t->tokens.hash);
    free(t->tokens.id);
    free(t->pairs.key);
    free(t->pairs.prio);
    free(t->pairs.id);
    free(t->pattern);
    if (t->re) pcre2_code_free(t->re);
    for (int i = 0; i < t->n_special; i++) free(t->special[i]);
    free(t->special);
    free(t->special_len);
    free(t->special_id);
    free(t);
}

int tokenizer_vocab_size(const KilnTokenizer *t) { return t->n_vocab; }

const uint8_t *tokenizer_token_bytes(const KilnTokenizer *t, int id, int *len) {
    if (id < 0 || id >= t->n_vocab || !t->len[id]) {
        *len = 0;
        return NULL;
    }
    *len = (int)t->len[id];
    return t->blob + t->off[id];
}

int tokenizer_special_id(const KilnTokenizer *t, const char *text) {
    for (int i = 0; i < t->n_special; i++)
        if (!strcmp(t->special[i], text)) return t->special_id[i];
    return -1;
}

// Bytes in the UTF-8 character at p (1 for an invalid or truncated sequence).
static size_t utf8_step(const uint8_t *p, size_t n) {
    size_t len = p[0] < 0x80 ? 1 : p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC0 ? 2 : 1;
    if (len > n) return 1;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xC0) != 0x80) return 1;
    return len;
}

// Splits text[0..n) as HF's Split(Isolated) and tiktoken do: each non-empty
// regex match is a piece, and so is each run of text between matches (invalid
// UTF-8, or what a pattern that can match empty skips). An empty match moves the
// search on by one character without cutting the text there.
int tok_split(const pcre2_code *re, const uint8_t *text, size_t n, TokScratch *sc,
              int (*fn)(void *ctx, const uint8_t *piece, size_t len), void *ctx, KilnErr *err) {
    size_t gap = 0, search = 0;  // start of unmatched text; where the next search starts
    while (search < n) {
        int rc = pcre2_jit_match(re, text, n, search, 0, sc->md, sc->mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return kiln_fail(err, "pre-tokenizer failed at byte %zu: %s", search, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        size_t s = ov[0], e = ov[1];
        if (e == s) {
            if (s >= n) break;
            search = s + utf8_step(text + s, n - s);
            continue;
        }
        if (s > gap && fn(ctx, text + gap, s - gap)) return kiln_fail(err, "out of memory");
        if (fn(ctx, text + s, e - s)) return kiln_fail(err, "out of memory");
        gap = search = e;
    }
    if (gap < n && fn(ctx, text + gap, n - gap)) return kiln_fail(err, "out of memory");
    return 0;
}

typedef struct {
    const KilnTokenizer *t;
    KilnIds *out;
} EncodeCtx;

static int encode_piece(void *ctx, const uint8_t *piece, size_t len) {
    EncodeCtx *c = ctx;
    return bpe_encode_piece(c->t, piece, len, c->out);
}

// The first special token in text[0..n), longest on a tie; -1 if none.
static int find_special(const KilnTokenizer *t, const uint8_t *text, size_t n, size_t *at) {
    int best = -1;
    size_t best_at = n;
    for (int i = 0; i < t->n_special; i++) {
        const uint8_t *p = memmem(text, n, t->special[i], (size_t)t->special_len[i]);
        if (!p) continue;
        size_t a = (size_t)(p - text);
        if (a < best_at || (a == best_at && t->special_len[i] > t->special_len[best])) {
            best = i;
            best_at = a;
        }
    }
    *at = best_at;
    return best;
}

void tok_scratch_free(TokScratch *s) {
    if (s->md) pcre2_match_data_free(s->md);
    if (s->mc) pcre2_match_context_free(s->mc);
    if (s->js) pcre2_jit_stack_free(s->js);
    memset(s, 0, sizeof *s);
}

int tok_scratch_init(TokScratch *s, const pcre2_code *re) {
    s->md = pcre2_match_data_create_from_pattern(re, NULL);
    s->mc = pcre2_match_context_create(NULL);
    s->js = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);  // long whitespace runs need depth
    if (!s->md || !s->mc || !s->js) {
        tok_scratch_free(s);
        return -1;
    }
    pcre2_jit_stack_assign(s->mc, NULL, s->js);
    return 0;
}

// allow: per special token, 1 if it becomes its id in KILN_SPECIAL_ERROR mode
// (tiktoken's allowed_special set); NULL for none.
static int encode_with(const KilnTokenizer *t, TokScratch *sc, const char *text, size_t len, KilnSpecialMode mode,
                       const uint8_t *allow, KilnIds *out, KilnErr *err) {
    const uint8_t *p = (const uint8_t *)text;
    size_t n = len;
    while (n > 0) {
        size_t at = n;
        int sp = mode == KILN_SPECIAL_TEXT ? -1 : find_special(t, p, n, &at);
        if (sp >= 0 && mode == KILN_SPECIAL_ERROR && !(allow && allow[sp]))
            return kiln_fail(err, "the text contains the special token '%s' at byte %zu (allow special tokens, or encode them as text)",
                             t->special[sp], (size_t)(p - (const uint8_t *)text) + at);
        EncodeCtx ctx = {t, out};
        if (tok_split(t->re, p, at, sc, encode_piece, &ctx, err)) return -1;
        if (sp < 0) break;
        if (ids_push(out, (uint32_t)t->special_id[sp])) return kiln_fail(err, "out of memory");
        p += at + (size_t)t->special_len[sp];
        n -= at + (size_t)t->special_len[sp];
    }
    return 0;
}

int tokenizer_encode(const KilnTokenizer *t, const char *text, size_t len, KilnSpecialMode mode,
                     KilnIds *out, KilnErr *err) {
    TokScratch sc = {0};
    if (tok_scratch_init(&sc, t->re)) return kiln_fail(err, "out of memory");
    int rc = encode_with(t, &sc, text, len, mode, NULL, out, err);
    tok_scratch_free(&sc);
    return rc;
}

int tokenizer_encode_allowed(const KilnTokenizer *t, const char *text, size_t len, const char *const *allowed,
                             int n_allowed, KilnIds *out, KilnErr *err) {
    uint8_t *allow = calloc((size_t)t->n_special + 1, 1);
    if (!allow) return kiln_fail(err, "out of memory");
    for (int i = 0; i < n_allowed; i++) {
        int k = 0;
        while (k < t->n_special && strcmp(t->special[k], allowed[i])) k++;
        if (k == t->n_special) {
            free(allow);
            return kiln_fail(err, "'%s' is not a special token of this tokenizer", allowed[i]);
        }
        allow[k] = 1;
    }
    TokScratch sc = {0};
    int rc = tok_scratch_init(&sc, t->re) ? kiln_fail(err, "out of memory")
                                            : encode_with(t, &sc, text, len, KILN_SPECIAL_ERROR, allow, out, err);
    tok_scratch_free(&sc);
    free(allow);
    return rc;
}

int tokenizer_encode_batch(const KilnTokenizer *t, const char *const *texts, const size_t *lens, int n,
                           KilnSpecialMode mode, KilnIds *out, int *failed_at, KilnErr *err) {
    int failed = -1;
    KilnErr first = {{0}};
#pragma omp parallel
    {
        TokScratch sc = {0};
        int ok = tok_scratch_init(&sc, t->re) == 0;
#pragma omp for schedule(dynamic)
        for (int i = 0; i < n; i++) {
            KilnErr e;
            if (!ok) snprintf(e.msg, sizeof e.msg, "out of memory");
            if (!ok || encode_with(t, &sc, texts[i], lens[i], mode, NULL, &out[i], &e)) {
#pragma omp critical
                if (failed < 0 || i < failed) {
                    failed = i;
                    first = e;
                }
            }
        }
        if (ok) tok_scratch_free(&sc);
    }
    if (failed >= 0) {
        if (err) *err = first;
        if (failed_at) *failed_at = failed;
        return -1;
    }
    return 0;
}

int tokenizer_decode(const KilnTokenizer *t, const uint32_t *ids, long n, char **out, size_t *out_len,
                     KilnErr *err) {
    size_t total = 0;
    for (long i = 0; i < n; i++) {
        if (ids[i] >= (uint32_t)t->n_vocab || !t->len[ids[i]])
            return kiln_fail(err, "id %u at position %ld is not in the vocabulary (%d ids)", ids[i], i, t->n_vocab);
        total += t->len[ids[i]];
    }
    char *buf = malloc(total + 1);
    if (!buf) return kiln_fail(err, "out of memory decoding %zu bytes", total);
    size_t at = 0;
    for (long i = 0; i < n; i++) {
        memcpy(buf + at, t->blob + t->off[ids[i]], t->len[ids[i]]);
        at += t->len[ids[i]];
    }
    buf[at] = 0;
    *out = buf;
    *out_len = at;
    return 0;
}
