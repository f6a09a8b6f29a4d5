// filter_text.c: text primitives of the quality filters (see filter_text.h).
#include "data/stage/filter_text.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

uint32_t ft_decode_back(const char *s, size_t end, size_t *start) {
    size_t b = end - 1;
    // back over at most three continuation bytes to a lead byte
    while (b > 0 && end - b < 4 && ((unsigned char)s[b] & 0xC0) == 0x80) b--;
    uint32_t cp;
    if (ft_decode(s + b, end - b, &cp) == end - b) {
        *start = b;
        return cp;
    }
    *start = end - 1;  // not a whole sequence: the last byte alone
    ft_decode(s + end - 1, 1, &cp);
    return cp;
}

int ft_is_linebreak(uint32_t cp) {
    return (cp >= 0x0A && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1E) || cp == 0x85 || cp == 0x2028 ||
           cp == 0x2029;
}

int ft_is_alpha(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

int ft_is_digit(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_ND;
}

// datatrove's PUNCTUATION beyond ASCII punctuation and the C0/C1 controls
static const uint32_t PUNCT_WIDE[] = {
    0x00AB, 0x00B4, 0x00BB, 0x2013, 0x2014, 0x2019, 0x201C, 0x201D, 0x201E, 0x2026, 0x2236, 0x2501, 0x25BA,
    0x3001, 0x3002, 0x3008, 0x3009, 0x300A, 0x300B, 0x300C, 0x300D, 0x3010, 0x3011, 0xFF01, 0xFF05, 0xFF08,
    0xFF09, 0xFF0C, 0xFF0E, 0xFF11, 0xFF1A, 0xFF1B, 0xFF1F, 0xFF5E,
};

int ft_in_punct_set(uint32_t cp) {
    if (cp < 0x80) {
        if (cp == 9 || cp == 10 || cp == 32) return 0;  // tab and newline are not in it, space neither
        if (cp < 32 || cp == 127) return 1;
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
    }
    if (cp < 160) return 1;
    for (size_t i = 0; i < sizeof PUNCT_WIDE / sizeof PUNCT_WIDE[0]; i++)
        if (PUNCT_WIDE[i] == cp) return 1;
    return 0;
}

size_t ft_cps(const char *s, size_t n) {
    size_t c = 0, i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
        } else {
            uint32_t cp;
            i += ft_decode(s + i, n - i, &cp);  // an invalid byte is one U+FFFD
        }
        c++;
    }
    return c;
}

size_t ft_lstrip(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = ft_decode(s + i, n - i, &cp);
        if (!utf8_isspace(cp)) break;
        i += k;
    }
    return i;
}

size_t ft_rstrip(const char *s, size_t n) {
    size_t e = n;
    while (e > 0) {
        size_t b;
        if (!utf8_isspace(ft_decode_back(s, e, &b))) break;
        e = b;
    }
    return e;
}

void ft_strip(const char *s, size_t n, size_t *b, size_t *e) {
    *b = ft_lstrip(s, n);
    *e = *b == n ? n : ft_rstrip(s, n);
}

int ft_next_line(const char *s, size_t n, size_t *pos, size_t *ls, size_t *le) {
    size_t i = *pos;
    if (i >= n) return 0;
    *ls = i;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E)) {
            *le = i;
            *pos = i + (c == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1);
            return 1;
        }
        if (c >= 0x80) {
            uint32_t cp;
            size_t k = ft_decode(s + i, n - i, &cp);
            if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
                *le = i;
                *pos = i + k;
                return 1;
            }
            i += k;
        } else {
            i++;
        }
    }
    *le = n;
    *pos = n;
    return 1;
}

// ---------------------------------------------------------------- tokenizer
enum { C_SPACE, C_PUNCT, C_WORD };

// ASCII: bits 0-1 the class (C_SPACE, C_PUNCT, C_WORD), 4: FT_NONSYM << 2, 8: FT_ALPHA << 2
static const uint8_t ASCII_INFO[128] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 0, 0, 0, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0,
    4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 1, 1, 1, 1, 1, 1,
    1, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 1, 1, 1, 1, 1,
    1, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14,
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 1, 1, 1, 1, 1,
};

static inline int char_class(uint32_t cp) {
    if (cp < 0x80) return ASCII_INFO[cp] & 3;  // ASCII punctuation, symbols and controls are C_PUNCT
    if (utf8_isspace(cp)) return C_SPACE;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    if ((c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_SO) || c == UTF8PROC_CATEGORY_CC) return C_PUNCT;
    return C_WORD;
}

// Adds the flags of one code point of a token.
static inline uint32_t cp_flags(uint32_t cp) {
    if (cp < 0x80) return (uint32_t)ASCII_INFO[cp] >> 2;
    uint32_t f = 0;
    if (!ft_in_punct_set(cp)) f |= FT_NONSYM;
    if (ft_is_alpha(cp)) f |= FT_ALPHA;
    return f;
}

static int push_token(KilnBuf *out, size_t off, size_t len, uint32_t cps, uint32_t flags) {
    if (out->len + sizeof(FtToken) + 1 > out->cap && kbuf_reserve(out, out->len + sizeof(FtToken) * 64)) return -1;
    FtToken t = {(uint32_t)off, (uint32_t)len, cps, flags};
    memcpy(out->data + out->len, &t, sizeof t);
    out->len += sizeof t;
    return 0;
}

static int is_apostrophe(uint32_t cp) { return cp == '\'' || cp == 0x2019; }

// Code point class at s[i..n), or C_SPACE past the end.
static int class_at(const char *s, size_t n, size_t i) {
    if (i >= n) return C_SPACE;
    uint32_t cp;
    ft_decode(s + i, n - i, &cp);
    return char_class(cp);
}

// An English clitic at s[i] (an apostrophe): 's 'm 'd 'll 're 've ending the
// word. NLTK splits these off as tokens of their own.
static int is_clitic(const char *s, size_t n, size_t i, size_t k) {
    static const char *const CL[] = {"s", "m", "d", "ll", "re", "ve"};
    for (size_t c = 0; c < sizeof CL / sizeof CL[0]; c++) {
        size_t m = strlen(CL[c]), j = 0;
        while (j < m && i + k + j < n && (s[i + k + j] | 0x20) == CL[c][j]) j++;
        if (j == m && class_at(s, n, i + k + m) != C_WORD) return 1;
    }
    return 0;
}

static int is_abbreviation(const char *w, size_t n);

static uint32_t span_flags(const char *s, size_t b, size_t e) {
    uint32_t f = 0, cp;
    for (size_t i = b; i < e;) {
        i += ft_decode(s + i, e - i, &cp);
        f |= cp_flags(cp);
    }
    return f;
}

long ft_tokenize(const char *s, size_t n, KilnBuf *out) {
    kbuf_clear(out);
    if (n >= UINT32_MAX) return -1;
    if (kbuf_reserve(out, (n / 4 + 16) * sizeof(FtToken))) return -1;
    size_t i = 0;
    long count = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = ft_decode(s + i, n - i, &cp);
        int cls = char_class(cp);
        if (cls == C_SPACE) {
            i += k;
            continue;
        }
        // an apostrophe before a word starts that word ('s, 'Tis), as NLTK keeps it
        if (cls == C_PUNCT && is_apostrophe(cp) && class_at(s, n, i + k) == C_WORD) cls = C_WORD;
        size_t start = i;
        uint32_t cps = 1, flags = cp_flags(cp);
        i += k;
        if (cls == C_PUNCT) {
            if (cp == '.' || cp == '-')  // "..." and "--" are one token
                while (i < n && s[i] == (char)cp) i++, cps++;
        } else {
            while (i < n) {
                size_t k2 = ft_decode(s + i, n - i, &cp);
                int c2 = char_class(cp);
                if (c2 == C_SPACE) break;
                if (c2 == C_PUNCT) {
                    int next = class_at(s, n, i + k2);
                    if (is_apostrophe(cp) && next == C_WORD) {
                        if (is_clitic(s, n, i, k2)) break;  // John | 's
                        // do | n't
                        if (i - start >= 2 && (s[i - 1] | 0x20) == 'n' && (s[i + k2] | 0x20) == 't' &&
                            class_at(s, n, i + k2 + 1) != C_WORD) {
                            i--;
                            cps--;
                            flags = span_flags(s, start, i);
                            break;
                        }
                    }
                    if (next != C_WORD) {
                        // the period of an abbreviation or initial inside a sentence stays ("U.S.", "No.")
                        if (cp == '.' && next == C_SPACE && ft_lstrip(s + i + 1, n - i - 1) < n - i - 1 &&
                            is_abbreviation(s + start, i - start)) {
                            i++;
                            cps++;
                        }
                        break;
                    }
                }
                flags |= cp_flags(cp);
                cps++;
                i += k2;
            }
        }
        if (push_token(out, start, i - start, cps, flags)) return -1;
        count++;
    }
    return count;
}

// ---------------------------------------------------------------- sentences
static const char *const ABBREVIATIONS[] = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "fig", "no", "inc", "ltd",
    "co", "corp", "al", "mt", "gen", "gov", "col", "lt", "sgt", "capt", "rev", "u.s", "a.m", "p.m", "cf", "approx",
};

static int is_abbreviation(const char *w, size_t n) {
    if (n == 1) return ft_is_alpha((unsigned char)w[0]);  // an initial
    if (n <= 8 && memchr(w, '.', n) && ft_is_alpha((unsigned char)w[n - 1])) return 1;  // "U.S", "e.g", "A.H"
    for (size_t i = 0; i < sizeof ABBREVIATIONS / sizeof ABBREVIATIONS[0]; i++) {
        const char *a = ABBREVIATIONS[i];
        size_t an = strlen(a), j = 0;
        if (an != n) continue;
        while (j < n && (w[j] | 0x20) == a[j]) j++;
        if (j == n) return 1;
    }
    return 0;
}

static int is_closer(unsigned char c) { return c == '"' || c == '\'' || c == ')' || c == ']'; }

size_t ft_sentence_end(const char *s, size_t n, size_t pos) {
    size_t i = pos;
    while (i < n) {
        char c = s[i];
        if (c != '.' && c != '!' && c != '?') {
            i++;
            continue;
        }
        size_t run = i;
        while (i < n && (s[i] == '.' || s[i] == '!' || s[i] == '?')) i++;
        int single_dot = i - run == 1 && c == '.';
        for (;;) {  // closing quotes and brackets, ASCII or ’ ” »
            if (i < n && is_closer((unsigned char)s[i])) {
                i++;
                continue;
            }
            uint32_t cp;
            if (i < n && (unsigned char)s[i] >= 0x80) {
                size_t k = ft_decode(s + i, n - i, &cp);
                if (cp == 0x2019 || cp == 0x201D || cp == 0x00BB) {
                    i += k;
                    continue;
                }
            }
            break;
        }
        size_t end = i;
        if (i >= n) return n;
        uint32_t cp;
        size_t k = ft_decode(s + i, n - i, &cp);
        if (!utf8_isspace(cp)) continue;  // "3.14", "e.g.x": not a break
        // the word before the run, for abbreviations
        if (single_dot) {
            size_t w = run;
            while (w > pos && !utf8_isspace((unsigned char)s[w - 1])) w--;
            if (is_abbreviation(s + w, run - w)) continue;
        }
        i += k;
        while (i < n) {
            k = ft_decode(s + i, n - i, &cp);
            if (!utf8_isspace(cp)) break;
            i += k;
        }
        if (i >= n) return n;
        if (cp < 0x80 ? (cp >= 'a' && cp <= 'z') : utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_LL)
            continue;  // lowercase next: the sentence goes on
        return end;
    }
    return n;
}

long ft_count_sentences(const char *s, size_t n) {
    long count = 0;
    size_t pos = 0;
    while (pos < n) {
        size_t e = ft_sentence_end(s, n, pos);
        if (ft_lstrip(s + pos, e - pos) < e - pos) count++;
        pos = e;
    }
    return count;
}

// ---------------------------------------------------------------- string map
static uint64_t key_hash(const char *s, size_t n) { return XXH3_64bits(s, n); }

int ft_strmap_build(FtStrMap *m, const char *const *keys, const size_t *klens, const int *vals, size_t n) {
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    m->hash = calloc(cap, sizeof *m->hash);
    m->slot = malloc(cap * sizeof *m->slot);
    m->keys = calloc(n ? n : 1, sizeof *m->keys);
    m->klen = calloc(n ? n : 1, sizeof *m->klen);
    m->vals = calloc(n ? n : 1, sizeof *m->vals);
    if (!m->hash || !m->slot || !m->keys || !m->klen || !m->vals) goto oom;
    m->mask = cap - 1;
    for (size_t i = 0; i < cap; i++) m->slot[i] = -1;
    for (size_t i = 0; i < n; i++) {
        if (ft_strmap_get(m, keys[i], klens[i]) >= 0) continue;
        char *k = malloc(klens[i] + 1);
        if (!k) goto oom;
        memcpy(k, keys[i], klens[i]);
        k[klens[i]] = 0;
        uint64_t h = key_hash(k, klens[i]);
        size_t p = h & m->mask;
        while (m->slot[p] >= 0) p = (p + 1) & m->mask;
        m->keys[m->n] = k;
        m->klen[m->n] = klens[i];
        m->vals[m->n] = vals[i];
        m->hash[p] = h;
        m->slot[p] = (int32_t)m->n++;
    }
    return 0;
oom:
    ft_strmap_free(m);
    return -1;
}

void ft_strmap_free(FtStrMap *m) {
    if (m->keys)
        for (size_t i = 0; i < m->n; i++) free(m->keys[i]);
    free(m->hash);
    free(m->slot);
    free(m->keys);
    free(m->klen);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

int ft_strmap_get(const FtStrMap *m, const char *s, size_t n) {
    if (!m->slot) return -1;
    uint64_t h = key_hash(s, n);
    for (size_t p = h & m->mask; m->slot[p] >= 0; p = (p + 1) & m->mask) {
        int32_t i = m->slot[p];
        if (m->hash[p] == h && m->klen[i] == n && !memcmp(m->keys[i], s, n)) return m->vals[i];
    }
    return -1;
}
