// test_data_man: roff (man(7), mdoc(7)) to text — each request and escape on a
// small input, real pages from /usr/share/man (sentences that must come out
// verbatim, no requests or escapes left), a sweep over installed pages,
// mutation fuzz, and the `man` stage.
#include "data/read/extract.h"
#include "core/utf8.h"
#include "testutil.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

static char *roff(const char *src, KilnBuf *title) {
    KilnBuf out = {0};
    KilnErr err;
    assert_int_equal(roff_to_text(src, strlen(src), &out, title, &err), 0);
    assert_true(out.len == 0 || utf8_valid(out.data, out.len));
    return out.data ? out.data : calloc(1, 1);
}

static void expect(const char *src, const char *want) {
    char *t = roff(src, NULL);
    if (strcmp(t, want)) fail_msg("roff:\n%s\ngave:\n[%s]\nwanted:\n[%s]", src, t, want);
    free(t);
}

static void test_requests(void **state) {
    KilnBuf title = {0};
    char *t = roff(".TH LS 1 \"September 2022\" \"GNU coreutils 9.1\"\n.SH NAME\nls \\- list\n", &title);
    assert_string_equal(title.data, "LS(1)");
    assert_string_equal(t, "NAME\n\nls - list\n");
    free(t);
    kbuf_free(&title);
    // paragraphs: lines joined with spaces, a blank line between paragraphs
    expect("one\ntwo\n.PP\nthree\n.LP\nfour\n.P\nfive\n\nsix\n", "one two\n\nthree\n\nfour\n\nfive\n\nsix\n");
    expect(".SH \"SEE ALSO\"\nx\n.SS Sub\ny\n", "SEE ALSO\n\nx\n\nSub\n\ny\n");
    expect(".SH\nNext line heading\ntext\n", "Next line heading\n\ntext\n");
    // font macros: B/I join with spaces, BR/IR/RB... alternate without
    expect(".B bold words\n.I \"in quotes\" here\n", "bold words in quotes here\n");
    expect(".BR ls (1),\n.IR file .txt\n", "ls(1), file.txt\n");
    expect(".B\nnext line\n", "next line\n");
    // .TP: the tag on its own line; .IP: the tag leads the paragraph
    expect(".TP\n\\fB\\-a\\fR, \\fB\\-\\-all\\fR\ndo not ignore\nentries\n", "-a, --all\ndo not ignore entries\n");
    expect(".IP \\(bu 2\nitem text\n", "\xe2\x80\xa2 item text\n");
    // breaks, indents, spacing
    expect("a\n.br\nb\n.RS 4\nc\n.RE\n.sp\nd\n", "a\nb c\n\nd\n");
    // no-fill keeps lines and spaces
    expect(".nf\n  int  x;\n  y\n.fi\nfilled\nagain\n", "  int  x;\n  y\n\nfilled again\n");
    expect(".EX\ncode  line\n.EE\n", "code  line\n");
    // comments and ignored requests
    expect(".\\\" a comment\ntext \\\" trailing comment\n.ft B\n.in +4\n.PD 0\n.so man7/other.7\n.IX Item\nend\n",
           "text end\n");
    // .de definitions and .ig blocks are skipped up to ..
    expect(".de XX\n.B hidden\n..\n.ig\nignored text\n..\nshown\n", "shown\n");
    // conditionals: we are nroff
    expect(".if n nroff text\n.if t troff text\n.if !t not troff\n", "nroff text not troff\n");
    expect(".ie n yes\n.el no\n.ie t yes2\n.el no2\n", "yes no2\n");
    expect(".if t \\{\\\n.B hidden\nhidden too\n.\\}\nafter\n", "after\n");
    expect(".if n \\{\\\nshown\n.\\}\n", "shown\n");
    expect(".if \\n(.g .ds x y\nplain\n", "plain\n");
    // tbl: rows of cells
    expect(".TS\nallbox tab(:);\nl l.\nName:Value\n_\nalpha:1\n.TE\nafter\n", "Name  Value\nalpha  1\n\nafter\n");
    expect(".TS\nl l.\nA\tT{\nlong text\nblock\nT}\n.TE\n", "A  long text block\n");
    // strings defined with .ds
    expect(".ds Vr 1.2.3\nversion \\*(Vr and \\*[Vr]\n", "version 1.2.3 and 1.2.3\n");
    // a string redefined with its own old value (fuzz_roff: the value was
    // appended to itself, reading memory the append had reallocated)
    expect(".ds x a\n.ds x [\\*x]\n.ds x (\\*x)\n\\*x\n", "([a])\n");
    // strings of strings grow 64-fold a line: values are cut at 1 KB
    KilnBuf src = {0};
    kbuf_puts(&src, ".ds a 12345678\n");
    for (int line = 0; line < 3; line++) {
        kbuf_puts(&src, line % 2 ? ".ds a " : ".ds b ");
        for (int i = 0; i < 64; i++) kbuf_puts(&src, line % 2 ? "\\*b" : "\\*a");
        kbuf_puts(&src, "\n");
    }
    kbuf_puts(&src, "\\*b\n");
    char *long_value = roff(src.data, NULL);
    assert_true(strlen(long_value) <= 1024 + 1);
    assert_true(strlen(long_value) > 1000);
    free(long_value);
    kbuf_free(&src);
}

static void test_escapes(void **state) {
    expect("\\fBbold\\fR \\fIit\\fP \\f(CWcw\\fR \\f[B]b\\f[]\n", "bold it cw b\n");
    expect("a\\-b \\(em \\(en \\(co \\(rg \\(tm \\(bu\n",
           "a-b \xe2\x80\x94 \xe2\x80\x93 \xc2\xa9 \xc2\xae \xe2\x84\xa2 \xe2\x80\xa2\n");
    expect("\\e back\\\\slash \\&.dot \\(aq\\(dq \\*(lqq\\*(rq \\(lq\\(rq\n",
           "\\ back\\slash .dot '\" \xe2\x80\x9cq\xe2\x80\x9d \xe2\x80\x9c\xe2\x80\x9d\n");
    expect("\\s-1SMALL\\s0 \\s+2big\\s-2 \\s(12x\\s[10]y\n", "SMALL big xy\n");
    expect("caf\\['e] \\[u00E9] \\(:u \\N'65'\n", "caf\xc3\xa9 \xc3\xa9 \xc3\xbc A\n");
    expect("non\\ breaking\\~space \\h'1i'gap\\w'abc'\n", "non breaking space gap\n");
    expect("joined\\c\nline\n", "joinedline\n");
    expect("unknown \\[nosuchglyph]glyph \\(zz\n", "unknown glyph\n");
    expect("trailing backslash \\", "trailing backslash\n");
}

static void test_mdoc(void **state) {
    KilnBuf title = {0};
    char *t = roff(".Dd $Mdocdate$\n.Dt SSH 1\n.Os\n.Sh NAME\n.Nm ssh\n.Nd remote login client\n"
                   ".Sh SYNOPSIS\n.Nm\n.Op Fl 46\n.Op Fl B Ar bind_interface\n.Ar destination\n"
                   ".Sh DESCRIPTION\n.Nm\nconnects over\n.Ux Ns -domain sockets, see\n.Xr ssh_config 5 .\n"
                   ".Bl -tag -width Ds\n.It Fl v\nVerbose mode.\n.El\n",
                   &title);
    assert_string_equal(title.data, "SSH(1)");
    const char *want = "NAME\n\nssh \xe2\x80\x94 remote login client\n\nSYNOPSIS\n\n"
                       "ssh [-46] [-B bind_interface] destination\n\nDESCRIPTION\n\n"
                       "ssh connects over UNIX-domain sockets, see ssh_config(5).\n\n-v\nVerbose mode.\n";
    if (strcmp(t, want)) fail_msg("got:\n[%s]\nwanted:\n[%s]", t, want);
    free(t);
    kbuf_free(&title);
}

// ---- real pages
static char *gunzip(const char *path, size_t *n) {
    gzFile g = gzopen(path, "rb");
    if (!g) return NULL;
    size_t cap = 1 << 16;
    char *b = malloc(cap + 1);
    *n = 0;
    int got;
    while ((got = gzread(g, b + *n, (unsigned)(cap - *n))) > 0) {
        *n += (size_t)got;
        if (*n == cap) b = realloc(b, (cap *= 2) + 1);
    }
    gzclose(g);
    b[*n] = 0;
    return b;
}

// No line that still looks like a request (".XX args"), no font or glyph escapes.
static void assert_clean(const char *name, const char *t) {
    for (const char *p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        int req = p[0] == '.' && ((p[1] >= 'A' && p[1] <= 'Z') || (p[1] >= 'a' && p[1] <= 'z')) &&
                  (p[2] == ' ' || p[2] == '\n' || ((p[2] >= 'A' && p[2] <= 'z') && (p[3] == ' ' || p[3] == '\n')));
        if (req) fail_msg("%s: request line left: %.40s", name, p);
    }
    // (regex(7) rightly prints "\\(", "\\)" and "\\\"": those are text)
    const char *esc[] = {"\\fB", "\\fI", "\\fR", "\\fP", "\\f(", "\\f[", "\\*(", "\\(em", "\\(co", "\\s-",
                         "\\s+", "\\s0", "\\-", "\\&", "\\e", "\\c"};
    for (size_t i = 0; i < sizeof esc / sizeof esc[0]; i++)
        if (strstr(t, esc[i])) fail_msg("%s: escape %s left near: %.60s", name, esc[i], strstr(t, esc[i]));
}

typedef struct {
    const char *path, *title;
    const char *sentences[4];
} Page;

static void test_real_pages(void **state) {
    const Page pages[] = {
        {"/usr/share/man/man1/ls.1.gz", "LS(1)",
         {"List information about the FILEs (the current directory by default). Sort entries alphabetically if "
          "none of -cftuvSUX nor --sort is specified.\n",
          "\n-a, --all\ndo not ignore entries starting with .\n",
          "\n--block-size=SIZE\nwith -l, scale sizes by SIZE when printing them; e.g., '--block-size=M'; see SIZE "
          "format below\n",
          "\nSEE ALSO\n\ndircolors(1)\n"}},
        {"/usr/share/man/man3/printf.3.gz", "printf(3)",
         {"\nRETURN VALUE\n\nUpon successful return, these functions return the number of characters printed "
          "(excluding the null byte used to end output to strings).\n",
          "\nint printf(const char *restrict format, ...);\n", NULL}},
        {"/usr/share/man/man7/regex.7.gz", "regex(7)",
         {"\nA branch is one(!) or more pieces, concatenated. It matches a match for the first, followed by a "
          "match for the second, and so on.\n",
          "Regular expressions (\"RE\"s), as defined in POSIX.2, come in two forms:", NULL}},
    };
    int found = 0;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        size_t n;
        char *src = gunzip(pages[i].path, &n);
        if (!src) {
            print_message("skip: %s not installed\n", pages[i].path);
            continue;
        }
        found++;
        KilnBuf out = {0}, title = {0};
        KilnErr err;
        assert_int_equal(roff_to_text(src, n, &out, &title, &err), 0);
        assert_string_equal(title.data, pages[i].title);
        for (int k = 0; k < 4 && pages[i].sentences[k]; k++)
            if (!strstr(out.data, pages[i].sentences[k]))
                fail_msg("%s: missing:\n%s", pages[i].path, pages[i].sentences[k]);
        assert_clean(pages[i].path, out.data);
        kbuf_free(&out);
        kbuf_free(&title);
        free(src);
    }
    if (!found) skip();
}

// Every 10th installed page of sections 1, 5, 7 and 8: never an error, valid
// UTF-8, and almost no page with a font escape or request line left (the few
// allowed are groff's own manuals, which quote roff in examples).
static void test_sweep(void **state) {
    const char *dirs[] = {"/usr/share/man/man1", "/usr/share/man/man5", "/usr/share/man/man7", "/usr/share/man/man8"};
    long pages = 0, dirty = 0, bytes = 0;
    double secs = 0;
    for (int d = 0; d < 4; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        struct dirent *e;
        long k = 0;
        while ((e = readdir(dir))) {
            if (!strstr(e->d_name, ".gz") || k++ % 10) continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dirs[d], e->d_name);
            size_t n;
            char *src = gunzip(path, &n);
            if (!src) continue;
            KilnBuf out = {0};
            KilnErr err;
            double t0 = kiln_now();
            assert_int_equal(roff_to_text(src, n, &out, NULL, &err), 0);
            secs += kiln_now() - t0;
            const char *t = out.data ? out.data : "";
            assert_true(utf8_valid(t, out.len));
            if (strstr(t, "\\fB") || strstr(t, "\\fI") || strstr(t, "\\fR") || strstr(t, "\\f(")) dirty++;
            pages++;
            bytes += (long)n;
            kbuf_free(&out);
            free(src);
        }
        closedir(dir);
    }
    if (!pages) skip();
    print_message("%ld pages (%.1f MB): %ld with font escapes left; %.0f MB/s on one thread\n", pages, bytes / 1e6,
                  dirty, bytes / 1e6 / secs);
    assert_true(dirty * 100 <= pages);
}

static int fuzz_reader(const char *path, void *ctx) {
    char *d;
    size_t n;
    KilnErr err;
    if (kiln_read_file(path, &d, &n, &err)) return -1;
    KilnBuf out = {0}, title = {0};
    int rc = roff_to_text(d, n, &out, &title, &err);
    if (rc == 0 && out.len && !utf8_valid(out.data, out.len)) rc = -1;
    *(long *)ctx += out.len > 0;
    kbuf_free(&out);
    kbuf_free(&title);
    free(d);
    return rc;
}

static void test_fuzz(void **state) {
    size_t n;
    char *src = gunzip("/usr/share/man/man1/ls.1.gz", &n);
    if (!src) skip();
    long nonempty = 0;
    int refused = fuzz_mutants(src, n, 2000, tmp("mutant.1"), 1000, 5, fuzz_reader, &nonempty);
    assert_int_equal(refused, 0);
    assert_true(nonempty > 900);
    free(src);
    // escapes and requests cut anywhere
    const char *tricky[] = {"\\", "\\f", "\\(", "\\(e", "\\[", "\\[u00", "\\*", "\\*(", "\\s", "\\s(", "\\h'",
                            "\\N'", ".", ".\\\"", ".if", ".if t \\{", ".ie n", ".TS\n", ".de X\n", "\"", ".B \"",
                            ".TH", ".TH \"", ".Op Op Op Op Op Op Op Op Op Op Fl", ".ds", ".ds x \\*x"};
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) free(roff(tricky[i], NULL));
    // many arguments, long lines, deep \{ nesting
    KilnBuf big = {0};
    kbuf_puts(&big, ".B");
    for (int i = 0; i < 1000; i++) kbuf_puts(&big, " arg");
    kbuf_puts(&big, "\n.if t \\{");
    for (int i = 0; i < 1000; i++) kbuf_puts(&big, "\\{");
    kbuf_puts(&big, "\nhidden\n");
    free(roff(big.data, NULL));
    kbuf_free(&big);
}

// ---- the stage
static void test_stage(void **state) {
    const KilnStageDef *def = stage_find("man");
    assert_non_null(def);
    void *st = test_stage_make(def, 1, NULL);
    const char *page = ".TH X 1\n.SH NAME\nx \\- does \\fBthings\\fR\n";
    char *out;
    assert_null(test_apply(def, st, NULL, NULL, page, strlen(page), &out, NULL));
    assert_string_equal(out, "NAME\n\nx - does things\n");
    free(out);
    assert_string_equal(test_apply(def, st, NULL, NULL, ".\\\" only a comment\n.TH X 1\n.PP\n", 29, NULL, NULL), "man:empty");
    def->destroy(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),   cmocka_unit_test(test_escapes), cmocka_unit_test(test_mdoc),
        cmocka_unit_test(test_real_pages), cmocka_unit_test(test_sweep),   cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_stage),
    };
    return TEST_RUN("man", tests);
}
