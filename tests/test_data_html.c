// test_data_html: HTML main-text extraction scored against the hand-checked
// article bodies of the Zyte article-extraction benchmark (181 real pages),
// broken HTML (never closed, empty, binary, 100k levels deep), mutation fuzz,
// and the `html` stage.
#include "data/read/extract.h"
#include "core/utf8.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utf8proc.h>
#include <xxhash.h>
#include <zlib.h>
#include <cmocka.h>

static char bench_dir[1024];

static char *gunzip_file(const char *path, size_t *len) {
    *len = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    int got;
    while ((got = gzread(g, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    gzclose(g);
    buf[n] = 0;
    *len = n;
    return buf;
}

// ---- scoring: the benchmark's tokens are \w+ runs (letters, digits, marks, _)
static int is_word_cp(utf8proc_int32_t c) {
    if (c == '_') return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

// Token hashes of s, in order.
static size_t tokens(const char *s, size_t n, uint64_t **out) {
    size_t cap = 256, k = 0;
    uint64_t *t = malloc(cap * 8);
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t c;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (l <= 0) { i++; continue; }
        if (!is_word_cp(c)) { i += (size_t)l; continue; }
        size_t st = i;
        while (i < n) {
            l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
            if (l <= 0 || !is_word_cp(c)) break;
            i += (size_t)l;
        }
        if (k == cap) t = realloc(t, (cap *= 2) * 8);
        t[k++] = XXH3_64bits(s + st, i - st);
    }
    *out = t;
    return k;
}

// |multiset intersection| of two sorted arrays
static size_t overlap(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    size_t i = 0, j = 0, c = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) c++, i++, j++;
        else if (a[i] < b[j]) i++;
        else j++;
    }
    return c;
}

typedef struct {
    double p, r, f;           // bag of words, this page
    size_t tp4, fp4, fn4;     // 4-shingles (the benchmark's own measure), for micro averages
} Score;

static size_t shingles(uint64_t *t, size_t n, uint64_t **out) {
    size_t m = n >= 4 ? n - 3 : (n ? 1 : 0);
    uint64_t *s = malloc((m + 1) * 8);
    for (size_t i = 0; i < m; i++) {
        uint64_t h = 0;
        for (size_t j = i; j < i + 4 && j < n; j++) h = XXH3_64bits_withSeed(&t[j], 8, h);
        s[i] = h;
    }
    *out = s;
    return m;
}

static Score score(const char *pred, size_t np, const char *truth, size_t nt) {
    uint64_t *a, *b, *sa, *sb;
    size_t na = tokens(pred, np, &a), nb = tokens(truth, nt, &b);
    size_t ma = shingles(a, na, &sa), mb = shingles(b, nb, &sb);
    qsort(a, na, 8, cmp_u64);
    qsort(b, nb, 8, cmp_u64);
    qsort(sa, ma, 8, cmp_u64);
    qsort(sb, mb, 8, cmp_u64);
    size_t o = overlap(a, na, b, nb), o4 = overlap(sa, ma, sb, mb);
    Score s = {0};
    s.p = na ? (double)o / (double)na : (nb ? 0 : 1);
    s.r = nb ? (double)o / (double)nb : 1;
    s.f = s.p + s.r > 0 ? 2 * s.p * s.r / (s.p + s.r) : 0;
    s.tp4 = o4, s.fp4 = ma - o4, s.fn4 = mb - o4;
    free(a), free(b), free(sa), free(sb);
    return s;
}

// ---- the benchmark
static void test_benchmark(void **state) {
    char path[1200];
    snprintf(path, sizeof path, "%s/ground-truth.json", bench_dir);
    char *json;
    size_t jn;
    KilnErr err;
    assert_int_equal(kiln_read_file(path, &json, &jn, &err), 0);
    cJSON *gt = cJSON_ParseWithLength(json, jn);
    assert_non_null(gt);
    int pages = 0;
    double sp = 0, sr = 0, sf = 0, mb = 0, secs = 0;
    size_t tp4 = 0, fp4 = 0, fn4 = 0;
    int verbose = getenv("KILN_HTML_EVAL_VERBOSE") != NULL;  // per-page scores, for tuning
    KilnBuf out = {0}, title = {0};
    cJSON *item;
    cJSON_ArrayForEach(item, gt) {
        const cJSON *body = cJSON_GetObjectItem(item, "articleBody");
        assert_true(cJSON_IsString(body));
        snprintf(path, sizeof path, "%s/html/%s.html.gz", bench_dir, item->string);
        size_t hn = 0;
        char *html = gunzip_file(path, &hn);
        assert_non_null(html);
        double t0 = kiln_now();
        assert_int_equal(html_main_text(html, hn, &out, &title, &err), 0);
        secs += kiln_now() - t0;
        mb += (double)hn / 1e6;
        assert_true(utf8_valid(out.data ? out.data : "", out.len));
        Score s = score(out.data ? out.data : "", out.len, body->valuestring, strlen(body->valuestring));
        const char *dump = getenv("KILN_HTML_DUMP");  // the text of pages whose id starts so
        if (dump && !strncmp(item->string, dump, strlen(dump))) printf("----\n%s\n----\n", out.data ? out.data : "");
        if (verbose)
            printf("%s p=%.3f r=%.3f f=%.3f  %s\n", item->string, s.p, s.r, s.f,
                   title.data ? title.data : "");
        sp += s.p, sr += s.r, sf += s.f;
        tp4 += s.tp4, fp4 += s.fp4, fn4 += s.fn4;
        pages++;
        free(html);
    }
    double p4 = (double)tp4 / (double)(tp4 + fp4), r4 = (double)tp4 / (double)(tp4 + fn4);
    print_message("article-extraction-benchmark, %d pages: bag-of-words mean precision %.3f recall %.3f F1 %.3f; "
                  "4-shingle micro P %.3f R %.3f F1 %.3f; %.1f MB in %.2f s = %.1f MB/s on one thread\n",
                  pages, sp / pages, sr / pages, sf / pages, p4, r4, 2 * p4 * r4 / (p4 + r4), mb, secs, mb / secs);
    assert_int_equal(pages, 181);
    // measured 0.959 (bag of words) and 0.958 (4-shingles) when written
    assert_true(sf / pages > 0.94);
    assert_true(2 * p4 * r4 / (p4 + r4) > 0.94);
    kbuf_free(&out);
    kbuf_free(&title);
    cJSON_Delete(gt);
    free(json);
}

// ---- behaviour on small pages
static char *extract(const char *html, size_t n, KilnBuf *title) {
    KilnBuf out = {0};
    KilnErr err;
    assert_int_equal(html_main_text(html, n, &out, title, &err), 0);
    assert_true(out.len == 0 || utf8_valid(out.data, out.len));
    return out.data ? out.data : calloc(1, 1);
}

static char *extract_s(const char *html) { return extract(html, strlen(html), NULL); }

#define PARA(w) "<p>" w " is a paragraph of the article, long enough to count, with commas, and sentences.</p>"

static void test_structure(void **state) {
    const char *page =
        "<!DOCTYPE html><html><head><title>  The   Title &amp; more </title>"
        "<style>p { color: red }</style><script>var x = 'script text';</script></head><body>"
        "<header><a href=/>Site name</a></header>"
        "<nav><ul><li><a href=/a>Home</a></li><li><a href=/b>News</a></li></ul></nav>"
        "<div class=\"sidebar\"><p>Sidebar words, trending, popular, stuff.</p></div>"
        "<article><h1>Headline here</h1>" PARA("Alpha") PARA("Bravo")
        "<p>Caf&eacute; &lt;tag&gt; &#8212; non&nbsp;breaking   spaces\n collapsed.</p>"
        "<pre>  keep   this\n    indentation</pre>"
        "<ul><li>first item</li><li>second item</li></ul>"
        "<table><tr><td>cell one</td><td>cell two</td></tr></table>"
        "<noscript>enable javascript</noscript><form><input value=typed><button>Send</button></form>"
        "<div style=\"display: none\">hidden text</div><div hidden>hidden attr</div>"
        PARA("Charlie") "</article>"
        "<footer><p>Copyright footer words here, all rights reserved, and so on.</p></footer>"
        "</body></html>";
    KilnBuf title = {0};
    char *t = extract(page, strlen(page), &title);
    assert_string_equal(title.data, "The Title & more");
    const char *want[] = {"Headline here\n\nAlpha is a paragraph", "Bravo is", "Charlie is",
                          "Café <tag> — non breaking spaces collapsed.", "  keep   this\n    indentation",
                          "first item\nsecond item", "cell one\ncell two"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(t, want[i])) fail_msg("'%s' missing from:\n%s", want[i], t);
    const char *not[] = {"script text", "color", "Site name", "Home", "Sidebar", "enable javascript", "typed",
                         "Send", "hidden", "Copyright", "The Title"};
    for (size_t i = 0; i < sizeof not / sizeof not[0]; i++)
        if (strstr(t, not[i])) fail_msg("'%s' should be dropped from:\n%s", not[i], t);
    // blocks are separated by one blank line, and the text ends in one newline
    assert_null(strstr(t, "\n\n\n"));
    assert_int_equal(t[strlen(t) - 1], '\n');
    assert_int_not_equal(t[strlen(t) - 2], '\n');
    kbuf_free(&title);
    free(t);
}

// id/class words: whole words only, camelCase split, "ad" only as a first word,
// conditions ("has-", "no-", "with-") are not roles.
static void test_boilerplate_words(void **state) {
    const char *page =
        "<html><body><article>" PARA("One") PARA("Two") PARA("Three")
        "<div class=\"main-nav\">dropnav</div><div class=\"socialShare\">dropcamel</div>"
        "<div class=\"ad-slot\">dropad</div><div id=\"cookie_banner\">dropcookie</div>"
        "<div class=\"Breadcrumbs\">dropcrumbs</div><div role=\"navigation\">droprole</div>"
        "<div class=\"header-image\">keepheaderimage</div><div class=\"canvas\">keepcanvas</div>"
        "<div class=\"shareholders\">keepshareholders</div><div class=\"Page-ad-margins\">keepadmiddle</div>"
        "<div class=\"has-sidebar\">keephas</div><div class=\"advertiser-info load\">keepadvertiser</div>"
        "<div class=\"navigate\">keepnavigate</div>"
        "</article></body></html>";
    char *t = extract_s(page);
    const char *drop[] = {"dropnav", "dropcamel", "dropad", "dropcookie", "dropcrumbs", "droprole"};
    const char *keep[] = {"keepheaderimage", "keepcanvas", "keepshareholders", "keepadmiddle",
                          "keephas", "keepadvertiser", "keepnavigate"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (strstr(t, drop[i])) fail_msg("'%s' should be dropped:\n%s", drop[i], t);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (!strstr(t, keep[i])) fail_msg("'%s' should be kept:\n%s", keep[i], t);
    free(t);
    // a "boilerplate" class on a container holding most of the page is not boilerplate
    t = extract_s("<html><body><div class=\"content-and-menu\">" PARA("Kept") PARA("Also") "</div></body></html>");
    assert_non_null(strstr(t, "Kept is a paragraph"));
    free(t);
}

// The content container wins over link lists and teasers.
static void test_main_content(void **state) {
    const char *page =
        "<html><body><div id=\"links\"><ul>"
        "<li><a href=1>A link list entry that is long enough to be a block</a></li>"
        "<li><a href=2>Another link list entry, long enough to be a block</a></li>"
        "<li><a href=3>A third link list entry, long enough to be a block</a></li></ul></div>"
        "<div class=\"story\">" PARA("First") PARA("Second") PARA("Third") PARA("Fourth") "</div>"
        "<div class=\"teaser\"><a href=4>Teaser link text that goes elsewhere entirely</a></div>"
        "</body></html>";
    char *t = extract_s(page);
    assert_non_null(strstr(t, "First is"));
    assert_non_null(strstr(t, "Fourth is"));
    assert_null(strstr(t, "link list"));
    assert_null(strstr(t, "Teaser"));
    free(t);
}

static void test_charsets(void **state) {
    // no declaration, not UTF-8: windows-1252 (the HTML5 default); 0x93/0x94 are quotes
    char *t = extract_s("<html><body><p>caf\xe9 \x93quoted\x94 na\xefve</p></body></html>");
    assert_non_null(strstr(t, "caf\xc3\xa9 \xe2\x80\x9cquoted\xe2\x80\x9d na\xc3\xafve"));
    free(t);
    // declared ISO-8859-1 and Latin-1 bytes
    t = extract_s("<html><head><meta charset=\"iso-8859-1\"></head><body><p>M\xfcnchen</p></body></html>");
    assert_non_null(strstr(t, "M\xc3\xbcnchen"));
    free(t);
    // declared Latin-1 but the bytes are valid UTF-8: UTF-8 wins
    t = extract_s("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">"
                  "</head><body><p>M\xc3\xbcnchen \xe6\x97\xa5\xe6\x9c\xac</p></body></html>");
    assert_non_null(strstr(t, "M\xc3\xbcnchen \xe6\x97\xa5\xe6\x9c\xac"));
    free(t);
    // declared Shift_JIS: converted (iconv), "日本" = 93 fa 96 7b
    t = extract_s("<html><head><meta charset=\"shift_jis\"></head><body><p>\x93\xfa\x96\x7b</p></body></html>");
    assert_non_null(strstr(t, "\xe6\x97\xa5\xe6\x9c\xac"));
    free(t);
    // an unknown declared charset: still text, valid UTF-8
    t = extract_s("<html><head><meta charset=\"x-no-such-charset\"></head><body><p>plain \xff words</p></body></html>");
    assert_non_null(strstr(t, "words"));
    free(t);
}

static void test_broken_html(void **state) {
    // never closed
    char *t = extract_s("<html><body><div><p>text that never closes <b>bold <i>italic <a href='x");
    assert_non_null(strstr(t, "text that never closes bold italic"));
    free(t);
    t = extract_s("<p>first<p>second<li>item<td>cell</table></div></span>");
    assert_non_null(strstr(t, "first"));
    assert_non_null(strstr(t, "cell"));
    free(t);
    // empty and blank
    t = extract("", 0, NULL);
    assert_string_equal(t, "");
    free(t);
    t = extract_s("   \n\t  ");
    assert_string_equal(t, "");
    free(t);
    t = extract_s("<html><head><script>only()</script></head><body></body></html>");
    assert_string_equal(t, "");
    free(t);
    // NUL bytes inside
    t = extract("<p>before\0after</p>", 19, NULL);
    assert_non_null(strstr(t, "before"));
    free(t);
    // binary garbage
    KilnRng r;
    kiln_rng_seed(&r, 7);
    size_t n = 1 << 16;
    char *g = malloc(n);
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < n; i++) g[i] = (char)kiln_rng_u64(&r);
        if (round % 2) memcpy(g, "<html><body><p>", 15);  // garbage after a plausible start
        t = extract(g, n, NULL);
        free(t);
    }
    free(g);
}

// 100k nested elements: no recursion in our walk, and libxml2 (XML_PARSE_HUGE)
// keeps the text at the bottom.
static void test_deep_nesting(void **state) {
    const char *open[] = {"<div>", "<b>", "<div><p>x"};
    for (int k = 0; k < 3; k++) {
        KilnBuf h = {0};
        kbuf_puts(&h, "<html><body>");
        for (int i = 0; i < 100000; i++) kbuf_puts(&h, open[k]);
        kbuf_puts(&h, "<p>Deep text at the bottom, with commas, survives.</p>");
        double t0 = kiln_now();
        char *t = extract(h.data, h.len, NULL);
        double dt = kiln_now() - t0;
        if (!strstr(t, "Deep text at the bottom")) fail_msg("nesting %s: text lost", open[k]);
        assert_true(dt < 5.0);
        free(t);
        kbuf_free(&h);
    }
}

static int fuzz_reader(const char *path, void *ctx) {
    char *d;
    size_t n;
    KilnErr err;
    if (kiln_read_file(path, &d, &n, &err)) return -1;
    KilnBuf out = {0}, title = {0};
    int rc = html_main_text(d, n, &out, &title, &err);
    if (rc == 0 && ((out.len && !utf8_valid(out.data, out.len)) || (title.len && !utf8_valid(title.data, title.len))))
        rc = -1;
    *(long *)ctx += out.len > 0;
    kbuf_free(&out);
    kbuf_free(&title);
    free(d);
    return rc;
}

static void test_fuzz(void **state) {
    char path[1200];
    snprintf(path, sizeof path, "%s/html/e4c6a3b482403a8f60190ba27248cd52b250b86f5d4a8a10edcf7062c64fc3f5.html.gz",
             bench_dir);
    size_t n;
    char *html = gunzip_file(path, &n);
    assert_non_null(html);
    long nonempty = 0;
    int refused = fuzz_mutants(html, n, 4000, tmp("mutant.html"), 300, 42, fuzz_reader, &nonempty);
    print_message("fuzzed a %zu-byte page: 300 mutants, %d refused, %ld with text\n", n, refused, nonempty);
    assert_int_equal(refused, 0);  // never an error, always valid UTF-8
    assert_true(nonempty > 100);
    free(html);
}

// ---- the stage
static void test_stage(void **state) {
    const KilnStageDef *def = stage_find("html");
    assert_non_null(def);
    void *st = test_stage_make(def, 1, NULL);
    const char *page = "<html><head><title>T</title></head><body><nav>menu</nav>" PARA("Body") "</body></html>";
    char *out;
    assert_null(test_apply(def, st, NULL, NULL, page, strlen(page), &out, NULL));
    assert_non_null(strstr(out, "Body is a paragraph"));
    assert_null(strstr(out, "menu"));
    free(out);
    assert_string_equal(test_apply(def, st, NULL, NULL, "<html><body><script>x()</script></body></html>", 46, NULL, NULL),
                        "html:empty");
    def->destroy(st);
    // title: true puts the title first
    st = test_stage_make(def, 1, "title", "true", NULL);
    assert_null(test_apply(def, st, NULL, NULL, "<title>The T</title><p>Body words here.</p>", 43, &out, NULL));
    assert_string_equal(out, "The T\n\nBody words here.\n");
    free(out);
    def->destroy(st);
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, "web/article-extraction-benchmark", bench_dir, sizeof bench_dir, "ground-truth.json",
                      NULL))
        return TEST_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),    cmocka_unit_test(test_boilerplate_words),
        cmocka_unit_test(test_main_content), cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_broken_html),  cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_fuzz),         cmocka_unit_test(test_stage),
        cmocka_unit_test(test_benchmark),
    };
    return TEST_RUN("html", tests);
}
