// jsonl.c: the text field of a JSONL line, with its exact length. cJSON ends
// strings at a NUL, but "\u0000" is valid JSON and text may hold it.
#include "kiln/core.h"

#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

// Decodes the JSON string starting at s[i] == '"'; returns the index after it, or 0.
// out (if not NULL) must hold the raw length; lone surrogates become U+FFFD.
static size_t parse_string(const char *s, size_t n, size_t i, char *out, size_t *len) {
    size_t o = 0;
    for (i++; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            if (len) *len = o;
            return i + 1;
        }
        if ((unsigned char)c < 0x20) return 0;
        if (c != '\\') {
            if (out) out[o] = c;
            o++;
            continue;
        }
        if (++i >= n) return 0;
        char e = s[i], lit = 0;
        switch (e) {
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case '/': lit = '/'; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (i + 4 >= n || hex4(s + i + 1, &cp)) return 0;
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < n && s[i + 1] == '\\' && s[i + 2] == 'u' &&
                !hex4(s + i + 3, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            char buf[4];
            size_t k = utf8_encode(cp, buf);
            if (out) memcpy(out + o, buf, k);
            o += k;
            continue;
        }
        default: return 0;
        }
        if (out) out[o] = lit;
        o++;
    }
    return 0;
}

// Index after the JSON value at s[i], or 0 if malformed.
static size_t skip_value(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    if (s[i] == '"') return parse_string(s, n, i, NULL, NULL);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        for (; i < n; i++) {
            if (s[i] == '"') {
                size_t j = parse_string(s, n, i, NULL, NULL);
                if (!j) return 0;
                i = j - 1;
            } else if (s[i] == '{' || s[i] == '[') {
                depth++;
            } else if ((s[i] == '}' || s[i] == ']') && --depth == 0) {
                return i + 1;
            }
        }
        return 0;
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') i++;
    return i;
}

int kiln_json_fields(const char *s, size_t n, const char *const *names, int nnames, size_t (*spans)[2]) {
    for (int k = 0; k < nnames; k++) spans[k][0] = spans[k][1] = 0;
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return -1;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}') return skip_ws(s, n, i + 1) == n ? 0 : -1;
    while (i < n && s[i] == '"') {
        size_t klen, kend = parse_string(s, n, i, NULL, &klen);
        if (!kend) return -1;
        int which = -1;
        for (int k = 0; k < nnames && which < 0; k++) {
            size_t flen = strlen(names[k]);
            // keys without escapes compare in place; escaped keys are decoded
            if (klen == flen && kend - i - 2 == flen && !memcmp(s + i + 1, names[k], flen)) which = k;
            else if (klen == flen && kend - i - 2 != flen) {
                char key[256];
                if (kend - i <= sizeof key) {
                    parse_string(s, n, i, key, &klen);
                    if (!memcmp(key, names[k], flen)) which = k;
                }
            }
        }
        i = skip_ws(s, n, kend);
        if (i >= n || s[i] != ':') return -1;
        i = skip_ws(s, n, i + 1);
        size_t end = skip_value(s, n, i);
        if (!end || end == i) return -1;
        if (which >= 0) spans[which][0] = i, spans[which][1] = end;
        i = skip_ws(s, n, end);
        if (i < n && s[i] == ',') {
            i = skip_ws(s, n, i + 1);
            if (i >= n || s[i] != '"') return -1;
        } else if (i < n && s[i] == '}') {
            return skip_ws(s, n, i + 1) == n ? 0 : -1;
        } else {
            return -1;
        }
    }
    return -1;
}

int kiln_json_string(const char *s, size_t n, char *out, size_t *len) {
    if (n < 2 || s[0] != '"') return -1;
    return parse_string(s, n, 0, out, len) == n ? 0 : -1;
}
