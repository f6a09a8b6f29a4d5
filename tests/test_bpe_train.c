// test_bpe_train: the BPE trainer against a naive trainer that recounts every pair
// before each merge (same tie-break), determinism across thread counts, and errors.
#include "kiln/tokenizer.h"

#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char path[1024];
static const char *GPT2 = NULL;

static KilnTokenizer *train(int vocab, long long min_freq, const char *file) {
    KilnBpeTrainOptions o = {0};
    const char *sp[] = {"<|endoftext|>"};
    o.vocab_size = vocab;
    o.pattern = GPT2;
    o.specials = sp;
    o.n_special = 1;
    o.min_frequency = min_freq;
    KilnTokenizer *t;
    KilnErr err;
    if (tokenizer_train(&t, &file, 1, &o, &err)) fail_msg("%s", err.msg);
    return t;
}

// The naive trainer: words as byte strings with counts (pieces from the kiln
// tokenizer's own pre-tokenizer are not available here, so the test splits with
// the same rule via the trained tokenizer's encode of single pieces: instead it
// uses the GPT-2 rank file's pre-tokenizer through tokenizer_encode of a
// byte-level vocabulary). Simpler and independent: pieces = maximal runs that the
// gpt2 regex would give for plain ASCII letters/spaces text, produced by the
// generator below, so the split is known exactly.
typedef struct {
    int *sym;
    int len;
    long long count;
} Word;

static void naive_merges(Word *w, int nw, int nmerges, int (*out)[2]) {
    for (int m = 0; m < nmerges; m++) {
        // count all pairs
        long long best = 0;
        int ba = -1, bb = -1;
        int maxid = 256 + m;
        long long *cnt = calloc((size_t)maxid * maxid, sizeof(long long));
        for (int i = 0; i < nw; i++)
            for (int k = 0; k + 1 < w[i].len; k++) cnt[(long)w[i].sym[k] * maxid + w[i].sym[k + 1]] += w[i].count;
        for (int a = 0; a < maxid; a++)
            for (int b = 0; b < maxid; b++) {
                long long c = cnt[(long)a * maxid + b];
                if (c > best) {  // strictly greater: the first (smallest a, then b) wins ties
                    best = c;
                    ba = a;
                    bb = b;
                }
            }
        free(cnt);
        out[m][0] = ba;
        out[m][1] = bb;
        if (ba < 0) return;
        for (int i = 0; i < nw; i++) {
            int o = 0;
            for (int k = 0; k < w[i].len;) {
                if (k + 1 < w[i].len && w[i].sym[k] == ba && w[i].sym[k + 1] == bb) {
                    w[i].sym[o++] = 256 + m;
                    k += 2;
                } else {
                    w[i].sym[o++] = w[i].sym[k++];
                }
            }
            w[i].len = o;
        }
    }
}

static void test_matches_naive_trainer(void **state) {
    // text of lowercase words separated by single spaces: the gpt2 pattern splits
    // it into " word" pieces (the first word without its space) exactly
    char file[] = "/tmp/kiln_bpe_XXXXXX";
    int fd = mkstemp(file);
    FILE *f = fdopen(fd, "w");
    KilnRng r;
    kiln_rng_seed(&r, 5);
    const char *syll[] = {"ka", "lo", "mi", "re", "tan", "so", "ve", "qu", "in", "th", "e", "a"};
    int nwords = 20000;
    char (*words)[32] = calloc((size_t)nwords, 32);
    for (int i = 0; i < nwords; i++) {
        int ns = 1 + (int)(kiln_rng_u64(&r) % 4);
        // Zipf-ish: reuse earlier words often
        if (i > 50 && kiln_rng_uniform(&r) < 0.7f) {
            strcpy(words[i], words[kiln_rng_u64(&r) % 50]);
        } else {
            for (int s = 0; s < ns; s++) strcat(words[i], syll[kiln_rng_u64(&r) % 12]);
        }
        fprintf(f, i ? " %s" : "%s", words[i]);
    }
    fclose(f);
    // naive side: piece counts
    Word *w = calloc((size_t)nwords, sizeof *w);
    int nw = 0;
    for (int i = 0; i < nwords; i++) {
        char piece[40];
        snprintf(piece, sizeof piece, i ? " %s" : "%s", words[i]);
        int found = -1;
        for (int k = 0; k < nw && found < 0; k++) {
            if (w[k].len != (int)strlen(piece)) continue;
            int same = 1;
            for (int c = 0; c < w[k].len && same; c++) same = w[k].sym[c] == (unsigned char)piece[c];
            if (same) found = k;
        }
        if (found >= 0) {
            w[found].count++;
            continue;
        }
        w[nw].len = (int)strlen(piece);
        w[nw].sym = malloc(sizeof(int) * w[nw].len);
        for (int c = 0; c < w[nw].len; c++) w[nw].sym[c] = (unsigned char)piece[c];
        w[nw++].count = 1;
    }
    int nmerges = 120;
    int(*want)[2] = calloc((size_t)nmerges, sizeof *want);
    naive_merges(w, nw, nmerges, want);
    KilnTokenizer *t = train(256 + nmerges + 1, 1, file);
    // kiln's merges: token 256+m is the concatenation of the pair the naive trainer chose
    for (int m = 0; m < nmerges; m++) {
        int la, lb, lt;
        const uint8_t *a = tokenizer_token_bytes(t, want[m][0], &la);
        const uint8_t *b = tokenizer_token_bytes(t, want[m][1], &lb);
        const uint8_t *tok = tokenizer_token_bytes(t, 256 + m, &lt);
        if (lt != la + lb || memcmp(tok, a, la) || memcmp(tok + la, b, lb))
            fail_msg("merge %d: kiln made '%.*s', the naive trainer '%.*s'+'%.*s'", m, lt, tok, la, a, lb, b);
    }
    tokenizer_free(t);
    for (int k = 0; k < nw; k++) free(w[k].sym);
    free(w);
    free(want);
    free(words);
    unlink(file);
}

static void test_deterministic_across_threads(void **state) {
    int n1, n2;
    omp_set_num_threads(1);
    KilnTokenizer *a = train(2000, 2, path);
    omp_set_num_threads(2);
    KilnTokenizer *b = train(2000, 2, path);
    assert_int_equal(n1 = tokenizer_vocab_size(a), n2 = tokenizer_vocab_size(b));
    for (int id = 0; id < n1; id++) {
        int la, lb;
        const uint8_t *x = tokenizer_token_bytes(a, id, &la), *y = tokenizer_token_bytes(b, id, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, la);
    }
    // round trip with the trained tokenizer, specials last
    assert_int_equal(tokenizer_special_id(a, "<|endoftext|>"), n1 - 1);
    const char *text = "First Citizen:\nBefore we proceed any further, hear me speak. \xff\xfe odd bytes";
    KilnIds ids = {0};
    KilnErr err;
    assert_int_equal(tokenizer_encode(a, text, strlen(text), KILN_SPECIAL_ERROR, &ids, &err), 0);
    assert_true(ids.n < (long)strlen(text) / 2);
    char *out;
    size_t len;
    assert_int_equal(tokenizer_decode(a, ids.ids, ids.n, &out, &len, &err), 0);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(out, text, len);
    free(out);
    ids_free(&ids);
    tokenizer_free(a);
    tokenizer_free(b);
}

static void test_min_frequency_and_errors(void **state) {
    KilnTokenizer *t = train(100000, 1000, path);  // stops when pairs get rarer than 1000
    assert_true(tokenizer_vocab_size(t) < 2000);
    tokenizer_free(t);
    KilnBpeTrainOptions o = {0};
    o.vocab_size = 200;
    o.pattern = GPT2;
    KilnErr err;
    const char *file = path;
    assert_int_equal(tokenizer_train(&t, &file, 1, &o, &err), -1);
    assert_non_null(strstr(err.msg, "256 bytes"));
    o.vocab_size = 1000;
    o.pattern = "(unclosed";
    assert_int_equal(tokenizer_train(&t, &file, 1, &o, &err), -1);
    assert_non_null(strstr(err.msg, "pattern"));
    o.pattern = GPT2;
    const char *missing = "/nonexistent/corpus.txt";
    assert_int_equal(tokenizer_train(&t, &missing, 1, &o, &err), -1);
    assert_non_null(strstr(err.msg, "corpus.txt"));
}

int main(int argc, char **argv) {
    GPT2 = tokenizer_pattern_by_name("gpt2");
    snprintf(path, sizeof path, "%s/../shared/data/pretrain/tinyshakespeare/input.txt", argc > 1 ? argv[1] : ".");
    if (access(path, R_OK) != 0) {
        printf("SKIP: %s not found (the shared data folder is absent)\n", path);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_naive_trainer),
        cmocka_unit_test(test_deterministic_across_threads),
        cmocka_unit_test(test_min_frequency_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
