// dedup_norm.c: datatrove's simplify_text in one pass over the bytes (an ASCII
// table for the common case, utf8proc for the rest), used to hash documents and
// lines for deduplication.
#include "data/dedup/dedup.h"

#include "core/utf8.h"

#include <utf8proc.h>

enum { C_KEEP, C_DIGIT, C_SPACE, C_DROP, C_UTF8 };

// What one ASCII byte is: kept (letters, lowercased), a digit, whitespace (as
// Python's str.isspace: \t\n\v\f\r, 0x1c-0x1f, space) or dropped (controls and
// punctuation/symbols, as datatrove's PUNCTUATION list holds all 32 of them);
// bytes from 0x80 start or continue UTF-8 sequences.
static const unsigned char BYTE_CLASS[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2,
    2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3,
    3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3,
    3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
    4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

static int cp_space(utf8proc_int32_t cp) {
    if (cp == 0x85) return 1;
    utf8proc_category_t k = utf8proc_category(cp);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

static int cp_drop(utf8proc_int32_t cp) {
    utf8proc_category_t k = utf8proc_category(cp);
    return k == UTF8PROC_CATEGORY_CC || (k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO);
}

typedef struct {
    KilnBuf *out;
    int in_space;   // the previous input character was whitespace
    int in_digits;  // the last emitted character is a digit run's "0"
} Norm;

static int emit_space(Norm *z) {
    z->in_digits = 0;
    if (z->in_space) return 0;
    z->in_space = 1;
    return z->out->len ? kbuf_putc(z->out, ' ') : 0;  // no leading space
}

static int emit_digit(Norm *z) {
    z->in_space = 0;
    if (z->in_digits) return 0;
    z->in_digits = 1;
    return kbuf_putc(z->out, '0');
}

// A non-ASCII code point: lowercase, decompose, drop combining marks.
static int emit_cp(Norm *z, utf8proc_int32_t cp) {
    if (cp_space(cp)) return emit_space(z);
    z->in_space = 0;
    if (cp_drop(cp)) return 0;
    utf8proc_int32_t dec[16];
    int last = 0;
    utf8proc_ssize_t nd = utf8proc_decompose_char(utf8proc_tolower(cp), dec, 16, UTF8PROC_DECOMPOSE, &last);
    if (nd < 0 || nd > 16) {  // cannot happen for valid code points; keep the character
        dec[0] = cp;
        nd = 1;
    }
    for (utf8proc_ssize_t i = 0; i < nd; i++) {
        utf8proc_category_t k = utf8proc_category(dec[i]);
        if (k == UTF8PROC_CATEGORY_MN) continue;
        if (k == UTF8PROC_CATEGORY_ND) {
            if (emit_digit(z)) return -1;
            continue;
        }
        z->in_digits = 0;
        if (utf8_put(z->out, (uint32_t)dec[i])) return -1;
    }
    return 0;
}

int dedup_normalize(const char *s, size_t n, KilnBuf *out) {
    kbuf_clear(out);
    if (kbuf_reserve(out, n)) return -1;
    Norm z = {out, 1, 0};
    const unsigned char *u = (const unsigned char *)s;
    // ASCII is written in place (it never makes the output longer than the
    // input, and room for the input was reserved), with the length in a local
    char *o = out->data;
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        switch (BYTE_CLASS[u[i]]) {
        case C_KEEP:  // a run of letters
            do o[len++] = (char)(u[i++] | 0x20);
            while (i < n && BYTE_CLASS[u[i]] == C_KEEP);
            z.in_space = z.in_digits = 0;
            break;
        case C_DIGIT:
            i++;
            z.in_space = 0;
            if (!z.in_digits) o[len++] = '0';
            z.in_digits = 1;
            break;
        case C_SPACE:
            i++;
            z.in_digits = 0;
            if (!z.in_space && len) o[len++] = ' ';  // no leading space
            z.in_space = 1;
            break;
        case C_DROP:
            i++;
            z.in_space = 0;
            break;
        default: {
            uint32_t cp;
            size_t k = utf8_decode(s + i, n - i, &cp);
            if (!k) {  // invalid byte: dropped like a control character
                i++;
                z.in_space = 0;
                break;
            }
            i += k;
            out->len = len;
            if (emit_cp(&z, (utf8proc_int32_t)cp)) return -1;
            // a decomposition may have grown the output: room again for the rest
            if (out->len + (n - i) + 1 > out->cap && kbuf_reserve(out, out->len + (n - i))) return -1;
            o = out->data;
            len = out->len;
        }
        }
    }
    while (len && o[len - 1] == ' ') len--;
    out->len = len;
    o[len] = 0;
    return 0;
}
