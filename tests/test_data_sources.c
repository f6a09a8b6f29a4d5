// test_data_sources: raw files to documents (sources.h) on real files — the
// Debian packages of `kiln data gather debian` where installed, ../shared/data
// for text, JSONL, HTML and WARC — with counts checked against independent
// counts (grep, strfile's .dat headers), known entries, damaged inputs,
// determinism and mutation fuzzing of the dictd and fortune parsers.
#include "kiln/data.h"
#include "core/utf8.h"
#include "kiln/gather.h"
#include "data/read/sources.h"
#include "data/read/sources_internal.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>
#include <cmocka.h>

static char shared[1024];  // ../shared/data

// tidied as the source reader tidies the paths it records in document ids
static const char *data_path(const char *rel) {
    static char buf[4][1200];
    static int i;
    char joined[1200];
    i = (i + 1) % 4;
    snprintf(joined, sizeof joined, "%s/%s", shared, rel);
    kiln_path_tidy(joined, buf[i], sizeof buf[i]);
    return buf[i];
}

#define NEED(path)                                                    \
    do {                                                              \
        if (access((path), R_OK)) {                                   \
            print_message("skipped: %s is not installed\n", (path)); \
            skip();                                                   \
        }                                                             \
    } while (0)

// A number printed by a shell pipeline (the independent count).
static long shell_count(const char *cmd) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    long n = -1;
    assert_int_equal(fscanf(p, "%ld", &n), 1);
    pclose(p);
    return n;
}

// What a source yielded.
typedef struct {
    long docs, skips, files, text_bytes;
    uint64_t hash;  // of every id and text, in order
    char first_id[512], last_id[512], skip0[256];
    int unique_ids;
    // an optional document to keep, by id
    const char *want_id;
    KilnBuf want_text;
} Got;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Reads every document of a source, checking each: source field, non-empty
// id, non-blank valid UTF-8 text. opts: "key=value" strings, NULL-terminated.
// Returns source_open's result (the error in *err).
static int read_source(const char *name, const char *format, const char *const *globs, int nglobs,
                       const char *const *opts, Got *g, KilnErr *err) {
    KilnParams ps = {0};
    for (int i = 0; opts && opts[i]; i++) {
        char key[64];
        const char *eq = strchr(opts[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - opts[i]), opts[i]);
        assert_int_equal(params_add(&ps, key, eq + 1, "test", err), 0);
    }
    KilnSourceSpec spec = {name, format, globs, nglobs, &ps};
    KilnSourceReader *r;
    const char *want = g->want_id;
    memset(g, 0, sizeof *g);
    g->want_id = want;
    if (source_open(&r, &spec, err)) {
        params_free(&ps);
        return -1;
    }
    KilnDocSource src = source_docs(r);
    KilnDoc d = {0};
    int rc;
    long cap = 1024;
    char **ids = malloc((size_t)cap * sizeof *ids);
    while ((rc = src.next(src.ctx, &d, err)) == 1) {
        assert_string_equal(d.source.data, name);
        assert_true(d.id.len > 0);
        assert_true(d.text.len > 0);
        assert_true(utf8_valid(d.text.data, d.text.len));
        int blank = 1;
        for (size_t i = 0; i < d.text.len && blank; i++) blank = strchr(" \t\r\n", d.text.data[i]) != NULL;
        assert_false(blank);
        if (g->docs == 0) snprintf(g->first_id, sizeof g->first_id, "%s", d.id.data);
        snprintf(g->last_id, sizeof g->last_id, "%s", d.id.data);
        if (g->want_id && !strcmp(g->want_id, d.id.data)) kbuf_set(&g->want_text, d.text.data, d.text.len);
        g->hash = XXH3_64bits_withSeed(d.id.data, d.id.len, g->hash);
        g->hash = XXH3_64bits_withSeed(d.text.data, d.text.len, g->hash);
        if (g->docs == cap) ids = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
        ids[g->docs++] = strdup(d.id.data);
        g->text_bytes += (long)d.text.len;
    }
    assert_int_equal(rc, 0);
    qsort(ids, (size_t)g->docs, sizeof *ids, cmp_str);
    g->unique_ids = 1;
    for (long i = 1; i < g->docs; i++)
        if (!strcmp(ids[i], ids[i - 1])) g->unique_ids = 0;
    for (long i = 0; i < g->docs; i++) free(ids[i]);
    free(ids);
    const KilnSkips *sk = source_skips(r);
    g->skips = sk->count;
    if (sk->count) snprintf(g->skip0, sizeof g->skip0, "%s", sk->examples[0]);
    g->files = source_files(r);
    doc_free(&d);
    source_close(r);
    params_free(&ps);
    return 0;
}

static void read_ok(const char *name, const char *format, const char *path, const char *const *opts, Got *g) {
    KilnErr err;
    const char *globs[] = {path};
    if (read_source(name, format, globs, 1, opts, g, &err)) fail_msg("%s", err.msg);
}

static void write_gz(const char *path, const char *s, size_t n) {
    gzFile z = gzopen(path, "wb");
    assert_non_null(z);
    assert_int_equal(gzwrite(z, s, (unsigned)n), (int)n);
    gzclose(z);
}

// ---------------------------------------------------------------- text
static void test_text_whole(void **state) {
    (void)state;
    const char *p = data_path("pretrain/tinyshakespeare/input.txt");
    NEED(p);
    Got g = {.want_id = p};
    read_ok("shakespeare", "text", p, NULL, &g);
    assert_int_equal(g.docs, 1);
    assert_int_equal(g.files, 1);
    assert_int_equal(g.text_bytes, 1115394);  // the file, byte for byte
    assert_memory_equal(g.want_text.data, "First Citizen:\nBefore we proceed", 32);
    kbuf_free(&g.want_text);
}

static void test_text_separator(void **state) {
    (void)state;
    const char *p = data_path("pretrain/tinystories/TinyStories-train.head-part1.txt");
    NEED(p);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "grep -cx '<|endoftext|>' '%s'", p);
    long seps = shell_count(cmd);
    assert_int_equal(seps, 1852);  // the data README's count
    char last[1300];
    snprintf(last, sizeof last, "%s#1852", p);
    Got g = {.want_id = last};
    const char *opts[] = {"split=<|endoftext|>", NULL};
    read_ok("stories", "text", p, opts, &g);
    assert_int_equal(g.docs, seps);  // each story ends with the separator: nothing after the last
    assert_true(g.unique_ids);
    assert_string_equal(g.last_id, last);
    assert_non_null(g.want_text.data);
    assert_null(strstr(g.want_text.data, "<|endoftext|>"));
    kbuf_free(&g.want_text);
}

static void test_text_blank_boundary(void **state) {
    (void)state;
    // paragraphs of 4, 4 and 2 characters; blank lines include whitespace-only ones
    const char *s = "aaaa\n\nbbbb\n\n\n  \t\ncc\n";
    write_bytes(tmp("paras.txt"), s, strlen(s));
    write_gz(tmp("paras.txt.gz"), s, strlen(s));
    struct {
        const char *max;
        long docs;
    } cases[] = {{"max_chars=14", 1}, {"max_chars=13", 2}, {"max_chars=10", 2}, {"max_chars=8", 2},
                 {"max_chars=7", 3},  {"max_chars=1", 3}};
    for (int i = 0; i < 6; i++) {
        for (int gz = 0; gz < 2; gz++) {
            const char *opts[] = {"split=blank", cases[i].max, NULL};
            Got g = {0};
            read_ok("p", "text", tmp(gz ? "paras.txt.gz" : "paras.txt"), opts, &g);
            assert_int_equal(g.docs, cases[i].docs);
            assert_int_equal(g.skips, 0);
        }
    }
    // "aaaa\n\nbbbb" is exactly 10 characters: one document at max_chars=10
    char id[600];
    snprintf(id, sizeof id, "%s#1", tmp("paras.txt"));
    Got g = {.want_id = id};
    const char *opts[] = {"split=blank", "max_chars=10", NULL};
    read_ok("p", "text", tmp("paras.txt"), opts, &g);
    assert_string_equal(g.want_text.data, "aaaa\n\nbbbb");
    kbuf_free(&g.want_text);
}

static void test_text_damaged_and_empty(void **state) {
    (void)state;
    // a gzip cut in half: a counted skip naming the file, never a document of half a file
    char big[20000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + (i * 7919) % 26);
    write_gz(tmp("cut.txt.gz"), big, sizeof big);
    char *gz;
    size_t n;
    KilnErr err;
    assert_int_equal(kiln_read_file(tmp("cut.txt.gz"), &gz, &n, &err), 0);
    write_bytes(tmp("cut.txt.gz"), gz, n / 2);
    free(gz);
    write_bytes(tmp("empty.txt"), "", 0);
    write_bytes(tmp("blank.txt"), "  \n\n", 4);
    const char *globs[] = {tmp("cut.txt.gz"), tmp("empty.txt"), tmp("blank.txt")};
    Got g = {0};
    assert_int_equal(read_source("t", "text", globs, 3, NULL, &g, &err), 0);
    assert_int_equal(g.docs, 0);
    assert_int_equal(g.skips, 3);
    assert_non_null(strstr(g.skip0, "cut.txt.gz"));
    assert_non_null(strstr(g.skip0, "truncated"));
}

// ---------------------------------------------------------------- jsonl, html, warc
static void test_jsonl(void **state) {
    (void)state;
    const char *p = data_path("eval/gsm8k/test.jsonl");
    NEED(p);
    char id[1300];
    snprintf(id, sizeof id, "%s:1", p);
    Got g = {.want_id = id};
    const char *opts[] = {"text_field=question", NULL};
    read_ok("gsm", "jsonl", p, opts, &g);
    assert_int_equal(g.docs, 1050);
    assert_int_equal(g.skips, 0);
    assert_string_equal(g.first_id, id);  // no id field: path:line
    assert_non_null(g.want_text.data);
    assert_null(strstr(g.want_text.data, "####"));  // the question, not the answer
    kbuf_free(&g.want_text);
}

static void test_html_dir(void **state) {
    (void)state;
    const char *p = data_path("web/article-extraction-benchmark/html");
    NEED(p);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.html\\.gz$'", p);
    long pages = shell_count(cmd);
    assert_int_equal(pages, 181);
    Got g = {0};
    read_ok("web", "html", p, NULL, &g);
    assert_int_equal(g.files, pages);
    assert_int_equal(g.docs + g.skips, pages);  // a page with no main text is a counted skip
    assert_true(g.docs >= pages - 2);
    assert_true(g.unique_ids);
    assert_true(g.text_bytes > 500000);  // ~ the hand-checked article bodies (924 KB as JSON)
}

static void test_warc(void **state) {
    (void)state;
    const char *w = data_path("web/commoncrawl-whirlwind/whirlwind.warc");
    NEED(w);
    const char *uri = "https://an.wikipedia.org/wiki/Escopete";
    Got a = {.want_id = uri}, b = {0}, c = {.want_id = uri};
    read_ok("cc", "warc", w, NULL, &a);  // warcinfo, request, response, metadata
    assert_int_equal(a.docs, 1);
    assert_string_equal(a.first_id, uri);
    assert_non_null(strstr(a.want_text.data, "Escopete"));
    read_ok("cc", "warc", data_path("web/commoncrawl-whirlwind/whirlwind.warc.gz"), NULL, &b);
    assert_int_equal(b.docs, 1);
    assert_true(a.hash == b.hash);  // gzip members or plain: the same document
    read_ok("cc", "warc", data_path("web/commoncrawl-whirlwind/whirlwind.warc.wet"), NULL, &c);
    assert_int_equal(c.docs, 1);  // the conversion record, as is
    assert_string_equal(c.first_id, uri);
    assert_non_null(strstr(c.want_text.data, "Escopete"));
    kbuf_free(&a.want_text);
    kbuf_free(&c.want_text);
    // the walk takes .warc/.warc.gz/.wet(.gz) and leaves the WAT files: 2 WARC + 2 WET
    Got d = {0};
    read_ok("cc", "warc", data_path("web/commoncrawl-whirlwind"), NULL, &d);
    assert_int_equal(d.files, 4);
    assert_int_equal(d.docs, 4);
    // warcio's damaged captures: whatever they hold, no crash, no error
    Got e = {0};
    read_ok("warcio", "warc", data_path("web/warcio-testdata"), NULL, &e);
    assert_true(e.files >= 7);
    assert_true(e.docs >= 1);
}

// ---------------------------------------------------------------- man, code
static void test_man(void **state) {
    (void)state;
    const char *ls = "/usr/share/man/man1/ls.1.gz";
    NEED(ls);
    Got g = {.want_id = ls};
    read_ok("man", "man", ls, NULL, &g);
    assert_int_equal(g.docs, 1);
    assert_non_null(strstr(g.want_text.data, "list directory contents"));
    assert_null(strstr(g.want_text.data, ".TH"));
    kbuf_free(&g.want_text);
    // a .so page only points at another: no document, and no skip either
    const char *so = ".\\\" redirect\n.so man1/ls.1\n";
    write_gz(tmp("dir.1.gz"), so, strlen(so));
    Got r = {0};
    read_ok("man", "man", tmp("dir.1.gz"), NULL, &r);
    assert_int_equal(r.docs + r.skips, 0);
    // a whole section: every page a document (or a counted skip) unless it is a
    // redirect; symlinked pages read once (counted independently)
    const char *sec = "/usr/share/man/man2";
    NEED(sec);
    long pages = shell_count("find -L /usr/share/man/man2 -type f -name '*.gz' -printf '%D %i\\n' | sort -u | wc -l");
    long redirects = shell_count("n=0; for f in $(find /usr/share/man/man2 -type f -name '*.gz'); do "
                                 "zcat $f | head -c 4 | grep -q '^.so ' && n=$((n+1)); done; echo $n");
    assert_true(pages > 200);
    Got m = {0};
    read_ok("man", "man", sec, NULL, &m);
    print_message("man2: %ld pages, %ld redirects, %ld documents, %ld skips\n", pages, redirects, m.docs, m.skips);
    assert_int_equal(m.files, pages);
    assert_int_equal(m.docs + m.skips, pages - redirects);
    assert_true(m.unique_ids);
}

static void test_code_rules(void **state) {
    (void)state;
    KilnErr err;
    char dir[600];
    snprintf(dir, sizeof dir, "%s", tmp("code"));
    assert_int_equal(kiln_mkdirs(tmp("code/sub"), &err), 0);
    assert_int_equal(kiln_mkdirs(tmp("code/skipme"), &err), 0);
    char buf[1001];
    memset(buf, 'x', sizeof buf);
    write_bytes(tmp("code/a.py"), buf, 1000);  // exactly max_bytes: taken
    write_bytes(tmp("code/b.py"), buf, 1001);  // one over: skipped
    write_bytes(tmp("code/c.py"), "x = 1\0\0\0", 8);  // NUL bytes: binary
    write_bytes(tmp("code/d.txt"), "not code", 8);     // not a wanted extension
    write_bytes(tmp("code/.hidden.py"), "h = 1", 5);   // hidden: not walked
    write_bytes(tmp("code/sub/e.py"), "e = 1", 5);
    write_bytes(tmp("code/skipme/f.py"), "f = 1", 5);  // excluded
    assert_int_equal(symlink("a.py", tmp("code/0link.py")), 0);  // the same file again: read once, as a.py
    assert_int_equal(symlink("nowhere.py", tmp("code/broken.py")), 0);  // cannot stat: a skip
    const char *opts[] = {"ext=.py", "max_bytes=1000", "exclude=*/skipme", NULL};
    Got g = {0};
    read_ok("code", "code", dir, opts, &g);
    assert_int_equal(g.docs, 2);   // a.py, sub/e.py
    assert_int_equal(g.skips, 3);  // b.py too big, c.py binary, broken.py
    char want[700];
    snprintf(want, sizeof want, "%s/a.py", dir);
    assert_string_equal(g.first_id, want);
    // a misspelt option is an error
    const char *bad[] = {"extension=.py", NULL};
    const char *globs[] = {dir};
    assert_int_equal(read_source("code", "code", globs, 1, bad, &g, &err), -1);
    assert_non_null(strstr(err.msg, "extension"));
}

static void test_code_stdlib_and_order(void **state) {
    (void)state;
    const char *p = "/usr/lib/python3.11/json";
    NEED(p);
    long files = shell_count("find -L /usr/lib/python3.11/json -name '*.py' -size +0 | wc -l");
    const char *opts[] = {"ext=.py", NULL};
    const char *hopts[] = {"ext=.py", "order=hash", NULL};
    Got g = {0}, g2 = {0}, h = {0}, h2 = {0};
    read_ok("py", "code", p, opts, &g);
    read_ok("py", "code", p, opts, &g2);
    read_ok("py", "code", p, hopts, &h);
    read_ok("py", "code", p, hopts, &h2);
    assert_int_equal(g.docs, files);
    assert_true(g.hash == g2.hash);  // deterministic
    assert_true(h.hash == h2.hash);
    assert_int_equal(h.docs, g.docs);
    assert_true(g.hash != h.hash);  // a different order of the same files
    assert_string_equal(g.first_id, "/usr/lib/python3.11/json/__init__.py");
}

// ---------------------------------------------------------------- dictd
static void test_dictd_b64(void **state) {
    (void)state;
    assert_int_equal(dictd_b64("A", 1), 0);
    assert_int_equal(dictd_b64("/", 1), 63);
    assert_int_equal(dictd_b64("BA", 2), 64);
    assert_int_equal(dictd_b64("CTu9", 4), ((2 * 64 + 19) * 64 + 46) * 64 + 61);  // jargon's "hacker"
    assert_int_equal(dictd_b64("lo", 2), 37 * 64 + 40);
    assert_int_equal(dictd_b64("", 0), -1);
    assert_int_equal(dictd_b64("a-b", 3), -1);
    assert_int_equal(dictd_b64("AAAAAAAAAAA", 11), -1);
}

static void test_dictd_jargon(void **state) {
    (void)state;
    const char *p = "/usr/share/dictd/jargon.index";
    NEED(p);
    NEED("/usr/share/dictd/jargon.dict.dz");
    long entries = shell_count("grep -v -e '^00-' -e '^00database' /usr/share/dictd/jargon.index | cut -f2,3 | "
                               "sort -u | wc -l");
    const char *one[] = {"group_chars=1", NULL};
    Got g = {.want_id = "jargon:hacker"};
    read_ok("jargon", "dictd", p, one, &g);
    assert_int_equal(g.docs, entries);
    assert_int_equal(g.skips, 0);
    assert_true(g.unique_ids);
    assert_non_null(g.want_text.data);
    assert_memory_equal(g.want_text.data, "hacker\n n.", 10);
    assert_non_null(strstr(g.want_text.data, "A person who enjoys exploring the details of programmable systems"));
    kbuf_free(&g.want_text);
    // default groups of about 8000 characters: the same text, fewer documents
    Got d = {0};
    read_ok("jargon", "dictd", p, NULL, &d);
    assert_true(d.docs < g.docs / 10);
    assert_int_equal(d.text_bytes, g.text_bytes + 2 * (g.docs - d.docs));  // "\n\n" between entries
    assert_true(d.unique_ids);
    assert_true(d.text_bytes / d.docs >= 8000);
    assert_string_equal(d.first_id, "jargon:(tm)..ack");
}

static void test_dictd_foldoc_gcide_counts(void **state) {
    (void)state;
    NEED("/usr/share/dictd/foldoc.index");
    const char *one[] = {"group_chars=1", NULL};
    long entries = shell_count("grep -v -e '^00-' -e '^00database' /usr/share/dictd/foldoc.index | cut -f2,3 | "
                               "sort -u | wc -l");
    Got g = {0};
    read_ok("foldoc", "dictd", "/usr/share/dictd/foldoc.index", one, &g);
    assert_int_equal(g.docs, entries);
    Got d = {0};
    read_ok("foldoc", "dictd", "/usr/share/dictd/foldoc.index", NULL, &d);
    assert_true(d.unique_ids);  // "name:first..last" over the default groups
    if (access("/usr/share/dictd/gcide.index", R_OK)) return;
    Got c = {0};
    read_ok("gcide", "dictd", "/usr/share/dictd/gcide.index", NULL, &c);
    assert_true(c.unique_ids);
    assert_int_equal(c.skips, 0);
    assert_true(c.docs > 4000);
}

// Copies jargon.index (with extra lines) and a prefix of jargon.dict.dz into the temp dir.
static void damaged_jargon(const char *extra, double keep_fraction) {
    char *idx, *dz;
    size_t ni, nd;
    KilnErr err;
    assert_int_equal(kiln_read_file("/usr/share/dictd/jargon.index", &idx, &ni, &err), 0);
    assert_int_equal(kiln_read_file("/usr/share/dictd/jargon.dict.dz", &dz, &nd, &err), 0);
    char *both = malloc(ni + strlen(extra));
    memcpy(both, idx, ni);
    memcpy(both + ni, extra, strlen(extra));
    write_bytes(tmp("dict/jargon.index"), both, ni + strlen(extra));
    write_bytes(tmp("dict/jargon.dict.dz"), dz, (size_t)(nd * keep_fraction));
    free(both);
    free(idx);
    free(dz);
}

static void test_dictd_damage(void **state) {
    (void)state;
    NEED("/usr/share/dictd/jargon.index");
    KilnErr err;
    assert_int_equal(kiln_mkdirs(tmp("dict"), &err), 0);
    const char *one[] = {"group_chars=1", NULL};
    Got full = {0};
    read_ok("jargon", "dictd", "/usr/share/dictd/jargon.index", one, &full);
    long lines = shell_count("wc -l < /usr/share/dictd/jargon.index");
    // one bad line: a counted skip naming the file and line; everything else read
    damaged_jargon("zzz\tnot base64!\tAB\nyyy\tAB\n", 1.0);
    Got g = {0};
    read_ok("jargon", "dictd", tmp("dict/jargon.index"), one, &g);
    assert_int_equal(g.docs, full.docs);
    assert_int_equal(g.skips, 2);
    char where[64];
    snprintf(where, sizeof where, "jargon.index:%ld: bad index line", lines + 1);
    assert_non_null(strstr(g.skip0, where));
    // the data cut at 60%: a skip for the truncation, one per entry lost, the rest read
    damaged_jargon("", 0.6);
    Got t = {0};
    read_ok("jargon", "dictd", tmp("dict/jargon.index"), one, &t);
    print_message("truncated jargon.dict.dz: %ld of %ld entries, %ld skips (%s)\n", t.docs, full.docs, t.skips,
                  t.skip0);
    assert_true(t.docs > full.docs / 3 && t.docs < full.docs);
    assert_int_equal(t.docs + t.skips - 1, full.docs);
    assert_non_null(strstr(t.skip0, "truncated"));
    // no data file at all: a skip, not a crash
    unlink(tmp("dict/jargon.dict.dz"));
    Got m = {0};
    read_ok("jargon", "dictd", tmp("dict/jargon.index"), one, &m);
    assert_int_equal(m.docs, 0);
    assert_int_equal(m.skips, 1);
}

static char fz_index[600], fz_dict[600];  // stable copies: tmp()'s buffers rotate

static int read_dict_mutant(const char *path, void *ctx) {
    (void)path;
    const char *const *opts = ctx;
    Got g = {0};
    KilnErr err;
    const char *globs[] = {fz_index};
    if (read_source("fz", "dictd", globs, 1, opts, &g, &err)) return -1;
    return g.skips ? -1 : 0;
}

static void b64(long v, char *out) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char rev[16];
    int n = 0;
    do rev[n++] = A[v % 64], v /= 64;
    while (v);
    for (int i = 0; i < n; i++) out[i] = rev[n - 1 - i];
    out[n] = 0;
}

static void test_dictd_fuzz(void **state) {
    (void)state;
    NEED("/usr/share/dictd/jargon.index");
    KilnErr err;
    assert_int_equal(kiln_mkdirs(tmp("fz"), &err), 0);
    // a small database of the first 150 real entries (fast to re-read 300 times)
    char *idx;
    size_t ni;
    assert_int_equal(kiln_read_file("/usr/share/dictd/jargon.index", &idx, &ni, &err), 0);
    KilnBuf dict = {0}, small = {0}, index = {0};
    assert_int_equal(kiln_read_decompressed("/usr/share/dictd/jargon.dict.dz", &dict, &err), 0);
    char *save = NULL, *line = strtok_r(idx, "\n", &save);
    for (int l = 0; l < 150 && line; l++, line = strtok_r(NULL, "\n", &save)) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        assert_non_null(t2);
        long off = dictd_b64(t1 + 1, (size_t)(t2 - t1 - 1)), len = dictd_b64(t2 + 1, strlen(t2 + 1));
        assert_true(off >= 0 && len >= 0 && off + len <= (long)dict.len);
        char o[16], n[16];
        b64((long)small.len, o);
        b64(len, n);
        kbuf_append(&index, line, (size_t)(t1 - line));
        kbuf_putc(&index, '\t'), kbuf_puts(&index, o), kbuf_putc(&index, '\t'), kbuf_puts(&index, n);
        kbuf_putc(&index, '\n');
        kbuf_append(&small, dict.data + off, (size_t)len);
    }
    snprintf(fz_index, sizeof fz_index, "%s", tmp("fz/small.index"));
    snprintf(fz_dict, sizeof fz_dict, "%s", tmp("fz/small.dict.dz"));
    write_gz(fz_dict, small.data, small.len);
    write_bytes(fz_index, index.data, index.len);
    const char *opts[] = {"group_chars=2000", NULL};
    assert_int_equal(read_dict_mutant(fz_index, (void *)opts), 0);  // the unmutated database reads clean
    int refused = fuzz_mutants(index.data, index.len, 200, fz_index, 300, 7, read_dict_mutant, (void *)opts);
    print_message("dictd index: 300 mutants, %d with skips\n", refused);
    assert_true(refused > 30);
    write_bytes(fz_index, index.data, index.len);
    char *dz;
    size_t nd;
    assert_int_equal(kiln_read_file(fz_dict, &dz, &nd, &err), 0);
    refused = fuzz_mutants(dz, nd, 64, fz_dict, 200, 8, read_dict_mutant, (void *)opts);
    print_message("dictzip data: 200 mutants, %d with skips\n", refused);
    assert_true(refused > 20);
    free(idx);
    free(dz);
    kbuf_free(&dict);
    kbuf_free(&small);
    kbuf_free(&index);
}

// ---------------------------------------------------------------- wordnet, fortune
static void test_wordnet(void **state) {
    (void)state;
    const char *p = "/usr/share/wordnet";
    NEED("/usr/share/wordnet/data.noun");
    long synsets = shell_count("cat /usr/share/wordnet/data.noun /usr/share/wordnet/data.verb "
                               "/usr/share/wordnet/data.adj /usr/share/wordnet/data.adv | grep -vc '^  '");
    const char *one[] = {"group_chars=1", NULL};
    Got g = {.want_id = "noun:entity"};
    read_ok("wordnet", "wordnet", p, one, &g);
    assert_int_equal(g.files, 4);  // data.* only, not index.* or *.exc
    assert_int_equal(g.docs, synsets);
    assert_int_equal(g.skips, 0);
    assert_string_equal(g.want_text.data, "entity (noun): that which is perceived or known or inferred to have its "
                                          "own distinct existence (living or nonliving)");
    kbuf_free(&g.want_text);
    assert_string_equal(g.first_id, "adj:able");  // data.adj first: sorted paths
    Got d = {.want_id = "adj:able..thick"};
    read_ok("wordnet", "wordnet", p, NULL, &d);
    assert_true(d.unique_ids);
    assert_non_null(strstr(d.want_text.data, "\nabaxial, dorsal (adj): facing away from the axis"));
    kbuf_free(&d.want_text);
    Got a = {.want_id = "adj:outback"};
    read_ok("wordnet", "wordnet", "/usr/share/wordnet/data.adj", one, &a);
    assert_string_equal(a.want_text.data, "outback, remote (adj): inaccessible and sparsely populated;");  // "(a)" dropped
    kbuf_free(&a.want_text);
}

// Entries in a strfile .dat header (big-endian version, numstr, ...).
static long strfile_count(const char *dat) {
    unsigned char h[8];
    FILE *f = fopen(dat, "rb");
    if (!f) return -1;
    size_t got = fread(h, 1, 8, f);
    fclose(f);
    return got == 8 ? (long)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7] : -1;
}

static void test_fortune(void **state) {
    (void)state;
    const char *dir = "/usr/share/games/fortunes";
    NEED("/usr/share/games/fortunes/fortunes.dat");
    FILE *p = popen("ls /usr/share/games/fortunes/*.dat", "r");
    char line[600];
    long want = 0;
    int files = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        long n = strfile_count(line);
        assert_true(n > 0);
        want += n;
        files++;
    }
    pclose(p);
    const char *one[] = {"group_chars=1", NULL};
    Got g = {0};
    read_ok("fortunes", "fortune", dir, one, &g);
    assert_int_equal(g.files, files);  // not the .dat indexes, not the .u8 links
    assert_int_equal(g.docs, want);
    assert_int_equal(g.skips, 0);
    assert_true(g.unique_ids);
    // grouped, twice: the same documents
    Got a = {0}, b = {0};
    read_ok("fortunes", "fortune", dir, NULL, &a);
    read_ok("fortunes", "fortune", dir, NULL, &b);
    assert_true(a.hash == b.hash);
    assert_true(a.unique_ids);
    assert_int_equal(a.text_bytes, g.text_bytes + 2 * (g.docs - a.docs));
}

static void test_fortune_edges(void **state) {
    (void)state;
    // leading %, empty entries, CRLF separator, no final newline
    const char *s = "%\nfirst\n%\n%\n\nsecond\nline\n%\r\nthird";
    write_bytes(tmp("mini"), s, strlen(s));
    const char *one[] = {"group_chars=1", NULL};
    char id[600];
    snprintf(id, sizeof id, "mini:3");
    Got g = {.want_id = id};
    read_ok("f", "fortune", tmp("mini"), one, &g);
    assert_int_equal(g.docs, 3);
    assert_string_equal(g.want_text.data, "third");
    assert_string_equal(g.first_id, "mini:1");
    kbuf_free(&g.want_text);
    Got all = {.want_id = "mini:1..3"};
    read_ok("f", "fortune", tmp("mini"), NULL, &all);
    assert_int_equal(all.docs, 1);
    assert_string_equal(all.want_text.data, "first\n\nsecond\nline\n\nthird");
    kbuf_free(&all.want_text);
}

static int read_fortune_mutant(const char *path, void *ctx) {
    (void)ctx;
    Got g = {0};
    KilnErr err;
    const char *globs[] = {path};
    const char *opts[] = {"group_chars=300", NULL};
    if (read_source("fz", "fortune", globs, 1, opts, &g, &err)) return -1;
    return g.skips ? -1 : 0;
}

static void test_fortune_fuzz(void **state) {
    (void)state;
    const char *p = "/usr/share/games/fortunes/goedel";
    NEED(p);
    char *s;
    size_t n;
    KilnErr err;
    assert_int_equal(kiln_read_file(p, &s, &n, &err), 0);
    int refused = fuzz_mutants(s, n, 200, tmp("fortune-mutant"), 400, 11, read_fortune_mutant, NULL);
    print_message("fortune: 400 mutants, %d skipped (NUL bytes)\n", refused);
    free(s);
}

// ---------------------------------------------------------------- zstd and gzip for every whole-file format
// Reads a source from path, then again with `packed` (path itself, or a file
// the format reads beside it) rewritten in place as two zstd frames and as two
// gzip members: the same documents and skips (ids name the path, which stays).
// Leaves packed plain. Returns the document count.
static long same_packed(const char *format, const char *path, const char *packed, const char *const *opts) {
    Got plain = {0}, g = {0};
    read_ok("z", format, path, opts, &plain);
    KilnBuf raw = {0}, z = {0};
    KilnErr err;
    assert_int_equal(kiln_read_decompressed(packed, &raw, &err), 0);
    for (int zstd = 0; zstd < 2; zstd++) {
        test_pack(&z, zstd, raw.data, raw.len, 2);
        write_bytes(packed, z.data, z.len);
        read_ok("z", format, path, opts, &g);
        assert_int_equal(g.docs, plain.docs);
        assert_int_equal(g.skips, plain.skips);
        assert_true(g.hash == plain.hash);
    }
    write_bytes(packed, raw.data, raw.len);
    kbuf_free(&raw);
    kbuf_free(&z);
    return plain.docs;
}

// n paragraphs of words in a fixed pseudo-random order (so compressed blocks
// hold even shares of the text): text and HTML inputs.
static void paragraphs(KilnBuf *out, int n, const char *open, const char *close) {
    static const char *const words[] = {"the", "kiln", "fires", "clay", "slowly", "until", "it", "rings", "hard"};
    KilnRng r;
    kiln_rng_seed(&r, 3);
    kbuf_clear(out);
    for (int p = 0; p < n; p++) {
        kbuf_puts(out, open);
        for (int w = 0; w < 40 + p % 13; w++) kbuf_printf(out, "%s%s", w ? " " : "", words[kiln_rng_u64(&r) % 9]);
        kbuf_puts(out, close);
    }
}

// A copy of a file under tmp(): plain, decompressed when it is not.
static const char *plain_copy(const char *from, const char *name) {
    KilnBuf b = {0};
    KilnErr err;
    assert_int_equal(kiln_read_decompressed(from, &b, &err), 0);
    write_bytes(tmp(name), b.data, b.len);
    kbuf_free(&b);
    return tmp(name);
}

static void test_compressed_formats(void **state) {
    (void)state;
    KilnErr err;
    KilnBuf b = {0};
    paragraphs(&b, 300, "", ".\n\n");
    write_bytes(tmp("story.txt"), b.data, b.len);
    assert_int_equal(same_packed("text", tmp("story.txt"), tmp("story.txt"), NULL), 1);
    const char *blank[] = {"split=blank", "max_chars=2000", NULL};
    assert_true(same_packed("text", tmp("story.txt"), tmp("story.txt"), blank) > 20);
    paragraphs(&b, 30, "<p>", ".</p>\n");
    kbuf_printf(&b, "</article></body></html>\n");
    KilnBuf html = {0};
    kbuf_puts(&html, "<html><head><title>Firing</title></head><body><nav>home</nav><article>");
    kbuf_append(&html, b.data, b.len);
    write_bytes(tmp("page.html"), html.data, html.len);
    assert_int_equal(same_packed("html", tmp("page.html"), tmp("page.html"), NULL), 1);
    write_bytes(tmp("hello.c"), "int main(void) { return 0; }\n", 29);
    assert_int_equal(same_packed("code", tmp("hello.c"), tmp("hello.c"), NULL), 1);
    // a walk takes .html.zst and .htm.zst pages and reads them by their magic bytes
    assert_int_equal(kiln_mkdirs(tmp("zw"), &err), 0);
    test_pack(&b, 1, html.data, html.len, 1);
    write_bytes(tmp("zw/a.html.zst"), b.data, b.len);
    write_bytes(tmp("zw/b.htm.zst"), b.data, b.len);
    write_bytes(tmp("zw/c.txt.zst"), b.data, b.len);  // not HTML by name: left out
    char id[600];
    snprintf(id, sizeof id, "%s", tmp("zw/a.html.zst"));
    Got w = {.want_id = id};
    read_ok("z", "html", tmp("zw"), NULL, &w);
    assert_int_equal(w.files, 2);
    assert_int_equal(w.docs, 2);
    assert_non_null(w.want_text.data);
    assert_memory_equal(w.want_text.data, "Firing\n\n", 8);  // title first, then the article
    assert_non_null(strstr(w.want_text.data, " kiln "));
    kbuf_free(&w.want_text);
    kbuf_free(&b);
    kbuf_free(&html);
    // real inputs where installed: an article page, a man page, fortunes, WordNet, a dictd database
    const char *page = data_path("web/article-extraction-benchmark/html/"
                                 "042bb7b5fedab6eac7db576522b89b93904c237d344bcbe14a6a5ab7f7335856.html.gz");
    if (!access(page, R_OK))
        assert_int_equal(same_packed("html", plain_copy(page, "real.html"), tmp("real.html"), NULL), 1);
    if (!access("/usr/share/man/man1/ls.1.gz", R_OK))
        assert_int_equal(same_packed("man", plain_copy("/usr/share/man/man1/ls.1.gz", "ls.1"), tmp("ls.1"), NULL), 1);
    if (!access("/usr/share/games/fortunes/goedel", R_OK))
        assert_true(same_packed("fortune", plain_copy("/usr/share/games/fortunes/goedel", "goedel"), tmp("goedel"),
                                NULL) > 0);
    assert_int_equal(kiln_mkdirs(tmp("wn"), &err), 0);
    if (!access("/usr/share/wordnet/data.adv", R_OK))
        assert_true(same_packed("wordnet", plain_copy("/usr/share/wordnet/data.adv", "wn/data.adv"), tmp("wn/data.adv"),
                                NULL) > 0);
    assert_int_equal(kiln_mkdirs(tmp("jd"), &err), 0);
    if (!access("/usr/share/dictd/jargon.index", R_OK)) {
        const char *idx = plain_copy("/usr/share/dictd/jargon.index", "jd/jargon.index");
        plain_copy("/usr/share/dictd/jargon.dict.dz", "jd/jargon.dict");  // plain .dict: packed in place below
        assert_true(same_packed("dictd", idx, tmp("jd/jargon.dict"), NULL) > 0);
        assert_true(same_packed("dictd", idx, idx, NULL) > 0);
    }
}

static void test_compressed_damaged(void **state) {
    (void)state;
    KilnBuf text = {0}, z = {0};
    paragraphs(&text, 2000, "", ".\n\n");  // ~500 KB: several zstd blocks
    KilnErr err;
    Got whole = {0}, part = {0}, all = {0};
    const char *blank[] = {"split=blank", NULL};
    write_bytes(tmp("all.txt"), text.data, text.len);
    read_ok("z", "text", tmp("all.txt"), blank, &all);
    for (int zstd = 0; zstd < 2; zstd++) {
        // cut short: whole-file formats leave the file out, split text keeps the parts before the cut
        test_pack(&z, zstd, text.data, text.len, 1);
        const char *cut = tmp(zstd ? "cut.txt.zst" : "cut.txt.gz");
        write_bytes(cut, z.data, z.len * 2 / 3);
        const char *globs[] = {cut};
        assert_int_equal(read_source("z", "text", globs, 1, NULL, &whole, &err), 0);
        assert_int_equal(whole.docs, 0);
        assert_int_equal(whole.skips, 1);
        assert_non_null(strstr(whole.skip0, cut));
        assert_non_null(strstr(whole.skip0, ": compressed data truncated after "));
        assert_int_equal(read_source("z", "text", globs, 1, blank, &part, &err), 0);
        print_message("%s: %ld of %ld docs, %ld skips\n", cut, part.docs, all.docs, part.skips);
        assert_true(part.docs > 0 && part.docs < all.docs);
        assert_int_equal(part.skips, 1);
        assert_non_null(strstr(part.skip0, cut));
        assert_int_equal(read_source("z", "html", globs, 1, NULL, &whole, &err), 0);
        assert_int_equal(whole.docs, 0);
        assert_non_null(strstr(whole.skip0, cut));
    }
    kbuf_free(&text);
    kbuf_free(&z);
}

// ---------------------------------------------------------------- listing, gather
static void test_missing_paths(void **state) {
    (void)state;
    KilnErr err;
    Got g = {0};
    const char *none[] = {"/nonexistent/kiln/*.txt"};
    assert_int_equal(read_source("x", "text", none, 1, NULL, &g, &err), -1);
    assert_non_null(strstr(err.msg, "no text files in /nonexistent/kiln/*.txt"));
    write_bytes(tmp("here.txt"), "here", 4);
    const char *some[] = {"/nonexistent/kiln/a.txt", tmp("here.txt"), tmp("here.txt")};
    assert_int_equal(read_source("x", "text", some, 3, NULL, &g, &err), 0);
    assert_int_equal(g.docs, 1);  // named twice, read once
    assert_int_equal(g.skips, 1);
    assert_non_null(strstr(g.skip0, "/nonexistent/kiln/a.txt"));
    const char *globs[] = {tmp("here.txt")};
    assert_int_equal(read_source("x", "pdf", globs, 1, NULL, &g, &err), -1);
    assert_non_null(strstr(err.msg, "unknown format"));
}

static void test_gather(void **state) {
    (void)state;
    NEED("/usr/share/dictd/jargon.index");
    KilnGatherStat st[KILN_GATHER_MAX];
    int n;
    KilnErr err;
    const char *only[] = {"jargon", "kjv"};
    char dir[600];
    snprintf(dir, sizeof dir, "%s", tmp("gathered"));
    assert_int_equal(gather_debian(dir, 0.5, only, 2, st, &n, NULL, NULL, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(st[0].name, "kjv");  // the table's order, not the request's
    assert_string_equal(st[1].name, "jargon");
    assert_true(st[1].capped);
    assert_true(st[1].text_bytes >= 500000 && st[1].text_bytes < 530000);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "grep -c '^{\"source\":\"jargon\",\"id\":\"jargon:' %s/jargon.jsonl", dir);
    assert_int_equal(shell_count(cmd), st[1].docs);  // every line, and nothing else
    snprintf(cmd, sizeof cmd, "wc -l < %s/jargon.jsonl", dir);
    assert_int_equal(shell_count(cmd), st[1].docs);
    if (!st[0].missing) {
        // the whole Bible in one go (uncapped): 66 books, 31,102 verses
        assert_int_equal(gather_debian(dir, 0, only + 1, 1, st, &n, NULL, NULL, &err), 0);
        assert_int_equal(st[0].docs, 66);
        assert_int_equal(st[0].skips, 0);
        snprintf(cmd, sizeof cmd, "grep -c '^{\"source\":\"kjv\",' %s/kjv.jsonl", dir);
        assert_int_equal(shell_count(cmd), 66);
        snprintf(cmd, sizeof cmd, "grep -o '\\\\n[0-9]*:[0-9]* ' %s/kjv.jsonl | wc -l", dir);
        assert_int_equal(shell_count(cmd), 31102);
        snprintf(cmd, sizeof cmd, "head -1 %s/kjv.jsonl | grep -c '\"id\":\"Genesis\",\"text\":\"Genesis\\\\n\\\\n1:1 In "
                                  "the beginning God created the heaven and the earth.'", dir);
        assert_int_equal(shell_count(cmd), 1);
    }
    const char *bad[] = {"nosuch"};
    assert_int_equal(gather_debian(dir, 0, bad, 1, st, &n, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "nosuch"));
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, NULL, shared, sizeof shared, NULL)) return TEST_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_whole),
        cmocka_unit_test(test_text_separator),
        cmocka_unit_test(test_text_blank_boundary),
        cmocka_unit_test(test_text_damaged_and_empty),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_html_dir),
        cmocka_unit_test(test_warc),
        cmocka_unit_test(test_man),
        cmocka_unit_test(test_code_rules),
        cmocka_unit_test(test_code_stdlib_and_order),
        cmocka_unit_test(test_dictd_b64),
        cmocka_unit_test(test_dictd_jargon),
        cmocka_unit_test(test_dictd_foldoc_gcide_counts),
        cmocka_unit_test(test_dictd_damage),
        cmocka_unit_test(test_dictd_fuzz),
        cmocka_unit_test(test_wordnet),
        cmocka_unit_test(test_fortune),
        cmocka_unit_test(test_fortune_edges),
        cmocka_unit_test(test_fortune_fuzz),
        cmocka_unit_test(test_compressed_formats),
        cmocka_unit_test(test_compressed_damaged),
        cmocka_unit_test(test_missing_paths),
        cmocka_unit_test(test_gather),
    };
    return TEST_RUN("sources", tests);
}
