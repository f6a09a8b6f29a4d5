// minhash.c: see minhash.h. Multiply-shift hashing keeps the per-shingle work to
// one 64-bit multiply-add per permutation, which vectorizes.
#include "kiln/minhash.h"

#include "kiln/core.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int minhash_init(KilnMinHash *m, int num_perm, int ngram, uint64_t seed) {
    memset(m, 0, sizeof *m);
    if (num_perm < 1 || ngram < 1) return -1;
    m->num_perm = num_perm;
    m->ngram = ngram;
    m->a = malloc(sizeof(uint64_t) * num_perm);
    m->b = malloc(sizeof(uint64_t) * num_perm);
    if (!m->a || !m->b) {
        minhash_free(m);
        return -1;
    }
    KilnRng r;
    kiln_rng_seed(&r, seed);
    for (int i = 0; i < num_perm; i++) {
        m->a[i] = kiln_rng_u64(&r) | 1;  // odd multipliers
        m->b[i] = kiln_rng_u64(&r);
    }
    return 0;
}

void minhash_free(KilnMinHash *m) {
    free(m->a);
    free(m->b);
    memset(m, 0, sizeof *m);
}

static int word_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80; }

// Word boundaries: starts and ends of the runs of word bytes.
static long split_words(const char *t, size_t n, size_t **start, size_t **end) {
    long cap = 64, k = 0;
    *start = malloc(sizeof(size_t) * cap);
    *end = malloc(sizeof(size_t) * cap);
    for (size_t i = 0; i < n && *start && *end;) {
        while (i < n && !word_byte((unsigned char)t[i])) i++;
        if (i == n) break;
        size_t s = i;
        while (i < n && word_byte((unsigned char)t[i])) i++;
        if (k == cap) {
            cap *= 2;
            *start = realloc(*start, sizeof(size_t) * cap);
            *end = realloc(*end, sizeof(size_t) * cap);
            if (!*start || !*end) return -1;
        }
        (*start)[k] = s;
        (*end)[k++] = i;
    }
    return *start && *end ? k : -1;
}

long minhash_shingles(const KilnMinHash *m, const char *text, size_t len, uint64_t **out) {
    size_t *ws, *we;
    long nw = split_words(text, len, &ws, &we);
    *out = NULL;
    if (nw < 0) {
        free(ws);
        free(we);
        return -1;
    }
    long ns = nw == 0 ? 0 : nw < m->ngram ? 1 : nw - m->ngram + 1;
    uint64_t *h = malloc(sizeof(uint64_t) * (ns ? ns : 1));
    char *buf = malloc(len + (size_t)m->ngram + 1);
    if (!h || !buf) {
        free(h);
        free(buf);
        free(ws);
        free(we);
        return -1;
    }
    for (long s = 0; s < ns; s++) {
        // the shingle: its words lowercased, joined by one space
        size_t o = 0;
        long last = s + m->ngram < nw ? s + m->ngram : nw;
        for (long w = s; w < last; w++) {
            if (w > s) buf[o++] = ' ';
            for (size_t i = ws[w]; i < we[w]; i++) {
                char c = text[i];
                buf[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            }
        }
        h[s] = XXH3_64bits(buf, o);
    }
    free(buf);
    free(ws);
    free(we);
    *out = h;
    return ns;
}

int minhash_signature(const KilnMinHash *m, const char *text, size_t len, uint32_t *sig) {
    int P = m->num_perm;
    for (int i = 0; i < P; i++) sig[i] = UINT32_MAX;
    uint64_t *h;
    long ns = minhash_shingles(m, text, len, &h);
    if (ns < 0) return -1;
    const uint64_t *a = m->a, *b = m->b;
    for (long s = 0; s < ns; s++) {
        uint64_t x = h[s];
#pragma omp simd
        for (int i = 0; i < P; i++) {
            uint32_t v = (uint32_t)((a[i] * x + b[i]) >> 32);
            sig[i] = v < sig[i] ? v : sig[i];
        }
    }
    free(h);
    return 0;
}

double minhash_similarity(const uint32_t *a, const uint32_t *b, int num_perm) {
    int eq = 0;
    for (int i = 0; i < num_perm; i++) eq += a[i] == b[i];
    return (double)eq / num_perm;
}
