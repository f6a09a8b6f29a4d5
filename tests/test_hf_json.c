// test_hf_json: Hugging Face tokenizer.json reading and writing. tiktoken rank
// files saved as tokenizer.json encode identically once loaded back (gpt2,
// cl100k_base, and random untrained rank tables, where tiktoken's any-split
// rule and its whole-token shortcut matter most); save -> load -> save is
// byte-identical; both merges layouts parse; bad files give errors naming the
// key; mutated files never crash the reader. HF tokenizers itself is compared
// by hand (see the report of the change), not here.
#include "kiln/tokenizer.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[1024];  // shared/data/tokenizers


static KilnTokenizer *load(const char *path) {
    KilnTokenizer *t = NULL;
    KilnErr err;
    if (tokenizer_load(&t, path, &err)) fail_msg("%s", err.msg);
    return t;
}

static KilnTokenizer *load_rank_file(const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.tiktoken", dir, name);
    return load(path);
}

static void save(const KilnTokenizer *t, const char *path) {
    KilnErr err;
    if (tokenizer_save_json(t, path, &err)) fail_msg("%s", err.msg);
}

// The error tokenizer_load gives for path; fails the test if it loads.
static const char *load_error(const char *path) {
    static KilnErr err;
    KilnTokenizer *t = NULL;
    if (tokenizer_load(&t, path, &err) == 0) {
        tokenizer_free(t);
        fail_msg("%s loaded but should not", path);
    }
    return err.msg;
}

static void expect_same_ids(const KilnTokenizer *a, const KilnTokenizer *b, const char *text, size_t n,
                            KilnSpecialMode mode) {
    KilnIds x = {0}, y = {0};
    KilnErr err;
    assert_int_equal(tokenizer_encode(a, text, n, mode, &x, &err), 0);
    assert_int_equal(tokenizer_encode(b, text, n, mode, &y, &err), 0);
    if (x.n != y.n || (x.n && memcmp(x.ids, y.ids, sizeof(uint32_t) * (size_t)x.n)))
        fail_msg("ids differ (%ld vs %ld) for a %zu-byte text starting '%.40s'", x.n, y.n, n, text);
    ids_free(&x);
    ids_free(&y);
}

static void expect_same_vocab(const KilnTokenizer *a, const KilnTokenizer *b) {
    assert_int_equal(tokenizer_vocab_size(a), tokenizer_vocab_size(b));
    for (int id = 0; id < tokenizer_vocab_size(a); id++) {
        int la, lb;
        const uint8_t *x = tokenizer_token_bytes(a, id, &la), *y = tokenizer_token_bytes(b, id, &lb);
        assert_int_equal(la, lb);
        if (la) assert_memory_equal(x, y, (size_t)la);
    }
}

// Text of every kind the pre-tokenizers treat differently.
static const char *const SAMPLES[] = {
    "hello world",
    "The quick brown fox jumps over the lazy dog. It's 3:45pm; we'll see, they'd said, I'M SURE.",
    "int main(int argc, char **argv) {\n    for (int i = 0; i < argc; i++) printf(\"%s\\n\", argv[i]);\n    return 0;\n}\n",
    "def f(x):\n\treturn x ** 2  # square\n\n\n\nclass A:\n    pass\n",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "emoji: 😀👩‍👩‍👧🇺🇸✨ and combining e\xcc\x81 and \xef\xbb\xbf" "BOM",
    "spaces:   a    b\t\t c \n\n\n  \r\n\r\n   \xc2\xa0\xe3\x80\x80 end   ",
    "digits 1234567890 3.14159 1,000,000 ١٢٣ ½ 0x1F 2024-01-01",
    "a<|endoftext|>b <|endoftext|><|endoftext|> x<|fim_prefix|>y<|endofprompt|>",
    "Привет, мир! مرحبا بالعالم שלום עולם Γειά σου κόσμε",
    "                                                                                x",
    "",
};

static void random_text(KilnRng *r, char *buf, size_t n, int kind) {
    for (size_t i = 0; i < n; i++) {
        uint64_t x = kiln_rng_u64(r);
        if (kind == 0) buf[i] = (char)x;                                        // any byte, invalid UTF-8 too
        else if (kind == 1) buf[i] = (char)("ab \n\t1'.é"[x % 10]);              // text-like
        else if (kind == 2) buf[i] = (char)("0123456789"[x % 10]);              // one long number
        else buf[i] = (char)(x % 3 ? "abcdefghij"[x % 10] : " \n"[x % 2]);     // words
    }
}

// Every sample, prose from the shared data when present, and random bytes.
static void expect_same_encodings(const KilnTokenizer *a, const KilnTokenizer *b) {
    for (size_t i = 0; i < sizeof SAMPLES / sizeof *SAMPLES; i++) {
        expect_same_ids(a, b, SAMPLES[i], strlen(SAMPLES[i]), KILN_SPECIAL_ALLOW);
        expect_same_ids(a, b, SAMPLES[i], strlen(SAMPLES[i]), KILN_SPECIAL_TEXT);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/../pretrain/tinyshakespeare/input.txt", dir);
    char *prose;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &prose, &len, &err) == 0) {
        expect_same_ids(a, b, prose, len < 200000 ? len : 200000, KILN_SPECIAL_TEXT);
        free(prose);
    }
    KilnRng r;
    kiln_rng_seed(&r, 7);
    char *buf = malloc(3000);
    for (int it = 0; it < 400; it++) {
        size_t n = kiln_rng_u64(&r) % 3000;
        random_text(&r, buf, n, it % 4);
        expect_same_ids(a, b, buf, n, KILN_SPECIAL_TEXT);
    }
    free(buf);
}

static void check_rank_file_as_json(const char *name) {
    KilnTokenizer *tt = load_rank_file(name);
    const char *p = tmp("rank.json");
    save(tt, p);
    KilnTokenizer *js = load(p);
    expect_same_vocab(tt, js);
    assert_int_equal(tokenizer_special_id(tt, "<|endoftext|>"), tokenizer_special_id(js, "<|endoftext|>"));
    expect_same_encodings(tt, js);
    tokenizer_free(tt);
    tokenizer_free(js);
}

static void test_gpt2_as_json(void **state) { check_rank_file_as_json("gpt2"); }
static void test_cl100k_as_json(void **state) { check_rank_file_as_json("cl100k_base"); }

// save -> load -> save writes the same bytes; saving twice does too.
static void test_save_load_save(void **state) {
    const char *names[] = {"gpt2", "cl100k_base"};
    for (int k = 0; k < 2; k++) {
        KilnTokenizer *tt = load_rank_file(names[k]);
        save(tt, tmp("a.json"));
        save(tt, tmp("a2.json"));
        KilnTokenizer *js = load(tmp("a.json"));
        save(js, tmp("b.json"));
        char *a, *a2, *b;
        size_t na, na2, nb;
        KilnErr err;
        assert_int_equal(kiln_read_file(tmp("a.json"), &a, &na, &err), 0);
        assert_int_equal(kiln_read_file(tmp("a2.json"), &a2, &na2, &err), 0);
        assert_int_equal(kiln_read_file(tmp("b.json"), &b, &nb, &err), 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        assert_int_equal(na, na2);
        assert_memory_equal(a, a2, na);
        // the layout HF expects for these
        assert_non_null(strstr(a, "\"ignore_merges\": true"));
        assert_non_null(strstr(a, k == 0 ? "\"use_regex\": true\n  },\n  \"post_processor\"" : "\"type\": \"Split\""));
        free(a);
        free(a2);
        free(b);
        tokenizer_free(tt);
        tokenizer_free(js);
    }
}

// ---- random rank tables ----

static void b64_encode(const uint8_t *s, int n, char *out) {
    static const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int o = 0;
    for (int i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        out[o++] = al[w >> 18];
        out[o++] = al[w >> 12 & 63];
        out[o++] = i + 1 < n ? al[w >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? al[w & 63] : '=';
    }
    out[o] = 0;
}

// A rank file whose multi-byte tokens are random strings over "abc" in random
// rank order: unlike trained vocabularies, many tokens cannot be built by
// their own BPE and many have several splits, so only an exact conversion
// keeps encodings equal.
static void write_random_rank_file(KilnRng *r, const char *path, const char *json_path) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    char b64[64];
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        b64_encode(&c, 1, b64);
        fprintf(f, "%s %d\n", b64, b);
    }
    int n = 20 + (int)(kiln_rng_u64(r) % 150), rank = 256;
    uint8_t seen[4][243] = {{0}};  // [length - 2][the token as a base-3 number]
    for (int k = 0; k < n; k++) {
        int len = 2 + (int)(kiln_rng_u64(r) % 4);
        uint8_t tok[5];
        int code = 0;
        for (int i = 0; i < len; i++) {
            int c = (int)(kiln_rng_u64(r) % 3);
            tok[i] = (uint8_t)('a' + c);
            code = code * 3 + c;
        }
        if (seen[len - 2][code]) continue;  // each token once
        seen[len - 2][code] = 1;
        b64_encode(tok, len, b64);
        fprintf(f, "%s %d\n", b64, rank++);
    }
    fclose(f);
    f = fopen(json_path, "w");
    assert_non_null(f);
    fprintf(f, "{\"pat_str\": \"\\\\S+|\\\\s+\", \"special_tokens\": {\"<|e|>\": %d}}", rank);
    fclose(f);
}

static void test_random_rank_tables(void **state) {
    KilnRng r;
    kiln_rng_seed(&r, 3);
    char *buf = malloc(200);
    for (int table = 0; table < 40; table++) {
        write_random_rank_file(&r, tmp("r.tiktoken"), tmp("r.json"));
        KilnTokenizer *tt = load(tmp("r.tiktoken"));
        save(tt, tmp("r_hf.json"));
        KilnTokenizer *js = load(tmp("r_hf.json"));
        expect_same_vocab(tt, js);
        for (int it = 0; it < 300; it++) {
            size_t n = kiln_rng_u64(&r) % 200;
            for (size_t i = 0; i < n; i++) buf[i] = "abc  "[kiln_rng_u64(&r) % 5];
            expect_same_ids(tt, js, buf, n, KILN_SPECIAL_TEXT);
        }
        tokenizer_free(tt);
        tokenizer_free(js);
    }
    free(buf);
}

// ---- hand-written tokenizer.json files ----

static int printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

// GPT-2's bytes_to_unicode, written out independently of the library's.
static void put_byte_char(FILE *f, int b) {
    int cp = b;
    if (!printable(b)) {
        cp = 256;
        for (int c = 0; c < b; c++) cp += !printable(c);
    }
    if (cp == '"' || cp == '\\') fprintf(f, "\\%c", cp);
    else if (cp < 0x80) fputc(cp, f);
    else fprintf(f, "%c%c", 0xC0 | cp >> 6, 0x80 | (cp & 0x3F));
}

typedef struct {
    const char *text;
    int id;
} Tok;

static const Tok SMALL_VOCAB[] = {{"he", 256}, {"ll", 257}, {"hell", 258}, {"hello", 259}, {"Ġw", 260},
                                  {"or", 261}, {"Ġwor", 262}, {"ld", 263}, {"Ġworld", 264}};
static const char *const SMALL_MERGES[][2] = {{"h", "e"}, {"l", "l"},  {"he", "ll"},  {"hell", "o"}, {"Ġ", "w"},
                                              {"o", "r"}, {"Ġw", "or"}, {"l", "d"}, {"Ġwor", "ld"}};
enum { SMALL_N = 9, SMALL_END = 270 };

// A small byte-level BPE tokenizer.json (256 bytes, the tokens above, the
// special <|end|> listed in vocab too as GPT-2's file does), with merges as
// "a b" strings or [a, b] arrays. Returns malloc'd text.
static char *small_json(const Tok *vocab, int nv, const char *const (*merges)[2], int nm, int arrays) {
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
               "  \"added_tokens\": [{\"id\": %d, \"content\": \"<|end|>\", \"single_word\": false, \"lstrip\": false,"
               " \"rstrip\": false, \"normalized\": false, \"special\": true}],\n"
               "  \"normalizer\": null,\n"
               "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},\n"
               "  \"post_processor\": null,\n  \"decoder\": {\"type\": \"ByteLevel\"},\n"
               "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"byte_fallback\": false,\n"
               "    \"vocab\": {",
            SMALL_END);
    for (int b = 0; b < 256; b++) {
        fputs(b ? ", \"" : "\"", f);
        put_byte_char(f, b);
        fprintf(f, "\": %d", b);
    }
    for (int i = 0; i < nv; i++) fprintf(f, ", \"%s\": %d", vocab[i].text, vocab[i].id);
    fprintf(f, ", \"<|end|>\": %d},\n    \"merges\": [", SMALL_END);
    for (int i = 0; i < nm; i++) {
        if (arrays) fprintf(f, "%s[\"%s\", \"%s\"]", i ? ", " : "", merges[i][0], merges[i][1]);
        else fprintf(f, "%s\"%s %s\"", i ? ", " : "", merges[i][0], merges[i][1]);
    }
    fputs("]\n  }\n}\n", f);
    fclose(f);
    return text;
}

static void expect_ids(const KilnTokenizer *t, const char *text, const uint32_t *want, long n) {
    KilnIds ids = {0};
    KilnErr err;
    assert_int_equal(tokenizer_encode(t, text, strlen(text), KILN_SPECIAL_ALLOW, &ids, &err), 0);
    if (ids.n != n || memcmp(ids.ids, want, sizeof(uint32_t) * (size_t)n)) {
        for (long i = 0; i < ids.n; i++) print_message("%u ", ids.ids[i]);
        fail_msg("ids for '%s' differ", text);
    }
    ids_free(&ids);
}

static void test_merge_formats(void **state) {
    for (int arrays = 0; arrays < 2; arrays++) {
        char *text = small_json(SMALL_VOCAB, SMALL_N, SMALL_MERGES, SMALL_N, arrays);
        write_bytes(tmp("small.json"), text, strlen(text));
        free(text);
        KilnTokenizer *t = load(tmp("small.json"));
        assert_int_equal(tokenizer_vocab_size(t), SMALL_END + 1);
        assert_int_equal(tokenizer_special_id(t, "<|end|>"), SMALL_END);
        expect_ids(t, "hello world", (uint32_t[]){259, 264}, 2);
        expect_ids(t, "hello<|end|> worlds", (uint32_t[]){259, SMALL_END, 264, 's'}, 4);
        expect_ids(t, "hel\x01\xff", (uint32_t[]){256, 'l', 1, 255}, 4);
        // the written file reads back the same, and it is the same for both layouts
        save(t, tmp(arrays ? "small_saved_arrays.json" : "small_saved_strings.json"));
        KilnTokenizer *u = load(tmp(arrays ? "small_saved_arrays.json" : "small_saved_strings.json"));
        expect_same_vocab(t, u);
        expect_same_encodings(t, u);
        tokenizer_free(t);
        tokenizer_free(u);
    }
    char *a, *b;
    size_t na, nb;
    KilnErr err;
    assert_int_equal(kiln_read_file(tmp("small_saved_strings.json"), &a, &na, &err), 0);
    assert_int_equal(kiln_read_file(tmp("small_saved_arrays.json"), &b, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_non_null(strstr(a, "\"ignore_merges\": false"));
    free(a);
    free(b);
}

// text with the first `old` replaced by `new` (malloc'd); fails if absent.
static char *replaced(const char *text, const char *old, const char *new) {
    const char *p = strstr(text, old);
    if (!p) fail_msg("'%s' not in the test file", old);
    char *out = malloc(strlen(text) + strlen(new) + 1);
    sprintf(out, "%.*s%s%s", (int)(p - text), text, new, p + strlen(old));
    return out;
}

// HF's semantics: a merge listed twice keeps its LAST place; ignore_merges
// takes a piece that is a token whole.
static void test_hf_semantics(void **state) {
    static const Tok v[] = {{"ab", 256}, {"bc", 257}, {"abc", 258}};
    static const char *const dup[][2] = {{"b", "c"}, {"a", "b"}, {"b", "c"}};
    char *text = small_json(v, 3, dup, 3, 0);
    write_bytes(tmp("dup.json"), text, strlen(text));
    KilnTokenizer *t = load(tmp("dup.json"));
    expect_ids(t, "abc", (uint32_t[]){256, 'c'}, 2);  // (a b) at 1 beats (b c) at 2; HF agrees
    tokenizer_free(t);
    // "abc" has no merge that makes it: only ignore_merges reaches it
    char *im = replaced(text, "\"byte_fallback\": false", "\"ignore_merges\": true, \"byte_fallback\": false");
    write_bytes(tmp("im.json"), im, strlen(im));
    t = load(tmp("im.json"));
    expect_ids(t, "abc", (uint32_t[]){258}, 1);
    expect_ids(t, "abcab", (uint32_t[]){256, 'c', 256}, 3);
    tokenizer_free(t);
    free(im);
    free(text);
}

// Writes the small file with one replacement and returns the load error.
static const char *error_with(const char *old, const char *new) {
    char *text = small_json(SMALL_VOCAB, SMALL_N, SMALL_MERGES, SMALL_N, 0);
    char *bad = replaced(text, old, new);
    write_bytes(tmp("bad.json"), bad, strlen(bad));
    free(text);
    free(bad);
    return load_error(tmp("bad.json"));
}

static void expect_in(const char *msg, const char *want) {
    if (!strstr(msg, want)) fail_msg("error '%s' does not mention '%s'", msg, want);
}

static void test_bad_files(void **state) {
    char *text = small_json(SMALL_VOCAB, SMALL_N, SMALL_MERGES, SMALL_N, 0);
    write_bytes(tmp("trunc.json"), text, strlen(text) / 2);
    const char *e = load_error(tmp("trunc.json"));
    expect_in(e, "trunc.json");
    expect_in(e, "not valid JSON");
    free(text);
    expect_in(error_with("}\n", "} trailing\n"), "not valid JSON");
    expect_in(error_with("\"vocab\":", "\"vocabulary\":"), "model.vocab");
    expect_in(error_with("\"merges\":", "\"merge_list\":"), "model.merges");
    e = error_with("\"Ġwor ld\"", "\"Ġwor zz\"");
    expect_in(e, "model.merges[8]");
    expect_in(e, "'zz' is not in the vocabulary");
    e = error_with("\"l d\"", "\"d l\"");
    expect_in(e, "model.merges[7]");
    expect_in(e, "merged token 'dl'");
    expect_in(error_with("\"l d\"", "\"l d x\""), "model.merges[7]");
    expect_in(error_with("\"l d\"", "[\"l\"]"), "model.merges[7]");
    e = error_with("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}",
                   "{\"type\": \"Whitespace\"}");
    expect_in(e, "bad.json");
    expect_in(e, "pre_tokenizer.type 'Whitespace'");
    expect_in(error_with("\"add_prefix_space\": false", "\"add_prefix_space\": true"), "pre_tokenizer.add_prefix_space");
    expect_in(error_with("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}",
                         "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\"}, {\"type\": \"ByteLevel\", "
                         "\"add_prefix_space\": false, \"use_regex\": false}]}"),
              "pre_tokenizer.pretokenizers[0] is 'Digits'");
    expect_in(error_with("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}",
                         "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\S+\"}, "
                         "\"behavior\": \"Removed\", \"invert\": false}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}"),
              "pre_tokenizer.pretokenizers[0].behavior");
    expect_in(error_with("\"pre_tokenizer\": {", "\"pre_tokenizer\": null, \"x\": {"), "pre_tokenizer is null");
    expect_in(error_with("\"normalizer\": null", "\"normalizer\": {\"type\": \"NFC\"}"), "normalizer 'NFC'");
    expect_in(error_with("\"byte_fallback\": false", "\"byte_fallback\": true"), "model.byte_fallback");
    expect_in(error_with("\"dropout\": null", "\"dropout\": 0.1"), "model.dropout");
    expect_in(error_with("\"type\": \"BPE\"", "\"type\": \"WordPiece\""), "model.type 'WordPiece'");
    expect_in(error_with("\"ll\": 257", "\"l中\": 257"), "'l中' has a character outside GPT-2's byte alphabet");
    expect_in(error_with("\"ll\": 257", "\"ll\": -3"), "model.vocab: 'll'");
    expect_in(error_with("\"ll\": 257", "\"ll\": 256"), "model.vocab");  // two tokens, one id
    expect_in(error_with("\"a\": 97, ", ""), "no token for byte 0x61");
    expect_in(error_with("\"lstrip\": false", "\"lstrip\": true"), "added_tokens[0]");
    expect_in(error_with("\"content\": \"<|end|>\"", "\"content\": 5"), "added_tokens[0]");
    // ids HF would not honour: an added token missing from the vocab is numbered
    // from the vocab's size (265 entries here), not by its "id"
    expect_in(error_with(", \"<|end|>\": 270}", "}"), "would give it 265");
    expect_in(error_with("\"Ġworld\": 264", "\"Ġworld\": 270"), "'Ġworld' has id 270, which added_tokens[0]");
    expect_in(error_with("\"special\": true}]", "\"special\": true}, {\"id\": 270, \"content\": \"<|end|>\"}]"),
              "added_tokens[1]: '<|end|>' is listed twice");
    // the JSON beside a rank file is not a tokenizer.json
    char sidecar[1200];
    snprintf(sidecar, sizeof sidecar, "%s/gpt2.json", dir);
    expect_in(load_error(sidecar), ".tiktoken");
    expect_in(load_error(tmp("missing.json")), "missing.json");
}

// Truncations, byte flips and garbage over a small valid file: every mutant
// either loads (and then encodes) or is refused with an error; none crashes.
static int load_and_encode(const char *path, void *ctx) {
    KilnTokenizer *t = NULL;
    KilnErr err;
    if (tokenizer_load(&t, path, &err)) return -1;
    KilnIds ids = {0};
    assert_int_equal(tokenizer_encode(t, "hello world <|end|>\xff", 20, KILN_SPECIAL_TEXT, &ids, &err), 0);
    ids_free(&ids);
    tokenizer_free(t);
    return 0;
}

static void fuzz_json(const char *orig, size_t len, int iters, uint64_t seed) {
    // flips in the first 1200 bytes hit the options before the vocab
    int errors = fuzz_mutants(orig, len, 1200, tmp("mutant.json"), iters, seed, load_and_encode, NULL);
    print_message("fuzzed a tokenizer.json: %d mutants, %d rejected with an error\n", iters, errors);
    assert_true(errors > 0);
}

static void test_fuzz(void **state) {
    // hand-written: ByteLevel, [a, b] merges, a special in vocab
    char *small = small_json(SMALL_VOCAB, SMALL_N, SMALL_MERGES, SMALL_N, 1);
    fuzz_json(small, strlen(small), 3000, 99);
    free(small);
    // written by kiln: Sequence[Split, ByteLevel], "a b" merges, ignore_merges
    KilnRng r;
    kiln_rng_seed(&r, 5);
    write_random_rank_file(&r, tmp("f.tiktoken"), tmp("f.json"));
    KilnTokenizer *t = load(tmp("f.tiktoken"));
    save(t, tmp("f_hf.json"));
    tokenizer_free(t);
    char *text;
    size_t len;
    KilnErr err;
    assert_int_equal(kiln_read_file(tmp("f_hf.json"), &text, &len, &err), 0);
    fuzz_json(text, len, 3000, 100);
    free(text);
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, "tokenizers", dir, sizeof dir, NULL)) return TEST_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_as_json),     cmocka_unit_test(test_cl100k_as_json),
        cmocka_unit_test(test_save_load_save),   cmocka_unit_test(test_random_rank_tables),
        cmocka_unit_test(test_merge_formats),    cmocka_unit_test(test_hf_semantics),
        cmocka_unit_test(test_bad_files),        cmocka_unit_test(test_fuzz),
    };
    return TEST_RUN("hf_json", tests);
}
