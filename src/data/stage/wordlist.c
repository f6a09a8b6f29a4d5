// wordlist.c: the `wordlist` stage: drops documents containing words or
// phrases of a list (such as LDNOOBW, the list C4 filtered with). Text and list
// are lowercased and cut into tokens the same way: runs of word characters
// (letters, marks, digits, '_'), and every other non-space character alone, so
// "s&m" and "g-spot" match as token sequences and "ass" does not match inside
// "assistant". A phrase matches across any whitespace. Lookups go through a
// hash map from an entry's first token to its entries, longest first.
// wordlist.h exposes the matcher alone (toxicity scoring).
#include "data/stage/filter_text.h"
#include "kiln/data.h"
#include "core/utf8.h"
#include "kiln/wordlist.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

typedef struct {
    uint32_t tok, ntok;  // its tokens in WordList.toks
    uint32_t nwords;     // word tokens among them (for the ratio; at least 1 counts)
    char *text;          // the entry as listed (for the report)
} Entry;

typedef struct KilnWordList {
    KilnBuf pool;     // lowercased token bytes of all entries
    KilnBuf toks;     // FtToken array into pool (flags 1: word token)
    Entry *entries;   // grouped by first token, longest first within a group
    uint32_t *group;  // group g is entries[group[g] .. group[g + 1])
    FtStrMap first;   // first token -> group
    size_t nentries;
    long max_matches;
    double max_ratio;  // < 0: not used
    _Atomic long *hits;
} WordList;

static void wl_destroy(void *state) {
    WordList *w = state;
    if (!w) return;
    for (size_t i = 0; i < w->nentries; i++) free(w->entries[i].text);
    free(w->entries);
    free(w->group);
    free(w->hits);
    kbuf_free(&w->pool);
    kbuf_free(&w->toks);
    ft_strmap_free(&w->first);
    free(w);
}

static int is_word_cp(uint32_t cp) {
    if (cp < 0x80) return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') || (cp >= '0' && cp <= '9') || cp == '_';
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO;  // letters, marks, numbers
}

// Lowercases and tokenizes s[0..n): the lowercased bytes are appended to low,
// the tokens (offsets into low) to toks. Returns the token count, -1 when out of memory.
static long lower_tokens(const char *s, size_t n, KilnBuf *low, KilnBuf *toks) {
    long count = 0;
    int in_word = 0;
    if (kbuf_reserve(low, low->len + n + 8)) return -1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = ft_decode(s + i, n - i, &cp);
        i += k;
        if (utf8_isspace(cp)) {
            in_word = 0;
            continue;
        }
        int word = is_word_cp(cp);
        uint32_t lc = cp < 0x80 ? (cp >= 'A' && cp <= 'Z' ? cp | 0x20 : cp)
                                : (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
        char enc[4];
        size_t m = utf8_encode(lc, enc);
        if (low->len + m + 1 > low->cap && kbuf_reserve(low, low->len + m + (n - i) + 8)) return -1;
        if (word && in_word) {  // extends the last token
            FtToken *t = (FtToken *)(toks->data + toks->len) - 1;
            t->len += (uint32_t)m;
        } else {
            FtToken t = {(uint32_t)low->len, (uint32_t)m, 1, (uint32_t)word};
            if (kbuf_append(toks, &t, sizeof t)) return -1;
            count++;
        }
        memcpy(low->data + low->len, enc, m);
        low->len += m;
        in_word = word;
    }
    low->data[low->len] = 0;
    return count;
}

// Reads the list: one entry per line, surrounding whitespace ignored, blank
// lines skipped.
static int wl_load(WordList *w, const char *path, KilnErr *err) {
    char *data;
    size_t len;
    if (kiln_read_file(path, &data, &len, err)) return kiln_wrap(err, "wordlist: words");
    size_t cap = 64, line = 0;
    w->entries = calloc(cap, sizeof *w->entries);
    if (!w->entries) goto oom;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len, b, e;
        line++;
        ft_strip(data + pos, end - pos, &b, &e);
        const char *s = data + pos + b;
        size_t n = e - b;
        pos = end + 1;
        if (n == 0) continue;
        if (!utf8_valid(s, n)) {
            kiln_fail(err, "%s:%zu: wordlist: the entry is not valid UTF-8", path, line);
            goto fail;
        }
        if (len >= UINT32_MAX) {
            kiln_fail(err, "%s: wordlist: the list is too large", path);
            goto fail;
        }
        if (w->nentries == cap) {
            Entry *ne = realloc(w->entries, 2 * cap * sizeof *ne);
            if (!ne) goto oom;
            w->entries = ne;
            cap *= 2;
        }
        Entry *en = &w->entries[w->nentries];
        en->tok = (uint32_t)(w->toks.len / sizeof(FtToken));
        long nt = lower_tokens(s, n, &w->pool, &w->toks);
        if (nt < 0) goto oom;
        if (nt == 0) continue;
        en->ntok = (uint32_t)nt;
        en->nwords = 0;
        for (long k = 0; k < nt; k++) en->nwords += ((FtToken *)w->toks.data)[en->tok + k].flags;
        if (!(en->text = strndup(s, n))) goto oom;
        w->nentries++;
    }
    free(data);
    if (!w->nentries) return kiln_fail(err, "%s: wordlist: no words in the list", path);
    return 0;
oom:
    kiln_fail(err, "out of memory");
fail:
    free(data);
    return -1;
}

static const FtToken *entry_tok(const WordList *w, const Entry *e) { return (const FtToken *)w->toks.data + e->tok; }

// For sorting entries by first token, then longest first, then list order.
typedef struct {
    const char *key;
    uint32_t klen, ntok;
    size_t idx;
} SortKey;

static int cmp_key(const void *pa, const void *pb) {
    const SortKey *a = pa, *b = pb;
    uint32_t m = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, m);
    if (c) return c;
    if (a->klen != b->klen) return a->klen < b->klen ? -1 : 1;
    if (a->ntok != b->ntok) return a->ntok > b->ntok ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

// Groups entries by first token (contiguous, longest first) and maps each
// group's first token to the group.
static int wl_index(WordList *w, KilnErr *err) {
    size_t n = w->nentries, ng = 0;
    SortKey *k = calloc(n, sizeof *k);
    Entry *sorted = calloc(n, sizeof *sorted);
    const char **keys = calloc(n, sizeof *keys);
    size_t *klens = calloc(n, sizeof *klens);
    int *vals = calloc(n, sizeof *vals);
    w->group = calloc(n + 1, sizeof *w->group);
    w->hits = calloc(n, sizeof *w->hits);
    int rc = -1;
    if (!k || !sorted || !keys || !klens || !vals || !w->group || !w->hits) goto done;
    for (size_t i = 0; i < n; i++) {
        const FtToken *t = entry_tok(w, &w->entries[i]);
        k[i] = (SortKey){w->pool.data + t->off, t->len, w->entries[i].ntok, i};
    }
    qsort(k, n, sizeof *k, cmp_key);
    for (size_t i = 0; i < n; i++) {
        sorted[i] = w->entries[k[i].idx];
        if (i == 0 || k[i].klen != k[i - 1].klen || memcmp(k[i].key, k[i - 1].key, k[i].klen)) {
            keys[ng] = k[i].key;
            klens[ng] = k[i].klen;
            vals[ng] = (int)ng;
            w->group[ng++] = (uint32_t)i;
        }
    }
    w->group[ng] = (uint32_t)n;
    memcpy(w->entries, sorted, n * sizeof *sorted);
    rc = ft_strmap_build(&w->first, keys, klens, vals, ng);
done:
    free(k);
    free(sorted);
    free(keys);
    free(klens);
    free(vals);
    return rc ? kiln_fail(err, "out of memory") : 0;
}

static int wl_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    WordList *w = calloc(1, sizeof *w);
    if (!w) return kiln_fail(err, "out of memory");
    const char *path = NULL;
    w->max_ratio = -1;
    w->max_matches = -1;  // not given: 1, or off when max_ratio is given
    if (params_str(ps, "words", &path, err) || params_int(ps, "max_matches", &w->max_matches, err) ||
        params_double(ps, "max_ratio", &w->max_ratio, err))
        goto fail;
    if (!path) {
        kiln_fail(err, "wordlist: 'words' is required: a file with one word or phrase per line "
                       "(e.g. ../shared/data/toxicity/ldnoobw/en)");
        goto fail;
    }
    if (w->max_matches < 0) w->max_matches = w->max_ratio >= 0 ? 0 : 1;
    if (wl_load(w, path, err) || wl_index(w, err)) goto fail;
    *state = w;
    return 0;
fail:
    wl_destroy(w);
    return -1;
}

static int tok_eq(const char *a, const FtToken *x, const char *b, const FtToken *y) {
    return x->len == y->len && !memcmp(a + x->off, b + y->off, x->len);
}

// The longest entry that starts at token i of the lowercased text (low, tok[0..nt)), or NULL.
static const Entry *wl_match_at(const WordList *w, const char *low, const FtToken *tok, long nt, long i) {
    int g = ft_strmap_get(&w->first, low + tok[i].off, tok[i].len);
    if (g < 0) return NULL;
    for (uint32_t k = w->group[g]; k < w->group[g + 1]; k++) {
        const Entry *e = &w->entries[k];
        if ((long)e->ntok > nt - i) continue;
        const FtToken *et = entry_tok(w, e);
        uint32_t j = 1;
        while (j < e->ntok && tok_eq(low, &tok[i + j], w->pool.data, &et[j])) j++;
        if (j == e->ntok) return e;
    }
    return NULL;
}

static const char *wl_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    WordList *w = state;
    kbuf_clear(&s->a);
    kbuf_clear(&s->b);
    long nt = lower_tokens(doc->text.data, doc->text.len, &s->a, &s->b);
    if (nt < 0) return "wordlist:out_of_memory";
    const char *low = s->a.data;
    const FtToken *tok = (const FtToken *)s->b.data;
    long words = 0, matches = 0, matched_words = 0;
    for (long i = 0; i < nt; i++) words += tok[i].flags;
    for (long i = 0; i < nt;) {
        const Entry *hit = wl_match_at(w, low, tok, nt, i);
        if (!hit) {
            i++;
            continue;
        }
        atomic_fetch_add_explicit(&w->hits[hit - w->entries], 1, memory_order_relaxed);
        matches++;
        matched_words += hit->nwords ? hit->nwords : 1;
        i += hit->ntok;
        if (w->max_ratio < 0 && w->max_matches > 0 && matches >= w->max_matches) break;
    }
    if (w->max_matches > 0 && matches >= w->max_matches) return "wordlist:max_matches";
    if (w->max_ratio >= 0 && words > 0 && (double)matched_words / (double)words > w->max_ratio)
        return "wordlist:max_ratio";
    return NULL;
}

// {"matches":{"entry":count,...}}: the entries found, most frequent first (up to 50).
static char *wl_report(void *state) {
    WordList *w = state;
    KilnBuf j = {0};
    uint32_t *order = malloc((w->nentries + 1) * sizeof *order);
    if (!order) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < w->nentries; i++)
        if (atomic_load(&w->hits[i]) > 0) order[n++] = (uint32_t)i;
    for (size_t x = 1; x < n; x++) {  // insertion sort by count, descending
        uint32_t v = order[x];
        size_t y = x;
        while (y > 0 && atomic_load(&w->hits[order[y - 1]]) < atomic_load(&w->hits[v])) order[y] = order[y - 1], y--;
        order[y] = v;
    }
    int bad = kbuf_puts(&j, "{\"matches\":{");
    for (size_t i = 0; i < n && i < 50 && !bad; i++) {
        char num[32];
        snprintf(num, sizeof num, "\":%ld", atomic_load(&w->hits[order[i]]));
        const char *t = w->entries[order[i]].text;
        bad = kbuf_puts(&j, i ? ",\"" : "\"") || kbuf_json_escape(&j, t, strlen(t)) || kbuf_puts(&j, num);
    }
    bad = bad || kbuf_puts(&j, "}}");
    free(order);
    if (bad) {
        kbuf_free(&j);
        return NULL;
    }
    return j.data;
}

const KilnStageDef STAGE_WORDLIST = {
    .name = "wordlist",
    .summary = "drop documents containing words or phrases of a list (e.g. LDNOOBW), matched as whole words",
    .params_help =
        "  words (required): file with one word or phrase per line, e.g. ../shared/data/toxicity/ldnoobw/en\n"
        "  max_matches (1, or off when max_ratio is given): drop at this many matches (0 disables)\n"
        "  max_ratio (none): drop when matched words / words in the document exceeds this\n",
    .create = wl_create,
    .destroy = wl_destroy,
    .apply = wl_apply,
    .report_json = wl_report,
};

// ---------------------------------------------------------------- the matcher alone (wordlist.h)
int wordlist_open(KilnWordList **out, const char *path, KilnErr *err) {
    WordList *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w) return kiln_fail(err, "out of memory");
    w->max_ratio = -1;
    if (wl_load(w, path, err) || wl_index(w, err)) {
        wl_destroy(w);
        return -1;
    }
    *out = w;
    return 0;
}

void wordlist_free(KilnWordList *w) { wl_destroy(w); }

long wordlist_matches(const KilnWordList *w, const char *text, size_t len) {
    KilnBuf low = {0}, toks = {0};
    long nt = lower_tokens(text, len, &low, &toks), matches = 0;
    for (long i = 0; i < nt;) {
        const Entry *hit = wl_match_at(w, low.data, (const FtToken *)toks.data, nt, i);
        i += hit ? (long)hit->ntok : 1;
        matches += hit != NULL;
    }
    kbuf_free(&low);
    kbuf_free(&toks);
    return nt < 0 ? -1 : matches;
}
