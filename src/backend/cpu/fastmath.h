// fastmath.h: exp for hot loops, branch-free so `omp simd` loops vectorize it
// (glibc's expf is a scalar call here). Cody-Waite range reduction, then a
// degree-6 polynomial on [-ln2/2, ln2/2]; error within 2 ulp of expf on
// [-87, 88] (tested in test_layers). Inputs are clamped to that range, so
// results never overflow to inf or underflow to denormals.
#ifndef KILN_FASTMATH_H
#define KILN_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    // k = round(x / ln2) by the 1.5 * 2^23 trick (round to nearest, no libm call)
    float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - k * 0.693145751953125f;    // ln2, high part (exact product)
    r = r - k * 1.428606765330187045e-6f;   // ln2, low part
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23;  // 2^k
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float fast_sigmoidf(float x) { return 1.0f / (1.0f + fast_expf(-x)); }

#endif
