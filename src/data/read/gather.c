// gather.c: `kiln data gather debian` — reads the text that Debian packages
// install into one JSONL file of documents per source (gather.h).
#include "kiln/gather.h"

#include "kiln/data.h"
#include "data/read/sources.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// One source: a sources.h format ("bible" is the `bible` program), its paths
// and options ("key=value").
typedef struct {
    const char *name, *package, *format;
    const char *paths[9];
    const char *opts[8];
} GatherDef;

static const GatherDef SOURCES[] = {
    {"kjv", "bible-kjv", "bible", {NULL}, {NULL}},
    {"gcide", "dict-gcide", "dictd", {"/usr/share/dictd/gcide.index"}, {NULL}},
    {"foldoc", "dict-foldoc", "dictd", {"/usr/share/dictd/foldoc.index"}, {NULL}},
    {"jargon", "dict-jargon", "dictd", {"/usr/share/dictd/jargon.index"}, {NULL}},
    {"wordnet", "wordnet-base", "wordnet", {"/usr/share/wordnet"}, {NULL}},
    {"fortunes", "fortunes", "fortune", {"/usr/share/games/fortunes"}, {NULL}},
    // English pages only (/usr/share/man/<lang>/ are translations); hashed order
    // so that a cap takes a sample of all sections rather than the first letters.
    // The Google Cloud CLI (not a Debian package) installs ~17,000 generated
    // gcloud_* pages that would otherwise be most of this source.
    {"man",
     "manpages",
     "man",
     {"/usr/share/man/man1", "/usr/share/man/man2", "/usr/share/man/man3", "/usr/share/man/man4",
      "/usr/share/man/man5", "/usr/share/man/man6", "/usr/share/man/man7", "/usr/share/man/man8"},
     {"order=hash", "exclude=*/gcloud_*"}},
    // the standard library proper: third-party packages and the test suite
    // (a separate package, libpython3.x-testsuite) left out
    {"python",
     "libpython3-stdlib",
     "code",
     {"/usr/lib/python3.[0-9]*"},
     {"ext=.py", "exclude=*/dist-packages", "exclude=*/site-packages", "exclude=*/test", "exclude=*/tests",
      "exclude=*/idle_test", "order=hash"}},
    {"c-headers", "libc6-dev", "code", {"/usr/include"}, {"ext=.h", "order=hash"}},
    {"copyright", "(every package)", "text", {"/usr/share/doc/*/copyright"}, {"order=hash"}},
};
#define NSOURCES ((int)(sizeof SOURCES / sizeof SOURCES[0]))

int gather_debian_sources(const char **names, const char **packages, int cap) {
    for (int i = 0; i < NSOURCES && i < cap; i++) {
        if (names) names[i] = SOURCES[i].name;
        if (packages) packages[i] = SOURCES[i].package;
    }
    return NSOURCES;
}

// ---------------------------------------------------------------- the Bible
// `bible -f` prints every verse as "Ge1:1 In the beginning ..."; one document
// per book: its name, then the verses "1:1 ..." with a blank line between chapters.
static const char *const BOOKS[][2] = {
    {"Ge", "Genesis"},          {"Exo", "Exodus"},          {"Lev", "Leviticus"},       {"Num", "Numbers"},
    {"Deu", "Deuteronomy"},     {"Josh", "Joshua"},         {"Jdgs", "Judges"},         {"Ruth", "Ruth"},
    {"1Sm", "1 Samuel"},        {"2Sm", "2 Samuel"},        {"1Ki", "1 Kings"},         {"2Ki", "2 Kings"},
    {"1Chr", "1 Chronicles"},   {"2Chr", "2 Chronicles"},   {"Ezra", "Ezra"},           {"Neh", "Nehemiah"},
    {"Est", "Esther"},          {"Job", "Job"},             {"Psa", "Psalms"},          {"Prv", "Proverbs"},
    {"Eccl", "Ecclesiastes"},   {"SSol", "Song of Solomon"}, {"Isa", "Isaiah"},         {"Jer", "Jeremiah"},
    {"Lam", "Lamentations"},    {"Eze", "Ezekiel"},         {"Dan", "Daniel"},          {"Hos", "Hosea"},
    {"Joel", "Joel"},           {"Amos", "Amos"},           {"Obad", "Obadiah"},        {"Jonah", "Jonah"},
    {"Mic", "Micah"},           {"Nahum", "Nahum"},         {"Hab", "Habakkuk"},        {"Zep", "Zephaniah"},
    {"Hag", "Haggai"},          {"Zec", "Zechariah"},       {"Mal", "Malachi"},         {"Mat", "Matthew"},
    {"Mark", "Mark"},           {"Luke", "Luke"},           {"John", "John"},           {"Acts", "Acts"},
    {"Rom", "Romans"},          {"1Cor", "1 Corinthians"},  {"2Cor", "2 Corinthians"},  {"Gal", "Galatians"},
    {"Eph", "Ephesians"},       {"Phi", "Philippians"},     {"Col", "Colossians"},      {"1Th", "1 Thessalonians"},
    {"2Th", "2 Thessalonians"}, {"1Tim", "1 Timothy"},      {"2Tim", "2 Timothy"},      {"Titus", "Titus"},
    {"Phmn", "Philemon"},       {"Heb", "Hebrews"},         {"Jas", "James"},           {"1Pet", "1 Peter"},
    {"2Pet", "2 Peter"},        {"1Jn", "1 John"},          {"2Jn", "2 John"},          {"3Jn", "3 John"},
    {"Jude", "Jude"},           {"Rev", "Revelation"},
};

typedef struct {
    const char *name;  // the documents' source
    char *out;         // all of bible's output
    size_t len, pos;
    long skipped;  // lines that are not verses
    char first_bad[160];
} Kjv;

// "Ge1:1 text": the book (abbreviation) length and where chapter and text start.
static int verse_ref(const char *s, size_t n, size_t *book_len, long *chapter, size_t *text_at) {
    size_t i = 0;
    if (i < n && s[i] >= '1' && s[i] <= '3') i++;
    while (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) i++;
    if (i == 0 || i == n || s[i] < '0' || s[i] > '9') return 0;
    *book_len = i;
    char *end;
    *chapter = strtol(s + i, &end, 10);
    if (*end != ':') return 0;
    size_t k = (size_t)(end - s) + 1;
    while (k < n && s[k] >= '0' && s[k] <= '9') k++;
    if (k >= n || s[k] != ' ') return 0;
    *text_at = i;
    return 1;
}

static const char *book_name(const char *abbr, size_t n) {
    for (size_t i = 0; i < sizeof BOOKS / sizeof BOOKS[0]; i++)
        if (strlen(BOOKS[i][0]) == n && !memcmp(BOOKS[i][0], abbr, n)) return BOOKS[i][1];
    return NULL;
}

static int kjv_next(void *ctx, KilnDoc *doc, KilnErr *err) {
    Kjv *k = ctx;
    kbuf_clear(&doc->text);
    kbuf_clear(&doc->id);
    const char *book = NULL;
    size_t book_len = 0;
    long last_chapter = 0;
    while (k->pos < k->len) {
        const char *s = k->out + k->pos;
        const char *nl = memchr(s, '\n', k->len - k->pos);
        size_t n = nl ? (size_t)(nl - s) : k->len - k->pos;
        size_t bl, at;
        long ch;
        if (!verse_ref(s, n, &bl, &ch, &at)) {
            if (n && !k->skipped++) snprintf(k->first_bad, sizeof k->first_bad, "bible output: not a verse: %.80s", s);
            k->pos += n + 1;
            continue;
        }
        if (book && (bl != book_len || memcmp(s, book, bl))) break;  // the next book starts here
        if (!book) {
            book = s;
            book_len = bl;
            const char *full = book_name(s, bl);
            if (full ? kbuf_puts(&doc->id, full) : kbuf_append(&doc->id, s, bl)) return kiln_fail(err, "out of memory");
            if (kbuf_append(&doc->text, doc->id.data, doc->id.len) || kbuf_puts(&doc->text, "\n"))
                return kiln_fail(err, "out of memory");
        }
        if (ch != last_chapter && kbuf_putc(&doc->text, '\n')) return kiln_fail(err, "out of memory");
        last_chapter = ch;
        if (kbuf_append(&doc->text, s + at, n - at) || kbuf_putc(&doc->text, '\n'))
            return kiln_fail(err, "out of memory");
        k->pos += n + 1;
    }
    if (!book) return 0;
    return kbuf_set(&doc->source, k->name, strlen(k->name)) ? kiln_fail(err, "out of memory") : 1;
}

// Runs `bible`; 1 when it is not installed (or prints nothing).
static int kjv_open(Kjv *k, const char *name, KilnErr *err) {
    memset(k, 0, sizeof *k);
    k->name = name;
    FILE *p = popen("bible -f gen1:1-rev22:21 2>/dev/null", "r");
    if (!p) return kiln_fail(err, "kjv: cannot run bible: %s", strerror(errno));
    KilnBuf b = {0};
    char chunk[1 << 16];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0)
        if (kbuf_append(&b, chunk, got)) {
            pclose(p);
            kbuf_free(&b);
            return kiln_fail(err, "out of memory");
        }
    int st = pclose(p);
    if (b.len == 0 || st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 127) {
        kbuf_free(&b);
        return 1;
    }
    k->out = b.data;
    k->len = b.len;
    return 0;
}

// ---------------------------------------------------------------- one source
static int opts_from_def(const GatherDef *d, KilnParams *ps, KilnErr *err) {
    for (int i = 0; i < 8 && d->opts[i]; i++) {
        char key[64];
        const char *eq = strchr(d->opts[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - d->opts[i]), d->opts[i]);
        if (params_add(ps, key, eq + 1, "gather debian", err)) return -1;
    }
    return 0;
}

// Copies docs from src to w until the cap; fills the counts in s.
static int pump(KilnDocSource src, KilnDocWriter *w, double max_mb, KilnGatherStat *s, KilnErr *err) {
    KilnDoc d = {0};
    int rc;
    while ((rc = src.next(src.ctx, &d, err)) == 1) {
        if (docwriter_put(w, &d, NULL, err)) {
            rc = -1;
            break;
        }
        s->docs++;
        s->text_bytes += (long)d.text.len;
        if (max_mb > 0 && s->text_bytes >= max_mb * 1e6) {
            s->capped = 1;
            rc = 0;
            break;
        }
    }
    doc_free(&d);
    return rc;
}

static void note_skips(KilnGatherStat *s, const KilnSkips *k) {
    s->skips += k->count;
    if (k->count && !s->first_skip[0]) snprintf(s->first_skip, sizeof s->first_skip, "%s", k->examples[0]);
}

static int gather_one(const GatherDef *d, const char *out_dir, double max_mb, KilnGatherStat *s, KilnErr *err) {
    double t0 = kiln_now();
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.jsonl", out_dir, d->name);
    KilnSourceReader *r = NULL;
    Kjv kjv = {0};
    KilnDocSource src;
    int rc;
    if (!strcmp(d->format, "bible")) {
        if ((rc = kjv_open(&kjv, d->name, err)) < 0) return -1;
        src = (KilnDocSource){.next = kjv_next, .ctx = &kjv};
        s->files = rc == 0;
    } else {
        KilnParams ps = {0};
        KilnSourceSpec spec = {d->name, d->format, d->paths, 0, &ps};
        while (spec.nglobs < 9 && d->paths[spec.nglobs]) spec.nglobs++;
        KilnErr e;
        if (opts_from_def(d, &ps, err)) {
            params_free(&ps);
            return -1;
        }
        rc = source_open(&r, &spec, &e) ? 1 : 0;  // no files: the package is not installed
        if (rc) snprintf(s->first_skip, sizeof s->first_skip, "%s", e.msg);
        params_free(&ps);
        if (rc == 0) src = source_docs(r);
    }
    if (rc == 1) {
        s->missing = 1;
        if (unlink(path) && errno != ENOENT) return kiln_fail(err, "%s: cannot remove: %s", path, strerror(errno));
        s->seconds = kiln_now() - t0;
        return 0;
    }
    KilnDocWriter *w = NULL;
    rc = docwriter_open(&w, path, err);
    if (!rc) rc = pump(src, w, max_mb, s, err);
    if (!rc) rc = docwriter_commit(w, err);
    else if (w) docwriter_abort(w);
    if (r) {
        note_skips(s, source_skips(r));
        s->files = source_files(r);
        s->raw_bytes = source_bytes(r);
        source_close(r);
    } else {
        s->raw_bytes = (long)kjv.len;
        s->skips += kjv.skipped;
        if (kjv.skipped) snprintf(s->first_skip, sizeof s->first_skip, "%s", kjv.first_bad);
        free(kjv.out);
    }
    s->seconds = kiln_now() - t0;
    return rc ? kiln_wrap(err, "gather %s", d->name) : 0;
}

int gather_debian(const char *out_dir, double max_mb, const char *const *only, int nonly, KilnGatherStat *stats,
                  int *nstats, void (*progress)(const KilnGatherStat *s, void *ctx), void *ctx, KilnErr *err) {
    *nstats = 0;
    for (int k = 0; k < nonly; k++) {
        int found = 0;
        for (int i = 0; i < NSOURCES; i++) found |= !strcmp(only[k], SOURCES[i].name);
        if (!found) {
            char list[256] = "";
            for (int i = 0; i < NSOURCES; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), " %s", SOURCES[i].name);
            return kiln_fail(err, "gather debian: no source '%s' (sources:%s)", only[k], list);
        }
    }
    if (kiln_mkdirs(out_dir, err)) return -1;
    for (int i = 0; i < NSOURCES; i++) {
        int take = nonly == 0;
        for (int k = 0; k < nonly; k++) take |= !strcmp(only[k], SOURCES[i].name);
        if (!take) continue;
        KilnGatherStat *s = &stats[(*nstats)++];
        memset(s, 0, sizeof *s);
        s->name = SOURCES[i].name;
        s->package = SOURCES[i].package;
        if (gather_one(&SOURCES[i], out_dir, max_mb, s, err)) return -1;
        if (progress) progress(s, ctx);
    }
    return 0;
}
