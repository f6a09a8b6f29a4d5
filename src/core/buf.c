// buf.c: growable byte strings and JSON string escaping.
#include "kiln/core.h"

#include "core/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kbuf_reserve(KilnBuf *b, size_t cap) {
    if (cap + 1 <= b->cap) return 0;
    size_t c = b->cap ? b->cap : 64;
    while (c < cap + 1) c *= 2;
    char *d = realloc(b->data, c);
    if (!d) return -1;
    b->data = d;
    b->cap = c;
    b->data[b->len] = 0;
    return 0;
}

int kbuf_append(KilnBuf *b, const void *p, size_t n) {
    if (kbuf_reserve(b, b->len + n)) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int kbuf_puts(KilnBuf *b, const char *s) { return kbuf_append(b, s, strlen(s)); }
int kbuf_putc(KilnBuf *b, char c) { return kbuf_append(b, &c, 1); }

int kbuf_printf(KilnBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || kbuf_reserve(b, b->len + (size_t)n)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int kbuf_set(KilnBuf *b, const void *p, size_t n) {
    kbuf_clear(b);
    return kbuf_append(b, p, n);
}

void kbuf_clear(KilnBuf *b) {
    b->len = 0;
    if (b->data) b->data[0] = 0;
}

void kbuf_swap(KilnBuf *a, KilnBuf *b) {
    KilnBuf t = *a;
    *a = *b;
    *b = t;
}

void kbuf_free(KilnBuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

int kbuf_json_escape(KilnBuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    if (kbuf_reserve(b, b->len + n + n / 8 + 16)) return -1;
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        const char *esc = NULL;
        char tmp[8];
        size_t skip = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\t') esc = "\\t";
        else if (c == '\r') esc = "\\r";
        else if (c < 0x20 || c == 0x7F) {
            tmp[0] = '\\', tmp[1] = 'u', tmp[2] = '0', tmp[3] = '0';
            tmp[4] = hex[c >> 4], tmp[5] = hex[c & 15], tmp[6] = 0;
            esc = tmp;
        } else if (c >= 0x80) {
            uint32_t cp;
            size_t k = utf8_decode(s + i, n - i, &cp);
            if (k) { i += k; continue; }
            esc = "\xEF\xBF\xBD";
        } else {
            i++;
            continue;
        }
        if (kbuf_append(b, s + run, i - run) || kbuf_puts(b, esc)) return -1;
        i += skip;
        run = i;
    }
    return kbuf_append(b, s + run, n - run);
}

int kbuf_json_str(KilnBuf *b, const char *s) {
    return kbuf_putc(b, '"') || kbuf_json_escape(b, s, strlen(s)) || kbuf_putc(b, '"');
}
