// c4.c: the `c4` stage: C4's line and page rules (Raffel et al. 2020) as
// datatrove's C4QualityFilter applies them. Lines without terminal punctuation,
// with few words, with an overlong word, mentioning javascript or a cookie/terms
// policy are removed, citation markers ([1], [edit], [citation needed]) are cut,
// and a page with "lorem ipsum" or a curly bracket in a kept line, or with
// fewer than 5 sentences left, is dropped. The text is rewritten to its kept lines.
#include "data/stage/filter_text.h"
#include "kiln/data.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// line fates, counted for the report (datatrove's line-filter-* stats)
enum { L_TOTAL, L_LONG_WORD, L_NO_PUNCT, L_FEW_WORDS, L_JAVASCRIPT, L_POLICY, L_KEPT, L_N };
static const char *const LINE_STAT[L_N] = {"line-total",          "line-filter-too_long_word",
                                           "line-filter-no_terminal_punc", "line-filter-too_few_words",
                                           "line-filter-javascript", "line-filter-policy", "line-kept"};

// Phrases looked for in a line (lowercase ASCII), with what they mean.
enum { P_LOREM = 1, P_JAVASCRIPT = 2, P_POLICY = 4 };
static const struct {
    const char *text;
    unsigned what;
} PHRASES[] = {
    {"lorem ipsum", P_LOREM},       {"javascript", P_JAVASCRIPT},     {"terms of use", P_POLICY},
    {"privacy policy", P_POLICY},   {"cookie policy", P_POLICY},      {"uses cookies", P_POLICY},
    {"use of cookies", P_POLICY},   {"use cookies", P_POLICY},
};

// Which phrases occur in s[0..n), case-insensitively (ASCII): one pass that
// compares only where a phrase's first letter is.
static unsigned find_phrases(const char *s, size_t n) {
    unsigned found = 0;
    for (size_t i = 0; i < n; i++) {
        char c = (char)(s[i] | 0x20);
        if (c != 'l' && c != 'j' && c != 't' && c != 'p' && c != 'c' && c != 'u') continue;
        for (size_t k = 0; k < sizeof PHRASES / sizeof PHRASES[0]; k++) {
            const char *p = PHRASES[k].text;
            if (p[0] != c || (found & PHRASES[k].what)) continue;
            size_t j = 1;
            while (p[j] && i + j < n) {
                char x = s[i + j];
                if (x >= 'A' && x <= 'Z') x |= 0x20;
                if (x != p[j]) break;
                j++;
            }
            if (!p[j]) found |= PHRASES[k].what;
        }
    }
    return found;
}

typedef struct {
    int split_paragraph, remove_citations, filter_no_terminal_punct;
    int filter_lorem_ipsum, filter_javascript, filter_curly_bracket, filter_policy;
    long min_num_sentences, min_words_per_line, max_word_length;
    _Atomic long stats[L_N];
} C4;

static void c4_destroy(void *state) { free(state); }

static int c4_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    C4 *c = calloc(1, sizeof *c);
    if (!c) return kiln_fail(err, "out of memory");
    c->split_paragraph = c->remove_citations = c->filter_no_terminal_punct = 1;
    c->filter_lorem_ipsum = c->filter_javascript = c->filter_curly_bracket = c->filter_policy = 1;
    c->min_num_sentences = 5;
    c->min_words_per_line = 3;
    c->max_word_length = 1000;
    for (int i = 0; i < L_N; i++) atomic_init(&c->stats[i], 0);
    if (params_bool(ps, "split_paragraph", &c->split_paragraph, err) ||
        params_bool(ps, "remove_citations", &c->remove_citations, err) ||
        params_bool(ps, "filter_no_terminal_punct", &c->filter_no_terminal_punct, err) ||
        params_bool(ps, "filter_lorem_ipsum", &c->filter_lorem_ipsum, err) ||
        params_bool(ps, "filter_javascript", &c->filter_javascript, err) ||
        params_bool(ps, "filter_curly_bracket", &c->filter_curly_bracket, err) ||
        params_bool(ps, "filter_policy", &c->filter_policy, err) ||
        params_int(ps, "min_num_sentences", &c->min_num_sentences, err) ||
        params_int(ps, "min_words_per_line", &c->min_words_per_line, err) ||
        params_int(ps, "max_word_length", &c->max_word_length, err)) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

// The citation marker at s[i..n) (\[\d*]|\[edit]|\[citation needed]): its
// length, or 0.
static size_t citation_at(const char *s, size_t n, size_t i) {
    if (s[i] != '[') return 0;
    size_t j = i + 1;
    while (j < n) {
        uint32_t cp;
        size_t k = ft_decode(s + j, n - j, &cp);
        if (!ft_is_digit(cp)) break;
        j += k;
    }
    if (j < n && s[j] == ']') return j + 1 - i;
    static const char *const WORDS[] = {"[edit]", "[citation needed]"};
    for (int w = 0; w < 2; w++) {
        size_t m = strlen(WORDS[w]);
        if (n - i >= m && !memcmp(s + i, WORDS[w], m)) return m;
    }
    return 0;
}

// s[0..n) without citation markers, into out.
static int remove_citations(const char *s, size_t n, KilnBuf *out) {
    kbuf_clear(out);
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '[') continue;
        size_t m = citation_at(s, n, i);
        if (!m) continue;
        if (kbuf_append(out, s + from, i - from)) return -1;
        i += m - 1;
        from = i + 1;
    }
    return kbuf_append(out, s + from, n - from);
}

// Whitespace-separated words of s[0..n) (str.split): how many, and whether one
// is longer than max_len code points (max_len < 0: never).
static long split_words(const char *s, size_t n, long max_len, int *too_long) {
    long words = 0, cur = 0;
    *too_long = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += ft_decode(s + i, n - i, &cp);
        if (utf8_isspace(cp)) {
            cur = 0;
            continue;
        }
        if (cur++ == 0) words++;
        if (max_len >= 0 && cur > max_len) *too_long = 1;
    }
    return words;
}

static int ends_terminal(const char *s, size_t n) {
    if (n == 0) return 0;
    char c = s[n - 1];
    if (c != '.' && c != '?' && c != '!' && c != '"' && c != '\'') return 0;
    return !(n >= 3 && !memcmp(s + n - 3, "...", 3));  // an ellipsis is not an end
}

// One line (or sentence) through the line rules. Returns a drop reason for the
// whole page, or NULL; *keep says whether the line stays, *sentences grows.
static const char *c4_line(const C4 *c, const char *s, size_t n, KilnScratch *sc, long *stats, long *sentences,
                           KilnBuf *out, int *oom) {
    size_t b, e;
    ft_strip(s, n, &b, &e);
    s += b;
    n = e - b;
    stats[L_TOTAL]++;
    int too_long;
    long words = split_words(s, n, c->max_word_length, &too_long);
    if (too_long) {
        stats[L_LONG_WORD]++;
        return NULL;
    }
    if (c->remove_citations && memchr(s, '[', n)) {
        if (remove_citations(s, n, &sc->b)) {
            *oom = 1;
            return NULL;
        }
        s = sc->b.data;
        n = sc->b.len;
    }
    if (c->filter_no_terminal_punct && !ends_terminal(s, n)) {
        stats[L_NO_PUNCT]++;
        return NULL;
    }
    if (words < c->min_words_per_line) {
        stats[L_FEW_WORDS]++;
        return NULL;
    }
    unsigned found = find_phrases(s, n);
    if (c->filter_lorem_ipsum && (found & P_LOREM)) return "c4:lorem_ipsum";
    if (c->filter_javascript && (found & P_JAVASCRIPT)) {
        stats[L_JAVASCRIPT]++;
        return NULL;
    }
    if (c->filter_curly_bracket && memchr(s, '{', n)) return "c4:curly_bracket";
    if (c->filter_policy && (found & P_POLICY)) {
        stats[L_POLICY]++;
        return NULL;
    }
    *sentences += c->split_paragraph ? ft_count_sentences(s, n) : 1;
    stats[L_KEPT]++;
    if ((out->len && kbuf_putc(out, c->split_paragraph ? '\n' : ' ')) || kbuf_append(out, s, n)) *oom = 1;
    return NULL;
}

static const char *c4_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    C4 *c = state;
    const char *t = doc->text.data;
    size_t n = doc->text.len, pos = 0, ls, le;
    long stats[L_N] = {0}, sentences = 0;
    int oom = 0;
    const char *drop = NULL;
    KilnBuf *out = &s->a;
    kbuf_clear(out);
    if (c->split_paragraph) {
        while (!drop && !oom && ft_next_line(t, n, &pos, &ls, &le))
            drop = c4_line(c, t + ls, le - ls, s, stats, &sentences, out, &oom);
    } else {
        while (!drop && !oom && pos < n) {
            size_t end = ft_sentence_end(t, n, pos);
            if (ft_lstrip(t + pos, end - pos) < end - pos)  // blank pieces are not sentences
                drop = c4_line(c, t + pos, end - pos, s, stats, &sentences, out, &oom);
            pos = end;
        }
    }
    for (int i = 0; i < L_N; i++) atomic_fetch_add_explicit(&c->stats[i], stats[i], memory_order_relaxed);
    if (oom) return "c4:out_of_memory";
    if (drop) return drop;
    if (sentences < c->min_num_sentences) return "c4:too_few_sentences";
    size_t b, e;
    ft_strip(out->data ? out->data : "", out->len, &b, &e);
    if (e - b == n && !memcmp(out->data + b, t, n)) return NULL;  // nothing removed
    memmove(out->data, out->data + b, e - b);
    out->len = e - b;
    out->data[out->len] = 0;
    kbuf_swap(&doc->text, out);
    return NULL;
}

static char *c4_report(void *state) {
    C4 *c = state;
    char *j = malloc(512);
    if (!j) return NULL;
    size_t o = (size_t)snprintf(j, 512, "{\"lines\":{");
    for (int i = 0; i < L_N; i++)
        o += (size_t)snprintf(j + o, 512 - o, "%s\"%s\":%ld", i ? "," : "", LINE_STAT[i],
                              atomic_load(&c->stats[i]));
    snprintf(j + o, 512 - o, "}}");
    return j;
}

const KilnStageDef STAGE_C4 = {
    .name = "c4",
    .summary = "C4 line and page rules: keep punctuated lines of 3+ words; drop lorem ipsum, {, < 5 sentences",
    .params_help =
        "  split_paragraph (true): rules apply to lines (split on line breaks); false: to sentences\n"
        "  remove_citations (true): cut [1], [], [edit], [citation needed] from lines\n"
        "  filter_no_terminal_punct (true): remove lines not ending in . ? ! \" ' (or ending in ...)\n"
        "  min_words_per_line (3): remove lines with fewer whitespace-separated words (-1 disables)\n"
        "  max_word_length (1000): remove lines with a longer word, in characters (-1 disables)\n"
        "  filter_lorem_ipsum (true): drop pages with \"lorem ipsum\" in a line (lorem_ipsum)\n"
        "  filter_javascript (true): remove lines containing \"javascript\"\n"
        "  filter_curly_bracket (true): drop pages with '{' in a line that got this far (curly_bracket)\n"
        "  filter_policy (true): remove lines with terms of use / privacy policy / cookie phrases\n"
        "  min_num_sentences (5): drop pages with fewer sentences in kept lines (too_few_sentences; -1 disables)\n",
    .create = c4_create,
    .destroy = c4_destroy,
    .apply = c4_apply,
    .report_json = c4_report,
};
