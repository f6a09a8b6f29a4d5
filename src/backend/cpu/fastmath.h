// fastmath.h: exp for hot loops, branch-free so `omp simd` loops vectorize it
// (glibc's expf is a scalar call here). Cody-Waite range reduction, then a
// degree-6 polynomial on [-ln2/2, ln2/2]; error within 2 ulp of expf on
// [-87, 88] (tested in test_layers). Inputs are clamped to that range, so
// results never overflow to inf or underflow to denormals.
#ifndef KILN_FASTMATH_H
#define KILN_FASTMATH_H

#include <math.h>
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

// The normal CDF Phi(x) = erfc(-x/sqrt2)/2, branch-free (glibc's erff is a
// scalar call, 18% of the baby GPT's step with exact GELU): erfc by Numerical
// Recipes' erfcc, t exp(-z^2 + P(t)) with t = 1/(1 + |z|/2), relative error
// below 1.2e-7 in exact arithmetic, so Phi keeps a small relative error in
// the far negative tail where 1 + erf(x) would cancel (tested in test_layers).
// Compiled without -ffast-math: the splitting below relies on exact rounding.
static inline float fast_normal_cdf(float x) {
    float a = fabsf(x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.5f * a);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    // exp(p - z^2) with z^2 = x^2/2 from x itself, as exp(-xh^2/2) exp(p - xl
    // (x + xh)/2), xh = x cut to 12 bits: xh^2/2 is exact, so neither argument
    // carries the rounding of x/sqrt2 or of a square up to 72, each of which
    // would cost the result up to 1e-5 of itself
    float xh = (x * 4097.0f) - (x * 4097.0f - x), xl = x - xh;
    float erfc_a = t * fast_expf(-0.5f * xh * xh) * fast_expf(p - 0.5f * xl * (x + xh));
    float half = 0.5f * erfc_a;  // Phi(-|x|)
    float pos = x > 0.0f ? 1.0f : 0.0f;  // a select of constants, then arithmetic: gcc vectorizes this
    return half + pos * (1.0f - 2.0f * half);
}

#endif
