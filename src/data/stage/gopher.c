// gopher.c: the Gopher heuristic filters (Rae et al. 2021, appendix A) as
// datatrove implements them: `gopher_quality` (word counts, word length, symbol
// ratios, bullet and ellipsis lines, alphabetic words, stop words) and
// `gopher_repetition` (duplicate lines and paragraphs, top and duplicate n-gram
// character fractions). Lengths are in code points, as Python's len counts;
// words come from the tokenizer of filter_text.h.
#include "data/stage/filter_text.h"
#include "kiln/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

// Where a parameter was written, for messages.
static const char *param_where(const KilnParams *ps, const char *key) {
    const char *w = params_where(ps, key);
    return w ? w : "default";
}

static int check_nonneg(const KilnParams *ps, const char *stage, const char *key, double v, KilnErr *err) {
    if (v >= 0) return 0;
    return kiln_fail(err, "%s: %s: '%s' must be >= 0 (0 disables the rule), got %g", param_where(ps, key), stage, key,
                     v);
}

// ================================================================ gopher_quality
static const char *const GOPHER_STOP_WORDS[] = {"the", "be", "to", "of", "and", "that", "have", "with"};

typedef struct {
    long min_doc_words, max_doc_words, min_stop_words;
    double min_avg_word_length, max_avg_word_length, max_symbol_word_ratio;
    double max_bullet_lines_ratio, max_ellipsis_lines_ratio, min_alpha_words_ratio;
    int alpha_of_words;  // alpha_ratio_of: words (the denominator leaves out punctuation tokens), else tokens
    FtStrMap stop;
    size_t stop_maxlen;
    uint8_t stop_first[256];  // first bytes of stop words: most tokens skip the lookup
} GopherQuality;

static void gq_destroy(void *state) {
    GopherQuality *g = state;
    if (!g) return;
    ft_strmap_free(&g->stop);
    free(g);
}

static int gq_stop_words(GopherQuality *g, KilnParams *ps, KilnErr *err) {
    const char *const *words;
    int n;
    if (params_list(ps, "stop_words", &words, &n, err)) return -1;
    if (n == 0) {
        words = GOPHER_STOP_WORDS;
        n = (int)(sizeof GOPHER_STOP_WORDS / sizeof GOPHER_STOP_WORDS[0]);
    }
    size_t *lens = calloc((size_t)n, sizeof *lens);
    int *vals = calloc((size_t)n, sizeof *vals);
    if (!lens || !vals) {
        free(lens);
        free(vals);
        return kiln_fail(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        lens[i] = strlen(words[i]);
        if (lens[i] > g->stop_maxlen) g->stop_maxlen = lens[i];
        if (lens[i]) g->stop_first[(unsigned char)words[i][0]] = 1;
    }
    int rc = ft_strmap_build(&g->stop, words, lens, vals, (size_t)n);
    free(lens);
    free(vals);
    return rc ? kiln_fail(err, "out of memory") : 0;
}

static int gq_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    GopherQuality *g = calloc(1, sizeof *g);
    if (!g) return kiln_fail(err, "out of memory");
    *g = (GopherQuality){
        .min_doc_words = 50,
        .max_doc_words = 100000,
        .min_stop_words = 2,
        .min_avg_word_length = 3,
        .max_avg_word_length = 10,
        .max_symbol_word_ratio = 0.1,
        .max_bullet_lines_ratio = 0.9,
        .max_ellipsis_lines_ratio = 0.3,
        .min_alpha_words_ratio = 0.8,
    };
    const char *st = "gopher_quality";
    static const char *const ALPHA_OF[] = {"tokens", "words", NULL};
    // datatrove calls the alpha rule's threshold max_non_alpha_words_ratio, but it is
    // a minimum of the tokens that have a letter; kiln names it for what it is and
    // takes datatrove's name too, so a datatrove configuration carries over as is
    const char *alias = "max_non_alpha_words_ratio";
    if (params_where(ps, alias) && params_where(ps, "min_alpha_words_ratio")) {
        kiln_fail(err, "%s: gopher_quality: give min_alpha_words_ratio or its datatrove name %s, not both",
                  params_where(ps, alias), alias);
        gq_destroy(g);
        return -1;
    }
    const char *alpha_key = params_where(ps, alias) ? alias : "min_alpha_words_ratio";
    if (params_int(ps, "min_doc_words", &g->min_doc_words, err) ||
        params_int(ps, "max_doc_words", &g->max_doc_words, err) ||
        params_int(ps, "min_stop_words", &g->min_stop_words, err) ||
        params_double(ps, "min_avg_word_length", &g->min_avg_word_length, err) ||
        params_double(ps, "max_avg_word_length", &g->max_avg_word_length, err) ||
        params_double(ps, "max_symbol_word_ratio", &g->max_symbol_word_ratio, err) ||
        params_double(ps, "max_bullet_lines_ratio", &g->max_bullet_lines_ratio, err) ||
        params_double(ps, "max_ellipsis_lines_ratio", &g->max_ellipsis_lines_ratio, err) ||
        params_double(ps, alpha_key, &g->min_alpha_words_ratio, err) ||
        params_enum(ps, "alpha_ratio_of", ALPHA_OF, &g->alpha_of_words, err) ||
        check_nonneg(ps, st, "min_doc_words", (double)g->min_doc_words, err) ||
        check_nonneg(ps, st, "max_doc_words", (double)g->max_doc_words, err) ||
        check_nonneg(ps, st, "min_stop_words", (double)g->min_stop_words, err) ||
        check_nonneg(ps, st, "min_avg_word_length", g->min_avg_word_length, err) ||
        check_nonneg(ps, st, "max_avg_word_length", g->max_avg_word_length, err) ||
        check_nonneg(ps, st, "max_symbol_word_ratio", g->max_symbol_word_ratio, err) ||
        check_nonneg(ps, st, "max_bullet_lines_ratio", g->max_bullet_lines_ratio, err) ||
        check_nonneg(ps, st, "max_ellipsis_lines_ratio", g->max_ellipsis_lines_ratio, err) ||
        check_nonneg(ps, st, alpha_key, g->min_alpha_words_ratio, err) ||
        gq_stop_words(g, ps, err)) {
        gq_destroy(g);
        return -1;
    }
    *state = g;
    return 0;
}

// Non-overlapping occurrences of needle (str.count).
static long count_str(const char *s, size_t n, const char *needle, size_t m) {
    long c = 0;
    const char *end = s + n;
    while ((size_t)(end - s) >= m) {
        const char *p = memchr(s, needle[0], (size_t)(end - s) - m + 1);
        if (!p) break;
        if (!memcmp(p, needle, m)) {
            c++;
            s = p + m;
        } else {
            s = p + 1;
        }
    }
    return c;
}

static int ends_with(const char *s, size_t n, const char *suf) {
    size_t m = strlen(suf);
    return n >= m && !memcmp(s + n - m, suf, m);
}

#define ELLIPSIS_CHAR "\xE2\x80\xA6"  // …
#define BULLET_CHAR "\xE2\x80\xA2"    // •

static const char *gq_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    const GopherQuality *g = state;
    const char *t = doc->text.data;
    size_t n = doc->text.len;
    long ntok = ft_tokenize(t, n, &s->b);
    if (ntok < 0) return "gopher_quality:out_of_memory";
    if (ntok == 0) return "gopher_quality:empty";
    const FtToken *tok = (const FtToken *)s->b.data;
    long nonsym = 0, alpha = 0, stops = 0;
    double sumlen = 0;
    for (long i = 0; i < ntok; i++) {
        const FtToken *w = &tok[i];
        if (w->flags & FT_NONSYM) nonsym++, sumlen += w->cps;
        if (w->flags & FT_ALPHA) alpha++;
        if (w->len <= g->stop_maxlen && g->stop_first[(unsigned char)t[w->off]] &&
            ft_strmap_get(&g->stop, t + w->off, w->len) >= 0)
            stops++;
    }
    // a zero threshold disables its rule, as in datatrove
    if (g->min_doc_words && nonsym < g->min_doc_words) return "gopher_quality:gopher_short_doc";
    if (g->max_doc_words && nonsym > g->max_doc_words) return "gopher_quality:gopher_long_doc";
    double avg = nonsym ? sumlen / (double)nonsym : NAN;  // NaN passes both bounds (numpy mean of nothing)
    if (g->min_avg_word_length > 0 && avg < g->min_avg_word_length) return "gopher_quality:gopher_below_avg_threshold";
    if (g->max_avg_word_length > 0 && avg > g->max_avg_word_length) return "gopher_quality:gopher_above_avg_threshold";
    if (g->max_symbol_word_ratio > 0) {
        if ((double)count_str(t, n, "#", 1) / (double)ntok > g->max_symbol_word_ratio)
            return "gopher_quality:gopher_too_many_hashes";
        long ell = count_str(t, n, "...", 3) + count_str(t, n, ELLIPSIS_CHAR, 3);
        if ((double)ell / (double)ntok > g->max_symbol_word_ratio) return "gopher_quality:gopher_too_many_ellipsis";
    }
    long lines = 0, bullets = 0, ell_lines = 0;
    size_t pos = 0, ls, le;
    while (ft_next_line(t, n, &pos, &ls, &le)) {
        lines++;
        size_t b = ls + ft_lstrip(t + ls, le - ls);
        if (b < le && (t[b] == '-' || (le - b >= 3 && !memcmp(t + b, BULLET_CHAR, 3)))) bullets++;
        size_t e = ls + ft_rstrip(t + ls, le - ls);
        if (ends_with(t + ls, e - ls, "...") || ends_with(t + ls, e - ls, ELLIPSIS_CHAR)) ell_lines++;
    }
    if (lines > 0) {  // always: the text has a token
        if (g->max_bullet_lines_ratio > 0 && (double)bullets / (double)lines > g->max_bullet_lines_ratio)
            return "gopher_quality:gopher_too_many_bullets";
        if (g->max_ellipsis_lines_ratio > 0 && (double)ell_lines / (double)lines > g->max_ellipsis_lines_ratio)
            return "gopher_quality:gopher_too_many_end_ellipsis";
    }
    // datatrove: tokens with a letter over all tokens, so each comma, period and
    // quote mark (tokens of their own) counts against a text; alpha_ratio_of:
    // words counts over words only (tokens not all punctuation), as datatrove's
    // first version did (over tokens not in string.punctuation), closer to the
    // paper's "80% of words"
    long base = g->alpha_of_words ? nonsym : ntok;
    if (g->min_alpha_words_ratio > 0 && (!base || (double)alpha / (double)base < g->min_alpha_words_ratio))
        return "gopher_quality:gopher_below_alpha_threshold";
    if (g->min_stop_words && stops < g->min_stop_words) return "gopher_quality:gopher_enough_stop_words";
    return NULL;
}

const KilnStageDef STAGE_GOPHER_QUALITY = {
    .name = "gopher_quality",
    .summary = "Gopher quality rules: word count and length, # and ellipsis ratios, bullet lines, stop words",
    .params_help =
        "  min_doc_words (50): fewer words drop (gopher_short_doc); 0 disables (as does 0 for every rule)\n"
        "  max_doc_words (100000): more words drop (gopher_long_doc)\n"
        "  min_avg_word_length (3): shorter mean word length drops (gopher_below_avg_threshold)\n"
        "  max_avg_word_length (10): longer mean word length drops (gopher_above_avg_threshold)\n"
        "  max_symbol_word_ratio (0.1): more '#', or '...' and U+2026, per token drop (gopher_too_many_hashes, "
        "gopher_too_many_ellipsis)\n"
        "  max_bullet_lines_ratio (0.9): more lines starting with U+2022 or '-' drop (gopher_too_many_bullets)\n"
        "  max_ellipsis_lines_ratio (0.3): more lines ending in an ellipsis drop (gopher_too_many_end_ellipsis)\n"
        "  min_alpha_words_ratio (0.8): a smaller fraction of tokens with a letter drops (gopher_below_alpha_threshold);\n"
        "      datatrove's name for it, max_non_alpha_words_ratio, is accepted too\n"
        "  alpha_ratio_of (tokens): tokens (datatrove: punctuation tokens count against a text) or words (only tokens\n"
        "      that are not all punctuation: dialogue-heavy text such as TinyStories keeps)\n"
        "  min_stop_words (2): fewer stop-word tokens drop (gopher_enough_stop_words)\n"
        "  stop_words (the be to of and that have with): the stop words, repeated; matched case-sensitively\n",
    .create = gq_create,
    .destroy = gq_destroy,
    .apply = gq_apply,
};

// ================================================================ gopher_repetition
typedef struct {
    int n;
    double frac;
    char *reason;
} NGramRule;

typedef struct {
    double dup_line_frac, dup_para_frac, dup_line_char_frac, dup_para_char_frac;
    NGramRule *top, *dup;
    int ntop, ndup;
} GopherRep;

static void gr_destroy(void *state) {
    GopherRep *g = state;
    if (!g) return;
    for (int i = 0; i < g->ntop; i++) free(g->top[i].reason);
    for (int i = 0; i < g->ndup; i++) free(g->dup[i].reason);
    free(g->top);
    free(g->dup);
    free(g);
}

// A list of N=FRAC rules (or the single value "none"), or the defaults.
static int gr_rules(KilnParams *ps, const char *key, const int *dn, const double *df, int ndef, const char *fmt,
                    NGramRule **out, int *nout, KilnErr *err) {
    const char *const *vals;
    int nv;
    if (params_list(ps, key, &vals, &nv, err)) return -1;
    int none = nv == 1 && !strcmp(vals[0], "none");
    int n = nv == 0 ? ndef : none ? 0 : nv;
    NGramRule *r = calloc((size_t)(n ? n : 1), sizeof *r);
    if (!r) return kiln_fail(err, "out of memory");
    *out = r;
    *nout = 0;
    for (int i = 0; i < n; i++) {
        if (nv == 0) {
            r[i].n = dn[i];
            r[i].frac = df[i];
        } else {
            char *end;
            long v = strtol(vals[i], &end, 10);
            double f = *end == '=' ? strtod(end + 1, &end) : -1;
            if (end == vals[i] || *end || v < 1 || v > 1000 || !(f >= 0))
                return kiln_fail(err, "%s: gopher_repetition: '%s': '%s' is not N=FRACTION (N in 1..1000, "
                                 "FRACTION >= 0), or 'none'", param_where(ps, key), key, vals[i]);
            r[i].n = (int)v;
            r[i].frac = f;
        }
        char buf[96];
        snprintf(buf, sizeof buf, fmt, r[i].n);
        if (!(r[i].reason = strdup(buf))) return kiln_fail(err, "out of memory");
        (*nout)++;
    }
    return 0;
}

static int gr_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    static const int top_n[] = {2, 3, 4}, dup_n[] = {5, 6, 7, 8, 9, 10};
    static const double top_f[] = {0.20, 0.18, 0.16}, dup_f[] = {0.15, 0.14, 0.13, 0.12, 0.11, 0.10};
    GopherRep *g = calloc(1, sizeof *g);
    if (!g) return kiln_fail(err, "out of memory");
    g->dup_line_frac = 0.3;
    g->dup_para_frac = 0.3;
    g->dup_line_char_frac = 0.2;
    g->dup_para_char_frac = 0.2;
    const char *st = "gopher_repetition";
    if (params_double(ps, "dup_line_frac", &g->dup_line_frac, err) ||
        params_double(ps, "dup_para_frac", &g->dup_para_frac, err) ||
        params_double(ps, "dup_line_char_frac", &g->dup_line_char_frac, err) ||
        params_double(ps, "dup_para_char_frac", &g->dup_para_char_frac, err) ||
        check_nonneg(ps, st, "dup_line_frac", g->dup_line_frac, err) ||
        check_nonneg(ps, st, "dup_para_frac", g->dup_para_frac, err) ||
        check_nonneg(ps, st, "dup_line_char_frac", g->dup_line_char_frac, err) ||
        check_nonneg(ps, st, "dup_para_char_frac", g->dup_para_char_frac, err) ||
        gr_rules(ps, "top_n_grams", top_n, top_f, 3, "gopher_repetition:top_%d_gram", &g->top, &g->ntop, err) ||
        gr_rules(ps, "dup_n_grams", dup_n, dup_f, 6, "gopher_repetition:duplicated_%d_n_grams", &g->dup, &g->ndup,
                 err)) {
        gr_destroy(g);
        return -1;
    }
    *state = g;
    return 0;
}

// An open-addressing table in scratch memory; a slot is empty when a == EMPTY.
typedef struct {
    uint64_t h;
    uint32_t a, b;  // pieces: offset, length; n-grams: first position, count
} Slot;
#define EMPTY UINT32_MAX

static size_t table_cap(size_t items) {
    size_t cap = 16;
    while (cap < 2 * items) cap *= 2;
    return cap;
}

// Reserves [prefix bytes][cap slots] in buf; returns the slots, emptied.
static Slot *table_reserve(KilnBuf *buf, size_t prefix, size_t cap) {
    if (kbuf_reserve(buf, prefix + cap * sizeof(Slot))) return NULL;
    Slot *t = (Slot *)(buf->data + prefix);
    memset(t, 0xFF, cap * sizeof(Slot));
    return t;
}

// The next piece of t[b..e) split on runs of at least min_run '\n' (Python's
// re.split(r"\n{min_run,}")): 1 with [*ps, *pe), 0 when done.
static int next_piece(const char *t, size_t e, int min_run, size_t *pos, int *done, size_t *ps, size_t *pe) {
    if (*done) return 0;
    size_t i = *pos;
    *ps = i;
    while (i < e) {
        const char *nl = memchr(t + i, '\n', e - i);
        if (!nl) break;
        size_t r = (size_t)(nl - t), r2 = r;
        while (r2 < e && t[r2] == '\n') r2++;
        if (r2 - r >= (size_t)min_run) {
            *pe = r;
            *pos = r2;
            return 1;
        }
        i = r2;
    }
    *pe = e;
    *done = 1;
    return 1;
}

// datatrove's find_duplicates over the pieces of t[b..e): how many pieces
// repeat an earlier one, and their length in code points. -1: out of memory.
static int find_duplicates(const char *t, size_t b, size_t e, int min_run, KilnBuf *buf, long *pieces, long *dups,
                           double *dup_chars) {
    size_t pos = b, ps, pe, count = 0;
    int done = 0;
    while (next_piece(t, e, min_run, &pos, &done, &ps, &pe)) count++;
    size_t cap = table_cap(count), mask = cap - 1;
    Slot *tab = table_reserve(buf, 0, cap);
    if (!tab) return -1;
    *pieces = (long)count;
    *dups = 0;
    *dup_chars = 0;
    pos = b;
    done = 0;
    while (next_piece(t, e, min_run, &pos, &done, &ps, &pe)) {
        uint64_t h = XXH3_64bits(t + ps, pe - ps);
        size_t p = h & mask;
        int seen = 0;
        for (; tab[p].a != EMPTY; p = (p + 1) & mask)
            if (tab[p].h == h && tab[p].b == pe - ps && !memcmp(t + tab[p].a, t + ps, pe - ps)) {
                seen = 1;
                break;
            }
        if (seen) {
            (*dups)++;
            *dup_chars += (double)ft_cps(t + ps, pe - ps);
        } else {
            tab[p] = (Slot){h, (uint32_t)ps, (uint32_t)(pe - ps)};
        }
    }
    return 0;
}

// The n-gram rules share one pass over the tokens that lays out, in scratch:
// the tokens' bytes concatenated without spaces (S, the string datatrove's
// find_all_duplicate compares n-grams by), each token's offset in S, and the
// code points before each token. The top n-gram rules then count n-grams of
// token ids (joined n-grams are equal exactly when their tokens are, as tokens
// hold no spaces), and the duplicate n-gram rules hash S's windows; a hash
// match is always confirmed by comparing ids or bytes. Positions that cannot
// change a rule's result are passed by, exactly as described at each rule.

// An open-addressing slot for ids and n-grams: the first position with this
// key, 32 bits of its hash (to skip most comparisons), and a count or id.
typedef struct {
    uint32_t tag, pos, val;
} GramSlot;

static inline uint64_t mix(uint64_t x) {  // murmur3's finalizer
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    return x ^ (x >> 33);
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

// The first k (1..8) bytes of a load64, the others zeroed.
static inline uint64_t first_bytes(uint64_t v, uint32_t k) {
    if (k >= 8) return v;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return v & ~(~0ull >> (8 * k));
#else
    return v & ((1ull << (8 * k)) - 1);
#endif
}

// Hash of p[0..len); reads up to 16 bytes past p (S is padded).
static inline uint64_t bytes_hash(const unsigned char *p, uint32_t len) {
    if (len <= 8) return mix(first_bytes(load64(p), len) ^ ((uint64_t)len << 59));
    if (len <= 16) return mix(load64(p) * 0x9E3779B97F4A7C15ull ^ first_bytes(load64(p + 8), len - 8) ^ len);
    return XXH3_64bits(p, len);
}

// Equality of p[0..len) and q[0..len); reads up to 16 bytes past each.
static inline int bytes_equal(const unsigned char *p, const unsigned char *q, uint32_t len) {
    if (len <= 8) return first_bytes(load64(p) ^ load64(q), len) == 0;
    if (len <= 16) return load64(p) == load64(q) && first_bytes(load64(p + 8) ^ load64(q + 8), len - 8) == 0;
    return !memcmp(p, q, len);
}

// A slot of the top n-gram tables: an n-gram is exactly the pair (id of its
// first n-1 tokens' n-gram, id of its last token), both below 2^32.
typedef struct {
    uint64_t key;
    uint32_t pos, count;  // first occurrence (index in cand); pos == EMPTY: an empty slot
} TopSlot;

typedef struct {
    const unsigned char *S;
    uint32_t *off;            // token i is S[off[i], off[i+1])
    uint32_t *cp;             // code points before token i
    uint32_t *id, *idcount;   // token ids (first-seen order) and their counts
    uint32_t *cand, *cgid;    // where a (level + 1)-gram may repeat, and the level-gram's id there
    uint32_t *next, *ngid;    // the same being built for level + 1
    uint8_t *rep;             // whether cand[m]'s (level + 1)-gram repeats
    uint8_t *posrep;          // whether the level-gram at a position repeats
    uint8_t *pre, *suf;       // duplicate n-grams: whether the K bytes from token i, and before it, repeat
    uint32_t *pbucket, *sbucket;  // their filter buckets
    void *tab;                // GramSlot or TopSlot table, capacity table_cap(ntok)
    uint8_t *filt;            // counting filters, 2^filt_bits bytes and a spare one
    int filt_bits;
    long ntok, ncand;
    int level;                // 0: nothing counted yet
    int have_ids, have_live;
    uint32_t best_count, best_first;  // of the n-grams of the current level
} Grams;

static inline double gram_cps(const Grams *g, long i, int n) { return (double)(g->cp[i + n] - g->cp[i]); }

// Token ids: equal tokens, equal ids (numbered in first-seen order).
static void make_ids(Grams *g) {
    long ntok = g->ntok;
    size_t cap = table_cap((size_t)ntok), mask = cap - 1;
    GramSlot *tab = g->tab;
    memset(tab, 0xFF, cap * sizeof *tab);
    uint32_t nid = 0;
    for (long i = 0; i < ntok; i++) {
        uint32_t o = g->off[i], len = g->off[i + 1] - o;
        uint64_t h = bytes_hash(g->S + o, len);
        uint32_t tag = (uint32_t)(h >> 32);
        size_t p = h & mask;
        for (; tab[p].pos != EMPTY; p = (p + 1) & mask) {
            uint32_t q = g->off[tab[p].pos];
            if (tab[p].tag == tag && g->off[tab[p].pos + 1] - q == len && bytes_equal(g->S + q, g->S + o, len)) break;
        }
        if (tab[p].pos == EMPTY) {
            tab[p] = (GramSlot){tag, (uint32_t)i, nid};
            g->idcount[nid++] = 0;
        }
        g->id[i] = tab[p].val;
        g->idcount[tab[p].val]++;
    }
    g->have_ids = 1;
}

// Level 1: the most frequent token (the first position with the top count is
// its first occurrence, ids being in first-seen order), and the positions
// where a 2-gram may repeat (both its tokens do) with the first token's id.
static void level_one(Grams *g) {
    if (!g->have_ids) make_ids(g);
    uint32_t best_count = 0, best_first = 0;
    long c = 0, ntok = g->ntok;
    uint8_t *posrep = g->posrep;
    for (long i = 0; i < ntok; i++) {
        uint32_t k = g->idcount[g->id[i]];
        if (k > best_count) best_count = k, best_first = (uint32_t)i;
        posrep[i] = k >= 2;
    }
    posrep[ntok] = 0;
    for (long i = 0; i < ntok; i++)
        if (posrep[i] & posrep[i + 1]) g->cand[c] = (uint32_t)i, g->cgid[c++] = g->id[i];
    g->ncand = c;
    g->level = 1;
    g->best_count = best_count;
    g->best_first = best_first;
}

// From level L to L + 1: counts the (L+1)-grams at the positions where both
// L-grams inside repeat, which hold every occurrence of a repeated (L+1)-gram;
// the others occur once, and win only when nothing repeats (then the first
// one, once).
static void level_up(Grams *g) {
    int n = g->level + 1;
    long last = g->ntok - n;  // the last n-gram's position
    size_t cap = table_cap((size_t)g->ncand), mask = cap - 1;
    int shift = 64 - __builtin_ctzll(cap);
    TopSlot *tab = g->tab;
    for (size_t p = 0; p < cap; p++) tab[p].pos = EMPTY;
    uint8_t *rep = g->rep;  // rep[m]: the n-gram at cand[m] repeats
    uint32_t best_count = 0, best_first = EMPTY;
    long m = 0;
    for (; m < g->ncand; m++) {
        long i = g->cand[m];
        if (i > last) break;
        uint64_t key = (uint64_t)g->cgid[m] << 32 | g->id[i + n - 1];
        size_t p = (size_t)((key * 0x9E3779B97F4A7C15ull) >> shift);
        for (; tab[p].pos != EMPTY; p = (p + 1) & mask)
            if (tab[p].key == key) break;
        uint32_t c;
        if (tab[p].pos == EMPTY) {
            tab[p] = (TopSlot){key, (uint32_t)m, 1};
            c = 1;
            rep[m] = 0;
        } else {
            c = ++tab[p].count;
            if (c == 2) rep[tab[p].pos] = 1;
            rep[m] = 1;
        }
        // counts only grow, so the best so far is the best of the table (pos: cand's index, in order)
        if (c > best_count || (c == best_count && tab[p].pos < best_first)) best_count = c, best_first = tab[p].pos;
        g->ngid[m] = (uint32_t)p;
    }
    if (best_count < 2) best_count = 1, best_first = 0;  // no n-gram repeats: the first one, once
    else best_first = g->cand[best_first];
    uint8_t *posrep = g->posrep;
    memset(posrep, 0, (size_t)g->ntok + 1);
    for (long k = 0; k < m; k++) posrep[g->cand[k]] = rep[k];
    long c = 0;
    for (long k = 0; k < m; k++)
        if (rep[k] & posrep[g->cand[k] + 1]) g->next[c] = g->cand[k], g->ngid[c++] = g->ngid[k];
    uint32_t *t = g->cand;
    g->cand = g->next, g->next = t;
    t = g->cgid;
    g->cgid = g->ngid, g->ngid = t;
    g->ncand = c;
    g->level = n;
    g->best_count = best_count;
    g->best_first = best_first;
}

// datatrove's find_top_duplicate: the most frequent n-gram (the first seen among
// equals, as Counter.most_common) times its length with spaces, in code points.
static double top_duplicate(Grams *g, int n) {
    if (g->level == 0 || g->level > n) level_one(g);  // (rules out of increasing order start again)
    while (g->level < n) level_up(g);
    return (gram_cps(g, g->best_first, n) + n - 1) * g->best_count;
}

// Duplicate n-grams: the positions whose n-gram can neither repeat an earlier
// one nor be repeated. Equal windows of S at least K bytes long begin with the
// same K bytes and end with the same K bytes; counting filters (a byte per
// bucket, saturating at 2) over the first K bytes at every token start and the
// last K bytes at every token end find the windows whose prefix or suffix
// occurs once, which the walk passes by as the original walk does (no hit;
// remembered, but never matched). Shorter windows are always walked.
#define K_BYTES 16

static inline uint64_t k_hash(const unsigned char *p, uint64_t salt) {  // of p[0..16), high bits used
    return (load64(p) * 0x9E3779B97F4A7C15ull ^ load64(p + 8) * 0xC2B2AE3D27D4EB4Full) + salt;
}
#define SALT_SUFFIX 0x3C6EF372FE94F82Bull

static void make_live(Grams *g) {
    long ntok = g->ntok;
    uint32_t slen = g->off[ntok];
    int shift = 64 - g->filt_bits;
    uint8_t *f = g->filt;
    uint32_t *pb = g->pbucket, *sb = g->sbucket, none = (uint32_t)1 << g->filt_bits;
    memset(f, 0, (size_t)none + 1);
    // one array holds both filters, a salt apart; the spare bucket stands for "no K bytes there"
    for (long i = 0; i <= ntok; i++) {
        uint32_t o = g->off[i];
        uint32_t bp = none, bs = none;
        if (i < ntok && (uint64_t)o + K_BYTES <= slen) bp = (uint32_t)(k_hash(g->S + o, 0) >> shift);
        if (i > 0 && o >= K_BYTES) bs = (uint32_t)(k_hash(g->S + o - K_BYTES, SALT_SUFFIX) >> shift);
        f[bp] += f[bp] < 2;
        f[bs] += f[bs] < 2;
        pb[i] = bp;
        sb[i] = bs;
    }
    for (long i = 0; i <= ntok; i++) {
        g->pre[i] = (uint8_t)(pb[i] != none && f[pb[i]] >= 2);
        g->suf[i] = (uint8_t)(sb[i] != none && f[sb[i]] >= 2);
    }
    g->have_live = 1;
}

// datatrove's find_all_duplicate: walks the n-grams; one seen before adds its
// length (no spaces) and the walk jumps past it, otherwise it is remembered.
static double all_duplicate(Grams *g, int n) {
    if (!g->have_live) make_live(g);
    long last = g->ntok - n;
    const unsigned char *S = g->S;
    const uint32_t *off = g->off;
    const uint8_t *pre = g->pre, *suf = g->suf;
    // the table's size: the windows to walk, at most
    long walk = 0;
    for (long i = 0; i <= last; i++) walk += off[i + n] - off[i] < K_BYTES || (pre[i] & suf[i + n]);
    size_t cap = table_cap((size_t)walk), mask = cap - 1;
    GramSlot *tab = g->tab;
    memset(tab, 0xFF, cap * sizeof *tab);
    double repeated = 0;
    for (long i = 0; i <= last;) {
        uint32_t o = off[i], len = off[i + n] - o;
        if (len >= K_BYTES && !(pre[i] & suf[i + n])) {
            i++;  // occurs once
            continue;
        }
        uint64_t h = bytes_hash(S + o, len);
        uint32_t tag = (uint32_t)(h >> 32);
        size_t p = h & mask;
        int seen = 0;
        for (; tab[p].pos != EMPTY; p = (p + 1) & mask) {
            uint32_t q = off[tab[p].pos];
            if (tab[p].tag == tag && off[tab[p].pos + n] - q == len && bytes_equal(S + q, S + o, len)) {
                seen = 1;
                break;
            }
        }
        if (seen) {
            repeated += gram_cps(g, i, n);
            i += n;
        } else {
            tab[p] = (GramSlot){tag, (uint32_t)i, 0};
            i++;
        }
    }
    return repeated;
}

static const char *gr_ngrams(const GopherRep *g, const char *t, size_t n, double len, KilnScratch *s) {
    if (!g->ntop && !g->ndup) return NULL;
    long ntok = ft_tokenize(t, n, &s->b);
    if (ntok < 0) return "gopher_repetition:out_of_memory";
    const FtToken *tok = (const FtToken *)s->b.data;
    size_t nt = (size_t)ntok, cap = table_cap(nt);
    int fbits = 8;
    while (((size_t)1 << fbits) < 16 * nt) fbits++;
    size_t slen = 0;
    for (size_t i = 0; i < nt; i++) slen += tok[i].len;
    // uint32 arrays: off, cp, pbucket, sbucket (ntok + 1 each), id, idcount, cand, cgid, next, ngid;
    // bytes: pre, suf, rep, posrep, filters, S
    size_t words = 4 * (nt + 1) + 6 * nt;
    size_t need = cap * sizeof(TopSlot) + words * sizeof(uint32_t) + 4 * (nt + 1) + ((size_t)1 << fbits) + 1 + slen + 16;
    if (kbuf_reserve(&s->a, need)) return "gopher_repetition:out_of_memory";
    Grams gr = {0};
    gr.tab = s->a.data;
    uint32_t *w = (uint32_t *)((TopSlot *)gr.tab + cap);
    gr.off = w, w += nt + 1;
    gr.cp = w, w += nt + 1;
    gr.id = w, w += nt;
    gr.idcount = w, w += nt;
    gr.cand = w, w += nt;
    gr.cgid = w, w += nt;
    gr.next = w, w += nt;
    gr.ngid = w, w += nt;
    gr.pbucket = w, w += nt + 1;
    gr.sbucket = w, w += nt + 1;
    gr.pre = (uint8_t *)w;
    gr.suf = gr.pre + nt + 1;
    gr.rep = gr.suf + nt + 1;
    gr.posrep = gr.rep + nt + 1;
    gr.filt = gr.posrep + nt + 1;
    gr.filt_bits = fbits;
    unsigned char *S = gr.filt + ((size_t)1 << fbits) + 1;
    gr.S = S;
    gr.ntok = ntok;
    uint32_t o = 0, c = 0;
    for (size_t i = 0; i < nt; i++) {
        uint32_t src = tok[i].off, l = tok[i].len;
        gr.off[i] = o;
        gr.cp[i] = c;
        if (l <= 16 && (size_t)src + 16 <= n) memcpy(S + o, t + src, 16);  // the excess is overwritten next
        else memcpy(S + o, t + src, l);
        o += l;
        c += tok[i].cps;
    }
    gr.off[nt] = o;
    gr.cp[nt] = c;
    memset(S + o, 0, 16);
    for (int r = 0; r < g->ntop; r++) {
        int k = g->top[r].n;
        if (ntok < k) continue;  // no n-grams
        if (top_duplicate(&gr, k) / len > g->top[r].frac) return g->top[r].reason;
    }
    for (int r = 0; r < g->ndup; r++) {
        int k = g->dup[r].n;
        if (ntok < k) continue;
        if (all_duplicate(&gr, k) / len > g->dup[r].frac) return g->dup[r].reason;
    }
    return NULL;
}

static const char *gr_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    const GopherRep *g = state;
    const char *t = doc->text.data;
    size_t n = doc->text.len;
    if (n == 0) return "gopher_repetition:empty";
    if (n >= EMPTY) return "gopher_repetition:out_of_memory";  // offsets are 32-bit
    double len = (double)ft_cps(t, n);
    long pieces, dups;
    double dup_chars;
    size_t b, e;
    ft_strip(t, n, &b, &e);
    if (find_duplicates(t, b, e, 2, &s->a, &pieces, &dups, &dup_chars)) return "gopher_repetition:out_of_memory";
    if (g->dup_para_frac > 0 && (double)dups / (double)pieces > g->dup_para_frac) return "gopher_repetition:dup_para_frac";
    if (g->dup_para_char_frac > 0 && dup_chars / len > g->dup_para_char_frac)
        return "gopher_repetition:dup_para_char_frac";
    if (find_duplicates(t, 0, n, 1, &s->a, &pieces, &dups, &dup_chars)) return "gopher_repetition:out_of_memory";
    if (g->dup_line_frac > 0 && (double)dups / (double)pieces > g->dup_line_frac) return "gopher_repetition:dup_line_frac";
    if (g->dup_line_char_frac > 0 && dup_chars / len > g->dup_line_char_frac)
        return "gopher_repetition:dup_line_char_frac";
    return gr_ngrams(g, t, n, len, s);
}

const KilnStageDef STAGE_GOPHER_REPETITION = {
    .name = "gopher_repetition",
    .summary = "Gopher repetition rules: duplicate lines and paragraphs, top and duplicate n-gram fractions",
    .params_help =
        "  dup_para_frac (0.3): more paragraphs (split on blank lines) repeating an earlier one drop; 0 disables\n"
        "  dup_para_char_frac (0.2): more characters in repeated paragraphs, of the text, drop\n"
        "  dup_line_frac (0.3): more lines repeating an earlier one drop\n"
        "  dup_line_char_frac (0.2): more characters in repeated lines drop\n"
        "  top_n_grams (2=0.20 3=0.18 4=0.16): N=FRACTION, repeated, or none: the most frequent word N-gram's\n"
        "      characters times its count above FRACTION of the text drop (top_N_gram)\n"
        "  dup_n_grams (5=0.15 6=0.14 7=0.13 8=0.12 9=0.11 10=0.10): N=FRACTION, repeated, or none: characters in\n"
        "      repeated word N-grams above FRACTION of the text drop (duplicated_N_n_grams)\n",
    .create = gr_create,
    .destroy = gr_destroy,
    .apply = gr_apply,
};
