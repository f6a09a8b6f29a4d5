// utf8.h: UTF-8 decoding, encoding, validation, repair and counting (internal
// to the library). The one decoder and the one encoder every room uses.
#ifndef KILN_CORE_UTF8_H
#define KILN_CORE_UTF8_H

#include "kiln/core.h"

#include <stddef.h>
#include <stdint.h>

// Decodes the valid UTF-8 sequence at s[0..n) into *cp and returns its length
// (1-4), or 0 if there is none (n == 0, a stray or truncated sequence, an
// overlong form, a surrogate or beyond U+10FFFF). Inline: the text filters
// call it once a character.
static inline size_t utf8_decode(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) return 0;
    unsigned c = u[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t k;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) k = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) k = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) k = 4, min = 0x10000;
    else return 0;
    if (n < k) return 0;
    uint32_t v = c & (0x7Fu >> k);
    for (size_t i = 1; i < k; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (u[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return k;
}

// Python's str.isspace of one code point (bidirectional class WS, B or S, or
// category Zs): what datatrove and lm-evaluation-harness split and strip on.
static inline int utf8_isspace(uint32_t cp) {
    if (cp < 0x80) return (cp >= 9 && cp <= 13) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Writes code point cp as UTF-8 into out and returns its length (1-4); 0 (and
// nothing written) beyond U+10FFFF. Surrogates are encoded as given: callers
// that take code points from outside (\u escapes, &#...; references) check.
// Inline, as utf8_decode: the filters encode every character they lowercase.
static inline size_t utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
// Appends cp as UTF-8 (nothing beyond U+10FFFF); -1 when out of memory.
int utf8_put(KilnBuf *b, uint32_t cp);

// 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or values > U+10FFFF).
int utf8_valid(const char *s, size_t n);
// Code points in s[0..n) (bytes that do not continue a sequence; Python's len for valid UTF-8).
long utf8_chars(const char *s, size_t n);
// Copies s into out (cleared first) with every invalid byte sequence replaced by
// U+FFFD; returns the number of replacements, or -1 when out of memory.
long utf8_repair(const char *s, size_t n, KilnBuf *out);

#endif
