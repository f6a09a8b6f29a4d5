// precision.c: bf16 rounding for mixed precision (train.precision: bf16).
// A bf16 value is an fp32 value whose low 16 bits are zero; rounding to it
// and keeping the result in an fp32 slot lets fp32 sgemm compute bf16
// products exactly (8-bit x 8-bit significands fit fp32's 24) with fp32
// accumulation: the numbers a bf16 kernel (vdpbf16ps, oneDNN) gives.
#include "backend/backend.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

// Round to nearest, ties to even, as torch's float -> bfloat16 conversion
// (c10::round_to_nearest_even): NaN becomes torch's quiet NaN 0x7fc0 (its
// payload could otherwise carry into the exponent and make an infinity), a
// finite value past bf16's largest rounds to infinity.
static inline float bf16_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? 0x7fc00000u : (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &r, sizeof x);
    return x;
}

float bf16_round_value(float x) { return bf16_of(x); }

void bf16_round(float *x, long n) {
#pragma omp parallel for simd if (parallel : n > 4096 && !omp_in_parallel())
    for (long i = 0; i < n; i++) x[i] = bf16_of(x[i]);
}

void bf16_round_copy(float *dst, const float *src, long n) {
#pragma omp parallel for simd if (parallel : n > 4096 && !omp_in_parallel())
    for (long i = 0; i < n; i++) dst[i] = bf16_of(src[i]);
}

void bf16_pack(uint16_t *dst, const float *src, long n) {
#pragma omp parallel for simd if (parallel : n > 4096 && !omp_in_parallel())
    for (long i = 0; i < n; i++) {
        float r = bf16_of(src[i]);
        uint32_t u;
        memcpy(&u, &r, sizeof u);
        dst[i] = (uint16_t)(u >> 16);
    }
}
