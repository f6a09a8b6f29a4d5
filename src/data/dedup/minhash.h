// minhash.h: MinHash signatures of documents over word n-gram shingles, the
// building block of near-duplicate detection (issue 4's dedup stage).
//
//   text -> words (lowercased ASCII letters, digits and any non-ASCII byte runs;
//           punctuation and whitespace separate words) -> n-grams of words ->
//           64-bit hash per shingle -> per permutation i the minimum of
//           (a_i * h + b_i) >> 32 over the shingles (multiply-shift hashing)
// Two signatures agree in a position with probability equal to the Jaccard
// similarity of the shingle sets.
#ifndef KILN_MINHASH_H
#define KILN_MINHASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int num_perm;  // signature length (datatrove's default: 112 = 14 bands x 8 rows)
    int ngram;     // words per shingle (datatrove's default: 5)
    uint64_t *a, *b;
} KilnMinHash;

int minhash_init(KilnMinHash *m, int num_perm, int ngram, uint64_t seed);
void minhash_free(KilnMinHash *m);
// sig receives num_perm values; a text with fewer words than ngram has one shingle
// (all its words), an empty text the all-ones signature. -1 when out of memory.
int minhash_signature(const KilnMinHash *m, const char *text, size_t len, uint32_t *sig);
// Fraction of equal positions: the Jaccard estimate.
double minhash_similarity(const uint32_t *a, const uint32_t *b, int num_perm);
// The shingle hashes minhash_signature uses (malloc'd, may repeat), for exact Jaccard.
long minhash_shingles(const KilnMinHash *m, const char *text, size_t len, uint64_t **out);

#endif
