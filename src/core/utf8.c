// utf8.c: UTF-8 encoding, validation, repair (Python's errors="replace") and counting.
#include "core/utf8.h"

#include <string.h>

int utf8_put(KilnBuf *b, uint32_t cp) {
    char u[4];
    return kbuf_append(b, u, utf8_encode(cp, u));
}

int utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) { i++; continue; }
        size_t k = utf8_decode(s + i, n - i, &cp);
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
    uint32_t cp;
    kbuf_clear(out);
    if (kbuf_reserve(out, n)) return -1;
    size_t run = 0;  // start of the pending valid run
    for (size_t i = 0; i < n;) {
        size_t k = u[i] < 0x80 ? 1 : utf8_decode(s + i, n - i, &cp);
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
