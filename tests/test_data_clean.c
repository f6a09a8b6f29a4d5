// test_data_clean: the clean stage. Each step on hand-made text with its exact
// expected output (NFKC, line breaks, invisibles, spaces, blank lines, symbols
// kept/named/removed), then real text (WikiText-2 raw with CRLF, the article
// benchmark's texts with ZWSP, ZWJ, CJK and emoji) checked for invariants:
// valid UTF-8, no control or invisible characters left, nothing but whitespace
// touched in ASCII text, and clean(clean(x)) == clean(x). Mutation fuzz last.
#include "kiln/data.h"
#include "core/utf8.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <utf8proc.h>

extern const KilnStageDef STAGE_CLEAN;
static char data_dir[4096];

// The stage built from key, value, ... pairs (NULL-terminated).
#define make(...) test_stage_make(&STAGE_CLEAN, 1, __VA_ARGS__)

// clean(text): the reason (NULL: kept) and the text after it in *out (malloc'd).
static const char *run(void *st, const char *text, size_t len, char **out, size_t *out_len) {
    return test_apply(&STAGE_CLEAN, st, NULL, NULL, text, len, out, out_len);
}

// Asserts clean(in) == want and clean(want) == want (idempotence).
static void check(void *st, const char *in, const char *want) {
    char *got, *again;
    const char *r = run(st, in, strlen(in), &got, NULL);
    if (r || strcmp(got, want)) fail_msg("clean(\"%s\") = \"%s\" (%s), want \"%s\"", in, got, r ? r : "kept", want);
    run(st, got, strlen(got), &again, NULL);
    if (strcmp(again, got)) fail_msg("not idempotent: \"%s\" -> \"%s\"", got, again);
    free(got);
    free(again);
}

static void check_dropped(void *st, const char *in) {
    char *got;
    const char *r = run(st, in, strlen(in), &got, NULL);
    if (!r || strcmp(r, "clean:empty")) fail_msg("\"%s\" should be dropped as clean:empty, got \"%s\"", in, got);
    free(got);
}

// ---------------------------------------------------------------- steps
static void test_nfkc(void **u) {
    void *st = make(NULL);
    check(st, "\xef\xac\x81nd the \xef\xac\x82ow", "find the flow");                  // fi, fl ligatures
    check(st, "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xef\xbc\x91\xef\xbc\x92", "ABC12");  // fullwidth
    check(st, "x\xc2\xb2 + y\xc2\xb3 = z\xe2\x81\xbf", "x2 + y3 = zn");               // superscripts
    check(st, "\xe2\x91\xa0 \xe2\x84\xa2 \xe2\x84\xab", "1 TM \xc3\x85");             // circled 1, TM, angstrom
    check(st, "cafe\xcc\x81 n\xcc\x83", "caf\xc3\xa9 \xc3\xb1");                      // combining marks compose
    check(st, "q\xcc\x87 \xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7", "q\xcc\x87 \xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7");  // and stay when nothing composes
    check(st, "\xe3\x83\x8f\xe3\x82\x9a", "\xe3\x83\x91");                            // katakana + handakuten
    STAGE_CLEAN.destroy(st);
    st = make("nfkc", "false", NULL);
    check(st, "\xef\xac\x81nd x\xc2\xb2", "\xef\xac\x81nd x\xc2\xb2");
    STAGE_CLEAN.destroy(st);
}

static void test_line_breaks_and_controls(void **u) {
    void *st = make(NULL);
    check(st, "a\r\nb\rc\nd", "a\nb\nc\nd");
    check(st, "a\r\n\r\n\r\n\r\nb", "a\n\nb");
    check(st, "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\xc2\x85" "d", "a\nb\nc\nd");  // LS, PS, NEL
    check(st, "a\fb\vc", "a\nb\nc");
    check(st, "a\x01" "b\x1b[0m\x7f" "c\xc2\x9b" "d", "ab[0mcd");  // C0, DEL, C1
    check(st, "\xef\xbb\xbfhello", "hello");                    // BOM
    check(st, "zero\xe2\x80\x8bwidth", "zerowidth");             // ZWSP
    check(st, "co\xc2\xad" "operate", "cooperate");             // soft hyphen
    check(st, "\xe2\x80\xae" "abc\xe2\x80\xac \xe2\x81\xa6x\xe2\x81\xa9 \xe2\x80\x8fy", "abc x y");  // bidi
    check(st, "word\xe2\x81\xa0joiner", "wordjoiner");          // U+2060
    // ZWNJ/ZWJ stay between letters (Persian), go elsewhere
    check(st, "\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85",
          "\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85");
    check(st, "a \xe2\x80\x8c b\xe2\x80\x8d.", "a b.");
    check(st, "bad \xff byte \xc3", "bad \xef\xbf\xbd byte \xef\xbf\xbd");  // invalid UTF-8 -> U+FFFD
    STAGE_CLEAN.destroy(st);
}

static void test_spaces(void **u) {
    void *st = make(NULL);
    check(st, "a\xc2\xa0" "b\xe2\x80\x83\xe2\x80\x83" "c\xe3\x80\x80" "d", "a b c d");  // NBSP, em space, ideographic
    check(st, "a   b    c ", "a b c");
    check(st, "    indented   text\n\tint x;\t\n", "    indented text\n\tint x;");
    check(st, "a  \nb\t\n", "a\nb");
    STAGE_CLEAN.destroy(st);
    st = make("collapse_spaces", "false", NULL);
    check(st, "a   b  \n", "a   b");
    STAGE_CLEAN.destroy(st);
    st = make("keep_tabs", "false", NULL);
    check(st, "\tint\tx;", " int x;");
    STAGE_CLEAN.destroy(st);
}

static void test_blank_lines(void **u) {
    void *st = make(NULL);
    check(st, "a\n\nb", "a\n\nb");          // one blank line: the limit
    check(st, "a\n\n\nb", "a\n\nb");        // two: one goes
    check(st, "a\n \n\t\n  \nb", "a\n\nb");  // whitespace-only lines are blank
    check(st, "\n\n  \nhello\n\n\n", "hello");
    check(st, "\n   x", "   x");  // leading blank lines go, indentation stays
    check_dropped(st, "");
    check_dropped(st, "  \n\t\r\n ");
    check_dropped(st, "\xe2\x80\x8b\xef\xbb\xbf\x01");
    STAGE_CLEAN.destroy(st);
    st = make("max_blank_lines", "0", NULL);
    check(st, "a\n\n\nb\nc", "a\nb\nc");
    STAGE_CLEAN.destroy(st);
    st = make("max_blank_lines", "2", NULL);
    check(st, "a\n\n\nb\n\n\n\nc", "a\n\n\nb\n\n\nc");
    STAGE_CLEAN.destroy(st);
}

// ---------------------------------------------------------------- symbols
#define GRIN "\xf0\x9f\x98\x80"
#define FAMILY "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7"  // man ZWJ woman ZWJ girl
#define FLAG_DE "\xf0\x9f\x87\xa9\xf0\x9f\x87\xaa"
#define THUMBS_TONE "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"  // thumbs up + medium skin tone
#define HEART "\xe2\x9d\xa4\xef\xb8\x8f"                 // U+2764 U+FE0F
#define KEYCAP1 "1\xef\xb8\x8f\xe2\x83\xa3"
#define ENGLAND "\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2\xf3\xa0\x81\xa5\xf3\xa0\x81\xae\xf3\xa0\x81\xa7\xf3\xa0\x81\xbf"
#define COUPLE "\xf0\x9f\x91\xa9\xf0\x9f\x8f\xbd\xe2\x80\x8d\xe2\x9d\xa4\xef\xb8\x8f\xe2\x80\x8d\xf0\x9f\x91\xa8\xf0\x9f\x8f\xbd"
#define BLOND_WOMAN "\xf0\x9f\x91\xb1\xf0\x9f\x8f\xbb\xe2\x80\x8d\xe2\x99\x80\xef\xb8\x8f"

static void test_symbols_keep(void **u) {
    void *st = make(NULL);
    const char *t = "I " HEART " " FAMILY " " FLAG_DE " " THUMBS_TONE " " KEYCAP1 " " ENGLAND " " COUPLE " \xc2\xa9";
    check(st, t, t);
    STAGE_CLEAN.destroy(st);
}

static void test_symbols_names(void **u) {
    void *st = make("symbols", "names", NULL);
    check(st, "Hi " GRIN "!", "Hi :grinning face:!");
    check(st, FAMILY, ":family: man, woman, girl:");
    check(st, FLAG_DE, ":flag: germany:");
    check(st, THUMBS_TONE, ":thumbs up sign: medium skin tone:");
    check(st, HEART, ":heavy black heart:");
    check(st, KEYCAP1 " #\xe2\x83\xa3", ":keycap: 1: :keycap: #:");
    check(st, ENGLAND, ":flag: england:");
    check(st, COUPLE, ":couple with heart: woman, man, medium skin tone:");
    check(st, BLOND_WOMAN, ":woman: light skin tone, blond hair:");
    check(st, "\xc2\xa9 2024, 25\xc2\xb0" "C", ":copyright sign: 2024, 25:degree sign:C");  // every So symbol
    // no name for the whole: its parts
    check(st, GRIN "\xe2\x80\x8d" GRIN, ":grinning face::grinning face:");
    check(st, "\xf0\x9f\x87\xa6\xf0\x9f\x87\xa6", ":regional indicator symbol letter a::regional indicator symbol letter a:");
    check(st, "\xf0\x9f\x87\xa9", ":regional indicator symbol letter d:");
    check(st, "\xf0\x9f\x8f\xbd", ":emoji modifier fitzpatrick type-4:");  // a tone alone
    // marks on a symbol go with it; stray selectors go; plain digits stay
    check(st, GRIN "\xcc\x81", ":grinning face:");
    check(st, "x\xef\xb8\x8f 1 #2", "x 1 #2");
    // NFKC first: U+203C is "!!" under NFKC, a symbol only without it
    check(st, "\xe2\x80\xbc\xef\xb8\x8f", "!!");
    STAGE_CLEAN.destroy(st);
    st = make("symbols", "names", "nfkc", "false", NULL);
    check(st, "\xe2\x80\xbc\xef\xb8\x8f \xe2\x80\xbc", ":double exclamation mark: \xe2\x80\xbc");
    STAGE_CLEAN.destroy(st);
}

static void test_symbols_remove(void **u) {
    void *st = make("symbols", "remove", NULL);
    check(st, "Hi " GRIN " there " FAMILY "!", "Hi there !");
    check(st, "a" FLAG_DE "b" THUMBS_TONE "c" KEYCAP1 "d" ENGLAND "e" COUPLE "f" HEART "g", "abcdefg");
    check(st, "#1 and 2\xef\xb8\x8f", "#1 and 2");
    check(st, "a\xe2\x80\x8d" GRIN, "a");  // the joiner left alone at the end goes too
    check(st, "caf\xc3\xa9 \xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7", "caf\xc3\xa9 \xe0\xa4\x95\xe0\xa5\x8d\xe0\xa4\xb7");
    check_dropped(st, GRIN " " FAMILY "\n" FLAG_DE);
    // more marks than a cluster holds: all go with the symbol (none left to
    // compose with the letter before it on a second run)
    char zalgo[256] = "a" GRIN;
    for (int i = 0; i < 40; i++) strcat(zalgo, "\xcc\x81");
    strcat(zalgo, "b");
    check(st, zalgo, "ab");
    STAGE_CLEAN.destroy(st);
}

// Every RGI emoji sequence of Unicode's own list gets its CLDR name (all but
// modifier sequences, which are named by their base's Unicode name + tone).
static void test_symbols_rgi(void **u) {
    const char *path = "/usr/share/unicode/emoji/emoji-zwj-sequences.txt";
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) {
        print_message("skip: %s\n", err.msg);
        return;
    }
    void *st = make("symbols", "names", NULL);
    int n = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        char *semi = strchr(line, ';'), *semi2 = semi ? strchr(semi + 1, ';') : NULL;
        if (!semi2) continue;
        char text[128], want[200], *g = text;
        for (char *p = line; p < semi;) {
            long cp = strtol(p, &p, 16);
            if (cp) g += utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)g);
            while (*p == ' ') p++;
        }
        *g = 0;
        char *name = semi2 + 1, *hash = strchr(name, '#');
        while (*name == ' ') name++;
        while (hash > name && hash[-1] == ' ') hash--;
        int k = snprintf(want, sizeof want, ":%.*s:", (int)(hash - name), name);
        for (int i = 0; i < k; i++) want[i] = (char)(want[i] >= 'A' && want[i] <= 'Z' ? want[i] + 32 : want[i]);
        check(st, text, want);
        n++;
    }
    print_message("%d RGI ZWJ sequences named as Unicode names them\n", n);
    assert_true(n > 1300);
    free(data);
    STAGE_CLEAN.destroy(st);
}

// ---------------------------------------------------------------- real text
static int has_invisible(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return 1;
        i += (size_t)k;
        if ((c < 0x20 && c != '\n' && c != '\t') || (c >= 0x7F && c < 0xA0) || c == 0xFEFF || c == 0x200B ||
            c == 0x00AD || c == 0x2060 || c == 0x202E || c == 0x2028)
            return 1;
    }
    return 0;
}

typedef struct {
    long docs, changed, bytes;
    double seconds;
} Tally;

// clean(doc) is valid, has no control or invisible characters, no trailing
// spaces or blank line runs, and is a fixed point.
static void check_invariants(void *st, const char *text, size_t len, Tally *t) {
    char *out, *again;
    size_t n, n2;
    double t0 = kiln_now();
    const char *r = run(st, text, len, &out, &n);
    t->seconds += kiln_now() - t0;
    t->docs++;
    t->bytes += (long)len;
    t->changed += n != len || memcmp(out, text, len);
    if (!r) {
        assert_true(utf8_valid(out, n));
        if (has_invisible(out, n)) fail_msg("control/invisible left in: %.200s", out);
        assert_null(strstr(out, " \n"));
        assert_null(strstr(out, "\n\n\n"));
        assert_true(n > 0 && out[n - 1] != '\n' && out[0] != '\n');
        assert_null(run(st, out, n, &again, &n2));
        if (n2 != n || memcmp(again, out, n)) {
            for (size_t i = 0; i < len; i++) fprintf(stderr, "%02x", (unsigned char)text[i]);
            fprintf(stderr, " ->\n");
            for (size_t i = 0; i < n; i++) fprintf(stderr, "%02x", (unsigned char)out[i]);
            fprintf(stderr, " ->\n");
            for (size_t i = 0; i < n2; i++) fprintf(stderr, "%02x", (unsigned char)again[i]);
            fail_msg("\nnot idempotent on: %.300s", out);
        }
        free(again);
    }
    free(out);
}

static void test_wikitext_crlf(void **u) {
    char path[4200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/pretrain/wikitext-2-raw/wiki.test.raw", data_dir);
    if (kiln_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    void *st = make(NULL);
    Tally t = {0};
    // documents of 8 lines; in ASCII ones only whitespace may change
    long ascii_docs = 0;
    for (size_t p = 0; p < len;) {
        size_t e = p;
        for (int k = 0; k < 8 && e < len; k++) {
            const char *nl = memchr(data + e, '\n', len - e);
            e = nl ? (size_t)(nl - data) + 1 : len;
        }
        assert_non_null(memchr(data + p, '\r', e - p));
        check_invariants(st, data + p, e - p, &t);
        char *out;
        size_t n;
        run(st, data + p, e - p, &out, &n);
        assert_null(memchr(out, '\r', n));
        int ascii = 1;
        for (size_t i = p; i < e; i++) ascii &= (unsigned char)data[i] < 0x80;
        if (ascii) {
            ascii_docs++;
            size_t i = p, j = 0;
            for (;;) {  // the same non-space characters, in order
                while (i < e && (data[i] == ' ' || data[i] == '\r' || data[i] == '\n')) i++;
                while (j < n && (out[j] == ' ' || out[j] == '\n')) j++;
                if (i == e || j == n) break;
                if (data[i] != out[j]) fail_msg("text changed at byte %zu", i);
                i++, j++;
            }
            assert_true(i == e && j == n);
        }
        free(out);
        p = e;
    }
    print_message("wikitext raw: %ld docs (%ld ASCII), %ld changed, %.1f MB/s\n", t.docs, ascii_docs, t.changed,
                  t.bytes / 1e6 / t.seconds);
    assert_true(t.changed == t.docs && ascii_docs > 10);
    free(data);
    STAGE_CLEAN.destroy(st);
}

static void test_articles(void **u) {
    char path[4200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/web/article-extraction-benchmark/ground-truth.json", data_dir);
    if (kiln_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    cJSON *root = cJSON_ParseWithLength(data, len);
    assert_non_null(root);
    const char *modes[] = {"keep", "names", "remove"};
    for (int m = 0; m < 3; m++) {
        void *st = make("symbols", modes[m], NULL);
        Tally t = {0};
        long zwsp = 0, so_left = 0;
        for (cJSON *a = root->child; a; a = a->next) {
            const char *body = cJSON_GetStringValue(cJSON_GetObjectItem(a, "articleBody"));
            if (!body) continue;
            zwsp += strstr(body, "\xe2\x80\x8b") != NULL;
            check_invariants(st, body, strlen(body), &t);
            char *out;
            size_t n;
            if (run(st, body, strlen(body), &out, &n)) {
                free(out);
                continue;
            }
            for (size_t i = 0; i < n;) {
                utf8proc_int32_t c;
                i += (size_t)utf8proc_iterate((const utf8proc_uint8_t *)out + i, (utf8proc_ssize_t)(n - i), &c);
                so_left += utf8proc_category(c) == UTF8PROC_CATEGORY_SO;
            }
            free(out);
        }
        print_message("articles, symbols %s: %ld docs (%ld with ZWSP), %ld changed, %ld So left, %.1f MB/s\n",
                      modes[m], t.docs, zwsp, t.changed, so_left, t.bytes / 1e6 / t.seconds);
        assert_true(t.docs == 181 && zwsp > 0);
        if (m == 0) assert_true(so_left > 0);  // the benchmark has symbols (e.g. the copyright sign)
        else assert_int_equal(so_left, 0);
        STAGE_CLEAN.destroy(st);
    }
    cJSON_Delete(root);
    free(data);
}

// ---------------------------------------------------------------- fuzz and params
static int fuzz_clean(const char *path, void *ctx) {
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) return -1;
    Tally t = {0};
    for (int m = 0; m < 3; m++) check_invariants(((void **)ctx)[m], data, len, &t);
    free(data);
    return 0;
}

static void test_fuzz(void **u) {
    const char *seed_text = "Caf\xc3\xa9 \xef\xac\x81 \r\n\r\n\r\n" GRIN FAMILY " " FLAG_DE THUMBS_TONE KEYCAP1 ENGLAND
                            " x\xe2\x80\x8d" "y \xd9\x85\xe2\x80\x8c\xd8\xae\t tab  \xc2\xa0 \n\n\n\n" COUPLE
                            BLOND_WOMAN " e\xcc\x81\xcc\x88 \xe2\x80\xbc\xef\xb8\x8f \xe3\x83\x8f\xe3\x82\x9a end";
    void *st[3] = {make(NULL), make("symbols", "names", NULL), make("symbols", "remove", "keep_tabs", "false", NULL)};
    int refused = fuzz_mutants(seed_text, strlen(seed_text), 40, tmp("mutant"), 3000, 7, fuzz_clean, st);
    assert_int_equal(refused, 0);
    for (int m = 0; m < 3; m++) STAGE_CLEAN.destroy(st[m]);
}

// Random strings over the characters each rule is about (joiners next to
// letters, marks and spaces; selectors, tones, flags, tags, keycaps; characters
// NFKC expands into spaces and marks; line breaks, controls, invisibles):
// every mode must give valid text that a second run leaves alone.
static void test_palette_fuzz(void **u) {
    static const int32_t P[] = {'a', 'e', 'Z', '1', '#', '*', ' ', ' ', '\n', '\r', '\t', 0x01, 0x85, 0xA0, 0xAD,
                                0xA8, 0xB4, 0x2122, 0x203C, 0xFB01, 0x2460, 0x3000, 0x2028, 0x0301, 0x0308,
                                0x0338, 0x20E3, 0x200B, 0x200C, 0x200D, 0x200E, 0x2060, 0xFEFF, 0xFE0E, 0xFE0F,
                                0x1F3FB, 0x1F3FD, 0x1F1E9, 0x1F1EA, 0x1F3F4, 0xE0067, 0xE0062, 0xE007F, 0x1F600,
                                0x1F468, 0x1F469, 0x2764, 0x2640, 0xA9, 0x2190, 0x1100, 0x1161, 0x11A8, 0x0645,
                                0x0928, 0x094D, 0xD55C, 0x3099, 0x30CF, 0xFFFD};
    const int np = (int)(sizeof P / sizeof P[0]);
    void *st[3] = {make(NULL), make("symbols", "names", NULL), make("symbols", "remove", "max_blank_lines", "0", NULL)};
    KilnRng r;
    kiln_rng_seed(&r, getenv("KILN_FUZZ_SEED") ? strtoull(getenv("KILN_FUZZ_SEED"), NULL, 10) : 11);
    Tally t = {0};
    for (int it = 0; it < (getenv("KILN_FUZZ_ITERS") ? atoi(getenv("KILN_FUZZ_ITERS")) : 20000); it++) {
        char buf[256];
        size_t n = 0;
        int len = 1 + (int)(kiln_rng_u64(&r) % 24);
        for (int k = 0; k < len; k++) n += (size_t)utf8proc_encode_char(P[kiln_rng_u64(&r) % (uint64_t)np], (utf8proc_uint8_t *)buf + n);
        check_invariants(st[it % 3], buf, n, &t);
    }
    print_message("palette fuzz: %ld strings, %ld changed\n", t.docs, t.changed);
    for (int m = 0; m < 3; m++) STAGE_CLEAN.destroy(st[m]);
}

static void test_params(void **u) {
    KilnParams ps = {0};
    KilnErr err = {{0}};
    void *st = NULL;
    params_add(&ps, "symbols", "emoji", "test", &err);
    assert_int_equal(STAGE_CLEAN.create(&ps, 1, &st, &err), -1);
    assert_non_null(strstr(err.msg, "symbols"));
    params_free(&ps);
    memset(&ps, 0, sizeof ps);
    params_add(&ps, "max_blank_lines", "-1", "test", &err);
    assert_int_equal(STAGE_CLEAN.create(&ps, 1, &st, &err), -1);
    assert_non_null(strstr(err.msg, "max_blank_lines"));
    params_free(&ps);
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, NULL, data_dir, sizeof data_dir, "pretrain/wikitext-2-raw/wiki.test.raw", NULL))
        return TEST_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nfkc),
        cmocka_unit_test(test_line_breaks_and_controls),
        cmocka_unit_test(test_spaces),
        cmocka_unit_test(test_blank_lines),
        cmocka_unit_test(test_symbols_keep),
        cmocka_unit_test(test_symbols_names),
        cmocka_unit_test(test_symbols_remove),
        cmocka_unit_test(test_symbols_rgi),
        cmocka_unit_test(test_wikitext_crlf),
        cmocka_unit_test(test_articles),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_palette_fuzz),
        cmocka_unit_test(test_params),
    };
    return TEST_RUN("clean", tests);
}
