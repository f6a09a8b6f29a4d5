// sources.c: raw files to documents (sources.h): file listing (globs,
// directory walks, one read per file), the reader loop, and the per-file
// formats text, jsonl, html, warc, man and code. dictd, wordnet and fortune
// live in source_dict.c.
#include "data/read/sources_internal.h"
#include "core/utf8.h"

#include "data/read/extract.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

enum { F_TEXT, F_JSONL, F_HTML, F_WARC, F_MAN, F_CODE, F_DICTD, F_WORDNET, F_FORTUNE };
static const char *const FORMATS[] = {"text", "jsonl", "html", "warc", "man", "code", "dictd", "wordnet", "fortune",
                                      NULL};
static const char *const ORDERS[] = {"path", "hash", NULL};

// Files a `code` source takes from a directory when no ext list is given.
static const char *const CODE_EXTS[] = {".c",  ".h",  ".cc", ".cpp", ".hpp", ".py", ".rs", ".go",   ".java",
                                        ".js", ".ts", ".sh", ".pl",  ".rb",  ".lua", ".hs", ".scala", NULL};
static const char *const HTML_EXTS[] = {".html",    ".htm",     ".xhtml", ".html.gz",
                                        ".htm.gz", ".html.zst", ".htm.zst", NULL};

#define MAX_DEPTH 64

typedef struct {
    char *path;
    int is_link;   // reached through a symlink
    dev_t dev;
    ino_t ino;
    long size;
    long seq;      // listing order
    uint64_t hash; // of the path, for order: hash
} SrcFile;

struct KilnSourceReader {
    char *name;
    int format, order;
    char **exts;  // file name endings taken from walks and wildcards (NULL: the format's default)
    int nexts;
    char **excludes;  // fnmatch patterns on whole paths: directories not walked, files not read
    int nexcludes;
    char *text_field, *split;
    SrcFile *files;
    long nfiles, cap_files, next_file;
    long files_read, bytes;
    KilnSkips skips;
    SrcLoad L;
    long qpos;                 // next queued document
    KilnDocReader *jsonl;      // open jsonl file
    KilnWarcReader *warc;      // open warc file
    KilnWarcRecord rec;
    const char *cur;           // path of the open streaming file
    KilnBuf raw, text, title;  // per-file scratch
};

// ---------------------------------------------------------------- helpers shared with source_dict.c
static int all_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

int src_emit(SrcLoad *L, const char *id, size_t id_len, const char *text, size_t n, KilnErr *err) {
    if (all_space(text, n)) {
        skips_add(L->skips, "%.*s: empty document", (int)(id_len > 200 ? 200 : id_len), id);
        return 0;
    }
    if (!utf8_valid(text, n)) {
        if (utf8_repair(text, n, &L->tmp) < 0) return kiln_fail(err, "out of memory");
        text = L->tmp.data;
        n = L->tmp.len;
    }
    if (L->nitems == L->cap_items) {
        long cap = L->cap_items ? 2 * L->cap_items : 16;
        SrcItem *it = realloc(L->items, (size_t)cap * sizeof *it);
        if (!it) return kiln_fail(err, "out of memory");
        memset(it + L->cap_items, 0, (size_t)(cap - L->cap_items) * sizeof *it);
        L->items = it;
        L->cap_items = cap;
    }
    SrcItem *it = &L->items[L->nitems];
    if (kbuf_set(&it->id, id, id_len) || kbuf_set(&it->text, text, n)) return kiln_fail(err, "out of memory");
    L->nitems++;
    return 0;
}

int src_read_noting(KilnSkips *skips, const char *path, KilnBuf *out) {
    KilnErr e;
    int rc = kiln_read_decompressed(path, out, &e);
    if (rc) skips_add(skips, "%s", e.msg);
    return rc;
}

int src_group_add(SrcLoad *L, SrcGroup *g, const char *prefix, const char *label, const char *text, size_t n,
                  KilnErr *err) {
    int bad = 0;
    if (g->n == 0) bad |= kbuf_puts(&g->first, label);
    else bad |= kbuf_puts(&g->text, g->sep);
    bad |= kbuf_append(&g->text, text, n) | kbuf_set(&g->last, label, strlen(label));
    if (bad) return kiln_fail(err, "out of memory");
    g->n++;
    return (long)g->text.len >= L->group_chars ? src_group_flush(L, g, prefix, err) : 0;
}

// Adds h to the group's set of emitted ids; 0 when it was already there, -1 out of memory.
static int seen_add(SrcGroup *g, uint64_t h) {
    h = h ? h : 1;  // 0 marks an empty slot
    if (2 * (g->nseen + 1) > g->cap_seen) {
        long cap = g->cap_seen ? g->cap_seen * 2 : 64;
        uint64_t *t = calloc((size_t)cap, sizeof *t);
        if (!t) return -1;
        for (long i = 0; i < g->cap_seen; i++)
            for (uint64_t v = g->seen[i], j = v % (uint64_t)cap; v; j = (j + 1) % (uint64_t)cap)
                if (!t[j]) {
                    t[j] = v;
                    break;
                }
        free(g->seen);
        g->seen = t;
        g->cap_seen = cap;
    }
    for (uint64_t j = h % (uint64_t)g->cap_seen;; j = (j + 1) % (uint64_t)g->cap_seen) {
        if (g->seen[j] == h) return 0;
        if (!g->seen[j]) {
            g->seen[j] = h;
            g->nseen++;
            return 1;
        }
    }
}

int src_group_flush(SrcLoad *L, SrcGroup *g, const char *prefix, KilnErr *err) {
    if (g->n == 0) return 0;
    KilnBuf id = {0};
    int bad = kbuf_puts(&id, prefix) | kbuf_putc(&id, ':') | kbuf_append(&id, g->first.data, g->first.len);
    if (g->n > 1) bad |= kbuf_puts(&id, "..") | kbuf_append(&id, g->last.data, g->last.len);
    size_t base = id.len;
    int fresh = 1;
    for (int k = 2; !bad && (fresh = seen_add(g, XXH3_64bits(id.data, id.len))) == 0; k++) {
        id.len = base;  // a repeated headword: the next free "#k"
        bad |= kbuf_printf(&id, "#%d", k);
    }
    if (!bad && fresh < 0) bad = 1;
    int rc = bad ? kiln_fail(err, "out of memory") : src_emit(L, id.data, id.len, g->text.data, g->text.len, err);
    kbuf_free(&id);
    kbuf_clear(&g->text);
    kbuf_clear(&g->first);
    kbuf_clear(&g->last);
    g->n = 0;
    return rc;
}

void src_group_free(SrcGroup *g) {
    kbuf_free(&g->text);
    kbuf_free(&g->first);
    kbuf_free(&g->last);
    free(g->seen);
}

// ---------------------------------------------------------------- listing files
static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static const char *base_of(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

// Whether a file found by a walk or a wildcard belongs to this source.
static int wanted(const KilnSourceReader *r, const char *path) {
    const char *b = base_of(path);
    if (r->nexts) {
        for (int i = 0; i < r->nexts; i++)
            if (ends_with(b, r->exts[i])) return 1;
        return 0;
    }
    const char *const *exts = NULL;
    switch (r->format) {
    case F_CODE: exts = CODE_EXTS; break;
    case F_HTML: exts = HTML_EXTS; break;
    case F_WARC:  // WARC and WET (WAT holds metadata only)
        return ends_with(b, ".warc") || ends_with(b, ".warc.gz") || ends_with(b, ".wet") || ends_with(b, ".wet.gz");
    case F_DICTD: return ends_with(b, ".index");
    case F_WORDNET:
        return !strcmp(b, "data.noun") || !strcmp(b, "data.verb") || !strcmp(b, "data.adj") || !strcmp(b, "data.adv");
    case F_FORTUNE: return !ends_with(b, ".dat") && !ends_with(b, ".u8");  // strfile indexes, UTF-8 twins
    default: return 1;
    }
    for (int i = 0; exts[i]; i++)
        if (ends_with(b, exts[i])) return 1;
    return 0;
}

static int excluded(const KilnSourceReader *r, const char *path) {
    for (int i = 0; i < r->nexcludes; i++)
        if (!fnmatch(r->excludes[i], path, 0)) return 1;
    return 0;
}

static int add_file(KilnSourceReader *r, const char *path, const struct stat *st, KilnErr *err) {
    struct stat lst;
    if (r->nfiles == r->cap_files) {
        long cap = r->cap_files ? 2 * r->cap_files : 256;
        SrcFile *f = realloc(r->files, (size_t)cap * sizeof *f);
        if (!f) return kiln_fail(err, "out of memory listing files");
        r->files = f;
        r->cap_files = cap;
    }
    SrcFile *f = &r->files[r->nfiles];
    if (!(f->path = strdup(path))) return kiln_fail(err, "out of memory listing files");
    f->is_link = !lstat(path, &lst) && S_ISLNK(lst.st_mode);
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->size = (long)st->st_size;
    f->seq = r->nfiles;
    f->hash = XXH3_64bits(path, strlen(path));
    r->nfiles++;
    return 0;
}

typedef struct {
    dev_t dev;
    ino_t ino;
} DirId;

// Adds the regular files under dir (hidden entries skipped); ancestors guard
// against symlink loops.
static int walk(KilnSourceReader *r, const char *dir, DirId *anc, int depth, KilnErr *err) {
    DIR *d = opendir(dir);
    if (!d) {
        skips_add(&r->skips, "%s: cannot open directory: %s", dir, strerror(errno));
        return 0;
    }
    int rc = 0;
    KilnBuf path = {0};
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        kbuf_clear(&path);
        if (kbuf_puts(&path, dir) || kbuf_putc(&path, '/') || kbuf_puts(&path, e->d_name)) {
            rc = kiln_fail(err, "out of memory listing %s", dir);
            break;
        }
        if (excluded(r, path.data)) continue;
        struct stat st;
        if (stat(path.data, &st)) {
            skips_add(&r->skips, "%s: cannot stat: %s", path.data, strerror(errno));
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int loop = depth + 1 >= MAX_DEPTH;
            for (int i = 0; i <= depth && !loop; i++) loop = anc[i].dev == st.st_dev && anc[i].ino == st.st_ino;
            if (loop) {
                skips_add(&r->skips, "%s: directory loop or too deep, not walked", path.data);
                continue;
            }
            anc[depth + 1] = (DirId){st.st_dev, st.st_ino};
            rc = walk(r, path.data, anc, depth + 1, err);
        } else if (S_ISREG(st.st_mode) && wanted(r, path.data)) {
            rc = add_file(r, path.data, &st, err);
        }
    }
    closedir(d);
    kbuf_free(&path);
    return rc;
}

static int cmp_path(const void *a, const void *b) {
    return strcmp(((const SrcFile *)a)->path, ((const SrcFile *)b)->path);
}

// One path or pattern: matching files, and the files under matching directories.
static int expand(KilnSourceReader *r, const char *pattern, KilnErr *err) {
    long start = r->nfiles;
    int wild = strpbrk(pattern, "*?[") != NULL;
    glob_t g;
    memset(&g, 0, sizeof g);
    int grc = glob(pattern, GLOB_NOSORT, NULL, &g);
    if (grc == GLOB_NOSPACE) return kiln_fail(err, "out of memory expanding '%s'", pattern);
    if (grc == GLOB_NOMATCH || g.gl_pathc == 0) {
        skips_add(&r->skips, "%s: no such file", pattern);
        globfree(&g);
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) {
        char p[4096];  // tidied: a document's id is its path, and "a/../b/x" would stay in every id
        kiln_path_tidy(g.gl_pathv[i], p, sizeof p);
        struct stat st;
        if (excluded(r, p)) continue;
        if (stat(p, &st)) {
            skips_add(&r->skips, "%s: cannot stat: %s", p, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            DirId anc[MAX_DEPTH] = {{st.st_dev, st.st_ino}};
            rc = walk(r, p, anc, 0, err);
        } else if (S_ISREG(st.st_mode) && (!wild || wanted(r, p))) {  // a file named exactly is taken as is
            rc = add_file(r, p, &st, err);
        }
    }
    globfree(&g);
    // byte order, not the locale's: the same list everywhere
    if (r->nfiles - start > 1) qsort(r->files + start, (size_t)(r->nfiles - start), sizeof *r->files, cmp_path);
    return rc;
}

static int cmp_inode(const void *a, const void *b) {
    const SrcFile *x = a, *y = b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    if (x->is_link != y->is_link) return x->is_link - y->is_link;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}
static int cmp_seq(const void *a, const void *b) {
    long x = ((const SrcFile *)a)->seq, y = ((const SrcFile *)b)->seq;
    return x < y ? -1 : x > y;
}
static int cmp_hash(const void *a, const void *b) {
    const SrcFile *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return strcmp(x->path, y->path);
}

// A file reached twice (symlinks, overlapping globs) is read once, under its
// own name rather than a link's (man1/egrep.1.gz -> grep.1.gz is grep.1.gz),
// else under its first name in the listing.
static void drop_repeats(KilnSourceReader *r) {
    for (long i = 0; i < r->nfiles; i++) r->files[i].seq = i;
    if (r->nfiles > 1) qsort(r->files, (size_t)r->nfiles, sizeof *r->files, cmp_inode);  // files may be NULL
    long k = 0;
    for (long i = 0; i < r->nfiles; i++) {
        if (k && r->files[k - 1].dev == r->files[i].dev && r->files[k - 1].ino == r->files[i].ino) {
            free(r->files[i].path);
            continue;
        }
        r->files[k++] = r->files[i];
    }
    r->nfiles = k;
    if (r->nfiles > 1) qsort(r->files, (size_t)r->nfiles, sizeof *r->files, r->order == 1 ? cmp_hash : cmp_seq);
}

// ---------------------------------------------------------------- options
static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int copy_list(char ***out, const char *const *vals, int n, KilnErr *err) {
    if (!n) return 0;
    if (!(*out = calloc((size_t)n, sizeof **out))) return kiln_fail(err, "out of memory");
    for (int i = 0; i < n; i++)
        if (!((*out)[i] = strdup(vals[i]))) return kiln_fail(err, "out of memory");
    return 0;
}

static int read_options(KilnSourceReader *r, KilnParams *ps, KilnErr *err) {
    SrcLoad *L = &r->L;
    L->group_chars = 8000;
    L->max_chars = 8000;
    L->max_bytes = 1 << 20;
    if (!ps) return 0;
    const char *const *exts, *const *excl;
    const char *split = NULL, *field = NULL;
    int nexts, nexcl;
    if (params_list(ps, "ext", &exts, &nexts, err) || params_list(ps, "exclude", &excl, &nexcl, err) ||
        params_enum(ps, "order", ORDERS, &r->order, err))
        return -1;
    r->nexts = nexts;  // set first: source_close frees what copy_list managed
    r->nexcludes = nexcl;
    if (copy_list(&r->exts, exts, nexts, err) || copy_list(&r->excludes, excl, nexcl, err)) return -1;
    int rc = 0;
    switch (r->format) {
    case F_TEXT: rc = params_str(ps, "split", &split, err) || params_int(ps, "max_chars", &L->max_chars, err); break;
    case F_JSONL: rc = params_str(ps, "text_field", &field, err); break;
    case F_CODE: rc = params_int(ps, "max_bytes", &L->max_bytes, err); break;
    case F_DICTD:
    case F_WORDNET:
    case F_FORTUNE: rc = params_int(ps, "group_chars", &L->group_chars, err); break;
    }
    if (rc || params_check_unused(ps, err)) return -1;
    if (L->group_chars < 1 || L->max_chars < 1 || L->max_bytes < 1)
        return kiln_fail(err, "group_chars, max_chars and max_bytes must be positive");
    if ((split && !(r->split = strdup(split))) || (field && !(r->text_field = strdup(field))))
        return kiln_fail(err, "out of memory");
    L->split = r->split;
    return 0;
}

static int open_spec(KilnSourceReader **rp, const KilnSourceSpec *spec, int find_files, KilnErr *err);

int source_open(KilnSourceReader **rp, const KilnSourceSpec *spec, KilnErr *err) {
    return open_spec(rp, spec, 1, err);
}

int source_check(const KilnSourceSpec *spec, KilnErr *err) {
    KilnSourceReader *r;
    if (open_spec(&r, spec, 0, err)) return -1;
    source_close(r);
    return 0;
}

static int open_spec(KilnSourceReader **rp, const KilnSourceSpec *spec, int find_files, KilnErr *err) {
    *rp = NULL;
    int format = -1;
    for (int i = 0; FORMATS[i]; i++)
        if (spec->format && !strcmp(spec->format, FORMATS[i])) format = i;
    if (format < 0)
        return kiln_fail(err, "unknown format '%s' (text, jsonl, html, warc, man, code, dictd, wordnet, fortune)",
                         spec->format ? spec->format : "");
    KilnSourceReader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = dup_or_null(spec->name ? spec->name : "source"))) {
        free(r);
        return kiln_fail(err, "out of memory");
    }
    r->format = format;
    r->L.name = r->name;
    r->L.skips = &r->skips;
    if (read_options(r, spec->opts, err)) {
        kiln_wrap(err, "format %s", FORMATS[format]);
        goto fail;
    }
    for (int i = 0; find_files && i < spec->nglobs; i++)
        if (expand(r, spec->globs[i], err)) goto fail;
    drop_repeats(r);
    if (find_files && r->nfiles == 0) {
        kiln_fail(err, "no %s files in %s%s", FORMATS[format],
                  spec->nglobs ? spec->globs[0] : "(no paths given)", spec->nglobs > 1 ? " ..." : "");
        goto fail;
    }
    *rp = r;
    return 0;
fail:
    source_close(r);
    return -1;
}

// ---------------------------------------------------------------- per-file formats
// "title\n\ntext" unless the text already starts with its title.
static int with_title(KilnBuf *text, const KilnBuf *title, KilnBuf *out) {
    kbuf_clear(out);
    const char *t = title->data ? title->data : "";
    size_t tn = title->len;
    while (tn && isspace((unsigned char)t[tn - 1])) tn--;
    while (tn && isspace((unsigned char)*t)) t++, tn--;
    if (tn && !(text->len >= tn && !memcmp(text->data, t, tn)))
        if (kbuf_append(out, t, tn) || kbuf_puts(out, "\n\n")) return -1;
    return text->len ? kbuf_append(out, text->data, text->len) : 0;
}

static int load_html(KilnSourceReader *r, const char *id, const char *html, size_t n, KilnErr *err) {
    KilnErr e;
    kbuf_clear(&r->text);
    kbuf_clear(&r->title);
    if (html_main_text(html, n, &r->text, &r->title, &e)) return kiln_fail(err, "%s: %s", id, e.msg);
    if (with_title(&r->text, &r->title, &r->raw)) return kiln_fail(err, "out of memory");
    return src_emit(&r->L, id, strlen(id), r->raw.data ? r->raw.data : "", r->raw.len, err);
}

// A man page that only says ".so other.1" (after comments) points elsewhere.
static int man_redirect(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        size_t len = e - i;
        int comment = (len >= 3 && (!memcmp(s + i, ".\\\"", 3) || !memcmp(s + i, "'\\\"", 3))) ||
                      (len == 1 && s[i] == '.');
        if (!comment && !all_space(s + i, len)) return len >= 4 && !memcmp(s + i, ".so ", 4);
        i = e + 1;
    }
    return 0;
}

static int load_man(KilnSourceReader *r, const char *path, KilnErr *err) {
    if (man_redirect(r->raw.data, r->raw.len)) return 0;  // the page it names is read in its own right
    KilnErr e;
    kbuf_clear(&r->text);
    if (roff_to_text(r->raw.data, r->raw.len, &r->text, NULL, &e)) {
        skips_add(&r->skips, "%s: %s", path, e.msg);
        return 0;
    }
    return src_emit(&r->L, path, strlen(path), r->text.data ? r->text.data : "", r->text.len, err);
}

static int load_code(KilnSourceReader *r, const char *path, KilnErr *err) {
    if ((long)r->raw.len > r->L.max_bytes) {
        skips_add(&r->skips, "%s: %zu bytes, over max_bytes %ld", path, r->raw.len, r->L.max_bytes);
        return 0;
    }
    if (memchr(r->raw.data, 0, r->raw.len)) {
        skips_add(&r->skips, "%s: binary (NUL bytes)", path);
        return 0;
    }
    return src_emit(&r->L, path, strlen(path), r->raw.data, r->raw.len, err);
}

static int emit_part(SrcLoad *L, const char *path, long part, const char *s, size_t n, KilnBuf *id, KilnErr *err) {
    char num[24];
    snprintf(num, sizeof num, "#%ld", part);
    kbuf_clear(id);
    if (kbuf_puts(id, path) || kbuf_puts(id, num)) return kiln_fail(err, "out of memory");
    return src_emit(L, id->data, id->len, s, n, err);
}

// text split on separator lines (each part a document), or on blank lines into
// paragraphs packed into documents of at most max_chars (a longer paragraph is
// one document). Documents are "path#1", "path#2", ...
static int load_text_split(KilnSourceReader *r, const char *path, int damaged, KilnErr *err) {
    SrcLoad *L = &r->L;
    int blank = !strcmp(L->split, "blank");
    size_t seplen = strlen(L->split);
    const char *s = r->raw.data;
    size_t n = r->raw.len, i = 0, start = 0;
    long part = 0;
    KilnBuf *cur = &r->text, id = {0};
    kbuf_clear(cur);
    int rc = 0;
    for (;;) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        int at_end = i >= n;
        size_t len = e - i;
        if (len && s[i + len - 1] == '\r') len--;
        if (at_end || (blank ? all_space(s + i, len) : len == seplen && !memcmp(s + i, L->split, len))) {
            size_t a = start, b = at_end ? n : i;
            while (a < b && (s[a] == '\n' || s[a] == '\r')) a++;
            while (b > a && isspace((unsigned char)s[b - 1])) b--;
            if (at_end && damaged) b = a;  // the last piece may be cut short: left out (the skip says so)
            if (b > a && !blank) {
                rc = emit_part(L, path, ++part, s + a, b - a, &id, err);
            } else if (b > a) {
                if (cur->len && cur->len + 2 + (b - a) > (size_t)L->max_chars) {
                    rc = emit_part(L, path, ++part, cur->data, cur->len, &id, err);
                    kbuf_clear(cur);
                }
                if (!rc && ((cur->len && kbuf_puts(cur, "\n\n")) || kbuf_append(cur, s + a, b - a)))
                    rc = kiln_fail(err, "out of memory");
            }
            start = e + 1;
        }
        if (rc || at_end) break;
        i = e + 1;
    }
    if (!rc && blank && cur->len) rc = emit_part(L, path, ++part, cur->data, cur->len, &id, err);
    kbuf_free(&id);
    return rc;
}

static int open_streaming(KilnSourceReader *r, const SrcFile *f, KilnErr *err) {
    KilnErr e;
    int rc = r->format == F_JSONL ? docreader_open(&r->jsonl, f->path, r->text_field, r->name, &e)
                                  : warc_open(&r->warc, f->path, &e);
    if (rc) {
        skips_add(&r->skips, "%s", e.msg);
        return 0;
    }
    r->cur = f->path;
    r->files_read++;
    r->bytes += f->size;
    return 0;
}

// Reads one file and queues its documents. Damaged files are skips.
static int load_file(KilnSourceReader *r, const SrcFile *f, KilnErr *err) {
    if (r->format == F_JSONL || r->format == F_WARC) return open_streaming(r, f, err);
    if (r->format == F_CODE && f->size > r->L.max_bytes) {
        skips_add(&r->skips, "%s: %ld bytes, over max_bytes %ld", f->path, f->size, r->L.max_bytes);
        return 0;
    }
    switch (r->format) {
    case F_DICTD: r->files_read++, r->bytes += f->size; return load_dictd(&r->L, f->path, err);
    case F_WORDNET: r->files_read++, r->bytes += f->size; return load_wordnet(&r->L, f->path, err);
    case F_FORTUNE: r->files_read++, r->bytes += f->size; return load_fortune(&r->L, f->path, err);
    }
    int rc = src_read_noting(&r->skips, f->path, &r->raw);
    if (rc < 0) return 0;
    r->files_read++;
    r->bytes += f->size;
    if (r->format == F_TEXT && r->split) return load_text_split(r, f->path, rc == 1, err);
    if (rc == 1) return 0;  // one document per file: a damaged file is left out whole
    switch (r->format) {
    case F_HTML: return load_html(r, f->path, r->raw.data, r->raw.len, err);
    case F_MAN: return load_man(r, f->path, err);
    case F_CODE: return load_code(r, f->path, err);
    default: return src_emit(&r->L, f->path, strlen(f->path), r->raw.data, r->raw.len, err);
    }
}

static void merge_skips(KilnSkips *into, const KilnSkips *from) {
    for (long i = 0; i < from->count && i < KILN_SKIP_EXAMPLES; i++)
        if (into->count + i < KILN_SKIP_EXAMPLES)
            memcpy(into->examples[into->count + i], from->examples[i], sizeof into->examples[0]);
    into->count += from->count;
}

static void close_streaming(KilnSourceReader *r) {
    if (r->jsonl) {
        merge_skips(&r->skips, docreader_skips(r->jsonl));
        docreader_close(r->jsonl);
        r->jsonl = NULL;
    }
    if (r->warc) {
        merge_skips(&r->skips, warc_skips(r->warc));
        warc_close(r->warc);
        r->warc = NULL;
    }
    r->cur = NULL;
}

static int has_ci(const char *s, const char *word) {
    size_t k = strlen(word);
    for (; s && *s; s++)
        if (!strncasecmp(s, word, k)) return 1;
    return 0;
}

// Next WARC record that makes a document, queued. 1: queued, 0: file done.
static int warc_step(KilnSourceReader *r, KilnErr *err) {
    for (;;) {
        KilnErr e;
        int rc = warc_next(r->warc, &r->rec, &e);
        if (rc < 0) {
            skips_add(&r->skips, "%s", e.msg);
            return 0;
        }
        if (rc == 0) return 0;
        KilnWarcRecord *w = &r->rec;
        const char *type = w->type.data ? w->type.data : "";
        const char *uri = w->target_uri.len ? w->target_uri.data : w->record_id.data ? w->record_id.data : r->cur;
        long before = r->L.nitems;
        if (!strcmp(type, "response")) {
            int ok = w->http_status == 0 || (w->http_status >= 200 && w->http_status < 300);
            const char *ct = w->content_type.data ? w->content_type.data : "";
            if (!ok || !(has_ci(ct, "text/html") || has_ci(ct, "xhtml"))) continue;
            if (load_html(r, uri, w->payload.data ? w->payload.data : "", w->payload.len, err)) return -1;
        } else if (!strcmp(type, "conversion")) {
            if (src_emit(&r->L, uri, strlen(uri), w->payload.data ? w->payload.data : "", w->payload.len, err))
                return -1;
        } else {
            continue;
        }
        if (r->L.nitems > before) return 1;
    }
}

static int reader_next(void *ctx, KilnDoc *doc, KilnErr *err) {
    KilnSourceReader *r = ctx;
    for (;;) {
        if (r->qpos < r->L.nitems) {
            SrcItem *it = &r->L.items[r->qpos++];
            kbuf_swap(&doc->id, &it->id);
            kbuf_swap(&doc->text, &it->text);
            if (kbuf_set(&doc->source, r->name, strlen(r->name))) return kiln_fail(err, "out of memory");
            return 1;
        }
        r->qpos = r->L.nitems = 0;
        if (r->jsonl) {
            KilnErr e;
            int rc = docreader_next(r->jsonl, doc, &e);
            if (rc == 1) return kbuf_set(&doc->source, r->name, strlen(r->name)) ? kiln_fail(err, "out of memory") : 1;
            if (rc < 0) skips_add(&r->skips, "%s", e.msg);
            close_streaming(r);
            continue;
        }
        if (r->warc) {
            int rc = warc_step(r, err);
            if (rc < 0) return -1;
            if (rc == 0) close_streaming(r);
            continue;
        }
        if (r->next_file >= r->nfiles) return 0;
        if (load_file(r, &r->files[r->next_file++], err)) return -1;
        r->bytes += r->L.extra_bytes;
        r->L.extra_bytes = 0;
    }
}

KilnDocSource source_docs(KilnSourceReader *r) { return (KilnDocSource){.next = reader_next, .ctx = r}; }
const KilnSkips *source_skips(const KilnSourceReader *r) { return &r->skips; }
long source_files(const KilnSourceReader *r) { return r->files_read; }
long source_bytes(const KilnSourceReader *r) { return r->bytes; }

void source_close(KilnSourceReader *r) {
    if (!r) return;
    close_streaming(r);
    warc_record_free(&r->rec);
    for (long i = 0; i < r->nfiles; i++) free(r->files[i].path);
    free(r->files);
    for (int i = 0; i < r->nexts && r->exts; i++) free(r->exts[i]);
    free(r->exts);
    for (int i = 0; i < r->nexcludes && r->excludes; i++) free(r->excludes[i]);
    free(r->excludes);
    for (long i = 0; i < r->L.cap_items; i++) {
        kbuf_free(&r->L.items[i].id);
        kbuf_free(&r->L.items[i].text);
    }
    free(r->L.items);
    kbuf_free(&r->L.tmp);
    kbuf_free(&r->raw);
    kbuf_free(&r->text);
    kbuf_free(&r->title);
    free(r->text_field);
    free(r->split);
    free(r->name);
    free(r);
}
