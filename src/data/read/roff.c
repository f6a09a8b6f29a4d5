// roff.c: man page source (man(7) and the common mdoc(7) macros) to readable
// text: requests interpreted or dropped, escapes decoded, fonts removed, the
// lines of a paragraph joined with spaces, blank lines between paragraphs.
#include "data/read/extract.h"
#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 32
#define MAX_STRINGS 64
#define MAX_STRING_LEN 1024  // bytes of a .ds value once decoded

typedef struct {
    char name[32];
    KilnBuf val;
} RoffString;

typedef struct {
    KilnBuf *out;
    KilnBuf para;      // the paragraph being filled
    KilnBuf line;      // scratch: one line with escapes decoded
    KilnBuf arg;       // scratch
    int nofill;        // .nf / .EX / .Vb / .Bd -literal
    int join_next;     // \c: the next text line continues this one without a space
    int tag_pending;   // the next text line is a .TP tag (1: own line) or an .SH heading (2)
    int table;         // 0 none, 1 options/format lines, 2 data rows
    char tab;          // tbl cell separator
    int in_tblock;     // tbl T{ ... T}
    int skip_depth;    // lines inside a false \{ ... \} block
    char mdoc_name[128];  // mdoc .Nm
    RoffString strings[MAX_STRINGS];
    int nstrings;
    int oom;
} Roff;

static void put(Roff *r, KilnBuf *b, const char *s, size_t n) {
    if (kbuf_append(b, s, n)) r->oom = 1;
}
static void puts_(Roff *r, KilnBuf *b, const char *s) { put(r, b, s, strlen(s)); }

// ---------------------------------------------------------------- output
// Ends the current output line (if any text is pending).
static void end_line(Roff *r) {
    size_t n = r->para.len;
    while (n && r->para.data[n - 1] == ' ') n--;
    if (n) {
        put(r, r->out, r->para.data, n);
        puts_(r, r->out, "\n");
    }
    kbuf_clear(&r->para);
}

// Ends the paragraph: a blank line follows (never two in a row).
static void end_para(Roff *r) {
    end_line(r);
    KilnBuf *o = r->out;
    if (o->len && !(o->len >= 2 && o->data[o->len - 1] == '\n' && o->data[o->len - 2] == '\n'))
        puts_(r, o, "\n");
}

// Adds text to the paragraph (a space between pieces unless join).
static void add_words(Roff *r, const char *s, size_t n, int join) {
    while (n && (s[0] == ' ' || s[0] == '\t') && !r->nofill) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t') && !r->nofill) n--;
    if (!n) return;
    if (r->para.len && !join && r->para.data[r->para.len - 1] != ' ') puts_(r, &r->para, " ");
    put(r, &r->para, s, n);
}

// ---------------------------------------------------------------- escapes
typedef struct {
    const char *name, *utf8;
} Glyph;

// groff_char(7) names that man pages use; unknown names are dropped.
static const Glyph GLYPHS[] = {
    {"em", "\xe2\x80\x94"}, {"en", "\xe2\x80\x93"}, {"hy", "-"}, {"mi", "-"}, {"co", "\xc2\xa9"},
    {"rg", "\xc2\xae"}, {"tm", "\xe2\x84\xa2"}, {"bu", "\xe2\x80\xa2"}, {"aq", "'"}, {"dq", "\""},
    {"lq", "\xe2\x80\x9c"}, {"rq", "\xe2\x80\x9d"}, {"oq", "\xe2\x80\x98"}, {"cq", "\xe2\x80\x99"},
    {"ga", "`"}, {"aa", "\xc2\xb4"}, {"ti", "~"}, {"ha", "^"}, {"ti", "~"}, {"sl", "/"}, {"rs", "\\"},
    {"ba", "|"}, {"br", "|"}, {"pl", "+"}, {"mu", "\xc3\x97"}, {"di", "\xc3\xb7"}, {"+-", "\xc2\xb1"},
    {"de", "\xc2\xb0"}, {">=", "\xe2\x89\xa5"}, {"<=", "\xe2\x89\xa4"}, {"!=", "\xe2\x89\xa0"},
    {"==", "\xe2\x89\xa1"}, {"->", "\xe2\x86\x92"}, {"<-", "\xe2\x86\x90"}, {"rA", "\xe2\x87\x92"},
    {"lA", "\xe2\x87\x90"}, {"fm", "\xe2\x80\xb2"}, {"sd", "\xe2\x80\xb3"}, {"ct", "\xc2\xa2"},
    {"Po", "\xc2\xa3"}, {"Eu", "\xe2\x82\xac"}, {"eu", "\xe2\x82\xac"}, {"Ye", "\xc2\xa5"},
    {"ss", "\xc3\x9f"}, {"sc", "\xc2\xa7"}, {"ps", "\xc2\xb6"}, {"dg", "\xe2\x80\xa0"},
    {"dd", "\xe2\x80\xa1"}, {"lh", "\xe2\x98\x9c"}, {"rh", "\xe2\x98\x9e"}, {"ua", "\xe2\x86\x91"},
    {"da", "\xe2\x86\x93"}, {"**", "*"}, {"if", "\xe2\x88\x9e"}, {"12", "\xc2\xbd"}, {"14", "\xc2\xbc"},
    {"34", "\xc2\xbe"}, {"Fo", "\xc2\xab"}, {"Fc", "\xc2\xbb"}, {"fo", "\xe2\x80\xb9"}, {"fc", "\xe2\x80\xba"},
    {"at", "@"}, {"sh", "#"}, {"Do", "$"}, {"lB", "["}, {"rB", "]"}, {"lC", "{"}, {"rC", "}"},
    {"la", "\xe2\x9f\xa8"}, {"ra", "\xe2\x9f\xa9"}, {"or", "|"}, {"ul", "_"}, {"ru", "_"}, {"ci", "\xe2\x97\x8b"},
    {"sq", "\xe2\x96\xa1"}, {"OK", "\xe2\x9c\x93"}, {"no", "\xc2\xac"}, {"tno", "\xc2\xac"}, {"AE", "\xc3\x86"},
    {"ae", "\xc3\xa6"}, {"'e", "\xc3\xa9"}, {"`e", "\xc3\xa8"}, {"'a", "\xc3\xa1"}, {"`a", "\xc3\xa0"},
    {":a", "\xc3\xa4"}, {":o", "\xc3\xb6"}, {":u", "\xc3\xbc"}, {":A", "\xc3\x84"}, {":O", "\xc3\x96"},
    {":U", "\xc3\x9c"}, {"~n", "\xc3\xb1"}, {",c", "\xc3\xa7"}, {"'E", "\xc3\x89"}, {"'o", "\xc3\xb3"},
    {"'i", "\xc3\xad"}, {"'u", "\xc3\xba"}, {"^e", "\xc3\xaa"}, {"^a", "\xc3\xa2"}, {"^i", "\xc3\xae"}, {"^o", "\xc3\xb4"}, {"^u", "\xc3\xbb"},
    {"`o", "\xc3\xb2"}, {"`u", "\xc3\xb9"}, {"`i", "\xc3\xac"}, {"'y", "\xc3\xbd"}, {":e", "\xc3\xab"},
    {":i", "\xc3\xaf"}, {":y", "\xc3\xbf"}, {"~a", "\xc3\xa3"}, {"~o", "\xc3\xb5"}, {"~N", "\xc3\x91"},
    {",C", "\xc3\x87"}, {"'A", "\xc3\x81"}, {"'I", "\xc3\x8d"}, {"'O", "\xc3\x93"}, {"'U", "\xc3\x9a"},
    {"/O", "\xc3\x98"}, {"oA", "\xc3\x85"}, {"'c", "\xc4\x87"}, {"vs", "\xc5\xa1"}, {"vS", "\xc5\xa0"},
    {"vz", "\xc5\xbe"}, {"vZ", "\xc5\xbd"}, {"/o", "\xc3\xb8"}, {"oa", "\xc3\xa5"},
    {"*a", "\xce\xb1"}, {"*b", "\xce\xb2"}, {"*g", "\xce\xb3"}, {"*d", "\xce\xb4"}, {"*e", "\xce\xb5"},
    {"*l", "\xce\xbb"}, {"*m", "\xce\xbc"}, {"*p", "\xcf\x80"}, {"*s", "\xcf\x83"}, {"*S", "\xce\xa3"},
    {"pc", "\xc2\xb7"}, {"md", "\xe2\x8b\x85"}, {"a-", "\xc2\xaf"}, {"ap", "~"}, {"~~", "\xe2\x89\x88"},
    {"en", "\xe2\x80\x93"}, {"Bq", "\xe2\x80\x9e"}, {"bq", "\xe2\x80\x9a"}, {"ff", "ff"}, {"fi", "fi"},
    {"fl", "fl"}, {"Fi", "ffi"}, {"Fl", "ffl"},
};

// Predefined strings (\*x, \*(xx, \*[xx]) of the man and mdoc macro packages.
static const Glyph STRINGS[] = {
    {"lq", "\xe2\x80\x9c"}, {"rq", "\xe2\x80\x9d"}, {"R", "\xc2\xae"}, {"Tm", "\xe2\x84\xa2"},
    {"aq", "'"}, {"q", "\""}, {"Lq", "\xe2\x80\x9c"}, {"Rq", "\xe2\x80\x9d"}, {"S", ""}, {"HF", ""},
    {"Ba", "|"}, {"Le", "\xe2\x89\xa4"}, {"Ge", "\xe2\x89\xa5"}, {"Ne", "\xe2\x89\xa0"}, {"Pi", "\xcf\x80"},
    {"Am", "&"}, {"Na", "NaN"}, {"If", "infinity"}, {"Lt", "<"}, {"Gt", ">"}, {"Ua", "\xe2\x86\x91"},
    {"Ra", "\xe2\x86\x92"}, {"Lb", ""}, {"Px", "POSIX"}, {"Ai", "ANSI"}, {"C'", "'"}, {"C`", "`"},
    {"--", "\xe2\x80\x94"}, {"PI", "\xcf\x80"}, {"L\"", "\xe2\x80\x9c"}, {"R\"", "\xe2\x80\x9d"},
};

// A code point the page names; NUL, surrogates and values past U+10FFFF are dropped.
static void put_utf8(Roff *r, KilnBuf *b, unsigned long c) {
    if (c == 0 || (c >= 0xD800 && c < 0xE000) || c > 0x10FFFF) return;
    if (utf8_put(b, (uint32_t)c)) r->oom = 1;
}

static void put_glyph(Roff *r, KilnBuf *b, const char *name, size_t n) {
    if (n >= 5 && name[0] == 'u') {  // \[u00E9], \[u0065_0301]: take the first code point
        put_utf8(r, b, strtoul(name + 1, NULL, 16));
        return;
    }
    if (n >= 5 && !strncmp(name, "char", 4)) {  // \[char65]
        put_utf8(r, b, strtoul(name + 4, NULL, 10));
        return;
    }
    for (size_t i = 0; i < sizeof GLYPHS / sizeof GLYPHS[0]; i++)
        if (strlen(GLYPHS[i].name) == n && !memcmp(GLYPHS[i].name, name, n)) {
            puts_(r, b, GLYPHS[i].utf8);
            return;
        }
}

static void put_string(Roff *r, KilnBuf *b, const char *name, size_t n) {
    for (int i = 0; i < r->nstrings; i++)
        if (strlen(r->strings[i].name) == n && !memcmp(r->strings[i].name, name, n)) {
            put(r, b, r->strings[i].val.data ? r->strings[i].val.data : "", r->strings[i].val.len);
            return;
        }
    for (size_t i = 0; i < sizeof STRINGS / sizeof STRINGS[0]; i++)
        if (strlen(STRINGS[i].name) == n && !memcmp(STRINGS[i].name, name, n)) {
            puts_(r, b, STRINGS[i].utf8);
            return;
        }
}

// The name after an escape: one char, "(xx", or "[name]". Returns its length
// in *n and advances *p past it.
static const char *esc_name(const char **p, const char *end, size_t *n) {
    const char *s = *p;
    if (s >= end) { *n = 0; return s; }
    if (*s == '(') {
        size_t k = end - s - 1 < 2 ? (size_t)(end - s - 1) : 2;
        *p = s + 1 + k;
        *n = k;
        return s + 1;
    }
    if (*s == '[') {
        const char *c = memchr(s + 1, ']', (size_t)(end - s - 1));
        if (!c) c = end;
        *p = c < end ? c + 1 : end;
        *n = (size_t)(c - s - 1);
        return s + 1;
    }
    *p = s + 1;
    *n = 1;
    return s;
}

// Skips a delimited argument: \h'...', \w'...', ... (delimiter = next char).
static const char *skip_delimited(const char *p, const char *end) {
    if (p >= end) return p;
    char d = *p++;
    const char *c = memchr(p, d, (size_t)(end - p));
    return c ? c + 1 : end;
}

// Decodes the escapes of s[0..n) into b. Returns 1 if the line ends in \c.
static int decode(Roff *r, const char *s, size_t n, KilnBuf *b) {
    const char *p = s, *end = s + n;
    int cont = 0;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        if (!bs) {
            put(r, b, p, (size_t)(end - p));
            break;
        }
        put(r, b, p, (size_t)(bs - p));
        p = bs + 1;
        if (p >= end) break;
        char c = *p++;
        size_t nn;
        const char *nm;
        switch (c) {
        case '"': p = end; break;                      // comment
        case '#': p = end; cont = 1; break;            // comment, and no line break
        case 'f': case 'F': case 'm': case 'M':        // font, family, colours
            esc_name(&p, end, &nn); break;
        case 's':                                      // size: \s+2 \s-1 \s(12 \s[12] \s0
            if (p < end && (*p == '+' || *p == '-')) p++;
            if (p < end && (*p == '(' || *p == '[')) esc_name(&p, end, &nn);
            else if (p < end && *p == '\'') p = skip_delimited(p, end);
            else while (p < end && *p >= '0' && *p <= '9' && p - bs < 4) p++;
            break;
        case 'n': case 'g': case 'k': case 'z': case 'Y': case 'V': case 'O':  // registers, marks
            if (c == 'n' && p < end && (*p == '+' || *p == '-')) p++;
            esc_name(&p, end, &nn); break;
        case '(': case '[':
            p--;
            nm = esc_name(&p, end, &nn);
            put_glyph(r, b, nm, nn);
            break;
        case 'C':
            if (p < end) {
                const char *q = skip_delimited(p, end);
                if (q - p >= 2) put_glyph(r, b, p + 1, (size_t)(q - p - 2));
                p = q;
            }
            break;
        case '*':
            nm = esc_name(&p, end, &nn);
            put_string(r, b, nm, nn);
            break;
        case 'N':
            if (p < end) {
                const char *q = skip_delimited(p, end);
                put_utf8(r, b, strtoul(p + 1, NULL, 10));
                p = q;
            }
            break;
        case 'h': case 'v': case 'w': case 'l': case 'L': case 'D': case 'o': case 'X': case 'b':
        case 'Z': case 'x': case 'R': case 'A': case 'B': case 'H': case 'S': case 'U':
            p = skip_delimited(p, end); break;
        case 'e': case '\\': puts_(r, b, "\\"); break;
        case '-': puts_(r, b, "-"); break;
        case '.': puts_(r, b, "."); break;
        case '\'': puts_(r, b, "\xc2\xb4"); break;
        case '`': puts_(r, b, "`"); break;
        case ' ': case '~': case '0': puts_(r, b, " "); break;
        case 't': puts_(r, b, "\t"); break;
        case 'c': cont = 1; p = end; break;
        case 'u': case 'd': case 'p': case 'r': case 'a': case 'E':
        case '&': case '|': case '^': case '%': case ':': case '/': case ',': case '{': case '}':
        case ')': case '!': case '?': case '$': case '@': case 'j': case 'I':
            break;
        default:
            put(r, b, &c, 1);  // \X for any other X is X
        }
    }
    return cont;
}

// ---------------------------------------------------------------- requests
// Splits a request's argument text into arguments (quotes group; "" inside
// quotes is a literal quote). Writes NUL-separated args into r->arg.
static int split_args(Roff *r, const char *s, size_t n, const char **av, size_t *al) {
    kbuf_clear(&r->arg);
    if (kbuf_reserve(&r->arg, n + 1)) { r->oom = 1; return 0; }
    char *o = r->arg.data;
    size_t oi = 0;
    int ac = 0;
    size_t i = 0;
    while (i < n && ac < MAX_ARGS) {
        while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i >= n) break;
        size_t st = oi;
        if (s[i] == '"') {
            i++;
            while (i < n) {
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') { o[oi++] = '"'; i += 2; continue; }
                    i++;
                    break;
                }
                o[oi++] = s[i++];
            }
        } else {
            while (i < n && s[i] != ' ' && s[i] != '\t') {
                if (s[i] == '\\' && i + 1 < n) o[oi++] = s[i++];  // keep escapes (\ space) whole
                o[oi++] = s[i++];
            }
        }
        av[ac] = o + st;
        al[ac] = oi - st;
        ac++;
    }
    return ac;
}

// Text from arguments: decoded, joined with spaces or (alternating fonts) not.
static void args_text(Roff *r, const char **av, const size_t *al, int ac, int spaced, KilnBuf *b) {
    for (int i = 0; i < ac; i++) {
        if (spaced && i) puts_(r, b, " ");
        decode(r, av[i], al[i], b);
    }
}

static int is(const char *m, size_t n, const char *name) { return strlen(name) == n && !memcmp(m, name, n); }

// mdoc macros inside a line are words like "Fl", "Ar", "Xr"; tokens
// that are macros change how the next ones print.
static const char *const MDOC_DROP[] = {
    "Ar", "Cm", "Dv", "Em", "Er", "Ev", "Fa", "Fd", "Fn", "Ft", "Ic", "Li", "Ms", "Pa", "Sy", "Tn", "Va",
    "Vt", "Ad", "An", "Cd", "Lk", "Mt", "Ot", "Sx", "Xo", "Xc", "No", "St", "Lb", "In", "Ta", "Ql", "Oc", "Pc", "Qc", "Sc", "Dc", "Bc", "Ac", "Ec", "Fc", "Brc",
    "Nd", "It", NULL,
};

static int mdoc_drop(const char *t, size_t n) {
    for (int i = 0; MDOC_DROP[i]; i++)
        if (is(t, n, MDOC_DROP[i])) return 1;
    return 0;
}

static int is_punct(const char *t, size_t n) {
    return n == 1 && strchr(".,:;)]?!", t[0]) != NULL;
}

// An mdoc line's macros and words to text.
static void mdoc_words(Roff *r, const char **av, const size_t *al, int ac, KilnBuf *b) {
    const char *close[8];
    int nclose = 0, nospace = 0;
    for (int i = 0; i < ac; i++) {
        const char *t = av[i];
        size_t n = al[i];
        const char *open = NULL, *cl = NULL;
        if (is(t, n, "Fl")) {
            if (b->len && !nospace) puts_(r, b, " ");
            puts_(r, b, "-");
            nospace = 1;
            continue;
        }
        if (is(t, n, "Ns")) { nospace = 1; continue; }
        if (is(t, n, "Sm")) {  // spacing mode: the on/off word goes too
            if (i + 1 < ac && (is(av[i + 1], al[i + 1], "on") || is(av[i + 1], al[i + 1], "off"))) i++;
            continue;
        }
        static const Glyph OS[] = {{"Ux", "UNIX"}, {"Bx", "BSD"}, {"Nx", "NetBSD"}, {"Fx", "FreeBSD"},
                                   {"Ox", "OpenBSD"}, {"Dx", "DragonFly"}, {"Bsx", "BSD/OS"}, {"At", "AT&T UNIX"}};
        int os = -1;
        for (int k = 0; k < 8; k++)
            if (is(t, n, OS[k].name)) os = k;
        if (os >= 0) {
            if (b->len && !nospace) puts_(r, b, " ");
            puts_(r, b, OS[os].utf8);
            nospace = 0;
            continue;
        }
        if (is(t, n, "Op") || is(t, n, "Oo")) open = "[", cl = "]";
        else if (is(t, n, "Dq") || is(t, n, "Do")) open = "\xe2\x80\x9c", cl = "\xe2\x80\x9d";
        else if (is(t, n, "Sq") || is(t, n, "So")) open = "\xe2\x80\x98", cl = "\xe2\x80\x99";
        else if (is(t, n, "Qq") || is(t, n, "Qo")) open = "\"", cl = "\"";
        else if (is(t, n, "Pq") || is(t, n, "Po")) open = "(", cl = ")";
        else if (is(t, n, "Aq") || is(t, n, "Ao")) open = "<", cl = ">";
        else if (is(t, n, "Bq") || is(t, n, "Bo")) open = "[", cl = "]";
        else if (is(t, n, "Brq") || is(t, n, "Bro")) open = "{", cl = "}";
        if (open) {
            if (b->len && !nospace) puts_(r, b, " ");
            puts_(r, b, open);
            nospace = 1;
            if (nclose < 8) close[nclose++] = cl;
            continue;
        }
        if (is(t, n, "Xr") && i + 2 < ac) {
            if (b->len && !nospace) puts_(r, b, " ");
            decode(r, av[i + 1], al[i + 1], b);
            puts_(r, b, "(");
            decode(r, av[i + 2], al[i + 2], b);
            puts_(r, b, ")");
            i += 2;
            nospace = 0;
            continue;
        }
        if (is(t, n, "Nm") && (i + 1 >= ac || is_punct(av[i + 1], al[i + 1]) || mdoc_drop(av[i + 1], al[i + 1]))) {
            if (b->len && !nospace) puts_(r, b, " ");
            puts_(r, b, r->mdoc_name);
            nospace = 0;
            continue;
        }
        if (is(t, n, "Nm") || mdoc_drop(t, n)) continue;
        if (b->len && !nospace && !is_punct(t, n)) puts_(r, b, " ");
        decode(r, t, n, b);
        nospace = 0;
    }
    while (nclose > 0) puts_(r, b, close[--nclose]);
}

// Skips to the line after "..": the body of .de/.am/.ig. Returns the new position.
static size_t skip_definition(const char *src, size_t n, size_t i) {
    while (i < n) {
        const char *eol = memchr(src + i, '\n', n - i);
        size_t e = eol ? (size_t)(eol - src) : n;
        size_t k = i;
        while (k < e && (src[k] == ' ' || src[k] == '\t')) k++;
        if (e - k >= 2 && (src[k] == '.' || src[k] == '\'') && src[k + 1] == '.') return e + 1;
        i = e + 1;
    }
    return n;
}

static void define_string(Roff *r, const char **av, const size_t *al, int ac, const char *rest, size_t restn) {
    if (ac < 1 || al[0] >= sizeof r->strings[0].name) return;
    RoffString *s = NULL;
    for (int i = 0; i < r->nstrings; i++)
        if (strlen(r->strings[i].name) == al[0] &&
            !memcmp(r->strings[i].name, av[0], al[0]))
            s = &r->strings[i];
    if (!s) {
        if (r->nstrings == MAX_STRINGS) return;
        s = &r->strings[r->nstrings++];
        memcpy(s->name, av[0], al[0]);
        s->name[al[0]] = 0;
    }
    // the value: the rest of the line after the name, a leading " dropped
    const char *v = rest;
    size_t vn = restn;
    while (vn && (*v == ' ' || *v == '\t')) v++, vn--;
    v += al[0], vn -= al[0] <= vn ? al[0] : vn;
    while (vn && (*v == ' ' || *v == '\t')) v++, vn--;
    if (vn && *v == '"') v++, vn--;
    if (vn > 256) vn = 256;
    // Decode into a new buffer: a value may use the string itself
    // (".ds x [\*x]", its old value, as in troff), and appending s->val to
    // s->val read memory that the append had just reallocated (fuzz_roff).
    KilnBuf val = {0};
    decode(r, v, vn, &val);
    // A value made of other strings can grow 64-fold a line: keep it short,
    // cut at a UTF-8 character boundary.
    if (val.len > MAX_STRING_LEN) {
        size_t n = MAX_STRING_LEN;
        while (n && ((unsigned char)val.data[n] & 0xC0) == 0x80) n--;
        val.len = n;
        val.data[n] = 0;
    }
    kbuf_free(&s->val);
    s->val = val;
}

// Condition of .if/.ie: 1 true, 0 false. We are nroff, not troff.
static int condition(const char **p, const char *end) {
    const char *s = *p;
    int neg = 0;
    if (s < end && *s == '!') neg = 1, s++;
    int v = 0;
    if (s < end && (*s == 'n' || *s == 't' || *s == 'o' || *s == 'e' || *s == 'v')) {
        v = *s == 'n' || *s == 'o';
        s++;
    } else if (s < end && (*s == '\'' || *s == '"')) {  // string comparison: 'a'b'
        char d = *s++;
        const char *a = s, *m = memchr(s, d, (size_t)(end - s));
        const char *bb = m ? m + 1 : end, *e = bb < end ? memchr(bb, d, (size_t)(end - bb)) : NULL;
        v = m && e && (m - a) == (e - bb) && !memcmp(a, bb, (size_t)(m - a));
        s = e ? e + 1 : end;
    } else {  // numeric or register tests (\n(.g, d name, r name...): treat as false
        if (s < end && (*s == 'd' || *s == 'r' || *s == 'c' || *s == 'F' || *s == 'S' || *s == 'm')) {
            s++;
            while (s < end && (*s == ' ' || *s == '\t')) s++;
        }
        while (s < end && *s != ' ' && *s != '\t') s++;
        v = 0;
    }
    *p = s;
    return neg ? !v : v;
}

static void text_line(Roff *r, const char *s, size_t n);
static void request(Roff *r, const char *s, size_t n, int *last_if);

// Handles the body of a conditional: true → processed as a line; false →
// dropped; "\{" opens a block that a false condition skips to its "\}".
static void cond_body(Roff *r, const char *s, size_t n, int truth) {
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    int block = n >= 2 && s[0] == '\\' && s[1] == '{';
    if (block) {
        s += 2, n -= 2;
        while (n && (*s == ' ' || *s == '\t')) s++, n--;
    }
    const char *close = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '\\' && s[i + 1] == '}') { close = s + i; break; }
    if (!truth) {
        if (block && !close) r->skip_depth = 1;
        return;
    }
    if (close) n = (size_t)(close - s);
    if (!n) return;
    int dummy = 0;
    if (s[0] == '.' || s[0] == '\'') request(r, s, n, &dummy);
    else text_line(r, s, n);
}

static void text_line(Roff *r, const char *s, size_t n) {
    if (r->table) {  // tbl data row: cells separated by the tab character
        if (r->table == 1) {  // options (end in ';') then formats (end in '.')
            size_t e = n;
            while (e && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) e--;
            if (e && s[e - 1] == ';') {
                for (size_t k = 0; k + 4 < e; k++)
                    if (!memcmp(s + k, "tab(", 4)) r->tab = s[k + 4];
            }
            if (e && s[e - 1] == '.') r->table = 2;
            return;
        }
        if (n == 1 && (s[0] == '_' || s[0] == '=')) return;
        kbuf_clear(&r->line);
        size_t a = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && s[i] != r->tab) continue;
            const char *c = s + a;
            size_t cn = i - a;
            int opens = cn >= 2 && !memcmp(c, "T{", 2);
            if (opens) c += 2, cn -= 2, r->in_tblock = 1;
            if (cn >= 2 && !memcmp(c, "T}", 2)) c += 2, cn -= 2, r->in_tblock = 0;
            if (r->line.len && (cn || opens)) puts_(r, &r->line, "  ");
            decode(r, c, cn, &r->line);
            a = i + 1;
        }
        if (r->para.len && r->line.len && r->para.data[r->para.len - 1] != ' ') puts_(r, &r->para, " ");
        put(r, &r->para, r->line.data ? r->line.data : "", r->line.len);  // cell gaps kept
        if (!r->in_tblock) end_line(r);
        return;
    }
    kbuf_clear(&r->line);
    int cont = decode(r, s, n, &r->line);
    const char *t = r->line.data ? r->line.data : "";
    size_t tn = r->line.len;
    if (r->nofill) {
        put(r, &r->para, t, tn);
        if (!cont) end_line(r);
        return;
    }
    if (n == 0 || (tn == 0 && !cont && n > 0 && s[0] != '\\')) {  // a blank line: paragraph break
        end_para(r);
        return;
    }
    if (n && (s[0] == ' ' || s[0] == '\t')) end_line(r);  // leading space: a line break
    add_words(r, t, tn, r->join_next);
    r->join_next = cont;
    if (r->tag_pending && !cont) {
        if (r->tag_pending == 2) end_para(r);
        else end_line(r);
        r->tag_pending = 0;
    }
}

// A control line (starting with '.' or '\'').
static void request(Roff *r, const char *s, size_t n, int *last_if) {
    size_t i = 1;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i + 1 < n + 1 && i < n && s[i] == '\\' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '#')) return;
    size_t ms = i;
    while (i < n && s[i] != ' ' && s[i] != '\t') i++;
    const char *m = s + ms;
    size_t mn = i - ms;
    if (mn == 0) return;  // "." alone
    const char *rest = s + i;
    size_t restn = n - i;
    const char *av[MAX_ARGS];
    size_t al[MAX_ARGS];
    KilnBuf *para = &r->para;

    if (is(m, mn, "if") || is(m, mn, "ie") || is(m, mn, "el")) {
        const char *p = rest, *end = s + n;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        int truth;
        if (is(m, mn, "el")) truth = !*last_if;
        else truth = condition(&p, end);
        if (is(m, mn, "ie")) *last_if = truth;
        cond_body(r, p, (size_t)(end - p), truth);
        return;
    }
    int ac = split_args(r, rest, restn, av, al);
    int wants_words = 0, spaced = 1;

    if (is(m, mn, "TH") || is(m, mn, "Dt")) {
        return;  // the title is taken by the caller's first pass
    } else if (is(m, mn, "SH") || is(m, mn, "SS") || is(m, mn, "Sh") || is(m, mn, "Ss")) {
        end_para(r);
        r->nofill = 0;
        if (ac) {
            args_text(r, av, al, ac, 1, para);
            end_para(r);
        } else {
            r->tag_pending = 2;  // heading text on the next line
        }
    } else if (is(m, mn, "PP") || is(m, mn, "LP") || is(m, mn, "P") || is(m, mn, "Pp") || is(m, mn, "HP") ||
               is(m, mn, "sp") || is(m, mn, "Sp") || is(m, mn, "bP") || is(m, mn, "Lp")) {
        end_para(r);
        if (is(m, mn, "bP")) puts_(r, para, "\xe2\x80\xa2 ");
    } else if (is(m, mn, "TP") || is(m, mn, "TQ")) {
        end_para(r);
        r->tag_pending = 1;
    } else if (is(m, mn, "IP")) {
        end_para(r);
        if (ac) {
            args_text(r, av, al, 1, 1, para);
            puts_(r, para, " ");
        }
    } else if (is(m, mn, "br") || is(m, mn, "Br")) {
        end_line(r);
    } else if (is(m, mn, "nf") || is(m, mn, "EX") || is(m, mn, "Vb")) {
        end_line(r);
        r->nofill = 1;
    } else if (is(m, mn, "fi") || is(m, mn, "EE") || is(m, mn, "Ve")) {
        end_para(r);
        r->nofill = 0;
    } else if (is(m, mn, "Bd")) {
        end_para(r);
        for (int k = 0; k < ac; k++)
            if (is(av[k], al[k], "-literal") || is(av[k], al[k], "-unfilled")) r->nofill = 1;
    } else if (is(m, mn, "Ed")) {
        end_para(r);
        r->nofill = 0;
    } else if (is(m, mn, "TS")) {
        end_para(r);
        r->table = 1;
        r->tab = '\t';
    } else if (is(m, mn, "TE")) {
        end_para(r);
        r->table = 0;
        r->in_tblock = 0;
    } else if (is(m, mn, "T&")) {
        r->table = 1;
    } else if (is(m, mn, "B") || is(m, mn, "I") || is(m, mn, "SM") || is(m, mn, "SB") || is(m, mn, "BI") ||
               is(m, mn, "IB") || is(m, mn, "BR") || is(m, mn, "RB") || is(m, mn, "IR") || is(m, mn, "RI") ||
               is(m, mn, "SY") || is(m, mn, "OP")) {
        wants_words = 1;
        spaced = mn == 1 || (m[0] == 'S' && m[1] != 'Y') || is(m, mn, "SY") || is(m, mn, "OP");
        if (is(m, mn, "SY")) end_para(r);
        if (!ac && mn <= 2 && (m[0] == 'B' || m[0] == 'I' || m[0] == 'S')) return;  // applies to the next line
    } else if (is(m, mn, "UR") || is(m, mn, "MT")) {
        return;  // the link text follows; the address is dropped
    } else if (is(m, mn, "UE") || is(m, mn, "ME")) {
        if (ac) { kbuf_clear(&r->line); args_text(r, av, al, ac, 0, &r->line); add_words(r, r->line.data, r->line.len, 1); }
        return;
    } else if (is(m, mn, "ds") || is(m, mn, "ds1")) {
        define_string(r, av, al, ac, rest, restn);
    } else if (is(m, mn, "Nm")) {
        if (ac && !r->mdoc_name[0] && al[0] < sizeof r->mdoc_name) {
            memcpy(r->mdoc_name, av[0], al[0]);
            r->mdoc_name[al[0]] = 0;
        }
        wants_words = 2;
    } else if (is(m, mn, "Nd")) {
        puts_(r, para, " \xe2\x80\x94");
        wants_words = 2;
    } else if (is(m, mn, "It")) {
        end_line(r);
        wants_words = 2;
    } else if (is(m, mn, "Bl") || is(m, mn, "El") || is(m, mn, "Dd") || is(m, mn, "Os") || is(m, mn, "Rs") ||
               is(m, mn, "Re")) {
        if (is(m, mn, "Bl") || is(m, mn, "El")) end_para(r);
    } else if (m[0] >= 'A' && m[0] <= 'Z' && mn >= 2 && mn <= 3 && m[1] >= 'a' && m[1] <= 'z') {
        wants_words = 2;  // other mdoc macros (Fl, Ar, Xr, Op, Dq, Pa...): their words
    }
    // everything else (.RS .RE .PD .in .ti .ft .ps .nr .so .ne .hy .ad .IX ...) prints nothing
    if (!wants_words) return;
    kbuf_clear(&r->line);
    if (wants_words == 2) {  // the macro itself is the first word (".Nm" alone prints the name)
        const char *av2[MAX_ARGS + 1];
        size_t al2[MAX_ARGS + 1];
        av2[0] = m, al2[0] = mn;
        for (int k = 0; k < ac; k++) av2[k + 1] = av[k], al2[k + 1] = al[k];
        mdoc_words(r, av2, al2, ac + 1, &r->line);
    } else {
        args_text(r, av, al, ac, spaced, &r->line);
    }
    int join = r->join_next || (r->line.len && is_punct(r->line.data, 1) && wants_words == 2);
    if (r->nofill) {
        put(r, para, r->line.data ? r->line.data : "", r->line.len);
        end_line(r);
        return;
    }
    add_words(r, r->line.data ? r->line.data : "", r->line.len, join);
    r->join_next = 0;
    if (is(m, mn, "It") && ac) end_line(r);  // a tagged list item: the tag on its own line
    if (r->tag_pending) {
        if (r->tag_pending == 2) end_para(r);
        else end_line(r);
        r->tag_pending = 0;
    }
}

// .TH name section / .Dt NAME SECTION -> "name(section)"
static int find_title(const char *src, size_t n, KilnBuf *title) {
    for (size_t i = 0; i < n;) {
        const char *eol = memchr(src + i, '\n', n - i);
        size_t e = eol ? (size_t)(eol - src) : n;
        if (e - i > 4 && src[i] == '.' && (!memcmp(src + i + 1, "TH ", 3) || !memcmp(src + i + 1, "Dt ", 3))) {
            Roff tmp = {0};
            const char *av[MAX_ARGS];
            size_t al[MAX_ARGS];
            int ac = split_args(&tmp, src + i + 4, e - i - 4, av, al);
            int rc = 0;
            if (ac >= 1) {
                KilnBuf t = {0};
                decode(&tmp, av[0], al[0], &t);
                if (ac >= 2) {
                    kbuf_putc(&t, '(');
                    decode(&tmp, av[1], al[1], &t);
                    kbuf_putc(&t, ')');
                }
                rc = tmp.oom || kbuf_set(title, t.data ? t.data : "", t.len);
                kbuf_free(&t);
            }
            kbuf_free(&tmp.arg);
            return rc ? -1 : 0;
        }
        i = e + 1;
    }
    return 0;
}

int roff_to_text(const char *src, size_t n, KilnBuf *out, KilnBuf *title, KilnErr *err) {
    kbuf_clear(out);
    if (title) {
        kbuf_clear(title);
        if (find_title(src, n, title)) return kiln_fail(err, "roff: out of memory");
    }
    Roff r = {0};
    r.out = out;
    r.tab = '\t';
    int last_if = 0;
    for (size_t i = 0; i < n && !r.oom;) {
        const char *eol = memchr(src + i, '\n', n - i);
        size_t e = eol ? (size_t)(eol - src) : n;
        const char *s = src + i;
        size_t len = e - i;
        if (len && s[len - 1] == '\r') len--;
        size_t next = e + 1;
        if (r.skip_depth) {  // inside a false \{ ... \} block
            for (size_t k = 0; k + 1 < len; k++) {
                if (s[k] == '\\' && s[k + 1] == '{') r.skip_depth++;
                if (s[k] == '\\' && s[k + 1] == '}') r.skip_depth--;
                if (r.skip_depth <= 0) break;
            }
            if (r.skip_depth < 0) r.skip_depth = 0;
            i = next;
            continue;
        }
        if (len && (s[0] == '.' || s[0] == '\'') && !(r.table == 2 && s[0] == '\'')) {
            size_t k = 1;
            while (k < len && (s[k] == ' ' || s[k] == '\t')) k++;
            if (len - k >= 2 && (!memcmp(s + k, "de", 2) || !memcmp(s + k, "am", 2) || !memcmp(s + k, "ig", 2)) &&
                (len - k == 2 || s[k + 2] == ' ' || s[k + 2] == '\t' || (s[k + 2] >= '0' && s[k + 2] <= '9'))) {
                next = skip_definition(src, n, next);  // macro definitions and .ig blocks
            } else if (len - k >= 2 && (!memcmp(s + k, "TE", 2) || !memcmp(s + k, "T&", 2)) && r.table) {
                request(&r, s, len, &last_if);
            } else if (r.table == 2 && !(len - k >= 2 && !memcmp(s + k, "TE", 2))) {
                // a request inside table data (.sp, .br): ignore
            } else {
                request(&r, s, len, &last_if);
            }
        } else {
            text_line(&r, s, len);
        }
        i = next;
    }
    end_para(&r);
    // trim the trailing blank line to one '\n'
    while (out->len >= 2 && out->data[out->len - 1] == '\n' && out->data[out->len - 2] == '\n') out->data[--out->len] = 0;
    kbuf_free(&r.para);
    kbuf_free(&r.line);
    kbuf_free(&r.arg);
    for (int k = 0; k < r.nstrings; k++) kbuf_free(&r.strings[k].val);
    if (r.oom) return kiln_fail(err, "roff: out of memory");
    // old pages are often Latin-1: keep the output valid UTF-8 for what follows
    KilnBuf *bufs[2] = {out, title};
    for (int k = 0; k < 2; k++) {
        if (!bufs[k] || !bufs[k]->len || utf8_valid(bufs[k]->data, bufs[k]->len)) continue;
        KilnBuf fixed = {0};
        if (utf8_repair(bufs[k]->data, bufs[k]->len, &fixed) < 0) return kiln_fail(err, "roff: out of memory");
        kbuf_swap(bufs[k], &fixed);
        kbuf_free(&fixed);
    }
    return 0;
}

// ---------------------------------------------------------------- the `man` stage
static int man_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    *state = NULL;
    return 0;
}

static void man_destroy(void *state) {}

static const char *man_apply(void *state, KilnDoc *doc, KilnScratch *s) {
    KilnErr err;
    if (roff_to_text(doc->text.data ? doc->text.data : "", doc->text.len, &s->a, NULL, &err))
        return "man:out_of_memory";
    size_t i = 0;
    while (i < s->a.len && (s->a.data[i] == ' ' || s->a.data[i] == '\n' || s->a.data[i] == '\t')) i++;
    if (i == s->a.len) return "man:empty";
    kbuf_swap(&doc->text, &s->a);
    return NULL;
}

const KilnStageDef STAGE_MAN = {
    .name = "man",
    .summary = "roff man page source (man(7), mdoc(7)) to plain text",
    .params_help = "  (no parameters)\n",
    .create = man_create,
    .destroy = man_destroy,
    .apply = man_apply,
};
