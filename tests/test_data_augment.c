// test_data_augment: the augment_gender stage. Exact swaps with case kept and
// whole words only, the her -> his/him rule, pair files and their errors, the
// chosen fraction on 10k ids (within tolerance, deterministic, independent of
// order), and TinyStories: swapping twice gives the text back wherever no
// ambiguous word (her/his/him/hers) is involved.
#include "kiln/data.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

extern const KilnStageDef STAGE_AUGMENT_GENDER;
#define AUG STAGE_AUGMENT_GENDER
static char data_dir[4096];

// create fails with a message containing want
static void make_fails(const char *want, const char *k, const char *v) {
    KilnParams ps = {0};
    KilnErr err = {{0}};
    params_add(&ps, k, v, "test", &err);
    void *st = NULL;
    if (!AUG.create(&ps, 1, &st, &err)) fail_msg("create should fail (%s)", want);
    if (!strstr(err.msg, want)) fail_msg("error '%s' lacks '%s'", err.msg, want);
    params_free(&ps);
}

// The text after the stage (malloc'd); the document must be kept.
static char *run_id(void *st, const char *source, const char *id, const char *text) {
    char *out;
    assert_null(test_apply(&AUG, st, source, id, text, strlen(text), &out, NULL));
    return out;
}

static void check(void *st, const char *in, const char *want) {
    char *got = run_id(st, "t", "1", in);
    if (strcmp(got, want)) fail_msg("swap(\"%s\") = \"%s\", want \"%s\"", in, got, want);
    free(got);
}

static void test_swaps(void **u) {
    void *st = test_stage_make(&AUG, 1, "fraction", "1", NULL);
    check(st, "He gave her his book.", "She gave him her book.");
    check(st, "The book is his. The pen is hers.", "The book is hers. The pen is his.");
    check(st, "She told her that her mother loved her.", "He told him that his father loved him.");
    check(st, "with her and her own", "with him and his own");
    check(st, "He washed himself; Himself, HIMSELF", "She washed herself; Herself, HERSELF");
    check(st, "HE SAID SHE WAS THE KING", "SHE SAID HE WAS THE QUEEN");
    check(st, "Mr. Smith met Mrs. Smith, his wife.", "Mrs. Smith met Mr. Smith, her husband.");
    check(st, "The men and women, boys and girls.", "The women and men, girls and boys.");
    check(st, "he's the king's son", "she's the queen's daughter");
    check(st, "step-father", "step-mother");
    // whole words only, and only lower/Title/UPPER case
    const char *same[] = {"the theme", "shepherd manager human", "Hermann Heroic", "he_x he2 x_he",
                          "h\xc3\xa9 he\xc3\xa9", "hE mAn", "Queensland", NULL};
    for (int i = 0; same[i]; i++) check(st, same[i], same[i]);
    check(st, "(he)\n[she]", "(she)\n[he]");
    AUG.destroy(st);
}

static void test_pairs_file(void **u) {
    const char *pairs = "# animals\ncat dog\n\n  Mouse   Rat  # comment\n";
    write_bytes(tmp("pairs.txt"), pairs, strlen(pairs));
    void *st = test_stage_make(&AUG, 1, "fraction", "1", "pairs", tmp("pairs.txt"), NULL);
    check(st, "The cat and the dog. MOUSE, he", "The dog and the cat. RAT, he");
    AUG.destroy(st);
    // the ambiguity rule with a file: a word in two pairs
    write_bytes(tmp("amb.txt"), "x y\nx z\n", 8);
    st = test_stage_make(&AUG, 1, "fraction", "1", "pairs", tmp("amb.txt"), NULL);
    check(st, "x word, x.", "y word, z.");
    AUG.destroy(st);
    const struct {
        const char *text, *want;
    } bad[] = {
        {"cat dog\none\n", "bad.txt:2: expected two words"},
        {"a b c\n", "bad.txt:1: more than two words"},
        {"cat cat\n", "bad.txt:1: a word paired with itself"},
        {"a1 b\n", "bad.txt:1: expected two words"},
        {"x y\nx z\nx w\n", "bad.txt:3: \"x\" is in more than two pairs"},
        {"# only a comment\n\n", "no pairs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_bytes(tmp("bad.txt"), bad[i].text, strlen(bad[i].text));
        make_fails(bad[i].want, "pairs", tmp("bad.txt"));
    }
    make_fails("pairs", "pairs", tmp("missing.txt"));
    make_fails("fraction", "fraction", "1.5");
    make_fails("fraction", "fraction", "-0.1");
    make_fails("mode", "mode", "append");
}

// How many of 10k ids (source "s") a stage swaps, and which.
static long chosen_ids(void *st, const char *source, unsigned char *which, int reverse) {
    long n = 0;
    for (int k = 0; k < 10000; k++) {
        int i = reverse ? 9999 - k : k;
        char id[32];
        snprintf(id, sizeof id, "doc-%d", i);
        char *out = run_id(st, source, id, "he");
        which[i] = !strcmp(out, "she");
        n += which[i];
        free(out);
    }
    return n;
}

static void test_fraction(void **u) {
    static unsigned char a[10000], b[10000], c[10000], d[10000];
    const char *fr[] = {"0", "0.1", "0.5", "0.9", "1"};
    const double f[] = {0, 0.1, 0.5, 0.9, 1};
    for (int i = 0; i < 5; i++) {
        void *st = test_stage_make(&AUG, 42, "fraction", fr[i], NULL);
        long n = chosen_ids(st, "s", a, 0);
        print_message("fraction %s: %ld of 10000\n", fr[i], n);
        assert_true(labs(n - (long)(f[i] * 10000)) <= 150);  // 3 binomial sd at 0.5 is 150
        if (f[i] == 0 || f[i] == 1) assert_int_equal(n, (long)(f[i] * 10000));
        char *rep = AUG.report_json(st);
        char want[96];
        snprintf(want, sizeof want, "{\"docs_selected\":%ld,\"words_swapped\":%ld}", n, n);
        assert_string_equal(rep, want);
        free(rep);
        AUG.destroy(st);
    }
    // deterministic: a second stage with the same seed, in the reverse order,
    // picks the same documents; another seed or another source picks others
    void *s1 = test_stage_make(&AUG, 42, "fraction", "0.5", NULL), *s2 = test_stage_make(&AUG, 42, "fraction", "0.5", NULL),
         *s3 = test_stage_make(&AUG, 43, "fraction", "0.5", NULL);
    chosen_ids(s1, "s", a, 0);
    chosen_ids(s2, "s", b, 1);
    chosen_ids(s3, "s", c, 0);
    chosen_ids(s1, "other", d, 0);
    assert_memory_equal(a, b, sizeof a);
    long same_seed = 0, same_source = 0;
    for (int i = 0; i < 10000; i++) same_seed += a[i] == c[i], same_source += a[i] == d[i];
    print_message("agreement with another seed %ld, another source %ld (of 10000; chance is 5000)\n", same_seed,
                  same_source);
    assert_true(labs(same_seed - 5000) < 300 && labs(same_source - 5000) < 300);
    AUG.destroy(s1);
    AUG.destroy(s2);
    AUG.destroy(s3);
}

static int has_ambiguous(const char *s, size_t n) {
    const char *w[] = {"her", "his", "him", "hers"};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            size_t l = strlen(w[k]);
            if (i + l <= n && !strncasecmp(s + i, w[k], l)) return 1;
        }
    return 0;
}

static void test_tinystories(void **u) {
    char path[4200], *data;
    size_t len;
    KilnErr err;
    snprintf(path, sizeof path, "%s/pretrain/tinystories/TinyStories-train.head-part1.txt", data_dir);
    if (kiln_read_file(path, &data, &len, &err)) fail_msg("%s", err.msg);
    void *st = test_stage_make(&AUG, 7, "fraction", "1", NULL);
    long lines = 0, round_trips = 0, changed = 0;
    double secs = 0;
    for (size_t p = 0; p < len;) {
        const char *nl = memchr(data + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - data) : len;
        char *line = strndup(data + p, e - p);
        double t0 = kiln_now();
        char *once = run_id(st, "ts", "1", line);
        secs += kiln_now() - t0;
        changed += strcmp(once, line) != 0;
        if (!has_ambiguous(line, e - p)) {
            char *twice = run_id(st, "ts", "1", once);
            if (strcmp(twice, line)) fail_msg("round trip:\n%s\n%s\n%s", line, once, twice);
            free(twice);
            round_trips++;
        }
        free(once);
        free(line);
        lines++;
        p = e + 1;
    }
    char *rep = AUG.report_json(st);
    print_message("tinystories: %ld lines, %ld changed, %ld round trips, %s, %.1f MB/s\n", lines, changed,
                  round_trips, rep, len / 1e6 / secs);
    free(rep);
    assert_true(changed > 2000 && round_trips > 5000);
    free(data);
    AUG.destroy(st);
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, NULL, data_dir, sizeof data_dir, "pretrain/tinystories/TinyStories-train.head-part1.txt",
                      NULL))
        return TEST_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swaps),
        cmocka_unit_test(test_pairs_file),
        cmocka_unit_test(test_fraction),
        cmocka_unit_test(test_tinystories),
    };
    return TEST_RUN("augment", tests);
}
