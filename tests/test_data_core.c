// test_data_core.c: byte buffers, UTF-8 repair, JSON escaping, the JSONL
// document reader (plain, gzip, zstd, damaged) and writer, the decompressing
// whole-file read (and its fuzzing), stage parameters, the stage runner, the
// sample stage, and names of any length in report and manifest JSON.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kiln/corpus.h"
#include "kiln/data.h"
#include "core/shard.h"
#include "core/utf8.h"
#include "kiln/pipeline.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

static void test_utf8(void **st) {
    (void)st;
    assert_true(utf8_valid("héllo €𝄞", strlen("héllo €𝄞")));
    assert_false(utf8_valid("\xC0\xAF", 2));          // overlong '/'
    assert_false(utf8_valid("\xED\xA0\x80", 3));      // surrogate
    assert_false(utf8_valid("\xF4\x90\x80\x80", 4));  // > U+10FFFF
    assert_false(utf8_valid("\xE2\x82", 2));          // truncated
    KilnBuf out = {0};
    assert_int_equal(utf8_repair("a\xFF" "b\xE2\x82", 5, &out), 2);
    assert_string_equal(out.data, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    // one U+FFFD per maximal subpart, as Python's errors="replace"
    assert_int_equal(utf8_repair("\xED\xA0\x80" "\xF0\x9F\x98", 6, &out), 4);
    assert_string_equal(out.data, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    assert_int_equal(utf8_repair("ok", 2, &out), 0);
    assert_string_equal(out.data, "ok");
    kbuf_free(&out);
}

// The one encoder and decoder: every scalar value round-trips; the edges of
// each length and the malformed inputs decode as nothing.
static void test_utf8_codec(void **st) {
    (void)st;
    char u[4];
    uint32_t cp;
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        if (c >= 0xD800 && c < 0xE000) continue;
        size_t k = utf8_encode(c, u);
        assert_int_equal(k, c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4);
        assert_int_equal(utf8_decode(u, k, &cp), k);
        assert_int_equal(cp, c);
        if (k > 1) assert_int_equal(utf8_decode(u, k - 1, &cp), 0);  // truncated
    }
    assert_int_equal(utf8_encode(0x110000, u), 0);
    assert_memory_equal(u, "\xF4\x8F\xBF\xBF", utf8_encode(0x10FFFF, u));
    assert_int_equal(utf8_decode("", 0, &cp), 0);
    assert_int_equal(utf8_decode("\x80", 1, &cp), 0);              // a stray continuation byte
    assert_int_equal(utf8_decode("\xC1\xBF", 2, &cp), 0);          // overlong
    assert_int_equal(utf8_decode("\xE0\x9F\xBF", 3, &cp), 0);      // overlong
    assert_int_equal(utf8_decode("\xED\xBF\xBF", 3, &cp), 0);      // surrogate
    assert_int_equal(utf8_decode("\xF5\x80\x80\x80", 4, &cp), 0);  // beyond U+10FFFF
    assert_int_equal(utf8_decode("\xE2\x28\xA1", 3, &cp), 0);      // not a continuation
    KilnBuf b = {0};
    assert_int_equal(utf8_put(&b, 'a') || utf8_put(&b, 0xE9) || utf8_put(&b, 0x1D11E), 0);
    assert_string_equal(b.data, "a\xC3\xA9\xF0\x9D\x84\x9E");
    kbuf_free(&b);
    // Python's str.isspace
    assert_true(utf8_isspace(' ') && utf8_isspace(0x1C) && utf8_isspace(0x85) && utf8_isspace(0x3000));
    assert_false(utf8_isspace('a') || utf8_isspace(0x200B) || utf8_isspace(0x180E) || utf8_isspace(0xFEFF));
}

// JSONL inputs by name, and skips summed over files.
static void test_jsonl_names_and_skips(void **st) {
    (void)st;
    assert_true(doc_is_jsonl_path("a/b.jsonl") && doc_is_jsonl_path("b.jsonl.gz") && doc_is_jsonl_path("b.jsonl.zst"));
    assert_false(doc_is_jsonl_path("b.txt") || doc_is_jsonl_path("b.json") || doc_is_jsonl_path("b.jsonl.bz2") ||
                 doc_is_jsonl_path(".jsonl"));
    KilnSkips a = {0}, b = {0};
    for (int i = 0; i < 3; i++) skips_add(&a, "a:%d", i);
    for (int i = 0; i < 7; i++) skips_add(&b, "b:%d", i);
    skips_merge(&a, &b);
    assert_int_equal(a.count, 10);
    assert_string_equal(a.examples[2], "a:2");
    assert_string_equal(a.examples[3], "b:0");
    assert_string_equal(a.examples[4], "b:1");
}

static void test_json_escape(void **st) {
    (void)st;
    KilnBuf b = {0};
    const char in[] = "q\"b\\n\n\t\x01\x7F" "é\xFF";
    assert_int_equal(kbuf_json_escape(&b, in, sizeof in - 1), 0);
    assert_string_equal(b.data, "q\\\"b\\\\n\\n\\t\\u0001\\u007fé\xEF\xBF\xBD");
    // and it decodes back through the reader's JSON string decoder
    KilnBuf lit = {0};
    kbuf_putc(&lit, '"');
    kbuf_append(&lit, b.data, b.len);
    kbuf_putc(&lit, '"');
    char dec[64];
    size_t n;
    assert_int_equal(kiln_json_string(lit.data, lit.len, dec, &n), 0);
    assert_int_equal(n, strlen("q\"b\\n\n\t\x01\x7F" "é\xEF\xBF\xBD"));
    assert_memory_equal(dec, "q\"b\\n\n\t\x01\x7F" "é\xEF\xBF\xBD", n);
    kbuf_free(&b);
    kbuf_free(&lit);
}

// Reads every document of path; returns the count, fills skips/repaired.
static int read_all(const char *path, KilnDoc *docs, int cap, long *skips, long *repaired) {
    KilnDocReader *r;
    KilnErr err;
    if (docreader_open(&r, path, NULL, NULL, &err)) return -1;
    int n = 0, got;
    KilnDoc d = {0};
    while ((got = docreader_next(r, &d, &err)) > 0) {
        if (n < cap) doc_copy(&docs[n], &d);
        n++;
    }
    if (skips) *skips = docreader_skips(r)->count;
    if (repaired) *repaired = docreader_repaired(r);
    docreader_close(r);
    doc_free(&d);
    return got < 0 ? -1 : n;
}

static const char JSONL[] =
    "{\"source\":\"wiki\",\"id\":\"a\",\"text\":\"first\\u0000doc\"}\n"
    "\n"
    "{\"id\":7,\"text\":\"no source \\ud83d\\ude00\",\"extra\":{\"x\":[1,2,\"}\"]}}\r\n"
    "not json\n"
    "{\"id\":\"c\"}\n"
    "{\"text\":\"bad utf8 \xFF\"}\n"
    "{\"text\":\"trailing\"} junk\n"
    "{\"text\":\"last, no newline\"}";

static void test_reader_plain(void **st) {
    (void)st;
    write_bytes(tmp("docs.jsonl"), JSONL, sizeof JSONL - 1);
    KilnDoc d[8] = {0};
    long skips, rep;
    assert_int_equal(read_all(tmp("docs.jsonl"), d, 8, &skips, &rep), 4);
    assert_int_equal(skips, 3);  // not json, no text, trailing junk
    assert_int_equal(rep, 1);
    assert_string_equal(d[0].source.data, "wiki");
    assert_int_equal(d[0].text.len, 9);
    assert_memory_equal(d[0].text.data, "first\0doc", 9);
    assert_string_equal(d[1].source.data, "docs");  // file base name
    assert_string_equal(d[1].id.data, "7");
    assert_string_equal(d[1].text.data, "no source \xF0\x9F\x98\x80");
    assert_string_equal(d[2].text.data, "bad utf8 \xEF\xBF\xBD");
    assert_true(strstr(d[2].id.data, "docs.jsonl:6") != NULL);  // path:line
    assert_string_equal(d[3].text.data, "last, no newline");
    for (int i = 0; i < 8; i++) doc_free(&d[i]);
}

static void test_reader_compressed(void **st) {
    (void)st;
    // gzip, as two members (like WARC.gz / concatenated shards)
    size_t half = 120;
    gzFile g = gzopen(tmp("docs.jsonl.gz"), "wb");
    gzwrite(g, JSONL, (unsigned)half);
    gzclose(g);
    g = gzopen(tmp("part2.gz"), "wb");
    gzwrite(g, JSONL + half, (unsigned)(sizeof JSONL - 1 - half));
    gzclose(g);
    char *a, *b;
    size_t na, nb;
    KilnErr err;
    assert_int_equal(kiln_read_file(tmp("docs.jsonl.gz"), &a, &na, &err), 0);
    assert_int_equal(kiln_read_file(tmp("part2.gz"), &b, &nb, &err), 0);
    char *both = malloc(na + nb);
    memcpy(both, a, na);
    memcpy(both + na, b, nb);
    write_bytes(tmp("docs.jsonl.gz"), both, na + nb);
    KilnDoc d[8] = {0};
    long skips;
    assert_int_equal(read_all(tmp("docs.jsonl.gz"), d, 8, &skips, NULL), 4);
    assert_int_equal(skips, 3);
    assert_string_equal(d[3].text.data, "last, no newline");
    // truncated gzip: the documents before the cut, and one counted skip
    write_bytes(tmp("trunc.gz"), both, na + nb / 2);
    int n = read_all(tmp("trunc.gz"), d, 8, &skips, NULL);
    assert_true(n >= 1 && n <= 3);
    assert_true(skips >= 1);
    KilnDocReader *r;
    assert_int_equal(docreader_open(&r, tmp("trunc.gz"), NULL, NULL, &err), 0);
    while (docreader_next(r, &d[7], &err) > 0) {}
    const KilnSkips *sk = docreader_skips(r);
    assert_non_null(strstr(sk->examples[sk->count - 1], "truncated"));
    docreader_close(r);
    // zstd
    size_t cap = ZSTD_compressBound(sizeof JSONL);
    char *z = malloc(cap);
    size_t zn = ZSTD_compress(z, cap, JSONL, sizeof JSONL - 1, 3);
    write_bytes(tmp("docs.jsonl.zst"), z, zn);
    assert_int_equal(read_all(tmp("docs.jsonl.zst"), d, 8, &skips, NULL), 4);
    assert_string_equal(d[1].text.data, "no source \xF0\x9F\x98\x80");
    write_bytes(tmp("trunc.zst"), z, zn - 5);
    // one zstd block holds everything here, so nothing comes out, but it is reported
    assert_int_equal(docreader_open(&r, tmp("trunc.zst"), NULL, NULL, &err), 0);
    while (docreader_next(r, &d[7], &err) > 0) {}
    sk = docreader_skips(r);
    assert_true(sk->count >= 1);
    assert_non_null(strstr(sk->examples[sk->count - 1], "truncated"));
    docreader_close(r);
    for (int i = 0; i < 8; i++) doc_free(&d[i]);
    free(a), free(b), free(both), free(z);
}

// ---------------------------------------------------------------- whole-file reads
// n bytes of lowercase words (compresses to ~60%, so large inputs span read chunks).
static char *random_text(size_t n, uint64_t seed) {
    char *s = malloc(n + 1);
    KilnRng r;
    kiln_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) s[i] = kiln_rng_u64(&r) % 7 ? (char)('a' + kiln_rng_u64(&r) % 26) : ' ';
    s[n] = 0;
    return s;
}

// path read whole: rc as expected; on 0 the bytes equal want[0..n).
static void expect_read(const char *path, int rc, const char *want, size_t n, KilnBuf *out, KilnErr *err) {
    assert_int_equal(kiln_read_decompressed(path, out, err), rc);
    assert_non_null(out->data);
    assert_int_equal(out->data[out->len], 0);
    if (rc == 0) {
        assert_int_equal(out->len, n);
        assert_memory_equal(out->data, want, n);
    }
}

static void test_read_decompressed(void **st) {
    (void)st;
    size_t n = 700000;  // over two 256 KiB read chunks, compressed as well as plain
    char *text = random_text(n, 5);
    KilnBuf packed = {0}, out = {0};
    KilnErr err;
    write_bytes(tmp("plain.txt"), text, n);
    expect_read(tmp("plain.txt"), 0, text, n, &out, &err);
    for (int zstd = 0; zstd < 2; zstd++) {
        for (int parts = 1; parts <= 3; parts += 2) {
            // the magic bytes decide, not the name: zstd in a .gz, gzip in a name without one
            test_pack(&packed, zstd, text, n, parts);
            const char *name = tmp(zstd ? "data.gz" : "data");
            write_bytes(name, packed.data, packed.len);
            expect_read(name, 0, text, n, &out, &err);
            // cut two thirds in: what came before the cut, and the file named
            write_bytes(name, packed.data, packed.len * 2 / 3);
            expect_read(name, 1, NULL, 0, &out, &err);
            assert_true(out.len < n);
            assert_memory_equal(out.data, text, out.len);
            char want[700];
            snprintf(want, sizeof want, "%s: compressed data truncated after %zu bytes", name, out.len);
            assert_string_equal(err.msg, want);
            // a corrupt middle: damaged (possibly only at the checksum), naming the file
            memcpy(packed.data + packed.len / 2, "\xff\x00\xff\x00\xff\x00\xff\x00", 8);
            write_bytes(name, packed.data, packed.len);
            expect_read(name, 1, NULL, 0, &out, &err);
            assert_non_null(strstr(err.msg, name));
            assert_non_null(strstr(err.msg, ": compressed data "));
        }
    }
    // cut inside the second member's or frame's header: truncated, not a clean end
    for (int zstd = 0; zstd < 2; zstd++) {
        test_pack(&packed, zstd, text, 1000, 1);
        size_t first = packed.len;
        test_pack(&packed, zstd, text, 2000, 2);
        write_bytes(tmp("cut2"), packed.data, first + 5);
        expect_read(tmp("cut2"), 1, NULL, 0, &out, &err);
        assert_int_equal(out.len, 1000);
        assert_non_null(strstr(err.msg, "truncated"));
    }
    // junk after a complete member is damage too (everything before it is kept)
    test_pack(&packed, 0, text, 1000, 1);
    kbuf_puts(&packed, "junk");
    write_bytes(tmp("junk.gz"), packed.data, packed.len);
    expect_read(tmp("junk.gz"), 1, NULL, 0, &out, &err);
    assert_int_equal(out.len, 1000);
    assert_memory_equal(out.data, text, 1000);
    // a magic number alone, an empty file, a lone 0x1f, a missing file
    write_bytes(tmp("magic.zst"), "\x28\xb5\x2f\xfd", 4);
    expect_read(tmp("magic.zst"), 1, NULL, 0, &out, &err);
    assert_int_equal(out.len, 0);
    assert_non_null(strstr(err.msg, "magic.zst: compressed data truncated after 0 bytes"));
    write_bytes(tmp("empty"), "", 0);
    expect_read(tmp("empty"), 0, "", 0, &out, &err);
    write_bytes(tmp("one"), "\x1f", 1);
    expect_read(tmp("one"), 0, "\x1f", 1, &out, &err);
    assert_int_equal(kiln_read_decompressed(tmp("missing.gz"), &out, &err), -1);
    assert_non_null(strstr(err.msg, "missing.gz: cannot open: No such file"));
    assert_int_equal(kiln_read_decompressed(test_tmpdir(), &out, &err), -1);
    assert_non_null(strstr(err.msg, ": read error: Is a directory"));
    kbuf_free(&packed);
    kbuf_free(&out);
    free(text);
}

typedef struct {
    const char *text;  // the original content
    size_t n;
    int parts;  // how many members or frames it was packed in
    int clean;  // mutants read as complete
} DecompFuzz;

// A mutant reads as complete only when it still decodes to the original (or to
// the original up to a member/frame boundary, or is no longer compressed: then
// its own bytes); otherwise it is damage that names the file.
static int decompressed_fuzz(const char *path, void *ctx) {
    DecompFuzz *f = ctx;
    KilnBuf out = {0};
    KilnErr err;
    char *raw;
    size_t rn;
    assert_int_equal(kiln_read_file(path, &raw, &rn, &err), 0);
    int rc = kiln_read_decompressed(path, &out, &err);
    assert_true(rc == 0 || rc == 1);
    assert_non_null(out.data);
    assert_int_equal(out.data[out.len], 0);
    int gz = rn >= 2 && !memcmp(raw, "\x1f\x8b", 2), zs = rn >= 4 && !memcmp(raw, "\x28\xb5\x2f\xfd", 4);
    if (rc == 1) {
        assert_true(gz || zs);
        assert_non_null(strstr(err.msg, path));
        assert_non_null(strstr(err.msg, ": compressed data "));
    } else if (!gz && !zs) {
        assert_int_equal(out.len, rn);
        assert_memory_equal(out.data, raw, rn);
    } else {
        int boundary = 0;
        for (int i = 0; i <= f->parts; i++) boundary |= out.len == f->n * (size_t)i / (size_t)f->parts;
        assert_true(boundary);
        assert_memory_equal(out.data, f->text, out.len);
        f->clean++;
    }
    free(raw);
    kbuf_free(&out);
    return rc;
}

static void test_read_decompressed_fuzz(void **st) {
    (void)st;
    DecompFuzz f = {.n = 20000, .parts = 3};
    char *text = random_text(f.n, 9);
    f.text = text;
    KilnBuf packed = {0};
    for (int zstd = 0; zstd < 2; zstd++) {
        test_pack(&packed, zstd, text, f.n, f.parts);
        f.clean = 0;
        int damaged = fuzz_mutants(packed.data, packed.len, 16, tmp("mutant"), 1000, 20 + (uint64_t)zstd,
                                   decompressed_fuzz, &f);
        print_message("%s: 1000 mutants, %d damaged, %d read whole\n", zstd ? "zstd" : "gzip", damaged, f.clean);
        assert_true(damaged > 500);  // truncations, flips and junk are nearly all caught (CRC, checksum)
        assert_true(f.clean > 0);
    }
    kbuf_free(&packed);
    free(text);
}

// Report and manifest JSON carry names of any length, escaped, never cut.
static void test_long_names_in_json(void **st) {
    (void)st;
    char name[3001];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    name[10] = '"';
    KilnStageReport r;
    stage_report_init(&r, name);
    KilnDoc d = {0};
    kbuf_puts(&d.source, name);
    kbuf_puts(&d.id, name);
    kbuf_puts(&d.text, "some text");
    stage_report_drop(&r, name, &d);
    KilnBuf b = {0};
    assert_int_equal(stage_report_json(&r, &b), 0);
    cJSON *j = cJSON_Parse(b.data);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "stage")->valuestring, name);
    cJSON *drop = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "drops"), 0);
    assert_string_equal(cJSON_GetObjectItem(drop, "reason")->valuestring, name);
    cJSON_Delete(j);
    stage_report_free(&r);
    // the manifest: tokenizer name, source names and extra members
    KilnCorpusOptions o = {.out_dir = tmp("longcorpus"), .tok_name = name, .shard_tokens = 1024, .seed = 1};
    KilnCorpusWriter *w;
    KilnErr err;
    assert_int_equal(corpus_writer_open(&w, &o, &err), 0);
    assert_int_equal(corpus_writer_add(w, &d, 1, &err), 0);
    kbuf_clear(&b);
    kbuf_puts(&b, "\"pipeline\":");
    kbuf_json_str(&b, name);
    assert_int_equal(corpus_writer_finish(w, b.data, &err), 0);
    char *m;
    size_t mn;
    assert_int_equal(kiln_read_file(tmp("longcorpus/manifest.json"), &m, &mn, &err), 0);
    j = cJSON_ParseWithLength(m, mn);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "tokenizer")->valuestring, name);
    assert_string_equal(cJSON_GetObjectItem(j, "pipeline")->valuestring, name);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sources"), name));
    cJSON *shard = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "shards"), 0);
    cJSON *doc = cJSON_GetArrayItem(cJSON_GetObjectItem(shard, "docs"), 0);  // [source, id, start, n]
    assert_string_equal(cJSON_GetArrayItem(doc, 1)->valuestring, name);
    cJSON_Delete(j);
    free(m);
    kbuf_free(&b);
    doc_free(&d);
}

// val_last_tokens (`kiln tokenizer encode-corpus`): the last val_fraction of all
// tokens is the validation shard, whatever the documents; one cut in two is
// listed in both shards, and counted where it starts.
static void test_corpus_last_tokens(void **st) {
    (void)st;
    KilnCorpusOptions o = {.out_dir = tmp("tailcorpus"), .tok_name = "bytes", .shard_tokens = KILN_CORPUS_ONE_SHARD,
                           .val_fraction = 0.375, .val_last_tokens = 1, .no_doc_start = 1};
    const char *text[] = {"aaaa", "bbbbbbbb", "cccc"};  // 16 tokens: 10 train, 6 val
    KilnDoc d[3];
    memset(d, 0, sizeof d);
    for (int i = 0; i < 3; i++) {
        kbuf_putc(&d[i].source, (char)('a' + i));
        kbuf_puts(&d[i].id, "1");
        kbuf_puts(&d[i].text, text[i]);
    }
    KilnCorpusWriter *w;
    KilnErr err;
    assert_int_equal(corpus_writer_open(&w, &o, &err), 0);
    assert_int_equal(corpus_writer_add(w, d, 3, &err), 0);
    assert_int_equal(corpus_writer_tokens(w), 16);
    assert_int_equal(corpus_writer_docs(w), 3);
    assert_int_equal(corpus_writer_finish(w, NULL, &err), 0);
    KilnShard sh;
    assert_int_equal(shard_open(&sh, tmp("tailcorpus/val_000000.bin"), 256, &err), 0);
    assert_int_equal(sh.ntok, 6);
    for (long i = 0; i < 6; i++) assert_int_equal(shard_token(&sh, i), "bbcccc"[i]);
    shard_close(&sh);
    char *m;
    size_t mn;
    assert_int_equal(kiln_read_file(tmp("tailcorpus/manifest.json"), &m, &mn, &err), 0);
    cJSON *j = cJSON_ParseWithLength(m, mn);
    free(m);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "tokens"), "train")->valueint, 10);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "docs"), "train")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "docs"), "val")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(j, "doc_start_token")->valueint, -1);
    cJSON *shards = cJSON_GetObjectItem(j, "shards");
    char *train = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(shards, 0), "docs"));
    char *val = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(shards, 1), "docs"));
    assert_string_equal(train, "[[\"a\",\"1\",0,4],[\"b\",\"1\",4,6]]");
    assert_string_equal(val, "[[\"b\",\"1\",0,2],[\"c\",\"1\",2,4]]");
    free(train), free(val);
    cJSON_Delete(j);
    for (int i = 0; i < 3; i++) doc_free(&d[i]);
    // no tokens at all: still a train shard, an empty one, and no val shard
    o.out_dir = tmp("tailempty");
    assert_int_equal(corpus_writer_open(&w, &o, &err), 0);
    assert_int_equal(corpus_writer_finish(w, NULL, &err), 0);
    assert_int_equal(shard_open(&sh, tmp("tailempty/train_000000.bin"), 256, &err), 0);
    assert_int_equal(sh.ntok, 0);
    shard_close(&sh);
    assert_int_equal(access(tmp("tailempty/val_000000.bin"), F_OK), -1);
}

static void test_writer_roundtrip(void **st) {
    (void)st;
    KilnDocWriter *w;
    KilnErr err;
    KilnDoc d = {0};
    kbuf_puts(&d.source, "s\"rc");
    kbuf_puts(&d.id, "id\n1");
    kbuf_append(&d.text, "t\0ext \x01 é \"q\"", 14);
    assert_int_equal(docwriter_open(&w, tmp("out.jsonl"), &err), 0);
    assert_int_equal(docwriter_put(w, &d, "\"drop\":\"x\"", &err), 0);
    assert_int_equal(docwriter_put(w, &d, NULL, &err), 0);
    // nothing at the final name before commit
    FILE *f = fopen(tmp("out.jsonl"), "r");
    assert_null(f);
    assert_int_equal(docwriter_commit(w, &err), 0);
    KilnDoc back[2] = {0};
    long skips;
    assert_int_equal(read_all(tmp("out.jsonl"), back, 2, &skips, NULL), 2);
    assert_int_equal(skips, 0);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(back[i].source.data, "s\"rc");
        assert_string_equal(back[i].id.data, "id\n1");
        assert_int_equal(back[i].text.len, 14);
        assert_memory_equal(back[i].text.data, d.text.data, 14);
        doc_free(&back[i]);
    }
    // abort leaves no file
    assert_int_equal(docwriter_open(&w, tmp("gone.jsonl"), &err), 0);
    docwriter_put(w, &d, NULL, &err);
    docwriter_abort(w);
    assert_null(fopen(tmp("gone.jsonl"), "r"));
    assert_null(fopen(tmp("gone.jsonl.tmp"), "r"));
    // a device is written in place, never replaced by a renamed temp file
    assert_int_equal(docwriter_open(&w, "/dev/null", &err), 0);
    assert_int_equal(docwriter_put(w, &d, NULL, &err), 0);
    assert_int_equal(docwriter_commit(w, &err), 0);
    struct stat sb;
    assert_int_equal(stat("/dev/null", &sb), 0);
    assert_true(S_ISCHR(sb.st_mode));
    // and the atomic writer refuses to rename over one
    assert_int_equal(mkfifo(tmp("fifo"), 0600), 0);
    KilnAtomicFile af;
    assert_int_equal(kiln_atomic_open(&af, tmp("fifo"), &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
    doc_free(&d);
}

static void test_params(void **st) {
    (void)st;
    KilnParams ps = {0};
    KilnErr err;
    ps.stage = strdup("demo");
    params_add(&ps, "n", "13", "p.yaml:4", &err);
    params_add(&ps, "x", "0.5", "p.yaml:5", &err);
    params_add(&ps, "on", "yes", "p.yaml:6", &err);
    params_add(&ps, "files", "a", "p.yaml:7", &err);
    params_add(&ps, "files", "b", "p.yaml:7", &err);
    params_add(&ps, "mode", "excise", "p.yaml:8", &err);
    params_add(&ps, "typo", "1", "p.yaml:9", &err);
    long n = 5, absent = 42;
    double x = 0;
    int on = 0, mode = 0;
    const char *const *files;
    int nf;
    static const char *const modes[] = {"drop", "excise", NULL};
    assert_int_equal(params_int(&ps, "n", &n, &err), 0);
    assert_int_equal(n, 13);
    assert_int_equal(params_int(&ps, "absent", &absent, &err), 0);
    assert_int_equal(absent, 42);
    assert_int_equal(params_double(&ps, "x", &x, &err), 0);
    assert_true(x == 0.5);
    assert_int_equal(params_bool(&ps, "on", &on, &err), 0);
    assert_int_equal(on, 1);
    assert_int_equal(params_list(&ps, "files", &files, &nf, &err), 0);
    assert_int_equal(nf, 2);
    assert_string_equal(files[1], "b");
    assert_int_equal(params_enum(&ps, "mode", modes, &mode, &err), 0);
    assert_int_equal(mode, 1);
    assert_int_equal(params_check_unused(&ps, &err), -1);
    assert_non_null(strstr(err.msg, "p.yaml:9"));
    assert_non_null(strstr(err.msg, "typo"));
    // wrong types name the key, the value and where
    assert_int_equal(params_int(&ps, "x", &n, &err), -1);
    assert_non_null(strstr(err.msg, "p.yaml:5"));
    assert_non_null(strstr(err.msg, "'0.5'"));
    assert_int_equal(params_int(&ps, "files", &n, &err), -1);
    assert_int_equal(params_enum(&ps, "n", modes, &mode, &err), -1);
    assert_non_null(strstr(err.msg, "one of drop, excise"));
    params_free(&ps);
}

// A toy stage: drops documents containing "spam", upper-cases the rest.
static const char *toy_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    (void)state;
    if (strstr(doc->text.data, "spam")) return "toy:spam";
    kbuf_set(&s->a, doc->text.data, doc->text.len);
    for (size_t i = 0; i < s->a.len; i++)
        if (s->a.data[i] >= 'a' && s->a.data[i] <= 'z') s->a.data[i] -= 32;
    kbuf_swap(&doc->text, &s->a);
    return NULL;
}
static const char *short_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    (void)state, (void)s;
    return doc->text.len < 5 ? "short:too_short" : NULL;
}
static const KilnStageDef TOY = {.name = "toy", .apply = toy_apply};
static const KilnStageDef SHORT = {.name = "short", .apply = short_apply};

static void test_run_stream(void **st) {
    (void)st;
    KilnDocWriter *w;
    KilnErr err;
    assert_int_equal(docwriter_open(&w, tmp("in.jsonl"), &err), 0);
    KilnDoc d = {0};
    kbuf_puts(&d.source, "src");
    int nspam = 0, nshort = 0, nkept = 0;
    for (int i = 0; i < 10000; i++) {
        char id[16], text[64];
        snprintf(id, sizeof id, "%d", i);
        if (i % 7 == 0) snprintf(text, sizeof text, "spam %d", i), nspam++;
        else if (i % 5 == 0) snprintf(text, sizeof text, "ab"), nshort++;
        else snprintf(text, sizeof text, "doc number %d", i), nkept++;
        kbuf_set(&d.id, id, strlen(id));
        kbuf_set(&d.text, text, strlen(text));
        docwriter_put(w, &d, NULL, &err);
    }
    assert_int_equal(docwriter_commit(w, &err), 0);
    KilnStage stages[2] = {{.def = &TOY}, {.def = &SHORT}};
    KilnStageReport reps[2];
    stage_report_init(&reps[0], "toy");
    stage_report_init(&reps[1], "short");
    KilnDocReader *r;
    KilnDocWriter *out, *rej;
    assert_int_equal(docreader_open(&r, tmp("in.jsonl"), NULL, NULL, &err), 0);
    assert_int_equal(docwriter_open(&out, tmp("out.jsonl"), &err), 0);
    assert_int_equal(docwriter_open(&rej, tmp("rej.jsonl"), &err), 0);
    stages[0].rejects = stages[1].rejects = rej;
    assert_int_equal(stages_run_stream(stages, 2, docreader_source(r), out, reps, &err), 0);
    docreader_close(r);
    assert_int_equal(docwriter_commit(out, &err), 0);
    assert_int_equal(docwriter_commit(rej, &err), 0);
    assert_int_equal(reps[0].docs_in, 10000);
    assert_int_equal(reps[0].docs_out, 10000 - nspam);
    assert_int_equal(reps[0].docs_changed, 10000 - nspam);
    assert_int_equal(reps[1].docs_in, 10000 - nspam);
    assert_int_equal(reps[1].docs_out, nkept);
    assert_int_equal(reps[0].nreasons, 1);
    assert_int_equal(reps[0].reasons[0].docs, nspam);
    assert_string_equal(reps[0].reasons[0].examples[0], "src/0: spam 0");
    assert_int_equal(reps[1].reasons[0].docs, nshort);
    // kept documents in input order, rewritten
    KilnDoc *kept = calloc((size_t)nkept, sizeof *kept);
    assert_int_equal(read_all(tmp("out.jsonl"), kept, nkept, NULL, NULL), nkept);
    assert_string_equal(kept[0].text.data, "DOC NUMBER 1");
    assert_string_equal(kept[nkept - 1].id.data, "9999");
    for (int i = 0; i < nkept; i++) doc_free(&kept[i]);
    free(kept);
    // rejects carry their reason
    char *rj;
    size_t rn;
    assert_int_equal(kiln_read_file(tmp("rej.jsonl"), &rj, &rn, &err), 0);
    assert_non_null(strstr(rj, "{\"source\":\"src\",\"id\":\"0\",\"text\":\"spam 0\",\"drop\":\"toy:spam\"}"));
    free(rj);
    stage_report_free(&reps[0]);
    stage_report_free(&reps[1]);
    doc_free(&d);
}

static void test_sample(void **st) {
    (void)st;
    // source big: 1000 docs of 100 bytes; small: 100 docs of 100 bytes.
    KilnDocWriter *w;
    KilnErr err;
    assert_int_equal(docwriter_open(&w, tmp("mix.jsonl"), &err), 0);
    KilnDoc d = {0};
    char text[101];
    memset(text, 'x', 100);
    text[100] = 0;
    for (int i = 0; i < 1100; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        kbuf_set(&d.source, i < 1000 ? "big" : "small", i < 1000 ? 3 : 5);
        kbuf_set(&d.id, id, strlen(id));
        kbuf_set(&d.text, text, 100);
        docwriter_put(w, &d, NULL, &err);
    }
    assert_int_equal(docwriter_commit(w, &err), 0);
    // equal weights, output = input size: small is capped at 3 epochs (300 docs)
    // and big gets the rest (800 docs)
    const KilnStageDef *def = stage_find("sample");
    assert_non_null(def);
    KilnParams ps = {0};
    params_add(&ps, "weights", "big=1", NULL, &err);
    params_add(&ps, "weights", "small=1", NULL, &err);
    params_add(&ps, "max_epochs", "3", NULL, &err);
    void *state;
    assert_int_equal(def->create(&ps, 7, &state, &err), 0);
    assert_int_equal(params_check_unused(&ps, &err), 0);
    KilnStageReport rep;
    stage_report_init(&rep, "sample");
    assert_int_equal(docwriter_open(&w, tmp("mixed.jsonl"), &err), 0);
    assert_int_equal(def->run_corpus(state, tmp("mix.jsonl"), w, NULL, test_tmpdir(), &rep, &err), 0);
    assert_int_equal(docwriter_commit(w, &err), 0);
    assert_int_equal(rep.docs_in, 1100);
    KilnDocReader *r;
    int big = 0, small = 0, small_rep3 = 0;
    assert_int_equal(docreader_open(&r, tmp("mixed.jsonl"), NULL, NULL, &err), 0);
    while (docreader_next(r, &d, &err) > 0) {
        if (!strcmp(d.source.data, "big")) big++;
        else small++, small_rep3 += strstr(d.id.data, "#3") != NULL;
    }
    docreader_close(r);
    assert_int_equal(small, 300);
    assert_int_equal(small_rep3, 100);
    assert_in_range(big, 760, 840);  // binomial around 800
    assert_int_equal(rep.docs_out, big + small);
    assert_int_equal(rep.reasons[0].docs, 1000 - big);
    char *json = def->report_json(state);
    assert_non_null(strstr(json, "\"small\":{\"docs_in\":100,\"bytes_in\":10000,\"multiplier\":3,"));
    free(json);
    def->destroy(state);
    params_free(&ps);
    stage_report_free(&rep);
    doc_free(&d);
    // bad weights are errors naming the value
    params_add(&ps, "weights", "big", NULL, &err);
    assert_int_equal(def->create(&ps, 7, &state, &err), -1);
    assert_non_null(strstr(err.msg, "'big'"));
    params_free(&ps);
}

static int reader_fuzz(const char *path, void *ctx) {
    (void)ctx;
    long skips;
    KilnDoc d[2] = {0};
    int n = read_all(path, d, 2, &skips, NULL);
    for (int i = 0; i < 2; i++) {
        if (d[i].text.data) assert_true(utf8_valid(d[i].text.data, d[i].text.len));
        doc_free(&d[i]);
    }
    return n < 0 ? -1 : 0;
}

static void test_reader_fuzz(void **st) {
    (void)st;
    fuzz_mutants(JSONL, sizeof JSONL - 1, 64, tmp("fuzz.jsonl"), 2000, 1, reader_fuzz, NULL);
    // compressed mutants too
    size_t cap = ZSTD_compressBound(sizeof JSONL);
    char *z = malloc(cap);
    size_t zn = ZSTD_compress(z, cap, JSONL, sizeof JSONL - 1, 3);
    fuzz_mutants(z, zn, 16, tmp("fuzz.zst"), 1000, 2, reader_fuzz, NULL);
    uLongf gn = compressBound(sizeof JSONL) + 32;
    unsigned char *gz = malloc(gn + 32);
    gzFile g = gzopen(tmp("src.gz"), "wb");
    gzwrite(g, JSONL, sizeof JSONL - 1);
    gzclose(g);
    char *gd;
    size_t gl;
    KilnErr err;
    kiln_read_file(tmp("src.gz"), &gd, &gl, &err);
    fuzz_mutants(gd, gl, 16, tmp("fuzz.gz"), 1000, 3, reader_fuzz, NULL);
    free(z), free(gz), free(gd);
}

static const char PIPE[] = "seed: 7\nout_dir: /nonexistent/out\n"
                           "sources:\n  - {name: a, format: jsonl, paths: [a.jsonl, 'b*.jsonl'], text_field: body}\n"
                           "  - {name: b, format: jsonl, paths: [b.jsonl]}\n"
                           "stages:\n  - clean: {symbols: names}\n  - gopher_quality\n"
                           "  - minhash_dedup: {threshold: 0.8, bands: 14}\n"
                           "  - sample: {weights: [a=1, b=2]}\n"
                           "output: {tokenizer: bytes, shard_tokens: 4096, val_fraction: 0.1}\n";

static int pipe_reader(const char *path, void *ctx) {
    (void)ctx;
    KilnPipeline p;
    KilnErr err;
    if (pipeline_load(&p, path, &err)) {
        assert_true(strlen(err.msg) > 0);
        return -1;
    }
    pipeline_free(&p);
    return 0;
}

static void test_pipeline_load(void **st) {
    (void)st;
    write_bytes(tmp("p.yaml"), PIPE, sizeof PIPE - 1);
    KilnPipeline p;
    KilnErr err;
    assert_int_equal(pipeline_load(&p, tmp("p.yaml"), &err), 0);
    assert_int_equal(p.seed, 7);
    assert_int_equal(p.nsources, 2);
    assert_int_equal(p.sources[0].nglobs, 2);
    assert_string_equal(p.sources[0].opts.p[0].key, "text_field");  // format options pass through
    assert_int_equal(p.nstages, 4);
    assert_string_equal(p.stages[2].name, "minhash_dedup");
    assert_int_equal(p.stages[3].params.p[0].nvals, 2);
    assert_int_equal(p.shard_tokens, 4096);
    pipeline_free(&p);
    // mutants: loaded or refused with a message, never a crash
    int refused = fuzz_mutants(PIPE, sizeof PIPE - 1, 32, tmp("m.yaml"), 2000, 11, pipe_reader, NULL);
    assert_true(refused > 100);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),           cmocka_unit_test(test_utf8_codec),
        cmocka_unit_test(test_jsonl_names_and_skips), cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_reader_plain),   cmocka_unit_test(test_reader_compressed),
        cmocka_unit_test(test_writer_roundtrip), cmocka_unit_test(test_params),
        cmocka_unit_test(test_run_stream),     cmocka_unit_test(test_sample),
        cmocka_unit_test(test_read_decompressed), cmocka_unit_test(test_read_decompressed_fuzz),
        cmocka_unit_test(test_long_names_in_json), cmocka_unit_test(test_corpus_last_tokens),
        cmocka_unit_test(test_reader_fuzz),    cmocka_unit_test(test_pipeline_load),
    };
    return TEST_RUN("data_core", tests);
}
