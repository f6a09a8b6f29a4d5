// textfilter.c: the template filters (|capitalize, |strip, |hellaswag, ...),
// each the exact Python string operation lm-evaluation-harness applies, and
// the Unicode helpers behind them (Python's str.isspace/lower/upper, with
// utf8proc's simple case mappings).
#include "task/task_internal.h"

#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define CP_INVALID 0xFFFFFFFFu

static const char *const FILTER_NAMES[TF_COUNT] = {"capitalize", "strip",     "lower",     "upper",
                                                   "drop_last_word", "last_word", "hellaswag", "wikitext",
                                                   "drop_calculator"};

int tpl_filter_by_name(const char *name, size_t n) {
    for (int f = 0; f < TF_COUNT; f++)
        if (strlen(FILTER_NAMES[f]) == n && !memcmp(FILTER_NAMES[f], name, n)) return f;
    return -1;
}

const char *tpl_filter_name(int f) { return f >= 0 && f < TF_COUNT ? FILTER_NAMES[f] : "?"; }

size_t py_utf8_next(const char *s, size_t n, uint32_t *cp) {
    size_t k = utf8_decode(s, n, cp);
    if (k) return k;
    *cp = CP_INVALID;  // an invalid byte passes through unchanged
    return 1;
}

// mode 0 lower, 1 upper, 2 title (one character)
static int map_cp(KilnBuf *out, uint32_t cp, int mode) {
    if (mode == 0 && cp == 0x130) return kbuf_puts(out, "i\xcc\x87");  // the one full lowercase mapping Python adds
    utf8proc_int32_t c = (utf8proc_int32_t)cp;
    c = mode == 0 ? utf8proc_tolower(c) : mode == 1 ? utf8proc_toupper(c) : utf8proc_totitle(c);
    return utf8_put(out, (uint32_t)c);
}

static int map_case(const char *s, size_t n, KilnBuf *out, int mode, int first_mode) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = py_utf8_next(s + i, n - i, &cp);
        int rc = cp == CP_INVALID ? kbuf_append(out, s + i, k) : map_cp(out, cp, i == 0 ? first_mode : mode);
        if (rc) return -1;
        i += k;
    }
    return out->data || !kbuf_reserve(out, 1) ? 0 : -1;
}

int py_lower(const char *s, size_t n, KilnBuf *out) { return map_case(s, n, out, 0, 0); }
int py_upper(const char *s, size_t n, KilnBuf *out) { return map_case(s, n, out, 1, 1); }

// [a, b) of s without Python-whitespace at either end
void py_strip_span(const char *s, size_t n, size_t *a, size_t *b) {
    *a = *b = 0;
    int seen = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = py_utf8_next(s + i, n - i, &cp);
        if (cp == CP_INVALID || !utf8_isspace(cp)) {
            if (!seen) *a = i;
            seen = 1;
            *b = i + k;
        }
        i += k;
    }
}

// Python str.replace(from, to): left to right, non-overlapping.
static int replace_all(const KilnBuf *in, const char *from, const char *to, KilnBuf *out) {
    size_t fl = strlen(from), tl = strlen(to);
    kbuf_clear(out);
    if (kbuf_reserve(out, in->len + 1)) return -1;
    for (size_t i = 0; i < in->len;) {
        if (in->len - i >= fl && !memcmp(in->data + i, from, fl)) {
            if (kbuf_append(out, to, tl)) return -1;
            i += fl;
        } else if (kbuf_putc(out, in->data[i++])) {
            return -1;
        }
    }
    return 0;
}

static int replace_in(KilnBuf *b, KilnBuf *tmp, const char *from, const char *to) {
    if (replace_all(b, from, to, tmp)) return -1;
    kbuf_swap(b, tmp);
    return 0;
}

// re.sub(pattern, repl, b) in place
static int regex_in(KilnBuf *b, KilnBuf *tmp, const char *pattern, const char *repl) {
    char why[256];
    AnsRegex *r = ans_regex_new(pattern, why, sizeof why);
    if (!r) return -1;
    int rc = ans_regex_sub(r, b->data ? b->data : "", b->len, repl, tmp);
    ans_regex_free(r);
    if (!rc) kbuf_swap(b, tmp);
    return rc;
}

// lm-evaluation-harness tasks/hellaswag/utils.py preprocess(): strip(),
// " [title]" -> ". ", re.sub("\[.*?\]", ""), "  " -> " ".
static int hellaswag(KilnBuf *b, KilnBuf *tmp) {
    size_t a, e;
    py_strip_span(b->data, b->len, &a, &e);
    if (kbuf_set(tmp, b->data + a, e - a)) return -1;
    kbuf_swap(b, tmp);
    if (replace_in(b, tmp, " [title]", ". ")) return -1;
    // "\[.*?\]": from a '[' to the first ']' with no line break between ('.' stops at \n)
    kbuf_clear(tmp);
    if (kbuf_reserve(tmp, b->len + 1)) return -1;
    for (size_t i = 0; i < b->len;) {
        if (b->data[i] == '[') {
            size_t j = i + 1;
            while (j < b->len && b->data[j] != ']' && b->data[j] != '\n') j++;
            if (j < b->len && b->data[j] == ']') {
                i = j + 1;
                continue;
            }
        }
        if (kbuf_putc(tmp, b->data[i++])) return -1;
    }
    kbuf_swap(b, tmp);
    return replace_in(b, tmp, "  ", " ");
}

// lm-evaluation-harness tasks/wikitext/preprocess_wikitext.py wikitext_detokenizer(), step by step.
static int wikitext(KilnBuf *b, KilnBuf *tmp) {
    static const char *const R1[][2] = {{"s '", "s'"}};
    static const char *const R2[][2] = {{" @-@ ", "-"}, {" @,@ ", ","}, {" @.@ ", "."}, {" : ", ": "},
                                        {" ; ", "; "},  {" . ", ". "},  {" ! ", "! "},  {" ? ", "? "},
                                        {" , ", ", "}};
    static const char *const RE[][2] = {{"\\(\\s*([^\\)]*?)\\s*\\)", "(\\1)"},
                                        {"\\[\\s*([^\\]]*?)\\s*\\]", "[\\1]"},
                                        {"{\\s*([^}]*?)\\s*}", "{\\1}"},
                                        {"\\\"\\s*([^\\\"]*?)\\s*\\\"", "\"\\1\""},
                                        {"'\\s*([^']*?)\\s*'", "'\\1'"}};
    static const char *const R3[][2] = {{"= = = =", "===="}, {"= = =", "==="}, {"= =", "=="},
                                        {" \xc2\xb0 ", "\xc2\xb0"}, {" \n", "\n"},   {"\n ", "\n"},
                                        {" N ", " 1 "},        {" 's", "'s"}};
    if (replace_in(b, tmp, R1[0][0], R1[0][1])) return -1;
    if (regex_in(b, tmp, "/' [0-9]/", "/'[0-9]/")) return -1;  // sic: a literal replacement in the original
    for (size_t k = 0; k < sizeof R2 / sizeof R2[0]; k++)
        if (replace_in(b, tmp, R2[k][0], R2[k][1])) return -1;
    for (size_t k = 0; k < sizeof RE / sizeof RE[0]; k++)
        if (regex_in(b, tmp, RE[k][0], RE[k][1])) return -1;
    for (size_t k = 0; k < sizeof R3 / sizeof R3[0]; k++)
        if (replace_in(b, tmp, R3[k][0], R3[k][1])) return -1;
    return 0;
}

// GSM8K's calculator annotations "<<48/2=24>>" removed: each "<<" up to the
// first ">>" after it (a "<<" never closed stays).
static int drop_calculator(const KilnBuf *b, KilnBuf *out) {
    kbuf_clear(out);
    if (kbuf_reserve(out, b->len + 1)) return -1;
    for (const char *p = b->data, *end = b->data + b->len; p < end;) {
        const char *e;
        if (end - p >= 2 && p[0] == '<' && p[1] == '<' && (e = strstr(p + 2, ">>"))) {
            p = e + 2;
            continue;
        }
        if (kbuf_putc(out, *p++)) return -1;
    }
    return 0;
}

int tpl_filter_apply(int f, KilnBuf *b) {
    if (!b->data && kbuf_reserve(b, 1)) return -1;
    KilnBuf tmp = {0};
    int rc = 0;
    switch (f) {
    case TF_CAPITALIZE: rc = map_case(b->data, b->len, &tmp, 0, 2); break;
    case TF_LOWER: rc = py_lower(b->data, b->len, &tmp); break;
    case TF_UPPER: rc = py_upper(b->data, b->len, &tmp); break;
    case TF_STRIP: {
        size_t a, e;
        py_strip_span(b->data, b->len, &a, &e);
        rc = kbuf_set(&tmp, b->data + a, e - a);
        break;
    }
    case TF_DROP_LAST_WORD:
    case TF_LAST_WORD: {
        const char *sp = NULL;
        for (size_t i = b->len; i > 0 && !sp; i--)
            if (b->data[i - 1] == ' ') sp = b->data + i - 1;
        if (f == TF_DROP_LAST_WORD) rc = kbuf_set(&tmp, b->data, sp ? (size_t)(sp - b->data) : 0);
        else rc = sp ? kbuf_set(&tmp, sp + 1, b->len - (size_t)(sp + 1 - b->data)) : kbuf_set(&tmp, b->data, b->len);
        break;
    }
    case TF_HELLASWAG: rc = hellaswag(b, &tmp); break;
    case TF_WIKITEXT: rc = wikitext(b, &tmp); break;
    case TF_DROP_CALCULATOR: rc = drop_calculator(b, &tmp); break;
    default: rc = -1;
    }
    if (rc == 0 && f != TF_HELLASWAG && f != TF_WIKITEXT) {
        if (!tmp.data) rc = kbuf_reserve(&tmp, 1);
        kbuf_swap(b, &tmp);
    }
    kbuf_free(&tmp);
    return rc;
}
