// test_tokenizer: tiktoken rank files load, known ids, special-token modes,
// lossless round trips on random bytes (invalid UTF-8 included) and fuzzing of
// the rank-file reader. Exactness on large text is test_tokenizer_exact (npm tiktoken).
#include "kiln/tokenizer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[1024];

static KilnTokenizer *load(const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.tiktoken", dir, name);
    KilnTokenizer *t = NULL;
    KilnErr err;
    if (tokenizer_load(&t, path, &err)) fail_msg("%s", err.msg);
    return t;
}

static void expect_ids(KilnTokenizer *t, const char *text, const uint32_t *want, long n) {
    KilnIds ids = {0};
    KilnErr err;
    assert_int_equal(tokenizer_encode(t, text, strlen(text), KILN_SPECIAL_ERROR, &ids, &err), 0);
    if (ids.n != n || memcmp(ids.ids, want, sizeof(uint32_t) * n)) {
        for (long i = 0; i < ids.n; i++) print_message("%u ", ids.ids[i]);
        fail_msg("ids for '%s' differ", text);
    }
    ids_free(&ids);
}

static void test_known_ids(void **state) {
    KilnTokenizer *g = load("gpt2"), *c = load("cl100k_base"), *o = load("o200k_base");
    // ids as tiktoken gives them
    expect_ids(g, "hello world", (uint32_t[]){31373, 995}, 2);
    expect_ids(c, "hello world", (uint32_t[]){15339, 1917}, 2);
    expect_ids(o, "hello world", (uint32_t[]){24912, 2375}, 2);
    expect_ids(g, " tokenization", (uint32_t[]){11241, 1634}, 2);
    assert_int_equal(tokenizer_vocab_size(g), 50257);
    assert_int_equal(tokenizer_special_id(c, "<|endoftext|>"), 100257);
    tokenizer_free(g);
    tokenizer_free(c);
    tokenizer_free(o);
}

static void test_special_modes(void **state) {
    KilnTokenizer *g = load("gpt2");
    const char *text = "a<|endoftext|>b";
    KilnIds ids = {0};
    KilnErr err;
    assert_int_equal(tokenizer_encode(g, text, strlen(text), KILN_SPECIAL_ERROR, &ids, &err), -1);
    assert_non_null(strstr(err.msg, "<|endoftext|>"));
    assert_non_null(strstr(err.msg, "byte 1"));
    ids_free(&ids);
    assert_int_equal(tokenizer_encode(g, text, strlen(text), KILN_SPECIAL_ALLOW, &ids, &err), 0);
    assert_int_equal(ids.n, 3);
    assert_int_equal(ids.ids[1], 50256);
    ids_free(&ids);
    assert_int_equal(tokenizer_encode(g, text, strlen(text), KILN_SPECIAL_TEXT, &ids, &err), 0);
    assert_true(ids.n > 3);
    for (long i = 0; i < ids.n; i++) assert_true(ids.ids[i] != 50256);
    ids_free(&ids);
    tokenizer_free(g);
    // an allowed set (tiktoken's allowed_special): listed ones become ids, others are errors
    KilnTokenizer *c = load("cl100k_base");
    const char *two = "a<|fim_prefix|>b<|endoftext|>c";
    const char *fim[] = {"<|fim_prefix|>"}, *both[] = {"<|fim_prefix|>", "<|endoftext|>"}, *bad[] = {"<|x|>"};
    assert_int_equal(tokenizer_encode_allowed(c, two, strlen(two), fim, 1, &ids, &err), -1);
    assert_non_null(strstr(err.msg, "<|endoftext|>"));
    ids_free(&ids);
    assert_int_equal(tokenizer_encode_allowed(c, two, strlen(two), both, 2, &ids, &err), 0);
    uint32_t want[] = {64, 100258, 65, 100257, 66};
    assert_int_equal(ids.n, 5);
    assert_memory_equal(ids.ids, want, sizeof want);
    ids_free(&ids);
    assert_int_equal(tokenizer_encode_allowed(c, two, strlen(two), bad, 1, &ids, &err), -1);
    assert_non_null(strstr(err.msg, "<|x|>"));
    ids_free(&ids);
    tokenizer_free(c);
}

// decode(encode(x)) == x for random byte strings, including invalid UTF-8,
// long runs without spaces (the heap path) and NUL bytes
static void test_roundtrip_random_bytes(void **state) {
    const char *names[] = {"gpt2", "cl100k_base", "o200k_base"};
    KilnRng r;
    kiln_rng_seed(&r, 1);
    char *buf = malloc(5000);
    for (int k = 0; k < 3; k++) {
        KilnTokenizer *t = load(names[k]);
        for (int it = 0; it < 600; it++) {
            size_t n = kiln_rng_u64(&r) % 5000;
            int kind = it % 4;
            for (size_t i = 0; i < n; i++) {
                uint64_t x = kiln_rng_u64(&r);
                if (kind == 0) buf[i] = (char)x;                                     // any byte
                else if (kind == 1) buf[i] = (char)("ab \n\t1é"[x % 8]);              // text-like
                else if (kind == 2) buf[i] = (char)(0x80 + x % 64);                   // lone continuation bytes
                else buf[i] = (char)("0123456789"[x % 10]);                          // one long number
            }
            KilnIds ids = {0};
            KilnErr err;
            assert_int_equal(tokenizer_encode(t, buf, n, KILN_SPECIAL_TEXT, &ids, &err), 0);
            char *out;
            size_t len;
            assert_int_equal(tokenizer_decode(t, ids.ids, ids.n, &out, &len, &err), 0);
            assert_int_equal(len, n);
            assert_memory_equal(out, buf, n);
            free(out);
            ids_free(&ids);
        }
        // any valid id sequence decodes; an id outside the vocabulary is an error
        uint32_t bad[2] = {5, (uint32_t)tokenizer_vocab_size(t) + 7};
        char *out;
        size_t len;
        KilnErr err;
        assert_int_equal(tokenizer_decode(t, bad, 2, &out, &len, &err), -1);
        assert_non_null(strstr(err.msg, "position 1"));
        tokenizer_free(t);
    }
    free(buf);
}

static void test_bad_files(void **state) {
    char tmp[] = "/tmp/kiln_tok_XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char p[256], j[256];
    snprintf(p, sizeof p, "%s/x.tiktoken", tmp);
    snprintf(j, sizeof j, "%s/x.json", tmp);
    KilnTokenizer *t;
    KilnErr err;
    FILE *f = fopen(p, "w");
    fputs("IQ== 0\n", f);
    fclose(f);
    assert_int_equal(tokenizer_load(&t, p, &err), -1);  // no JSON beside it
    assert_non_null(strstr(err.msg, "x.json"));
    f = fopen(j, "w");
    fputs("{\"pat_str\": \"\\\\S+|\\\\s+\", \"special_tokens\": {}}", f);
    fclose(f);
    assert_int_equal(tokenizer_load(&t, p, &err), -1);  // 1 rank cannot cover 256 bytes
    assert_non_null(strstr(err.msg, "256 bytes"));
    f = fopen(p, "w");
    for (int b = 0; b < 256; b++) {
        static const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        fprintf(f, "%c%c==%s%d\n", al[b >> 2], al[(b & 3) << 4], b == 77 ? " x" : " ", b);
    }
    fclose(f);
    assert_int_equal(tokenizer_load(&t, p, &err), -1);
    assert_non_null(strstr(err.msg, "x.tiktoken:78"));
    f = fopen(j, "w");
    fputs("{\"pat_str\": \"(unclosed\", \"special_tokens\": {}}", f);
    fclose(f);
    f = fopen(p, "w");
    for (int b = 0; b < 256; b++) {
        static const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        fprintf(f, "%c%c== %d\n", al[b >> 2], al[(b & 3) << 4], b);
    }
    fclose(f);
    assert_int_equal(tokenizer_load(&t, p, &err), -1);
    assert_non_null(strstr(err.msg, "pattern"));
    f = fopen(j, "w");
    fputs("{\"pat_str\": \"\\\\S+|\\\\s+\", \"special_tokens\": {\"<|eot|>\": 256}}", f);
    fclose(f);
    assert_int_equal(tokenizer_load(&t, p, &err), 0);  // a minimal valid byte vocabulary
    KilnIds ids = {0};
    assert_int_equal(tokenizer_encode(t, "hi <|eot|>", 10, KILN_SPECIAL_ALLOW, &ids, &err), 0);
    assert_int_equal(ids.n, 4);
    assert_int_equal(ids.ids[3], 256);
    ids_free(&ids);
    tokenizer_free(t);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    assert_int_equal(system(cmd), 0);
}

// A pattern that can match empty: the text between non-empty matches is one piece
// (as HF's Split and tiktoken's find_iter), never cut inside a character.
static void test_empty_matches(void **state) {
    char tmp[] = "/tmp/kiln_tok_XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char p[1400], j[256];
    char abs[1024];
    assert_non_null(realpath(dir, abs));
    snprintf(p, sizeof p, "ln -s %s/gpt2.tiktoken %s/x.tiktoken", abs, tmp);
    assert_int_equal(system(p), 0);
    snprintf(j, sizeof j, "%s/x.json", tmp);
    FILE *f = fopen(j, "w");
    fputs("{\"pat_str\": \"a*\", \"special_tokens\": {}}", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/x.tiktoken", tmp);
    KilnTokenizer *t;
    KilnErr err;
    if (tokenizer_load(&t, p, &err)) fail_msg("%s", err.msg);
    KilnIds ids = {0};
    assert_int_equal(tokenizer_encode(t, "\xc3\xa9""a", 3, KILN_SPECIAL_ERROR, &ids, &err), 0);
    assert_int_equal(ids.n, 2);  // HF tokenizers: [2634, 64] ("é", "a")
    assert_int_equal(ids.ids[0], 2634);
    assert_int_equal(ids.ids[1], 64);
    ids_free(&ids);
    tokenizer_free(t);
    snprintf(p, sizeof p, "rm -rf %s", tmp);
    assert_int_equal(system(p), 0);
}

// Mutated rank files and sidecar JSON: the reader answers, never crashes.
static void test_fuzz_rank_files(void **state) {
    char tmp[] = "/tmp/kiln_tok_XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char p[256], j[256];
    snprintf(p, sizeof p, "%s/x.tiktoken", tmp);
    snprintf(j, sizeof j, "%s/x.json", tmp);
    static const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char rank[8192] = "", json[] = "{\"pat_str\": \"\\\\S+|\\\\s+\", \"special_tokens\": {\"<|e|>\": 258}}";
    for (int b = 0; b < 256; b++) snprintf(rank + strlen(rank), sizeof rank - strlen(rank), "%c%c== %d\n", al[b >> 2], al[(b & 3) << 4], b);
    strcat(rank, "YWI= 256\nYWJj 257\n");  // "ab", "abc"
    KilnRng r;
    kiln_rng_seed(&r, 3);
    int loaded = 0, refused = 0;
    for (int it = 0; it < 1500; it++) {
        char rb[8192], jb[256];
        size_t rn = strlen(rank), jn = strlen(json);
        memcpy(rb, rank, rn);
        memcpy(jb, json, jn);
        char *buf = it % 2 ? rb : jb;
        size_t *n = it % 2 ? &rn : &jn;
        if (it % 3 == 0) *n = kiln_rng_u64(&r) % (*n + 1);
        else for (int k = 0; k < 3; k++) buf[kiln_rng_u64(&r) % *n] = (char)kiln_rng_u64(&r);
        FILE *f = fopen(p, "wb");
        fwrite(rb, 1, rn, f);
        fclose(f);
        f = fopen(j, "wb");
        fwrite(jb, 1, jn, f);
        fclose(f);
        KilnTokenizer *t;
        KilnErr err;
        if (tokenizer_load(&t, p, &err) == 0) {
            KilnIds ids = {0};
            tokenizer_encode(t, "abc ab <|e|> x", 14, KILN_SPECIAL_ALLOW, &ids, &err);
            ids_free(&ids);
            tokenizer_free(t);
            loaded++;
        } else {
            refused++;
        }
    }
    print_message("rank-file mutants: %d loaded, %d refused\n", loaded, refused);
    assert_true(refused > 0);
    snprintf(p, sizeof p, "rm -rf %s", tmp);
    assert_int_equal(system(p), 0);
}

int main(int argc, char **argv) {
    const char *repo = argc > 1 ? argv[1] : ".";
    snprintf(dir, sizeof dir, "%s/../shared/data/tokenizers", repo);
    if (access(dir, R_OK) != 0) {
        printf("SKIP: %s not found (the shared data folder is absent)\n", dir);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_ids),
        cmocka_unit_test(test_special_modes),
        cmocka_unit_test(test_roundtrip_random_bytes),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_empty_matches),
        cmocka_unit_test(test_fuzz_rank_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
