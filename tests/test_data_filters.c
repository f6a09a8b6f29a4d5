// test_data_filters: the heuristic quality filters (gopher_quality,
// gopher_repetition, c4, wordlist): every rule at its threshold (a document
// exactly at it and one just past it), datatrove's own test cases, and pass
// rates on real text (Wikipedia articles pass, kernel C source fails).
#include "kiln/data.h"
#include "testutil.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

extern const KilnStageDef STAGE_GOPHER_QUALITY, STAGE_GOPHER_REPETITION, STAGE_C4, STAGE_WORDLIST;

static char data_dir[4096];

// ---------------------------------------------------------------- helpers
// A stage built from key, value, ... pairs (NULL-terminated); fails the test on error.
static void *make_v(const KilnStageDef *def, KilnErr *err, int expect_ok, va_list ap) {
    KilnParams ps = {0};
    const char *k;
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        assert_int_equal(params_add(&ps, k, v, "test", err), 0);
    }
    void *state = NULL;
    int rc = def->create(&ps, 1, &state, err);
    if (rc == 0) {
        int unused = params_check_unused(&ps, err);
        if (expect_ok && unused) fail_msg("unused parameter: %s", err->msg);
    }
    params_free(&ps);
    if (expect_ok && rc) fail_msg("%s: create failed: %s", def->name, err->msg);
    return rc ? NULL : state;
}

static void *make(const KilnStageDef *def, ...) {
    KilnErr err = {{0}};
    va_list ap;
    va_start(ap, def);
    void *s = make_v(def, &err, 1, ap);
    va_end(ap);
    return s;
}

// create must fail; returns its message
static void make_fails(const KilnStageDef *def, const char *want, ...) {
    KilnErr err = {{0}};
    va_list ap;
    va_start(ap, want);
    void *s = make_v(def, &err, 0, ap);
    va_end(ap);
    if (s) {
        def->destroy(s);
        fail_msg("%s: create should have failed", def->name);
    }
    if (!strstr(err.msg, want)) fail_msg("error '%s' lacks '%s'", err.msg, want);
}

static KilnScratch scratch;

// Runs one document through a stage: the drop reason or NULL; *out (if given)
// receives the text after the stage (malloc'd).
static const char *run1(const KilnStageDef *def, void *state, const char *text, size_t len, char **out) {
    KilnDoc d = {0};
    kbuf_puts(&d.source, "test");
    kbuf_puts(&d.id, "1");
    kbuf_set(&d.text, text, len);
    const char *r = def->apply(state, &d, &scratch);
    if (out) *out = strndup(d.text.data ? d.text.data : "", d.text.len);
    doc_free(&d);
    return r;
}

static const char *run(const KilnStageDef *def, void *state, const char *text) {
    return run1(def, state, text, strlen(text), NULL);
}

#define assert_keep(def, st, text)                                                                   \
    do {                                                                                             \
        const char *r_ = run(def, st, text);                                                         \
        if (r_) fail_msg("%s dropped (%s) what it should keep: %.80s", (def)->name, r_, (text));     \
    } while (0)
#define assert_drop(def, st, text, reason)                                                           \
    do {                                                                                             \
        const char *r_ = run(def, st, text);                                                         \
        if (!r_ || strcmp(r_, reason))                                                               \
            fail_msg("%s: wanted %s, got %s for: %.80s", (def)->name, reason, r_ ? r_ : "keep", (text)); \
    } while (0)

// A growable string for building documents.
typedef struct {
    char *s;
    size_t n, cap;
} Str;
static void put(Str *b, const char *s) {
    size_t m = strlen(s);
    if (b->n + m + 1 > b->cap) {
        b->cap = (b->n + m + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, m + 1);
    b->n += m;
}
static void putf(Str *b, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(b, tmp);
}
static void reset(Str *b) {
    b->n = 0;
    if (b->s) b->s[0] = 0;
}
// count copies of word, space-separated (with a leading space when b is not empty)
static void words(Str *b, const char *word, int count) {
    for (int i = 0; i < count; i++) {
        if (b->n && b->s[b->n - 1] != '\n') put(b, " ");
        put(b, word);
    }
}

// Unique three-letter words (never repeated across the whole test program).
static int uniq_counter = 0;
static void uniq_word(char *w) {
    int c = uniq_counter++;
    w[0] = (char)('a' + c / 676 % 26);
    w[1] = (char)('a' + c / 26 % 26);
    w[2] = (char)('a' + c % 26);
    w[3] = 0;
}
// Exactly n (>= 3) characters of unique words separated by spaces; the last
// word is lengthened with 'q's to hit n.
static void uniq_text(Str *b, int n) {
    char w[8];
    int made = 0;
    while (n - made >= 7) {  // room for this word, a space, and another word
        uniq_word(w);
        put(b, w);
        put(b, " ");
        made += 4;
    }
    uniq_word(w);
    put(b, w);
    made += 3;
    for (; made < n; made++) put(b, "q");
}

// ---------------------------------------------------------------- gopher_quality
static const KilnStageDef *GQ = &STAGE_GOPHER_QUALITY;

static void test_gq_word_count(void **unused) {
    void *st = make(GQ, NULL);
    Str b = {0};
    words(&b, "the", 2);
    words(&b, "word", 48);  // 50 words: at the minimum
    assert_keep(GQ, st, b.s);
    reset(&b);
    words(&b, "the", 2);
    words(&b, "word", 47);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_short_doc");
    // punctuation is not a word: 49 words and a full stop are still short
    put(&b, " .");
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_short_doc");
    reset(&b);
    words(&b, "the", 2);
    words(&b, "word", 99998);  // 100000 words: at the maximum
    assert_keep(GQ, st, b.s);
    words(&b, "word", 1);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_long_doc");
    free(b.s);
    GQ->destroy(st);
}

static void test_gq_word_length(void **unused) {
    void *st = make(GQ, NULL);
    Str b = {0};
    words(&b, "the", 100);  // mean 3.00
    assert_keep(GQ, st, b.s);
    reset(&b);
    words(&b, "the", 99);
    words(&b, "an", 1);  // mean 2.99
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_below_avg_threshold");
    reset(&b);
    words(&b, "the", 2);
    words(&b, "abcdefghij", 97);
    words(&b, "abcdefghijklmnopqrstuvwx", 1);  // 6 + 970 + 24 = 1000 characters in 100 words: mean 10.00
    assert_keep(GQ, st, b.s);
    reset(&b);
    words(&b, "the", 2);
    words(&b, "abcdefghij", 97);
    words(&b, "abcdefghijklmnopqrstuvwxy", 1);  // mean 10.01
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_above_avg_threshold");
    // length counts characters, not bytes: 100 words of three 2-byte letters
    reset(&b);
    words(&b, "the", 2);
    words(&b, "\xc3\xa9\xc3\xa9\xc3\xa9", 98);
    assert_keep(GQ, st, b.s);
    free(b.s);
    GQ->destroy(st);
}

static void test_gq_symbols(void **unused) {
    void *st = make(GQ, NULL);
    Str b = {0};
    // 90 words and 10 '#' tokens: 10 / 100 tokens = 0.1, not above
    words(&b, "the", 2);
    words(&b, "word", 88);
    words(&b, "#", 10);
    assert_keep(GQ, st, b.s);
    reset(&b);
    words(&b, "the", 2);
    words(&b, "word", 87);
    words(&b, "#", 11);  // 0.11
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_too_many_hashes");
    reset(&b);
    words(&b, "the", 2);
    words(&b, "word", 87);
    words(&b, "...", 5);
    words(&b, "\xe2\x80\xa6", 5);  // U+2026 counts as an ellipsis too
    words(&b, "end", 1);           // (the line does not end in one)
    assert_keep(GQ, st, b.s);      // 10 ellipses / 100 tokens
    words(&b, "...", 1);
    words(&b, "end", 1);  // 11 / 102
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_too_many_ellipsis");
    free(b.s);
    GQ->destroy(st);
}

static void test_gq_lines(void **unused) {
    void *st = make(GQ, NULL);
    Str b = {0};
    // 20 lines, 18 bullets (0.9): kept; 19 bullets (0.95): dropped
    for (int i = 0; i < 20; i++) {
        put(&b, i < 18 ? (i % 2 ? "  - " : "\xe2\x80\xa2 ") : "");
        words(&b, "the word", 5);
        put(&b, "\n");
    }
    assert_keep(GQ, st, b.s);
    reset(&b);
    for (int i = 0; i < 20; i++) {
        put(&b, i < 19 ? "- " : "");
        words(&b, "the word", 5);
        put(&b, "\n");
    }
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_too_many_bullets");
    // 10 lines, 3 ending in an ellipsis (0.3): kept; 4: dropped
    for (int k = 3; k <= 4; k++) {
        reset(&b);
        for (int i = 0; i < 10; i++) {
            words(&b, "the word", 6);
            put(&b, i < k ? (i % 2 ? "...  \n" : " \xe2\x80\xa6\n") : ".\n");
        }
        if (k == 3)
            assert_keep(GQ, st, b.s);
        else
            assert_drop(GQ, st, b.s, "gopher_quality:gopher_too_many_end_ellipsis");
    }
    free(b.s);
    GQ->destroy(st);
}

static void test_gq_alpha_and_stop_words(void **unused) {
    void *st = make(GQ, NULL);
    Str b = {0};
    words(&b, "the", 2);
    words(&b, "word", 78);
    words(&b, "1234", 20);  // 80 of 100 tokens have a letter
    assert_keep(GQ, st, b.s);
    reset(&b);
    words(&b, "the", 2);
    words(&b, "word", 77);
    words(&b, "1234", 21);  // 79 of 100
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_below_alpha_threshold");
    // punctuation tokens count against the ratio too
    reset(&b);
    words(&b, "the", 2);
    words(&b, "word", 78);
    words(&b, "1234", 19);
    words(&b, ",", 1);
    assert_keep(GQ, st, b.s);
    words(&b, ",", 1);  // 80 / 101
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_below_alpha_threshold");
    // two stop words: kept; one: dropped; matching is case-sensitive as in datatrove
    reset(&b);
    words(&b, "of", 1);
    words(&b, "with", 1);
    words(&b, "word", 60);
    assert_keep(GQ, st, b.s);
    reset(&b);
    words(&b, "The", 1);
    words(&b, "with", 1);
    words(&b, "word", 60);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_enough_stop_words");
    GQ->destroy(st);
    // a custom list
    st = make(GQ, "stop_words", "word", "min_stop_words", "60", NULL);
    assert_keep(GQ, st, b.s);
    GQ->destroy(st);
    st = make(GQ, "stop_words", "word", "min_stop_words", "61", NULL);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_enough_stop_words");
    GQ->destroy(st);
    free(b.s);
}

static const char *TEXT_LF_1 =
    "I wish it need not have happened in my time,' said Frodo. 'So do I,' said Gandalf, 'and so do all who live to "
    "see such times. But that is not for them to decide. All we have to decide is what to do with the time that is "
    "given us.'";

// datatrove's tests/pipeline/filters/test_filters.py cases, rewritten here
static void test_gq_datatrove_cases(void **unused) {
    void *st = make(GQ, "min_doc_words", "10", "max_doc_words", "1000", NULL);
    Str b = {0};
    assert_drop(GQ, st, "I am too small...", "gopher_quality:gopher_short_doc");
    words(&b, "I am", 20);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_below_avg_threshold");
    reset(&b);
    words(&b, "interconnection", 20);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_above_avg_threshold");
    reset(&b);
    words(&b, "# comment", 20);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_too_many_hashes");
    reset(&b);
    words(&b, "... comment", 20);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_too_many_ellipsis");
    reset(&b);
    for (int i = 0; i < 20; i++) put(&b, "the ./!*?<><> apple <?////> orange  ++ interconnection !<>??? have");
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_below_alpha_threshold");
    assert_keep(GQ, st, TEXT_LF_1);
    GQ->destroy(st);
    // empty documents are dropped as empty, not divided by zero
    st = make(GQ, "min_doc_words", "0", NULL);
    assert_drop(GQ, st, "", "gopher_quality:empty");
    assert_drop(GQ, st, "   \n  \n", "gopher_quality:empty");
    // 0 disables a rule: only symbols, no words, yet no division by zero
    assert_drop(GQ, st, "# # #", "gopher_quality:gopher_too_many_hashes");
    GQ->destroy(st);
    free(b.s);
}

// The alpha rule's threshold is a minimum: min_alpha_words_ratio, or datatrove's
// name for it (max_non_alpha_words_ratio), not both; alpha_ratio_of: words
// leaves punctuation tokens out of the count (issue 12: dialogue in TinyStories).
static void test_gq_alpha_names(void **unused) {
    Str b = {0};
    words(&b, "the", 2);
    words(&b, "word", 68);
    words(&b, "\"", 30);  // 70 of 100 tokens have a letter; all 70 words do
    void *st = make(GQ, NULL);
    assert_drop(GQ, st, b.s, "gopher_quality:gopher_below_alpha_threshold");
    GQ->destroy(st);
    st = make(GQ, "min_alpha_words_ratio", "0.7", NULL);
    assert_keep(GQ, st, b.s);
    GQ->destroy(st);
    st = make(GQ, "max_non_alpha_words_ratio", "0.7", NULL);
    assert_keep(GQ, st, b.s);
    GQ->destroy(st);
    st = make(GQ, "alpha_ratio_of", "words", NULL);
    assert_keep(GQ, st, b.s);
    GQ->destroy(st);
    make_fails(GQ, "not both", "min_alpha_words_ratio", "0.7", "max_non_alpha_words_ratio", "0.7", NULL);
    make_fails(GQ, "alpha_ratio_of", "alpha_ratio_of", "letters", NULL);
    free(b.s);
}

static void test_gq_params(void **unused) {
    make_fails(GQ, "min_doc_words", "min_doc_words", "-1", NULL);
    make_fails(GQ, "max_symbol_word_ratio", "max_symbol_word_ratio", "abc", NULL);
    void *st = make(GQ, "min_doc_words", "3", "min_stop_words", "0", NULL);
    assert_keep(GQ, st, "three whole words");
    assert_drop(GQ, st, "two words", "gopher_quality:gopher_short_doc");
    GQ->destroy(st);
}

// ---------------------------------------------------------------- gopher_repetition
static const KilnStageDef *GR = &STAGE_GOPHER_REPETITION;

static void test_gr_lines(void **unused) {
    void *st = make(GR, NULL);
    Str b = {0};
    // 10 lines, 3 repeat an earlier one (0.3): kept; 4 (0.4): dropped
    for (int k = 3; k <= 4; k++) {
        reset(&b);
        for (int i = 0; i < 10 - k - 1; i++) {
            uniq_text(&b, 60);
            put(&b, "\n");
        }
        for (int i = 0; i <= k; i++) put(&b, i < k ? "ab\n" : "ab");
        if (k == 3)
            assert_keep(GR, st, b.s);
        else
            assert_drop(GR, st, b.s, "gopher_repetition:dup_line_frac");
    }
    // repeated-line characters: 20 of 100 (0.2): kept; 20 of 99: dropped
    const char *D = "abcdefghijklmnopqrst";  // one 20-character token: no repeated n-grams
    for (int total = 100; total >= 99; total--) {
        reset(&b);
        // three unique lines, then D twice: 5 lines, one repeated
        uniq_text(&b, 30);  // starts with four 3-letter words: the first 4-gram is 15 characters
        put(&b, "\n");
        uniq_text(&b, 18);
        put(&b, "\n");
        uniq_text(&b, total - 44 - 48);
        putf(&b, "\n%s\n%s", D, D);
        assert_int_equal(b.n, total);
        if (total == 100)
            assert_keep(GR, st, b.s);
        else
            assert_drop(GR, st, b.s, "gopher_repetition:dup_line_char_frac");
    }
    // blank lines are not lines (split on runs of newlines), but a final newline
    // leaves an empty last line, as re.split does
    reset(&b);
    for (int i = 0; i < 4; i++) put(&b, "I am your father.\n");
    assert_drop(GR, st, b.s, "gopher_repetition:dup_line_frac");
    free(b.s);
    GR->destroy(st);
}

static void test_gr_paragraphs(void **unused) {
    void *st = make(GR, NULL);
    Str b = {0};
    for (int k = 3; k <= 4; k++) {
        reset(&b);
        for (int i = 0; i < 10 - k - 1; i++) {
            uniq_text(&b, 60);
            put(&b, "\n\n\n");
        }
        for (int i = 0; i <= k; i++) put(&b, i < k ? "ab\n\n" : "ab");
        if (k == 3)
            assert_keep(GR, st, b.s);
        else
            assert_drop(GR, st, b.s, "gopher_repetition:dup_para_frac");
    }
    const char *D = "abcdefghijklmnopqrst";
    for (int total = 100; total >= 99; total--) {
        reset(&b);
        uniq_text(&b, 30);
        put(&b, "\n\n");
        uniq_text(&b, 18);
        put(&b, "\n\n");
        uniq_text(&b, total - 48 - 48);
        putf(&b, "\n\n%s\n\n%s", D, D);
        assert_int_equal(b.n, total);
        if (total == 100)
            assert_keep(GR, st, b.s);
        else
            assert_drop(GR, st, b.s, "gopher_repetition:dup_para_char_frac");
    }
    free(b.s);
    GR->destroy(st);
}

static void test_gr_top_ngrams(void **unused) {
    void *st = make(GR, NULL);
    Str b = {0};
    // "ab cd" four times: 4 * 5 = 20 characters of 100 (0.2): kept; of 99: dropped
    for (int total = 100; total >= 99; total--) {
        reset(&b);
        int fill = total - 26;  // 4 * "ab cd" and 6 spaces
        put(&b, "ab cd ");
        uniq_text(&b, fill / 3);
        put(&b, " ab cd ");
        uniq_text(&b, fill / 3);
        put(&b, " ab cd ");
        uniq_text(&b, fill - 2 * (fill / 3));
        put(&b, " ab cd");
        assert_int_equal(b.n, total);
        if (total == 100)
            assert_keep(GR, st, b.s);
        else
            assert_drop(GR, st, b.s, "gopher_repetition:top_2_gram");
    }
    // datatrove's cases; the second needs Counter.most_common's tie rule: "I am"
    // and "am Frank" both occur 3 times, the first seen ("I am", 12 of 61
    // characters) is the top 2-gram, so the 3-gram rule is the one that fires
    assert_drop(GR, st, "I am Frank, I am Frank, I am Frank", "gopher_repetition:top_2_gram");
    assert_drop(GR, st, "I am Frank, you are Jhon. I am Frank. I am Frank you are Jhon",
                "gopher_repetition:top_3_gram");
    free(b.s);
    GR->destroy(st);
}

static void test_gr_dup_ngrams(void **unused) {
    void *st = make(GR, NULL);
    Str b = {0};
    // four 5-grams of 3-letter words, each twice, between unique words: 4 * 15
    // repeated characters (no spaces) of 400 (0.15): kept; of 399: dropped
    char g[4][32], w[8];
    for (int k = 0; k < 4; k++) {
        g[k][0] = 0;
        for (int i = 0; i < 5; i++) {
            uniq_word(w);
            if (i) strcat(g[k], " ");
            strcat(g[k], w);
        }
    }
    for (int total = 400; total >= 399; total--) {
        reset(&b);
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 4; k++) {
                put(&b, g[k]);
                put(&b, " ");
                uniq_word(w);
                put(&b, w);
                put(&b, " ");
            }
        uniq_text(&b, total - (int)b.n);
        assert_int_equal(b.n, total);
        if (total == 400)
            assert_keep(GR, st, b.s);
        else
            assert_drop(GR, st, b.s, "gopher_repetition:duplicated_5_n_grams");
    }
    reset(&b);
    words(&b, "I am a solo traveller", 4);
    put(&b, " ");
    put(&b, TEXT_LF_1);
    assert_drop(GR, st, b.s, "gopher_repetition:duplicated_5_n_grams");
    GR->destroy(st);
    // find_all_duplicate jumps past a repeated n-gram: twelve "a" give 5-grams at
    // 0 (new), 1 (seen, +5, jump to 6), 6 (seen, +5, jump to 11): 10 of 23
    // characters = 0.4348 (counting every repeat would give 35)
    const char *as = "a a a a a a a a a a a a";
    st = make(GR, "top_n_grams", "none", "dup_line_frac", "0", "dup_line_char_frac", "0", "dup_n_grams", "5=0.44",
              NULL);
    assert_keep(GR, st, as);
    GR->destroy(st);
    st = make(GR, "top_n_grams", "none", "dup_n_grams", "5=0.43", NULL);
    assert_drop(GR, st, as, "gopher_repetition:duplicated_5_n_grams");
    // ...and compares n-grams joined without spaces: "ab c d e f" and "a bc d e f"
    // are the same 5-gram "abcdef": 6 of 21 characters = 0.286
    GR->destroy(st);
    st = make(GR, "top_n_grams", "none", "dup_n_grams", "5=0.28", NULL);
    assert_drop(GR, st, "ab c d e f a bc d e f", "gopher_repetition:duplicated_5_n_grams");
    GR->destroy(st);
    st = make(GR, "top_n_grams", "none", "dup_n_grams", "5=0.29", NULL);
    assert_keep(GR, st, "ab c d e f a bc d e f");
    GR->destroy(st);
    free(b.s);
}

// The n-gram rules against a straightforward reference (datatrove's loops, with
// quadratic searches instead of hashing) on texts of words from a small
// vocabulary whose words run into one another when joined ("ab c" and "a bc"),
// short and long, with copied spans: each rule's value is pinned by a threshold
// equal to it (kept) and one just below (dropped), and rules out of increasing
// order follow a rule that passes.
#define REF_MAX_WORDS 320
typedef struct {
    const char *w[REF_MAX_WORDS];
    int n;
} RefWords;

static int ref_gram_eq(const RefWords *d, int i, int j, int n) {
    for (int k = 0; k < n; k++)
        if (strcmp(d->w[i + k], d->w[j + k])) return 0;
    return 1;
}

// find_top_duplicate: the most common n-gram (first seen among equals) times its length with spaces
static double ref_top(const RefWords *d, int n) {
    int m = d->n - n + 1, best_count = 0, best = 0;
    for (int i = 0; i < m; i++) {
        int first = 1, count = 0;
        for (int j = 0; j < i && first; j++) first = !ref_gram_eq(d, j, i, n);
        if (!first) continue;
        for (int j = i; j < m; j++) count += ref_gram_eq(d, i, j, n);
        if (count > best_count) best_count = count, best = i;
    }
    long chars = n - 1;
    for (int k = 0; k < n; k++) chars += (long)strlen(d->w[best + k]);
    return (double)chars * best_count;
}

// find_all_duplicate: n-grams joined without spaces; a repeat adds its length and the walk jumps past it
static double ref_dup(const RefWords *d, int n) {
    static char seen[REF_MAX_WORDS][1024];
    int nseen = 0;
    double repeated = 0;
    for (int i = 0; i <= d->n - n;) {
        char g[1024] = "";
        for (int k = 0; k < n; k++) strcat(g, d->w[i + k]);
        int hit = 0;
        for (int j = 0; j < nseen && !hit; j++) hit = !strcmp(seen[j], g);
        if (hit) {
            repeated += (double)strlen(g);
            i += n;
        } else {
            strcpy(seen[nseen++], g);
            i++;
        }
    }
    return repeated;
}

static void check_rule(const char *text, int top, int n, double value, const char *before) {
    double len = (double)strlen(text), frac = value / len;
    char rule[64], reason[64];
    const char *key = top ? "top_n_grams" : "dup_n_grams", *other = top ? "dup_n_grams" : "top_n_grams";
    snprintf(reason, sizeof reason, top ? "gopher_repetition:top_%d_gram" : "gopher_repetition:duplicated_%d_n_grams",
             n);
    for (int drop = 0; drop <= (value > 0); drop++) {
        snprintf(rule, sizeof rule, "%d=%.17g", n, drop ? nextafter(frac, 0) : frac);
        void *st = before ? make(GR, key, before, key, rule, other, "none", NULL) : make(GR, key, rule, other, "none", NULL);
        const char *r = run(GR, st, text);  // (reasons belong to the state)
        if (drop ? !r || strcmp(r, reason) : r != NULL)
            fail_msg("%s %d-grams (reference value %.17g of %.0f, %s): got %s for: %s", top ? "top" : "dup", n, value,
                     len, rule, r ? r : "keep", text);
        GR->destroy(st);
    }
}

static void test_gr_ngrams_reference(void **unused) {
    static const char *const VOCAB[] = {"a",        "b",         "ab",         "ba",       "abc",
                                        "c",        "bc",        "ca",         "abcdefgh", "bcdefghij",
                                        "efghijkl", "abcdefghabcdefgh", "ghijklmnopqrstuv", "hij", "x"};
    const int nvocab = (int)(sizeof VOCAB / sizeof VOCAB[0]);
    uint64_t rng = 12345;
    Str b = {0};
    for (int doc = 0; doc < 120; doc++) {
        RefWords d = {.n = 0};
        int want = 1 + (int)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % 300;
        int vocab = 2 + doc % (nvocab - 1);  // small vocabularies repeat more
        while (d.n < want) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(rng >> 33);
            if (r % 5 == 0 && d.n > 10) {  // copy an earlier span
                int len = 2 + (int)(r >> 8) % 12, from = (int)(r >> 16) % (d.n - 1);
                for (int k = 0; k < len && from + k < d.n && d.n < want; k++) d.w[d.n] = d.w[from + k], d.n++;
            } else {
                d.w[d.n++] = VOCAB[(r >> 4) % (unsigned)vocab];
            }
        }
        reset(&b);
        for (int i = 0; i < d.n; i++) {
            if (i) put(&b, " ");
            put(&b, d.w[i]);
        }
        static const int TOP[] = {1, 2, 3, 4, 5}, DUP[] = {1, 2, 3, 5, 6, 8, 10};
        for (int k = 0; k < 5; k++)
            if (d.n >= TOP[k]) check_rule(b.s, 1, TOP[k], ref_top(&d, TOP[k]), TOP[k] < 4 ? "4=1e9" : NULL);
        for (int k = 0; k < 7; k++)
            if (d.n >= DUP[k]) check_rule(b.s, 0, DUP[k], ref_dup(&d, DUP[k]), DUP[k] < 10 ? "10=1e9" : NULL);
    }
    free(b.s);
}

static void test_gr_edges(void **unused) {
    void *st = make(GR, NULL);
    assert_drop(GR, st, "", "gopher_repetition:empty");
    assert_keep(GR, st, "word");
    GR->destroy(st);
    make_fails(GR, "N=FRACTION", "top_n_grams", "2:0.2", NULL);
    make_fails(GR, "N=FRACTION", "dup_n_grams", "0=0.1", NULL);
    make_fails(GR, "dup_line_frac", "dup_line_frac", "-0.5", NULL);
    // custom n-gram rules name their n in the reason
    st = make(GR, "top_n_grams", "7=0.01", "dup_n_grams", "none", NULL);
    assert_drop(GR, st, "one two three four five six seven eight", "gopher_repetition:top_7_gram");
    GR->destroy(st);
}

// ---------------------------------------------------------------- c4
static const KilnStageDef *C4S = &STAGE_C4;

static const char *GOOD_C4 =
    "This is a well-written paragraph with several sentences.\n"
    "The content continues with more good information here.\n"
    "Another important point is being made in this line.\n"
    "We can see that this document has quality content.\n"
    "Finally, the conclusion wraps everything up nicely.\n"
    "An additional sentence to ensure we pass the threshold.";

static void assert_c4_text(void *st, const char *in, const char *want) {
    char *out;
    const char *r = run1(C4S, st, in, strlen(in), &out);
    if (r) fail_msg("c4 dropped (%s): %s", r, in);
    if (strcmp(out, want)) fail_msg("c4 output\n%s\n--- wanted\n%s", out, want);
    free(out);
}

static void test_c4_datatrove_cases(void **unused) {
    void *st = make(C4S, NULL);
    assert_c4_text(st, GOOD_C4, GOOD_C4);
    assert_drop(C4S, st,
                "This is a sentence with lorem ipsum dolor sit amet.\nAnother sentence with proper punctuation.\n"
                "More content to fill out the document.\nEven more content is needed to pass the check.\n"
                "The final sentence of the document.",
                "c4:lorem_ipsum");
    assert_drop(C4S, st,
                "This is some code with a { bracket.\nAnother sentence follows this one.\n"
                "More content to fill out the document.\nEven more content is needed to pass.\n"
                "The final sentence of the document.",
                "c4:curly_bracket");
    assert_drop(C4S, st, "Just one sentence.", "c4:too_few_sentences");
    C4S->destroy(st);
    st = make(C4S, "min_num_sentences", "-1", "min_words_per_line", "-1", NULL);
    assert_c4_text(st, "This site uses cookies for tracking.\nAnother valid line here today.",
                   "Another valid line here today.");
    C4S->destroy(st);
}

static void test_c4_line_rules(void **unused) {
    void *st = make(C4S, "min_num_sentences", "1", NULL);
    // words per line: 3 stay, 2 go
    assert_c4_text(st, "Three words here.\nTwo words.", "Three words here.");
    // terminal punctuation: . ! ? " ' end a line; an ellipsis, a comma or nothing do not
    assert_c4_text(st,
                   "Ends with a period.\nEnds with a bang!\nEnds with a question?\nEnds with \"a quote\"\n"
                   "Ends with 'a quote'\nEnds with an ellipsis...\nEnds with a comma,\nEnds with nothing",
                   "Ends with a period.\nEnds with a bang!\nEnds with a question?\nEnds with \"a quote\"\n"
                   "Ends with 'a quote'");
    // javascript (any case) and policy phrases remove the line
    assert_c4_text(st,
                   "Please enable JavaScript to view this.\nRead our Privacy Policy today.\n"
                   "By continuing you agree to our terms of use.\nThis website uses cookies.\nA plain line stays.",
                   "A plain line stays.");
    // surrounding whitespace and \r\n endings go; citations are cut
    assert_c4_text(st, "  Spaced out line here.  \r\nA cited claim here.[1][23] And more here.[edit]\r\n",
                   "Spaced out line here.\nA cited claim here. And more here.");
    assert_c4_text(st, "Needed here.[citation needed]\nEmpty brackets too.[]", "Needed here.\nEmpty brackets too.");
    // a curly bracket drops the page only in a line that got past the line rules
    assert_c4_text(st, "int main() { return 0 }\nThis line is fine.", "This line is fine.");
    C4S->destroy(st);
}

static void test_c4_word_length(void **unused) {
    void *st = make(C4S, "min_num_sentences", "1", NULL);
    Str b = {0};
    put(&b, "A long word ");
    for (int i = 0; i < 1000; i++) put(&b, "x");
    put(&b, " ends here.\nShort words only here.");
    assert_c4_text(st, b.s, b.s);  // 1000 characters: kept
    reset(&b);
    put(&b, "A long word ");
    for (int i = 0; i < 1001; i++) put(&b, "x");
    put(&b, " ends here.\nShort words only here.");
    assert_c4_text(st, b.s, "Short words only here.");  // 1001: the line goes
    reset(&b);
    put(&b, "Characters, not bytes: ");
    for (int i = 0; i < 1000; i++) put(&b, "\xc3\xa9");
    put(&b, " ends.");
    assert_c4_text(st, b.s, b.s);
    free(b.s);
    C4S->destroy(st);
}

static void test_c4_sentences(void **unused) {
    void *st = make(C4S, NULL);
    // five sentences: kept; four: dropped
    const char *five = "One sentence here.\nTwo sentence here.\nThree sentence here.\nFour sentence here.\n"
                       "Five sentence here.";
    assert_c4_text(st, five, five);
    assert_drop(C4S, st, "One sentence here.\nTwo sentence here.\nThree sentence here.\nFour sentence here.",
                "c4:too_few_sentences");
    // sentences are counted within lines (split at . ! ? before a capital)
    const char *one_line = "First one is here. Second one is here! Third one? Fourth one is here. Fifth one.";
    assert_c4_text(st, one_line, one_line);
    // abbreviations, initials, decimals and a lowercase continuation do not end one
    assert_drop(C4S, st, "Mr. Smith met Dr. J. Watson at 3.14 p.m. on the day. He said hello e.g. to all.",
                "c4:too_few_sentences");
    // removed lines do not count
    assert_drop(C4S, st,
                "One sentence here.\nTwo sentence here.\nThree sentence here.\nFour sentence here.\nNo end here",
                "c4:too_few_sentences");
    C4S->destroy(st);
    // split_paragraph false: the rules apply to sentences, joined with spaces
    st = make(C4S, "split_paragraph", "false", "min_num_sentences", "2", NULL);
    assert_c4_text(st, "A first whole sentence. A second\nwhole sentence! Too short. Dangling words without end",
                   "A first whole sentence. A second\nwhole sentence!");
    C4S->destroy(st);
    make_fails(C4S, "split_paragraph", "split_paragraph", "maybe", NULL);
}

// ---------------------------------------------------------------- wordlist
static const KilnStageDef *WL = &STAGE_WORDLIST;
static char ldnoobw[4200];

static void test_wordlist_ldnoobw(void **unused) {
    void *st = make(WL, "words", ldnoobw, NULL);
    assert_drop(WL, st, "What a pain in the ass.", "wordlist:max_matches");
    assert_drop(WL, st, "WHAT AN ASS", "wordlist:max_matches");          // case-insensitive
    assert_drop(WL, st, "kick-ass results", "wordlist:max_matches");     // word boundaries are non-word characters
    assert_keep(WL, st, "The assistant passed the class assessment.");  // not inside words
    assert_drop(WL, st, "the 2 girls\n1   cup video", "wordlist:max_matches");  // a phrase, across whitespace
    assert_keep(WL, st, "2 girls and 1 cup");
    assert_drop(WL, st, "about s&m here", "wordlist:max_matches");
    assert_drop(WL, st, "a g-spot b", "wordlist:max_matches");
    assert_drop(WL, st, "look \xf0\x9f\x96\x95 here", "wordlist:max_matches");  // the emoji entry
    assert_keep(WL, st, "");
    WL->destroy(st);
}

static void test_wordlist_thresholds(void **unused) {
    const char *path = tmp("words.txt");
    write_bytes(path, "badword\n  two words  \r\n\nbadword two\n", 36);
    void *st = make(WL, "words", path, "max_matches", "2", NULL);
    assert_keep(WL, st, "one badword here");
    assert_drop(WL, st, "one badword here and another BadWord", "wordlist:max_matches");
    assert_drop(WL, st, "two words and two\twords", "wordlist:max_matches");
    assert_keep(WL, st, "badword two words");  // the longest entry matches first: one match
    WL->destroy(st);
    // ratio: matched words / words; 1 of 10 (0.1) kept, 2 of 10 dropped
    st = make(WL, "words", path, "max_ratio", "0.1", NULL);
    assert_keep(WL, st, "badword a b c d e f g h i");
    assert_drop(WL, st, "badword a b c d e f g h badword", "wordlist:max_ratio");
    assert_drop(WL, st, "two words c d e f g h i j", "wordlist:max_ratio");  // a phrase counts its words
    WL->destroy(st);
    make_fails(WL, "'words' is required", NULL);
    make_fails(WL, "no-such-file", "words", "/no-such-file", NULL);
    write_bytes(tmp("empty.txt"), "\n \n", 3);
    make_fails(WL, "no words", "words", tmp("empty.txt"), NULL);
    write_bytes(tmp("bad.txt"), "ok\n\xff\xfe\n", 6);
    make_fails(WL, "bad.txt:2", "words", tmp("bad.txt"), NULL);
}

// The word-list reader never crashes on damaged lists.
static int load_list(const char *path, void *ctx) {
    KilnErr err = {{0}};
    KilnParams ps = {0};
    params_add(&ps, "words", path, "test", &err);
    void *st = NULL;
    int rc = WL->create(&ps, 1, &st, &err);
    params_free(&ps);
    if (rc) return -1;
    run(WL, st, "some text with an ass in it");
    WL->destroy(st);
    return 0;
}

static void test_wordlist_fuzz(void **unused) {
    char *data;
    size_t len;
    KilnErr err;
    assert_int_equal(kiln_read_file(ldnoobw, &data, &len, &err), 0);
    fuzz_mutants(data, len, 64, tmp("fuzz.txt"), 200, 7, load_list, NULL);
    free(data);
}

// ---------------------------------------------------------------- real text
typedef struct {
    char **text;
    size_t *len;
    int n;
} Docs;

static void docs_add(Docs *d, const char *s, size_t n) {
    d->text = realloc(d->text, (size_t)(d->n + 1) * sizeof *d->text);
    d->len = realloc(d->len, (size_t)(d->n + 1) * sizeof *d->len);
    d->text[d->n] = strndup(s, n);
    d->len[d->n++] = n;
}

static void docs_free(Docs *d) {
    for (int i = 0; i < d->n; i++) free(d->text[i]);
    free(d->text);
    free(d->len);
}

// WikiText-2 raw test split: one document per article (" = Title = " lines).
// detok: undo WikiText's own markers " @-@ ", " @,@ ", " @.@ " (a hyphen, comma
// or point inside a word or number) that are not in the Wikipedia text.
static Docs wiki_articles(int detok) {
    char path[4200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/pretrain/wikitext-2-raw/wiki.test.raw", data_dir);
    assert_int_equal(kiln_read_file(path, &data, &len, &err), 0);
    if (detok) {
        size_t o = 0;
        for (size_t i = 0; i < len;) {
            if (i + 5 <= len && data[i] == ' ' && data[i + 1] == '@' && data[i + 3] == '@' && data[i + 4] == ' ' &&
                strchr("-,.", data[i + 2])) {
                data[o++] = data[i + 2];
                i += 5;
            } else {
                data[o++] = data[i++];
            }
        }
        len = o;
    }
    Docs d = {0};
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        int head = i < len && (i == 0 || data[i - 1] == '\n') && !strncmp(data + i, " = ", 3) && data[i + 3] != '=';
        if ((head || i == len) && i > start) {
            docs_add(&d, data + start, i - start);
            start = i;
        }
    }
    free(data);
    return d;
}

// Linux kernel source in 200-line pieces.
static Docs kernel_pieces(void) {
    char path[4200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/pretrain/code/linux-kernel.txt", data_dir);
    assert_int_equal(kiln_read_file(path, &data, &len, &err), 0);
    Docs d = {0};
    size_t start = 0;
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n' && ++lines % 200 == 0) {
            docs_add(&d, data + start, i + 1 - start);
            start = i + 1;
        }
    free(data);
    return d;
}

// Fraction of documents kept; *bytes_kept (if given) gets the fraction of bytes.
static double pass_rate(const KilnStageDef *def, void *st, const Docs *d, const char *name, double *bytes_kept) {
    int kept = 0;
    double in = 0, out = 0;
    for (int i = 0; i < d->n; i++) {
        char *text;
        const char *r = run1(def, st, d->text[i], d->len[i], &text);
        kept += r == NULL;
        in += (double)d->len[i];
        out += r ? 0 : (double)strlen(text);
        if (r && getenv("SHOW_DROPS")) print_message("  %s: %.60s\n", r, d->text[i]);
        free(text);
    }
    double rate = (double)kept / d->n;
    print_message("%-18s %-11s %3d/%3d documents kept (%3.0f%%), %3.0f%% of bytes\n", def->name, name, kept, d->n,
                  100 * rate, 100 * out / in);
    if (bytes_kept) *bytes_kept = out / in;
    return rate;
}

// Pass rates on real text. The reference figures come from datatrove's rules
// run in Python with NLTK's Treebank tokens on the same documents: gopher_quality
// keeps 35/64 raw WikiText articles (the "@-@" markers and numbers are tokens
// without letters, so many fall under 80% alphabetic tokens) and 53/64 once the
// markers are undone; this implementation agrees on every article.
static void test_real_text(void **unused) {
    Docs raw = wiki_articles(0), wiki = wiki_articles(1), code = kernel_pieces();
    assert_int_equal(wiki.n, 64);
    assert_true(code.n >= 400);
    void *gq = make(GQ, NULL), *gr = make(GR, NULL), *c4 = make(C4S, NULL), *wl = make(WL, "words", ldnoobw, NULL);
    double r = pass_rate(GQ, gq, &raw, "wiki raw", NULL);
    assert_true(r >= 0.5 && r <= 0.6);
    assert_true(pass_rate(GQ, gq, &wiki, "wiki detok", NULL) >= 0.8);
    assert_true(pass_rate(GQ, gq, &code, "kernel", NULL) <= 0.01);
    assert_true(pass_rate(GR, gr, &wiki, "wiki detok", NULL) >= 0.95);
    assert_true(pass_rate(GR, gr, &code, "kernel", NULL) <= 0.8);
    // C4 keeps most kernel pieces, rewritten to their comment sentences: code
    // lines lack terminal punctuation, so they go before the '{' rule sees them
    double wiki_bytes, code_bytes;
    assert_true(pass_rate(C4S, c4, &wiki, "wiki detok", &wiki_bytes) >= 0.9);
    pass_rate(C4S, c4, &code, "kernel", &code_bytes);
    assert_true(wiki_bytes >= 0.9);
    assert_true(code_bytes <= 0.1);
    pass_rate(WL, wl, &wiki, "wiki detok", NULL);
    GQ->destroy(gq);
    GR->destroy(gr);
    C4S->destroy(c4);
    WL->destroy(wl);
    docs_free(&raw);
    docs_free(&wiki);
    docs_free(&code);
}

// Davidson et al.'s tweets: the LDNOOBW list drops most of those labelled
// offensive and few of those labelled neither.
static void test_wordlist_tweets(void **unused) {
    char path[4200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/toxicity/davidson-hate-offensive/labeled_data.csv", data_dir);
    assert_int_equal(kiln_read_file(path, &data, &len, &err), 0);
    void *wl = make(WL, "words", ldnoobw, NULL);
    long n[3] = {0}, dropped[3] = {0};
    size_t i = 0;
    while (i < len && data[i] != '\n') i++;  // header
    Str tweet = {0};
    while (++i < len) {
        // six numeric fields (the fifth is the class), then the tweet, maybe quoted
        int field = 0, cls = -1;
        while (i < len && field < 6) {
            if (field == 5) cls = data[i] - '0';
            while (i < len && data[i] != ',') i++;
            i++, field++;
        }
        if (i >= len) break;
        reset(&tweet);
        if (data[i] == '"') {
            for (i++; i < len; i++) {
                if (data[i] == '"' && i + 1 < len && data[i + 1] == '"') {
                    put(&tweet, "\"");
                    i++;
                } else if (data[i] == '"') {
                    i++;
                    break;
                } else {
                    char c[2] = {data[i], 0};
                    put(&tweet, c);
                }
            }
        } else {
            size_t s = i;
            while (i < len && data[i] != '\n') i++;
            char *t = strndup(data + s, i - s);
            put(&tweet, t);
            free(t);
        }
        while (i < len && data[i] != '\n') i++;
        if (cls < 0 || cls > 2 || !tweet.s) continue;
        n[cls]++;
        dropped[cls] += run(WL, wl, tweet.s) != NULL;
    }
    const char *names[3] = {"hate", "offensive", "neither"};
    for (int c = 0; c < 3; c++)
        print_message("wordlist tweets %-9s %5ld/%5ld dropped (%.0f%%)\n", names[c], dropped[c], n[c],
                      100.0 * dropped[c] / n[c]);
    assert_true(n[0] > 1000 && n[1] > 10000 && n[2] > 3000);
    assert_true((double)dropped[1] / n[1] >= 0.6);
    assert_true((double)dropped[2] / n[2] <= 0.2);
    free(tweet.s);
    free(data);
    WL->destroy(wl);
}

// Damaged documents (truncated, flipped bytes, invalid UTF-8) never crash a stage.
static void *fuzz_states[4];
static const KilnStageDef *fuzz_defs[4];
static int run_all(const char *path, void *ctx) {
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) return -1;
    for (int k = 0; k < 4; k++) run1(fuzz_defs[k], fuzz_states[k], data, len, NULL);
    free(data);
    return 0;
}

static void test_fuzz_documents(void **unused) {
    Docs wiki = wiki_articles(0);
    fuzz_defs[0] = GQ, fuzz_defs[1] = GR, fuzz_defs[2] = C4S, fuzz_defs[3] = WL;
    fuzz_states[0] = make(GQ, NULL);
    fuzz_states[1] = make(GR, NULL);
    fuzz_states[2] = make(C4S, "min_num_sentences", "0", NULL);
    fuzz_states[3] = make(WL, "words", ldnoobw, NULL);
    size_t n = wiki.len[1] < 6000 ? wiki.len[1] : 6000;
    fuzz_mutants(wiki.text[1], n, 200, tmp("doc.txt"), 300, 11, run_all, NULL);
    for (int k = 0; k < 4; k++) fuzz_defs[k]->destroy(fuzz_states[k]);
    docs_free(&wiki);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SOURCE_ROOT\n", argv[0]);
        return 2;
    }
    snprintf(data_dir, sizeof data_dir, "%s/../shared/data", argv[1]);
    snprintf(ldnoobw, sizeof ldnoobw, "%s/toxicity/ldnoobw/en", data_dir);
    FILE *f = fopen(ldnoobw, "rb");
    if (!f) {
        fprintf(stderr, "skip: %s not found\n", ldnoobw);
        return 77;
    }
    fclose(f);
    test_tmpdir_create("filters");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gq_word_count),
        cmocka_unit_test(test_gq_word_length),
        cmocka_unit_test(test_gq_symbols),
        cmocka_unit_test(test_gq_lines),
        cmocka_unit_test(test_gq_alpha_and_stop_words),
        cmocka_unit_test(test_gq_datatrove_cases),
        cmocka_unit_test(test_gq_params), cmocka_unit_test(test_gq_alpha_names),
        cmocka_unit_test(test_gr_lines),
        cmocka_unit_test(test_gr_paragraphs),
        cmocka_unit_test(test_gr_top_ngrams),
        cmocka_unit_test(test_gr_dup_ngrams),
        cmocka_unit_test(test_gr_ngrams_reference),
        cmocka_unit_test(test_gr_edges),
        cmocka_unit_test(test_c4_datatrove_cases),
        cmocka_unit_test(test_c4_line_rules),
        cmocka_unit_test(test_c4_word_length),
        cmocka_unit_test(test_c4_sentences),
        cmocka_unit_test(test_wordlist_ldnoobw),
        cmocka_unit_test(test_wordlist_thresholds),
        cmocka_unit_test(test_wordlist_fuzz),
        cmocka_unit_test(test_real_text),
        cmocka_unit_test(test_wordlist_tweets),
        cmocka_unit_test(test_fuzz_documents),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_free(&scratch);
    test_tmpdir_remove();
    return rc;
}
