// minhash.c: see minhash.h. Multiply-shift hashing keeps the per-shingle work to
// one 64-bit multiply-add per permutation, which vectorizes.
#include "data/dedup/minhash.h"

#include "kiln/core.h"

#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL  // short keys: a call into the shared library costs more than the hash
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

// Word bytes: ASCII letters and digits, and every non-ASCII byte.
static int word_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80; }

// XXH3 of every word, lowercased. A shingle's hash combines its words' hashes,
// so each byte of the text is read once, not once per shingle it is in (five
// times at ngram 5): shingling went from 80 to a few hundred MB/s.
static long word_hashes(const char *text, size_t n, uint64_t **out) {
    uint64_t *wh = malloc(sizeof(uint64_t) * (n / 2 + 1));  // a word and its separator take two bytes
    char *low = malloc(n + 1);
    if (!wh || !low) {
        free(wh);
        free(low);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        low[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    long k = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && !word_byte((unsigned char)low[i])) i++;
        if (i == n) break;
        size_t s = i;
        while (i < n && word_byte((unsigned char)low[i])) i++;
        wh[k++] = XXH3_64bits(low + s, i - s);
    }
    free(low);
    *out = wh;
    return k;
}

long minhash_shingles(const KilnMinHash *m, const char *text, size_t len, uint64_t **out) {
    uint64_t *wh;
    long nw = word_hashes(text, len, &wh);
    *out = NULL;
    if (nw < 0) return -1;
    long ns = nw == 0 ? 0 : nw < m->ngram ? 1 : nw - m->ngram + 1;
    uint64_t *h = malloc(sizeof(uint64_t) * (ns ? ns : 1));
    if (!h) {
        free(wh);
        return -1;
    }
    // the shingle: the hash of its words' hashes, in order
    for (long s = 0; s < ns; s++) {
        long last = s + m->ngram < nw ? s + m->ngram : nw;
        h[s] = XXH3_64bits(wh + s, sizeof(uint64_t) * (size_t)(last - s));
    }
    free(wh);
    *out = h;
    return ns;
}

int minhash_signature(const KilnMinHash *m, const char *text, size_t len, uint32_t *sig) {
    int P = m->num_perm;
    for (int i = 0; i < P; i++) sig[i] = UINT32_MAX;
    uint64_t *h;
    long ns = minhash_shingles(m, text, len, &h);
    if (ns < 0) return -1;
    // blocks of 16 permutations whose multipliers and minima stay in registers
    // while every shingle streams past (signatures 1.4x faster than shingle-outer loops)
    int i0 = 0;
    for (; i0 + 16 <= P; i0 += 16) {
        uint64_t a[16], b[16];
        uint32_t acc[16];
        memcpy(a, m->a + i0, sizeof a);
        memcpy(b, m->b + i0, sizeof b);
        memcpy(acc, sig + i0, sizeof acc);
        for (long s = 0; s < ns; s++) {
            uint64_t x = h[s];
#pragma omp simd
            for (int k = 0; k < 16; k++) {
                uint32_t v = (uint32_t)((a[k] * x + b[k]) >> 32);
                acc[k] = v < acc[k] ? v : acc[k];
            }
        }
        memcpy(sig + i0, acc, sizeof acc);
    }
    for (long s = 0; s < ns; s++)  // the remaining permutations
        for (int i = i0; i < P; i++) {
            uint32_t v = (uint32_t)((m->a[i] * h[s] + m->b[i]) >> 32);
            sig[i] = v < sig[i] ? v : sig[i];
        }
    free(h);
    return 0;
}

double minhash_similarity(const uint32_t *a, const uint32_t *b, int num_perm) {
    int eq = 0;
    for (int i = 0; i < num_perm; i++) eq += a[i] == b[i];
    return (double)eq / num_perm;
}
