// clean.c: the `clean` stage: NFKC, control and invisible characters, line breaks
// and spaces repaired, and symbols/emoji kept, named (:grinning face:) or removed.
//
// Order of the passes, chosen so that clean(clean(x)) == clean(x):
//   1. chars:   controls and invisibles removed, line breaks -> \n, spaces -> ' '
//               (before NFKC, so that "e<ZWSP><U+0301>" composes in this run)
//   2. NFKC     (only the non-ASCII stretches go through utf8proc)
//   3. symbols  (names/remove only)
//   4. when 2 or 3 changed something: chars again, and back to 2 (NFKC can turn
//      a joiner's neighbour into a space; a removed character can leave a
//      letter next to a mark, or a digit next to a keycap sign)
//   5. layout:  trailing spaces, runs of spaces, blank lines, leading/trailing
//               blank lines
#include "kiln/data.h"

#include "core/utf8.h"
#include "data/stage/unicode_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum { SYM_KEEP, SYM_NAMES, SYM_REMOVE };
static const char *const SYMBOL_CHOICES[] = {"keep", "names", "remove", NULL};

typedef struct {
    int nfkc, keep_tabs, collapse, symbols;
    long max_blank;
} Clean;

// ---------------------------------------------------------------- code points
// The code point at s[i..n) and its byte length; invalid bytes read as U+FFFD,
// one byte at a time; -1 at the end.
static int32_t cp_at(const char *s, size_t n, size_t i, size_t *len) {
    if (i >= n) {
        *len = 0;
        return -1;
    }
    uint32_t cp;
    size_t k = utf8_decode(s + i, n - i, &cp);
    *len = k ? k : 1;
    return k ? (int32_t)cp : 0xFFFD;
}

static int is_tone(int32_t c) { return c >= 0x1F3FB && c <= 0x1F3FF; }
static int is_ri(int32_t c) { return c >= 0x1F1E6 && c <= 0x1F1FF; }
static int is_tag(int32_t c) { return c >= 0xE0020 && c <= 0xE007F; }
static int is_vs(int32_t c) { return c == 0xFE0E || c == 0xFE0F; }
static int is_mark(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

// Invisible format characters that only disturb text: BOM, soft hyphen, zero
// width space, direction marks, bidi embeddings/isolates, word joiner and
// invisible operators, deprecated format controls, interlinear annotation.
static int is_invisible(int32_t c) {
    return c == 0xFEFF || c == 0x00AD || c == 0x200B || c == 0x200E || c == 0x200F || c == 0x061C ||
           c == 0x180E || (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x2064) ||
           (c >= 0x2066 && c <= 0x206F) || (c >= 0xFFF9 && c <= 0xFFFB);
}

// ZWNJ/ZWJ carry meaning between letters (Persian, Indic scripts) and inside
// emoji sequences; elsewhere they are noise.
static int joins(int32_t c) {
    if (c < 0) return 0;
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO) || k == UTF8PROC_CATEGORY_SO ||
           k == UTF8PROC_CATEGORY_SK;
}

// ---------------------------------------------------------------- pass 1/4: characters
// Copies in to out with controls and invisibles removed, every line break as
// \n and every space separator as ' '. Sets *nonascii when out has a byte >= 0x80.
static int fix_chars(const char *in, size_t n, KilnBuf *out, int keep_tabs, int *nonascii) {
    kbuf_clear(out);
    if (kbuf_reserve(out, n)) return -1;
    int32_t prev = '\n';  // the last code point written
    int high = 0;
    size_t i = 0, last = 0;  // in[last..i) is unchanged and not yet copied
    while (i < n) {
        unsigned char b = (unsigned char)in[i];
        if (b >= 0x20 && b < 0x7F) {  // printable ASCII: the common case
            while (i < n && (unsigned char)in[i] >= 0x20 && (unsigned char)in[i] < 0x7F) i++;
            prev = (unsigned char)in[i - 1];
            continue;
        }
        size_t at = i, len;
        int32_t c = cp_at(in, n, i, &len), w = c;
        i += len;
        if (c == '\r') {
            w = '\n';
            if (i < n && in[i] == '\n') i++;
        } else if (c == '\t') {
            w = keep_tabs ? '\t' : ' ';
        } else if (c == '\n' || c == '\v' || c == '\f' || c == 0x85 || c == 0x2028 || c == 0x2029) {
            w = '\n';
        } else if (c < 0x20 || (c >= 0x7F && c < 0xA0) || is_invisible(c)) {
            w = -1;
        } else if (c == 0x200C || c == 0x200D) {
            size_t l2;
            if (!joins(prev) || !joins(cp_at(in, n, i, &l2))) w = -1;
        } else if (is_tag(c)) {  // only inside a tag sequence (subdivision flags)
            if (prev != 0x1F3F4 && !(is_tag(prev) && prev != 0xE007F)) w = -1;
        } else if (utf8proc_category(c) == UTF8PROC_CATEGORY_ZS) {
            w = ' ';
        }
        if (w >= 0x80) high = 1;
        if (w == c && i - at == len && !(c == 0xFFFD && len != 3)) {  // unchanged (and valid)
            prev = w;
            continue;
        }
        if (kbuf_append(out, in + last, at - last) || (w >= 0 && utf8_put(out, (uint32_t)w))) return -1;
        last = i;
        if (w >= 0) prev = w;
    }
    if (kbuf_append(out, in + last, n - last)) return -1;
    *nonascii = high;
    return 0;
}

// ---------------------------------------------------------------- pass 2: NFKC
#define NFKC_OPTS (UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE)

static int nfkc_region(const char *s, size_t n, KilnBuf *out) {
    utf8proc_int32_t buf[1024];  // short stretches (the common case) need no malloc
    utf8proc_ssize_t k = n <= 256 ? utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, buf, 1023, NFKC_OPTS) : -1;
    if (k >= 0 && k < 1023) {
        k = utf8proc_reencode(buf, k, NFKC_OPTS);
        if (k >= 0) return kbuf_append(out, buf, (size_t)k);
    }
    utf8proc_uint8_t *m = NULL;  // a long stretch: the allocating path
    k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &m, NFKC_OPTS);
    int rc = k >= 0 ? kbuf_append(out, m, (size_t)k) : kbuf_append(out, s, n);  // k < 0: cannot happen on valid UTF-8
    free(m);
    return rc;
}

// A code point NFKC leaves alone wherever it stands: no decomposition (Hangul
// syllables are recomposed), not a mark and not a Hangul vowel/final jamo
// (every second element of a canonical composition is one of those), so it
// neither changes nor composes with what precedes it.
static int nfkc_inert(int32_t c) {
    const utf8proc_property_t *p = utf8proc_get_property(c);
    if (p->decomp_seqindex != UINT16_MAX && !(c >= 0xAC00 && c <= 0xD7A3)) return 0;
    if (p->category == UTF8PROC_CATEGORY_MN || p->category == UTF8PROC_CATEGORY_MC ||
        p->category == UTF8PROC_CATEGORY_ME)
        return 0;
    return p->combining_class == 0 && !(c >= 0x1161 && c <= 0x1175) && !(c >= 0x11A8 && c <= 0x11C2);
}

static int all_inert(const char *s, size_t n) {
    size_t l;
    for (size_t i = 0; i < n; i += l) {
        int32_t c = cp_at(s, n, i, &l);
        if (c >= 0x80 && !nfkc_inert(c)) return 0;
    }
    return 1;
}

// NFKC of valid UTF-8. ASCII is its own NFKC, and no composition ends in an
// ASCII character, so only stretches holding non-ASCII bytes (plus the ASCII
// character before them, which a combining mark may compose with) are mapped;
// a stretch ends before an ASCII character followed by another one. Stretches
// of inert characters (curly quotes, dashes, CJK, precomposed letters: most
// real text) are copied as they are.
static int nfkc(const char *in, size_t n, KilnBuf *out) {
    kbuf_clear(out);
    if (kbuf_reserve(out, n + n / 8)) return -1;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && (unsigned char)in[j] < 0x80) j++;
        if (j == n) return kbuf_append(out, in + i, n - i);
        size_t start = j > i ? j - 1 : j;
        size_t end = j;
        while (end < n && ((unsigned char)in[end] >= 0x80 || (end + 1 < n && (unsigned char)in[end + 1] >= 0x80))) end++;
        if (all_inert(in + j, end - j)) {
            if (kbuf_append(out, in + i, end - i)) return -1;
        } else if (kbuf_append(out, in + i, start - i) || nfkc_region(in + start, end - start, out)) {
            return -1;
        }
        i = end;
    }
    return 0;
}

// ---------------------------------------------------------------- names
static const char *single_name(int32_t c) {
    size_t lo = 0, hi = UNAME_COUNT;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (UNAME_CP[mid] < (uint32_t)c) lo = mid + 1;
        else hi = mid;
    }
    return lo < UNAME_COUNT && UNAME_CP[lo] == (uint32_t)c ? UNAME_BLOB + UNAME_OFF[lo] : NULL;
}

static int seq_cmp(size_t i, const int32_t *key, int n) {
    const uint32_t *k = USEQ_CPS + USEQ_START[i];
    int m = USEQ_START[i + 1] - USEQ_START[i];
    for (int j = 0; j < m && j < n; j++)
        if (k[j] != (uint32_t)key[j]) return k[j] < (uint32_t)key[j] ? -1 : 1;
    return m < n ? -1 : m > n;
}

static const char *seq_name(const int32_t *key, int n) {
    size_t lo = 0, hi = USEQ_COUNT;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (seq_cmp(mid, key, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < USEQ_COUNT && !seq_cmp(lo, key, n) ? UNAME_BLOB + USEQ_OFF[lo] : NULL;
}

static const char *const TONE_NAMES[5] = {"light skin tone", "medium-light skin tone", "medium skin tone",
                                          "medium-dark skin tone", "dark skin tone"};

// ":name:" or, with skin tones, ":name: tone, tone:" (CLDR's pattern: each
// distinct tone once, after ": ", or after ", " when the name has a colon).
// A code point missing from the table (newer Unicode) is named "u+XXXX".
static int put_name(KilnBuf *out, const char *name, int32_t cp, const int32_t *tones, int ntones) {
    char fallback[16];
    if (!name) {
        snprintf(fallback, sizeof fallback, "u+%04x", (unsigned)cp);
        name = fallback;
    }
    if (kbuf_putc(out, ':') || kbuf_puts(out, name)) return -1;
    int seen = 0;
    for (int t = 0; t < ntones; t++) {
        int bit = 1 << (tones[t] - 0x1F3FB);
        if (seen & bit) continue;
        const char *sep = seen || strchr(name, ':') ? ", " : ": ";
        seen |= bit;
        if (kbuf_puts(out, sep) || kbuf_puts(out, TONE_NAMES[tones[t] - 0x1F3FB])) return -1;
    }
    return kbuf_putc(out, ':');
}

// ---------------------------------------------------------------- pass 3: symbols
// A symbol cluster: base [extenders] (ZWJ base [extenders])*, where a base is a
// code point of category So (regional indicators pair into a flag), a skin tone
// alone, a pictographic character with an emoji presentation selector, or a
// keycap's # * 0-9; extenders are variation selectors, skin tones, tag
// characters, U+20E3 and combining marks (which go with the symbol).
#define CL_MAX 32
typedef struct {
    int32_t cp[CL_MAX];
    uint8_t elem[CL_MAX];  // which ZWJ-joined element each code point belongs to
    int n, nelem;
} Cluster;

static int is_base(const char *s, size_t n, size_t i, int32_t c) {
    size_t l1;
    int32_t next = cp_at(s, n, i, &l1);
    if (c < 0x80) {  // a keycap: any selectors (all removed when stray) then U+20E3
        if (!(c == '#' || c == '*' || (c >= '0' && c <= '9'))) return 0;
        while (is_vs(next)) {
            i += l1;
            next = cp_at(s, n, i, &l1);
        }
        return next == 0x20E3;
    }
    if (c == 0xFFFD) return 0;  // a repair marker, category So but no symbol
    if (is_ri(c) || is_tone(c) || utf8proc_category(c) == UTF8PROC_CATEGORY_SO) return 1;
    return next == 0xFE0F && single_name(c) != NULL;
}

static int cl_add(Cluster *cl, int32_t c) {
    if (cl->n == CL_MAX) return -1;
    cl->elem[cl->n] = (uint8_t)cl->nelem;
    cl->cp[cl->n++] = c;
    return 0;
}

// Reads the cluster whose base c (len bytes) is at s[i]; returns its byte end.
static size_t read_cluster(const char *s, size_t n, size_t i, int32_t c, size_t len, Cluster *cl) {
    cl->n = cl->nelem = 0;
    size_t pos = i + len, l;
    for (;;) {
        cl_add(cl, c);
        int32_t d = cp_at(s, n, pos, &l);
        if (is_ri(c) && is_ri(d)) {
            cl_add(cl, d);
            pos += l;
        }
        // extenders past CL_MAX (zalgo marks) are consumed but not kept: they go
        // with the symbol either way, and must not be left to compose with text
        for (d = cp_at(s, n, pos, &l); d >= 0; d = cp_at(s, n, pos, &l)) {
            if (!(is_vs(d) || is_tone(d) || is_tag(d) || is_mark(d))) break;
            cl_add(cl, d);
            pos += l;
        }
        if (d != 0x200D || cl->n + 3 > CL_MAX) break;
        size_t l2;
        int32_t e = cp_at(s, n, pos + l, &l2);
        if (e < 0 || !is_base(s, n, pos + l + l2, e)) break;
        cl_add(cl, d);
        cl->nelem++;
        c = e;
        pos += l + l2;
    }
    return pos;
}

// The key of element e (-1: the whole cluster): its code points without
// variation selectors and marks (but U+20E3), and without the tones that modify
// a base unless keep_tones; the tones go to tones[].
static int cluster_key(const Cluster *cl, int e, int32_t *key, int32_t *tones, int *ntones, int keep_tones) {
    int k = 0;
    *ntones = 0;
    for (int j = 0; j < cl->n; j++) {
        int32_t c = cl->cp[j];
        int first = j == 0 || cl->cp[j - 1] == 0x200D;  // an element's base
        if (e >= 0 && (cl->elem[j] != e || c == 0x200D)) continue;
        if (!first && is_tone(c)) {
            tones[(*ntones)++] = c;
            if (!keep_tones) continue;
        } else if (!first && c != 0x20E3 && c != 0x200D && !is_tag(c) && is_mark(c)) {
            continue;  // includes the variation selectors (Mn)
        }
        key[k++] = c;
    }
    return k;
}

static const char *key_name(const int32_t *key, int k) { return k == 1 ? single_name(key[0]) : seq_name(key, k); }

// Names a cluster: its sequence name if the table has it, else each ZWJ-joined
// element by its own name, else (unknown flags and keycaps) each part.
static int name_cluster(const Cluster *cl, KilnBuf *out) {
    int32_t key[CL_MAX], tones[CL_MAX];
    int nt, k;
    if (cl->nelem > 0 || cl->n > 1) {
        k = cluster_key(cl, -1, key, tones, &nt, 1);  // CLDR names that place the tones themselves
        const char *name = nt ? seq_name(key, k) : NULL;
        if (name) return put_name(out, name, 0, NULL, 0);
        k = cluster_key(cl, -1, key, tones, &nt, 0);
        if ((name = key_name(key, k))) return put_name(out, name, key[0], tones, nt);
    }
    for (int e = 0; e <= cl->nelem; e++) {
        k = cluster_key(cl, e, key, tones, &nt, 0);
        const char *name = key_name(key, k);
        if (name || k == 1) {
            if (put_name(out, name, key[0], tones, nt)) return -1;
            continue;
        }
        for (int j = 0; j < k; j++) {
            if (key[j] == 0x20E3 || is_tag(key[j])) continue;
            if (put_name(out, single_name(key[j]), key[j], tones, j == 0 ? nt : 0)) return -1;
        }
    }
    return 0;
}

static int keycap_char(char c) { return c == '#' || c == '*' || (c >= '0' && c <= '9'); }

// Symbols named or removed; stray variation selectors removed.
static int symbols(const char *in, size_t n, KilnBuf *out, int mode) {
    kbuf_clear(out);
    if (kbuf_reserve(out, n)) return -1;
    Cluster cl;
    size_t i = 0, last = 0;  // in[last..i) is unchanged and not yet copied
    while (i < n) {
        // ASCII is no symbol, but for a keycap's digit (followed by U+FE0F or U+20E3)
        while (i < n && (unsigned char)in[i] < 0x80 && !(keycap_char(in[i]) && i + 1 < n && (unsigned char)in[i + 1] >= 0x80))
            i++;
        if (i == n) break;
        size_t len;
        int32_t c = cp_at(in, n, i, &len);
        if (!is_base(in, n, i + len, c)) {
            if (is_vs(c)) {
                if (kbuf_append(out, in + last, i - last)) return -1;
                last = i + len;
            }
            i += len;
            continue;
        }
        size_t end = read_cluster(in, n, i, c, len, &cl);
        if (kbuf_append(out, in + last, i - last) || (mode == SYM_NAMES && name_cluster(&cl, out))) return -1;
        last = i = end;
    }
    return kbuf_append(out, in + last, n - last);
}

// ---------------------------------------------------------------- pass 5: layout
// Trailing spaces and tabs cut; inside a line (after its indentation) runs of
// spaces become one; at most max_blank empty lines in a row; no blank lines at
// the start or the end (and no final newline).
static int layout(const char *in, size_t n, KilnBuf *out, int collapse, long max_blank) {
    kbuf_clear(out);
    if (kbuf_reserve(out, n)) return -1;
    long blank = 0;
    int any = 0;
    size_t ls = 0;
    while (ls <= n) {
        const char *nl = memchr(in + ls, '\n', n - ls);
        size_t le = nl ? (size_t)(nl - in) : n, e = le;
        while (e > ls && (in[e - 1] == ' ' || in[e - 1] == '\t')) e--;
        if (e == ls) {
            blank++;
        } else {
            if (any)
                for (long k = 0; k <= (blank < max_blank ? blank : max_blank); k++) out->data[out->len++] = '\n';
            any = 1;
            blank = 0;
            size_t p = ls;
            while (p < e && (in[p] == ' ' || in[p] == '\t')) p++;  // indentation, kept
            if (!collapse) p = e;
            char *o = out->data + out->len;  // the output never outgrows the input
            memcpy(o, in + ls, p - ls);
            o += p - ls;
            for (; p < e; p++)
                if (in[p] != ' ' || in[p - 1] != ' ') *o++ = in[p];
            out->len = (size_t)(o - out->data);
        }
        ls = le + 1;
    }
    if (out->data) out->data[out->len] = 0;
    return 0;
}

// ---------------------------------------------------------------- stage
static int clean_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    Clean c = {.nfkc = 1, .keep_tabs = 1, .collapse = 1, .symbols = SYM_KEEP, .max_blank = 1};
    if (params_bool(ps, "nfkc", &c.nfkc, err) || params_bool(ps, "keep_tabs", &c.keep_tabs, err) ||
        params_bool(ps, "collapse_spaces", &c.collapse, err) || params_int(ps, "max_blank_lines", &c.max_blank, err) ||
        params_enum(ps, "symbols", SYMBOL_CHOICES, &c.symbols, err))
        return -1;
    if (c.max_blank < 0) return kiln_fail(err, "clean: max_blank_lines must be >= 0, not %ld", c.max_blank);
    Clean *s = malloc(sizeof *s);
    if (!s) return kiln_fail(err, "clean: out of memory");
    *s = c;
    *state = s;
    return 0;
}

static void clean_destroy(void *state) { free(state); }

#define OOM "clean:out_of_memory"

// Whether b holds something other than a.
static int differs(const KilnBuf *a, const KilnBuf *b) { return a->len != b->len || memcmp(a->data, b->data, a->len); }

static const char *clean_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    const Clean *c = state;
    int high;
    if (fix_chars(doc->text.data, doc->text.len, &s->a, c->keep_tabs, &high)) return OOM;
    // NFKC, symbols and the character pass until none changes anything: what one
    // removes can join a letter to a mark or a digit to a keycap sign for
    // another. Removal only shrinks the text, so this ends; usually the second
    // round changes nothing.
    for (int round = 0; high && round < 8; round++) {
        int changed = 0;
        if (c->nfkc) {
            if (nfkc(s->a.data, s->a.len, &s->b)) return OOM;
            changed |= differs(&s->a, &s->b);
            kbuf_swap(&s->a, &s->b);
        }
        if (c->symbols != SYM_KEEP) {
            if (symbols(s->a.data, s->a.len, &s->b, c->symbols)) return OOM;
            changed |= differs(&s->a, &s->b);
            kbuf_swap(&s->a, &s->b);
        }
        if (!changed) break;
        if (fix_chars(s->a.data, s->a.len, &s->b, c->keep_tabs, &high)) return OOM;
        kbuf_swap(&s->a, &s->b);
    }
    if (layout(s->a.data ? s->a.data : "", s->a.len, &s->b, c->collapse, c->max_blank)) return OOM;
    kbuf_swap(&doc->text, &s->b);
    return doc->text.len ? NULL : "clean:empty";
}

const KilnStageDef STAGE_CLEAN = {
    .name = "clean",
    .summary = "Unicode NFKC, control/invisible characters, line breaks and spaces; symbols kept, named or removed",
    .params_help = "  nfkc (true): NFKC normalization (ligatures, fullwidth, superscripts -> plain)\n"
                   "  keep_tabs (true): keep tabs (code indentation); false: tab -> space\n"
                   "  collapse_spaces (true): runs of spaces inside a line -> one (indentation kept)\n"
                   "  max_blank_lines (1): most empty lines in a row\n"
                   "  symbols (keep): keep | names (:grinning face:) | remove, for So symbols and emoji\n",
    .create = clean_create,
    .destroy = clean_destroy,
    .apply = clean_apply,
};
