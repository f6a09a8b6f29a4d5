// augment.c: the `augment_gender` stage: counterfactual data augmentation (Lu et
// al. 2018, "Gender Bias in Neural Natural Language Processing"): in a chosen
// fraction of documents, gendered words are swapped with their counterparts
// (he <-> she, king <-> queen), whole words only, keeping the case.
//
// A per-document stage cannot emit a second document, so the swapped text
// replaces the original; to keep both, run the corpus through this stage with
// fraction 1 as a second source and mix the two (see docs/data.md).
#include "kiln/data.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define WORD_MAX 32

// The built-in pairs: "masculine feminine". A word in two pairs is ambiguous
// and resolved by the next word (see pick_target): the first of its pairs
// applies before a content word ("her book" -> "his book"), the second
// otherwise ("saw her." -> "saw him.", "it is his." -> "it is hers.").
static const char DEFAULT_PAIRS[] =
    "he she\n"
    "his her\n"
    "his hers\n"
    "him her\n"
    "himself herself\n"
    "man woman\nmen women\n"
    "boy girl\nboys girls\n"
    "father mother\nfathers mothers\n"
    "son daughter\nsons daughters\n"
    "brother sister\nbrothers sisters\n"
    "husband wife\nhusbands wives\n"
    "king queen\nkings queens\n"
    "prince princess\nprinces princesses\n"
    "mr mrs\n"
    "sir madam\n"
    "gentleman lady\ngentlemen ladies\n"
    "uncle aunt\nuncles aunts\n"
    "nephew niece\nnephews nieces\n"
    "grandfather grandmother\ngrandfathers grandmothers\n"
    "grandson granddaughter\ngrandsons granddaughters\n"
    "stepfather stepmother\nstepson stepdaughter\n"
    "dad mom\ndads moms\ndaddy mommy\npapa mama\n"
    "boyfriend girlfriend\nboyfriends girlfriends\n"
    "groom bride\ngrooms brides\n"
    "fiance fiancee\n"
    "widower widow\nwidowers widows\n"
    "actor actress\nactors actresses\n"
    "waiter waitress\nwaiters waitresses\n"
    "steward stewardess\nstewards stewardesses\n"
    "hero heroine\nheroes heroines\n"
    "duke duchess\ndukes duchesses\n"
    "emperor empress\nemperors empresses\n"
    "god goddess\ngods goddesses\n"
    "monk nun\nmonks nuns\n"
    "male female\nmales females\n"
    "masculine feminine\n"
    "schoolboy schoolgirl\nschoolboys schoolgirls\n"
    "lad lass\nlads lasses\n"
    "patriarch matriarch\n"
    "brotherhood sisterhood\nboyhood girlhood\nmanhood womanhood\n"
    "chairman chairwoman\nbusinessman businesswoman\nbusinessmen businesswomen\n"
    "spokesman spokeswoman\npoliceman policewoman\nsalesman saleswoman\n";

// Words after which an ambiguous word is an object or a predicate ("gave her
// the", "with her and", "is his to"), not a determiner: the second target.
static const char *const FUNCTION_WORDS[] = {
    "a",     "about", "after",  "again", "against", "all",     "also",  "an",    "and",   "any",  "are",
    "as",    "at",    "away",   "back",  "be",      "because", "been",  "before", "being", "but", "by",
    "can",   "could", "did",    "do",    "does",    "down",    "each",  "else",  "for",   "from", "had",
    "has",   "have",  "he",     "her",   "here",    "him",     "his",   "how",   "i",     "if",   "in",
    "into",  "is",    "it",     "its",   "just",    "like",    "me",    "more",  "my",    "no",   "not",
    "now",   "of",    "off",    "on",    "once",    "only",    "onto",  "or",    "our",   "out",  "over",
    "she",   "should", "so",    "some",  "than",    "that",    "the",   "their", "them",  "then", "there",
    "these", "they",  "this",   "those", "through", "to",      "too",   "under", "until", "up",   "upon",
    "us",    "very",  "was",    "we",    "were",    "what",    "when",  "where", "which", "while", "who",
    "whom",  "why",   "will",   "with",  "would",   "yet",     "you",   "your",
};

typedef struct {
    char from[WORD_MAX];
    char to[2][WORD_MAX];
    int nto;
} Swap;

typedef struct {
    Swap *sw;
    int n;
    int *slot;  // open addressing: index into sw, -1 empty
    size_t mask;
    double fraction;
    uint64_t seed;
    atomic_long selected, swapped;
} Aug;

// ---------------------------------------------------------------- the word table
static uint64_t word_hash(const char *w, size_t n) { return XXH3_64bits(w, n); }

static int find(const Aug *a, const char *w, size_t n) {
    for (size_t h = word_hash(w, n) & a->mask;; h = (h + 1) & a->mask) {
        int i = a->slot[h];
        if (i < 0) return -1;
        if (strlen(a->sw[i].from) == n && !memcmp(a->sw[i].from, w, n)) return i;
    }
}

// Adds from -> to (a second, different target makes `from` ambiguous).
static int add_swap(Aug *a, const char *from, const char *to, const char *where, KilnErr *err) {
    int i = find(a, from, strlen(from));
    if (i >= 0) {
        Swap *s = &a->sw[i];
        for (int k = 0; k < s->nto; k++)
            if (!strcmp(s->to[k], to)) return 0;  // listed twice: harmless
        if (s->nto == 2)
            return kiln_fail(err, "augment_gender: %s: \"%s\" is in more than two pairs", where, from);
        strcpy(s->to[s->nto++], to);
        return 0;
    }
    Swap *s = &a->sw[a->n];
    memset(s, 0, sizeof *s);
    strcpy(s->from, from);
    strcpy(s->to[0], to);
    s->nto = 1;
    size_t h = word_hash(from, strlen(from)) & a->mask;
    while (a->slot[h] >= 0) h = (h + 1) & a->mask;
    a->slot[h] = a->n++;
    return 0;
}

// One word of a pairs line into w (lowercase); 0 if it is not [A-Za-z]+.
static int take_word(const char **p, const char *end, char *w) {
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\r')) (*p)++;
    size_t n = 0;
    while (*p < end && isalpha((unsigned char)**p)) {
        if (n + 1 >= WORD_MAX) return 0;
        w[n++] = (char)tolower((unsigned char)*(*p)++);
    }
    w[n] = 0;
    return n > 0 && (*p == end || **p == ' ' || **p == '\t' || **p == '\r');
}

// Parses "word1 word2" lines ('#' starts a comment) into the table.
static int parse_pairs(Aug *a, const char *text, size_t len, const char *name, KilnErr *err) {
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    a->sw = calloc(2 * lines, sizeof *a->sw);
    size_t cap = 16;
    while (cap < 8 * lines) cap *= 2;
    a->slot = malloc(cap * sizeof *a->slot);
    if (!a->sw || !a->slot) return kiln_fail(err, "augment_gender: out of memory");
    memset(a->slot, 0xff, cap * sizeof *a->slot);
    a->mask = cap - 1;
    const char *p = text, *end = text + len;
    for (long line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        const char *hash = memchr(p, '#', (size_t)(le - p)), *ce = hash ? hash : le;
        const char *q = p;
        while (q < ce && isspace((unsigned char)*q)) q++;
        if (q < ce) {
            char w1[WORD_MAX], w2[WORD_MAX], where[600];
            snprintf(where, sizeof where, "%s:%ld", name, line);
            if (!take_word(&q, ce, w1) || !take_word(&q, ce, w2))
                return kiln_fail(err, "augment_gender: %s: expected two words (letters only)", where);
            while (q < ce && isspace((unsigned char)*q)) q++;
            if (q < ce) return kiln_fail(err, "augment_gender: %s: more than two words", where);
            if (!strcmp(w1, w2)) return kiln_fail(err, "augment_gender: %s: a word paired with itself", where);
            if (add_swap(a, w1, w2, where, err) || add_swap(a, w2, w1, where, err)) return -1;
        }
        p = le + (nl != NULL);
    }
    if (a->n == 0) return kiln_fail(err, "augment_gender: %s: no pairs", name);
    return 0;
}

// ---------------------------------------------------------------- swapping
static int wordish(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }

static int cmp_str(const void *k, const void *e) { return strcmp(k, *(const char *const *)e); }

// The target of an ambiguous word: the first unless the next word is missing
// (punctuation, end of text) or a function word.
static const char *pick_target(const Swap *s, const char *t, size_t n, size_t after) {
    if (s->nto == 1) return s->to[0];
    size_t i = after;
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n')) i++;
    char w[WORD_MAX];
    size_t k = 0;
    while (i < n && isalpha((unsigned char)t[i]) && k + 1 < WORD_MAX) w[k++] = (char)tolower((unsigned char)t[i++]);
    w[k] = 0;
    if (k == 0) return s->to[1];
    int fn = bsearch(w, FUNCTION_WORDS, sizeof FUNCTION_WORDS / sizeof FUNCTION_WORDS[0], sizeof FUNCTION_WORDS[0],
                     cmp_str) != NULL;
    return s->to[fn];
}

enum { CASE_LOWER, CASE_TITLE, CASE_UPPER, CASE_MIXED };

static int case_of(const char *w, size_t n) {
    int upper = 0;
    for (size_t i = 0; i < n; i++) upper += isupper((unsigned char)w[i]) != 0;
    if (upper == 0) return CASE_LOWER;
    if (upper == (int)n && n > 1) return CASE_UPPER;
    if (upper == 1 && isupper((unsigned char)w[0])) return CASE_TITLE;
    return CASE_MIXED;
}

static int put_cased(KilnBuf *out, const char *w, int cs) {
    for (size_t i = 0; w[i]; i++) {
        int c = (unsigned char)w[i];
        if (cs == CASE_UPPER || (cs == CASE_TITLE && i == 0)) c = toupper(c);
        if (kbuf_putc(out, (char)c)) return -1;
    }
    return 0;
}

// out = t with every listed whole word swapped; returns the swaps, -1 when out of memory.
static long swap_words(const Aug *a, const char *t, size_t n, KilnBuf *out) {
    kbuf_clear(out);
    if (kbuf_reserve(out, n + n / 8)) return -1;
    long swaps = 0;
    size_t last = 0, i = 0;
    while (i < n) {
        if (!isalpha((unsigned char)t[i]) || (i > 0 && wordish((unsigned char)t[i - 1]))) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && isalpha((unsigned char)t[j])) j++;
        size_t len = j - i;
        if ((j < n && wordish((unsigned char)t[j])) || len >= WORD_MAX) {  // part of a longer token
            while (j < n && wordish((unsigned char)t[j])) j++;
            i = j;
            continue;
        }
        char low[WORD_MAX];
        for (size_t k = 0; k < len; k++) low[k] = (char)tolower((unsigned char)t[i + k]);
        int cs = case_of(t + i, len), idx = cs == CASE_MIXED ? -1 : find(a, low, len);
        if (idx >= 0) {
            if (kbuf_append(out, t + last, i - last) || put_cased(out, pick_target(&a->sw[idx], t, n, j), cs))
                return -1;
            last = j;
            swaps++;
        }
        i = j;
    }
    if (kbuf_append(out, t + last, n - last)) return -1;
    return swaps;
}

// Whether this document is among the chosen fraction: a hash of (seed, source,
// id), so the choice does not depend on threads, order or the other documents.
static int chosen(const Aug *a, const KilnDoc *d) {
    uint64_t h = kiln_hash64(a->seed ^ XXH3_64bits(d->source.data ? d->source.data : "", d->source.len));
    h = kiln_hash64(h ^ XXH3_64bits(d->id.data ? d->id.data : "", d->id.len));
    return (double)(h >> 11) * 0x1.0p-53 < a->fraction;
}

static const char *aug_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    Aug *a = state;
    if (!chosen(a, doc)) return NULL;
    atomic_fetch_add(&a->selected, 1);
    long k = swap_words(a, doc->text.data ? doc->text.data : "", doc->text.len, &s->a);
    if (k < 0) return "augment_gender:out_of_memory";
    if (k > 0) {
        kbuf_swap(&doc->text, &s->a);
        atomic_fetch_add(&a->swapped, k);
    }
    return NULL;
}

// ---------------------------------------------------------------- stage
static void aug_destroy(void *state) {
    Aug *a = state;
    if (!a) return;
    free(a->sw);
    free(a->slot);
    free(a);
}

static const char *const MODES[] = {"replace", NULL};

static int aug_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    double fraction = 0.5;
    const char *pairs = NULL;
    int mode = 0;
    if (params_double(ps, "fraction", &fraction, err) || params_str(ps, "pairs", &pairs, err) ||
        params_enum(ps, "mode", MODES, &mode, err))
        return -1;
    if (!(fraction >= 0 && fraction <= 1))
        return kiln_fail(err, "augment_gender: fraction must be in [0, 1], not %g", fraction);
    Aug *a = calloc(1, sizeof *a);
    if (!a) return kiln_fail(err, "augment_gender: out of memory");
    a->fraction = fraction;
    a->seed = seed;
    atomic_init(&a->selected, 0);
    atomic_init(&a->swapped, 0);
    int rc;
    if (pairs) {
        char *text = NULL;
        size_t len = 0;
        rc = kiln_read_file(pairs, &text, &len, err);
        if (rc) kiln_wrap(err, "augment_gender: pairs");
        else rc = parse_pairs(a, text, len, pairs, err);
        free(text);
    } else {
        rc = parse_pairs(a, DEFAULT_PAIRS, sizeof DEFAULT_PAIRS - 1, "built-in pairs", err);
    }
    if (rc) {
        aug_destroy(a);
        return -1;
    }
    *state = a;
    return 0;
}

static char *aug_report(void *state) {
    Aug *a = state;
    char *j = malloc(96);
    if (j)
        snprintf(j, 96, "{\"docs_selected\":%ld,\"words_swapped\":%ld}", atomic_load(&a->selected),
                 atomic_load(&a->swapped));
    return j;
}

const KilnStageDef STAGE_AUGMENT_GENDER = {
    .name = "augment_gender",
    .summary = "counterfactual augmentation: swap gendered words (he/she, king/queen) in a fraction of documents",
    .params_help = "  fraction (0.5): share of documents swapped, chosen by hash of (seed, source, id)\n"
                   "  pairs (built-in, 79 pairs): file of \"word1 word2\" lines, '#' comments\n"
                   "  mode (replace): the swapped text replaces the document (the only mode)\n",
    .create = aug_create,
    .destroy = aug_destroy,
    .apply = aug_apply,
    .report_json = aug_report,
};
