// rng.c: seeded, platform-independent random numbers (splitmix64 + xoshiro256**).
#include "kiln/core.h"

#include <math.h>
#include <time.h>

uint64_t kiln_hash64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void kiln_rng_seed(KilnRng *rng, uint64_t seed) {
    for (int i = 0; i < 4; i++) {
        seed = kiln_hash64(seed);
        rng->s[i] = seed;
    }
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kiln_rng_u64(KilnRng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float kiln_rng_uniform(KilnRng *rng) { return (float)(kiln_rng_u64(rng) >> 40) * 0x1.0p-24f; }

float kiln_rng_normal(KilnRng *rng) {
    // Box-Muller on doubles; u1 in (0,1] so log() is finite.
    double u1 = ((double)(kiln_rng_u64(rng) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(kiln_rng_u64(rng) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

double kiln_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
