// source_dict.c: the grouped source formats — dictd databases, WordNet data
// files and fortune files — whose many short entries are packed into
// documents of about group_chars characters.
#include "data/read/sources_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *base_of(const char *path) {
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

// s[0..n) without trailing whitespace, and without leading blank lines.
static void trim(const char **s, size_t *n) {
    while (*n && (**s == '\n' || **s == '\r')) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

// ---------------------------------------------------------------- dictd
long dictd_b64(const char *s, size_t n) {
    if (n == 0 || n > 10) return -1;  // 10 digits = 60 bits: anything longer is not an offset
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= 'A' && c <= 'Z') d = c - 'A';
        else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
        else if (c >= '0' && c <= '9') d = c - '0' + 52;
        else if (c == '+') d = 62;
        else if (c == '/') d = 63;
        else return -1;
        v = v * 64 + d;
    }
    return v;
}

typedef struct {
    long off, len, line, seq;
    const char *word;  // into the index text, NUL-terminated in place
} DictEntry;

static int cmp_entry(const void *a, const void *b) {
    const DictEntry *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

// The database's own description entries ("00-database-info", "00databaseurl", "00-gcide-short").
static int dictd_meta(const char *w) { return !strncmp(w, "00-", 3) || !strncmp(w, "00database", 10); }

// Index lines "headword\toffset\tlength" (base64 numbers) into entries; bad
// lines are skips. The index text is modified in place (tabs, newlines -> NUL).
static int parse_index(SrcLoad *L, const char *path, char *s, size_t n, DictEntry **out, long *nout, KilnErr *err) {
    long cap = 1024, k = 0, line = 0;
    DictEntry *e = malloc((size_t)cap * sizeof *e);
    if (!e) return kiln_fail(err, "out of memory");
    for (size_t i = 0; i < n;) {
        char *ln = s + i;
        char *nl = memchr(ln, '\n', n - i);
        size_t len = nl ? (size_t)(nl - ln) : n - i;
        i += len + 1;
        line++;
        if (nl) *nl = 0;
        if (len && ln[len - 1] == '\r') ln[--len] = 0;
        if (len == 0) continue;
        char *t1 = memchr(ln, '\t', len);
        char *t2 = t1 ? memchr(t1 + 1, '\t', len - (size_t)(t1 + 1 - ln)) : NULL;
        long off = -1, sz = -1;
        if (t1 && t2 && t1 > ln) {
            char *t3 = memchr(t2 + 1, '\t', len - (size_t)(t2 + 1 - ln));  // later fields (original headword) ignored
            off = dictd_b64(t1 + 1, (size_t)(t2 - t1 - 1));
            sz = dictd_b64(t2 + 1, (size_t)((t3 ? t3 : ln + len) - t2 - 1));
        }
        if (off < 0 || sz < 0) {
            skips_add(L->skips, "%s:%ld: bad index line (want headword, offset, length)", path, line);
            continue;
        }
        *t1 = 0;
        if (dictd_meta(ln)) continue;
        if (k == cap) {
            DictEntry *ne = realloc(e, (size_t)(cap *= 2) * sizeof *e);
            if (!ne) {
                free(e);
                return kiln_fail(err, "out of memory");
            }
            e = ne;
        }
        e[k] = (DictEntry){off, sz, line, k, ln};
        k++;
    }
    *out = e;
    *nout = k;
    return 0;
}

// "<dir>/<name>.index" with its data "<name>.dict.dz" (or ".dict") beside it.
// Entries go out in the order of the data file (the dictionary's own order);
// several headwords pointing at one entry give it once, under the first.
int load_dictd(SrcLoad *L, const char *path, KilnErr *err) {
    size_t plen = strlen(path);
    if (plen < 6 || strcmp(path + plen - 6, ".index")) {
        skips_add(L->skips, "%s: not a dictd .index file", path);
        return 0;
    }
    KilnBuf name = {0}, dict_path = {0}, index = {0}, dict = {0};
    SrcGroup g = {.sep = "\n\n"};
    DictEntry *e = NULL;
    long n = 0;
    int rc = 0;
    if (kbuf_set(&dict_path, path, plen - 6) || kbuf_puts(&name, base_of(dict_path.data)) ||
        kbuf_puts(&dict_path, ".dict.dz")) {
        rc = kiln_fail(err, "out of memory");
        goto done;
    }
    struct stat st;
    if (stat(dict_path.data, &st)) dict_path.data[dict_path.len -= 3] = 0;  // plain .dict
    if (!stat(dict_path.data, &st)) L->extra_bytes += (long)st.st_size;
    // a damaged index (its last line may be cut) leaves the dictionary out; damaged
    // data keeps the entries it still holds
    if (src_read_noting(L->skips, path, &index) != 0 || src_read_noting(L->skips, dict_path.data, &dict) < 0)
        goto done;
    if ((rc = parse_index(L, path, index.data, index.len, &e, &n, err))) goto done;
    qsort(e, (size_t)n, sizeof *e, cmp_entry);
    for (long i = 0; i < n && !rc; i++) {
        if (i && e[i].off == e[i - 1].off && e[i].len == e[i - 1].len) continue;
        if (e[i].off > (long)dict.len || e[i].len > (long)dict.len - e[i].off) {
            skips_add(L->skips, "%s:%ld: entry '%.60s' lies past the end of %s", path, e[i].line, e[i].word,
                      base_of(dict_path.data));
            continue;
        }
        const char *t = dict.data + e[i].off;
        size_t tn = (size_t)e[i].len;
        trim(&t, &tn);
        if (tn) rc = src_group_add(L, &g, name.data, e[i].word, t, tn, err);
    }
    if (!rc) rc = src_group_flush(L, &g, name.data, err);
done:
    free(e);
    src_group_free(&g);
    kbuf_free(&name);
    kbuf_free(&dict_path);
    kbuf_free(&index);
    kbuf_free(&dict);
    return rc;
}

// ---------------------------------------------------------------- wordnet
static const char *wn_pos(char t) {
    switch (t) {
    case 'n': return "noun";
    case 'v': return "verb";
    case 'a':
    case 's': return "adj";
    case 'r': return "adv";
    default: return NULL;
    }
}

// One synset line "offset lexfile type wcnt word lexid ... | gloss" as
// "word1, word2 (pos): gloss" into out; -1 when the line does not parse.
static int wn_synset(const char *s, size_t n, KilnBuf *out, KilnBuf *first) {
    kbuf_clear(out);
    kbuf_clear(first);
    const char *end = s + n, *p = s;
    const char *bar = NULL;
    for (const char *q = s; q + 1 < end; q++)
        if (q[0] == '|' && q[1] == ' ') {
            bar = q;
            break;
        }
    if (!bar) return -1;
    // offset, lex_filenum, ss_type
    char *stop;
    strtol(p, &stop, 10);
    if (stop == p || *stop != ' ') return -1;
    strtol(stop + 1, &stop, 10);
    if (*stop != ' ' || stop + 3 >= bar || stop[2] != ' ') return -1;
    const char *pos = wn_pos(stop[1]);
    if (!pos) return -1;
    p = stop + 3;
    long wcnt = strtol(p, &stop, 16);
    if (stop == p || *stop != ' ' || wcnt < 1 || wcnt > 255) return -1;
    p = stop + 1;
    for (long w = 0; w < wcnt; w++) {
        const char *sp = memchr(p, ' ', (size_t)(bar - p));
        if (!sp || sp == p) return -1;
        size_t wl = (size_t)(sp - p);
        // adjective position markers: "outback(a)", "(p)", "(ip)"
        if (wl > 3 && p[wl - 1] == ')') {
            const char *o = memchr(p, '(', wl);
            if (o && o > p) wl = (size_t)(o - p);
        }
        if (w && kbuf_puts(out, ", ")) return -2;
        for (size_t i = 0; i < wl; i++)
            if (kbuf_putc(out, p[i] == '_' ? ' ' : p[i])) return -2;
        if (!w && kbuf_append(first, out->data, out->len)) return -2;
        p = sp + 1;
        const char *sp2 = memchr(p, ' ', (size_t)(bar - p));  // lex_id
        if (!sp2) return -1;
        p = sp2 + 1;
    }
    const char *gl = bar + 2, *ge = end;
    while (ge > gl && isspace((unsigned char)ge[-1])) ge--;
    if (kbuf_puts(out, " (") || kbuf_puts(out, pos) || kbuf_puts(out, "): ") ||
        kbuf_append(out, gl, (size_t)(ge - gl)))
        return -2;
    return 0;
}

// data.noun, data.verb, data.adj, data.adv: the licence header (lines that
// start with two spaces) skipped, one line per synset, grouped as "noun:first..last".
int load_wordnet(SrcLoad *L, const char *path, KilnErr *err) {
    KilnBuf src = {0}, line = {0}, first = {0};
    SrcGroup g = {.sep = "\n"};
    const char *b = base_of(path);
    const char *prefix = !strncmp(b, "data.", 5) ? b + 5 : b;
    int rc = 0, rr = src_read_noting(L->skips, path, &src);
    if (rr < 0) goto done;
    long lineno = 0;
    for (size_t i = 0; i < src.len && !rc;) {
        const char *s = src.data + i;
        const char *nl = memchr(s, '\n', src.len - i);
        size_t n = nl ? (size_t)(nl - s) : src.len - i;
        i += n + 1;
        lineno++;
        if (!nl && rr == 1) break;  // cut short by the damage
        if ((n >= 2 && s[0] == ' ' && s[1] == ' ') || n == 0) continue;
        int w = wn_synset(s, n, &line, &first);
        if (w == -2) rc = kiln_fail(err, "out of memory");
        else if (w < 0) skips_add(L->skips, "%s:%ld: not a synset line", path, lineno);
        else rc = src_group_add(L, &g, prefix, first.data, line.data, line.len, err);
    }
    if (!rc) rc = src_group_flush(L, &g, prefix, err);
done:
    src_group_free(&g);
    kbuf_free(&src);
    kbuf_free(&line);
    kbuf_free(&first);
    return rc;
}

// ---------------------------------------------------------------- fortune
// Entries separated by lines holding only "%"; empty entries are not entries
// (strfile counts the same way). Grouped as "file:first..last" (entry numbers).
int load_fortune(SrcLoad *L, const char *path, KilnErr *err) {
    KilnBuf src = {0};
    SrcGroup g = {.sep = "\n\n"};
    const char *prefix = base_of(path);
    int rc = 0, rr = src_read_noting(L->skips, path, &src);
    if (rr < 0) goto done;
    if (memchr(src.data, 0, src.len)) {
        skips_add(L->skips, "%s: binary (NUL bytes), not a fortune file", path);
        goto done;
    }
    long count = 0;
    size_t start = 0;
    for (size_t i = 0; i <= src.len && !rc;) {
        const char *s = src.data + i;
        const char *nl = i < src.len ? memchr(s, '\n', src.len - i) : NULL;
        size_t n = i < src.len ? (nl ? (size_t)(nl - s) : src.len - i) : 0;
        int at_end = i >= src.len;
        int sep = !at_end && ((n == 1 && s[0] == '%') || (n == 2 && s[0] == '%' && s[1] == '\r'));
        if (sep || at_end) {
            const char *t = src.data + start;
            size_t tn = i - start;
            trim(&t, &tn);
            if (at_end && rr == 1) tn = 0;  // the last entry may be cut short
            if (tn) {
                char label[24];
                snprintf(label, sizeof label, "%ld", ++count);
                rc = src_group_add(L, &g, prefix, label, t, tn, err);
            }
            start = nl ? (size_t)(nl - src.data) + 1 : src.len;
        }
        if (at_end) break;
        i += n + (nl ? 1 : 0);
    }
    if (!rc) rc = src_group_flush(L, &g, prefix, err);
done:
    src_group_free(&g);
    kbuf_free(&src);
    return rc;
}
