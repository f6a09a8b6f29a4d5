// test_data_warc: the WARC reader on Common Crawl's own sample (WARC, WET, WAT,
// plain and gzip) and on warcio's test files, some deliberately damaged; record
// counts, types and URIs were checked by hand (zcat | grep, and a byte-level
// walk of each file). Plus truncated and corrupt gzip, junk between records,
// and mutation fuzzing.
#include "data/read/extract.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char web[1024];

static const char *path_of(const char *rel) {
    static char p[4][1200];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", web, rel);
    return p[i];
}

// All records of a file, copied out.
typedef struct {
    KilnWarcRecord r[16];
    int n;
    long skips;
    char skip0[256];
} Records;

static void read_all(const char *path, Records *out) {
    memset(out, 0, sizeof *out);
    KilnWarcReader *r;
    KilnErr err;
    assert_int_equal(warc_open(&r, path, &err), 0);
    KilnWarcRecord rec = {0};
    int rc;
    while ((rc = warc_next(r, &rec, &err)) == 1) {
        assert_true(out->n < 16);
        out->r[out->n++] = rec;  // hand the buffers over
        memset(&rec, 0, sizeof rec);
    }
    assert_int_equal(rc, 0);
    out->skips = warc_skips(r)->count;
    if (out->skips) snprintf(out->skip0, sizeof out->skip0, "%s", warc_skips(r)->examples[0]);
    warc_record_free(&rec);
    warc_close(r);
}

static void free_all(Records *x) {
    for (int i = 0; i < x->n; i++) warc_record_free(&x->r[i]);
}

static const char *s(const KilnBuf *b) { return b->data ? b->data : ""; }

static void expect_types(const Records *x, const char *const *types, int n) {
    assert_int_equal(x->n, n);
    for (int i = 0; i < n; i++) assert_string_equal(s(&x->r[i].type), types[i]);
}

static void assert_same(const Records *a, const Records *b) {
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const KilnWarcRecord *x = &a->r[i], *y = &b->r[i];
        assert_string_equal(s(&x->type), s(&y->type));
        assert_string_equal(s(&x->target_uri), s(&y->target_uri));
        assert_string_equal(s(&x->record_id), s(&y->record_id));
        assert_string_equal(s(&x->date), s(&y->date));
        assert_string_equal(s(&x->content_type), s(&y->content_type));
        assert_int_equal(x->http_status, y->http_status);
        assert_int_equal(x->payload.len, y->payload.len);
        assert_memory_equal(x->payload.data, y->payload.data, x->payload.len);
    }
}

// ---- Common Crawl
static void test_whirlwind_warc(void **state) {
    Records a, b;
    read_all(path_of("commoncrawl-whirlwind/whirlwind.warc"), &a);
    const char *types[] = {"warcinfo", "request", "response", "metadata"};
    expect_types(&a, types, 4);
    assert_int_equal(a.skips, 0);
    const KilnWarcRecord *resp = &a.r[2];
    assert_string_equal(s(&resp->target_uri), "https://an.wikipedia.org/wiki/Escopete");
    assert_string_equal(s(&resp->record_id), "<urn:uuid:2aabeff2-67f5-4608-8466-e87c6296e2b6>");
    assert_string_equal(s(&resp->date), "2024-05-18T01:58:10Z");
    assert_int_equal(resp->http_status, 200);
    assert_string_equal(s(&resp->content_type), "text/html; charset=UTF-8");
    assert_int_equal(resp->payload.len, 72848);  // the HTTP Content-Length
    assert_memory_equal(resp->payload.data, "<!DOCTYPE html>", 15);
    assert_int_equal(a.r[1].http_status, 0);  // request records keep their block
    assert_memory_equal(a.r[1].payload.data, "GET /wiki/Escopete HTTP/1.1", 27);
    // the page's main text
    KilnBuf text = {0}, title = {0};
    KilnErr err;
    assert_int_equal(html_main_text(resp->payload.data, resp->payload.len, &text, &title, &err), 0);
    assert_string_equal(s(&title), "Escopete - Biquipedia, a enciclopedia libre");
    assert_non_null(strstr(s(&text), "Escopete"));
    kbuf_free(&text);
    kbuf_free(&title);
    // the gzip file (one member per record) gives the same records
    read_all(path_of("commoncrawl-whirlwind/whirlwind.warc.gz"), &b);
    assert_same(&a, &b);
    free_all(&a);
    free_all(&b);
}

static void test_whirlwind_wet_wat(void **state) {
    Records a, b;
    read_all(path_of("commoncrawl-whirlwind/whirlwind.warc.wet"), &a);
    const char *wet[] = {"warcinfo", "conversion"};
    expect_types(&a, wet, 2);
    assert_string_equal(s(&a.r[1].content_type), "text/plain");
    assert_int_equal(a.r[1].payload.len, 4456);
    assert_memory_equal(a.r[1].payload.data, "Escopete - Biquipedia, a enciclopedia libre\nIr al contenido\n", 60);
    read_all(path_of("commoncrawl-whirlwind/whirlwind.warc.wet.gz"), &b);
    assert_same(&a, &b);
    free_all(&a);
    free_all(&b);
    read_all(path_of("commoncrawl-whirlwind/whirlwind.warc.wat"), &a);
    const char *wat[] = {"warcinfo", "metadata"};
    expect_types(&a, wat, 2);
    assert_string_equal(s(&a.r[1].content_type), "application/json");
    assert_memory_equal(a.r[1].payload.data, "{\"Container\":", 13);
    read_all(path_of("commoncrawl-whirlwind/whirlwind.warc.wat.gz"), &b);
    assert_same(&a, &b);
    free_all(&a);
    free_all(&b);
}

// ---- warcio's files
static const char *const EXAMPLE_TYPES[] = {"warcinfo", "warcinfo", "response", "request", "revisit", "request"};

static void check_example(const Records *x) {
    expect_types(x, EXAMPLE_TYPES, 6);
    assert_int_equal(x->skips, 0);
    for (int i = 0; i < 2; i++) assert_int_equal(x->r[i].target_uri.len, 0);
    for (int i = 2; i < 6; i++) assert_string_equal(s(&x->r[i].target_uri), "http://example.com/");
    // HTTP Content-Encoding: gzip, 606 bytes on the wire, gunzipped to the page
    const KilnWarcRecord *resp = &x->r[2];
    assert_int_equal(resp->http_status, 200);
    assert_string_equal(s(&resp->content_type), "text/html");
    assert_int_equal(resp->payload.len, 1270);
    assert_memory_equal(resp->payload.data, "<!doctype html>", 15);
    assert_non_null(strstr(resp->payload.data, "<title>Example Domain</title>"));
    assert_int_equal(x->r[4].http_status, 0);  // revisit: headers only, kept as the block
}

static void test_warcio_good(void **state) {
    Records a, b, c;
    read_all(path_of("warcio-testdata/example.warc"), &a);
    check_example(&a);
    read_all(path_of("warcio-testdata/example.warc.gz"), &b);
    check_example(&b);
    assert_same(&a, &b);
    // "bad" for warcio (one gzip stream, not a member per record): fine to stream
    read_all(path_of("warcio-testdata/example-bad-non-chunked.warc.gz"), &c);
    check_example(&c);
    assert_same(&a, &c);
    free_all(&a), free_all(&b), free_all(&c);

    read_all(path_of("warcio-testdata/example-bad.warc.gz.bad"), &a);
    const char *bad[] = {"warcinfo", "response", "request", "revisit", "request", "response"};
    expect_types(&a, bad, 6);
    assert_int_equal(a.skips, 0);
    assert_string_equal(s(&a.r[1].target_uri), "http://example.com?example=1");
    assert_string_equal(s(&a.r[5].target_uri), "http://www.iana.org/domains/example");
    assert_int_equal(a.r[5].http_status, 302);
    assert_string_equal(s(&a.r[5].content_type), "text/html; charset=iso-8859-1");
    assert_int_equal(a.r[5].payload.len, 201);
    free_all(&a);

    read_all(path_of("warcio-testdata/example-digest.warc"), &a);
    const char *dig[] = {"request", "request", "request", "request"};
    expect_types(&a, dig, 4);
    free_all(&a);

    read_all(path_of("warcio-testdata/example-resource.warc.gz"), &a);
    const char *res[] = {"warcinfo", "warcinfo", "resource"};
    expect_types(&a, res, 3);
    assert_string_equal(s(&a.r[2].target_uri), "http://example.com/");
    assert_string_equal(s(&a.r[2].content_type), "text/html; charset=utf-8");
    assert_int_equal(a.r[2].payload.len, 1303);
    free_all(&a);
}

static void test_chunked(void **state) {
    Records a;
    read_all(path_of("warcio-testdata/example-iana.org-chunked.warc"), &a);
    const char *t[] = {"warcinfo", "response", "request"};
    expect_types(&a, t, 3);
    assert_int_equal(a.skips, 0);
    const KilnWarcRecord *r = &a.r[1];
    assert_string_equal(s(&r->target_uri), "http://www.iana.org/");
    assert_int_equal(r->http_status, 200);
    // 7223 bytes once the chunk-size lines are removed (checked with a Python de-chunker)
    assert_int_equal(r->payload.len, 7223);
    assert_memory_equal(r->payload.data, "<!doctype html>", 15);
    assert_memory_equal(r->payload.data + r->payload.len - 8, "</html>\n", 8);
    free_all(&a);
}

// Deliberately damaged: counted skips with the byte offset, the rest read.
static void test_warcio_damaged(void **state) {
    Records a;
    // the response's Content-Length (973) is 2 bytes short and the file ends after 4 records
    read_all(path_of("warcio-testdata/example-trunc.warc"), &a);
    const char *t[] = {"warcinfo", "warcinfo", "request"};
    expect_types(&a, t, 3);
    assert_int_equal(a.skips, 1);
    assert_non_null(strstr(a.skip0, "example-trunc.warc: byte 1197:"));
    free_all(&a);
    // the response's Content-Length (1613) is 1 byte short; gzip members split mid-record
    read_all(path_of("warcio-testdata/example-wrong-chunks.warc.gz"), &a);
    const char *w[] = {"request"};
    expect_types(&a, w, 1);
    assert_string_equal(s(&a.r[0].target_uri), "http://example.com/");
    assert_int_equal(a.skips, 1);
    assert_non_null(strstr(a.skip0, "example-wrong-chunks.warc.gz: byte 0:"));
    free_all(&a);
}

// ---- damage made here
static char *slurp(const char *path, size_t *n) {
    char *d;
    KilnErr err;
    assert_int_equal(kiln_read_file(path, &d, n, &err), 0);
    return d;
}

static void test_truncated_gzip(void **state) {
    size_t n;
    char *d = slurp(path_of("warcio-testdata/example.warc.gz"), &n);
    // members end at 353, 784, 2012, 2621, 3207, 3816: cut inside the fifth
    write_bytes(tmp("trunc.warc.gz"), d, 3000);
    Records a;
    read_all(tmp("trunc.warc.gz"), &a);
    expect_types(&a, EXAMPLE_TYPES, 4);
    assert_true(a.skips >= 1);
    assert_non_null(strstr(a.skip0, "compressed byte 3000: gzip stream truncated"));
    free_all(&a);
    // cut exactly at a member boundary: clean, 4 records, nothing skipped
    write_bytes(tmp("cut.warc.gz"), d, 2621);
    read_all(tmp("cut.warc.gz"), &a);
    expect_types(&a, EXAMPLE_TYPES, 4);
    assert_int_equal(a.skips, 0);
    free_all(&a);
    free(d);
}

static void test_corrupt_member(void **state) {
    size_t n;
    char *d = slurp(path_of("warcio-testdata/example.warc.gz"), &n);
    d[1000] ^= 0x55;  // inside the third member (the response, bytes 784-2012)
    d[1001] ^= 0x33;
    write_bytes(tmp("corrupt.warc.gz"), d, n);
    Records a;
    read_all(tmp("corrupt.warc.gz"), &a);
    const char *t[] = {"warcinfo", "warcinfo", "request", "revisit", "request"};
    expect_types(&a, t, 5);  // the response is dropped, reading resumes at the next member
    assert_int_equal(a.skips, 2);
    assert_non_null(strstr(a.skip0, "corrupt gzip data"));
    free_all(&a);
    free(d);
}

static void test_junk_between_records(void **state) {
    size_t n;
    char *d = slurp(path_of("warcio-testdata/example.warc"), &n);
    FILE *f = fopen(tmp("junk.warc"), "wb");
    assert_non_null(f);
    fwrite(d, 1, 1197, f);  // before the response record
    fputs("garbage line\r\nmore junk WARC/1.0 not at a line start\r\n\r\n", f);
    fwrite(d + 1197, 1, n - 1197, f);
    fclose(f);
    Records a;
    read_all(tmp("junk.warc"), &a);
    expect_types(&a, EXAMPLE_TYPES, 6);
    assert_int_equal(a.skips, 1);
    assert_non_null(strstr(a.skip0, "junk.warc: byte 1197: no WARC version line"));
    free_all(&a);
    // a Content-Length that swallows the next record's header: resync inside the block
    char *e = malloc(n);
    memcpy(e, d, n);
    char *cl = strstr(e + 488, "Content-Length: 470");  // the second warcinfo
    assert_non_null(cl);
    memcpy(cl, "Content-Length: 900", 19);
    write_bytes(tmp("long.warc"), e, n);
    read_all(tmp("long.warc"), &a);
    const char *t[] = {"warcinfo", "response", "request", "revisit", "request"};
    expect_types(&a, t, 5);
    assert_int_equal(a.skips, 1);
    free_all(&a);
    free(e);
    free(d);
}

static void test_errors(void **state) {
    KilnWarcReader *r;
    KilnErr err;
    assert_int_equal(warc_open(&r, tmp("missing.warc"), &err), -1);
    assert_non_null(strstr(err.msg, "missing.warc"));
    write_bytes(tmp("empty.warc"), "", 0);
    Records a;
    read_all(tmp("empty.warc"), &a);
    assert_int_equal(a.n, 0);
    assert_int_equal(a.skips, 0);
}

// ---- fuzz: damaged input is skipped, never a crash, never -1
typedef struct {
    long with_skips, records;
} FuzzStats;

static int fuzz_reader(const char *path, void *ctx) {
    FuzzStats *st = ctx;
    KilnWarcReader *r;
    KilnErr err;
    if (warc_open(&r, path, &err)) return -1;
    KilnWarcRecord rec = {0};
    int rc;
    while ((rc = warc_next(r, &rec, &err)) == 1) st->records++;
    st->with_skips += warc_skips(r)->count > 0;
    warc_record_free(&rec);
    warc_close(r);
    return rc < 0 ? -1 : 0;
}

static void fuzz_file(const char *rel, int iters) {
    size_t n;
    char *d = slurp(path_of(rel), &n);
    FuzzStats st = {0};
    int refused = fuzz_mutants(d, n, 600, tmp("mutant"), iters, 1234, fuzz_reader, &st);
    print_message("fuzzed %s: %d mutants, %d refused, %ld with counted skips, %ld records read\n", rel, iters,
                  refused, st.with_skips, st.records);
    assert_int_equal(refused, 0);
    assert_true(st.with_skips > iters / 10);
    assert_true(st.records > iters);
    free(d);
}

static void test_fuzz(void **state) {
    fuzz_file("warcio-testdata/example.warc", 1500);
    fuzz_file("warcio-testdata/example.warc.gz", 1500);
    fuzz_file("warcio-testdata/example-iana.org-chunked.warc", 800);
    fuzz_file("commoncrawl-whirlwind/whirlwind.warc.gz", 300);
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, "web", web, sizeof web, "commoncrawl-whirlwind/whirlwind.warc",
                      "warcio-testdata/example.warc", NULL))
        return TEST_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whirlwind_warc),  cmocka_unit_test(test_whirlwind_wet_wat),
        cmocka_unit_test(test_warcio_good),     cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_warcio_damaged),  cmocka_unit_test(test_truncated_gzip),
        cmocka_unit_test(test_corrupt_member),  cmocka_unit_test(test_junk_between_records),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_fuzz),
    };
    return TEST_RUN("warc", tests);
}
