// utf8.c: UTF-8 validation, repair (Python's errors="replace") and counting.
#include "core/utf8.h"

#include <string.h>

// Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one.
size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) k = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) k = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) k = 4, min = 0x10000;
    else return 0;
    if (n < k) return 0;
    unsigned cp = c & (0x7F >> k);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
    return k;
}

int utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) { i++; continue; }
        size_t k = utf8_seq(u + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

// Bytes of the longest prefix of a valid sequence at s (at least 1): the
// "maximal subpart" that Unicode (and Python's errors="replace") turns into one
// U+FFFD.
static size_t utf8_bad_prefix(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 1;
    size_t i = 1;
    for (; i < k && i < n; i++) {
        unsigned lo = 0x80, hi = 0xBF;
        if (i == 1 && c == 0xE0) lo = 0xA0;
        if (i == 1 && c == 0xED) hi = 0x9F;
        if (i == 1 && c == 0xF0) lo = 0x90;
        if (i == 1 && c == 0xF4) hi = 0x8F;
        if (s[i] < lo || s[i] > hi) break;
    }
    return i;
}

long utf8_repair(const char *s, size_t n, KilnBuf *out) {
    const unsigned char *u = (const unsigned char *)s;
    long bad = 0;
    kbuf_clear(out);
    if (kbuf_reserve(out, n)) return -1;
    size_t run = 0;  // start of the pending valid run
    for (size_t i = 0; i < n;) {
        size_t k = u[i] < 0x80 ? 1 : utf8_seq(u + i, n - i);
        if (k) { i += k; continue; }
        if (kbuf_append(out, s + run, i - run) || kbuf_append(out, "\xEF\xBF\xBD", 3)) return -1;
        bad++;
        i += utf8_bad_prefix(u + i, n - i);
        run = i;
    }
    if (kbuf_append(out, s + run, n - run)) return -1;
    return bad;
}

long utf8_chars(const char *s, size_t n) {
    long c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}
