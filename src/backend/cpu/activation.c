// activation.c: MLP nonlinearities, each forward beside its backward.
#include "backend/backend.h"

#include "backend/cpu/fastmath.h"

#include <math.h>
#include <omp.h>

#define GELU_K 0.7978845608028654f  // sqrt(2/pi)

// GELU, tanh approximation (GPT-2): inp (n) -> out (n)
// 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
void gelu_forward(float *out, const float *inp, long n) {
#pragma omp parallel for simd if (parallel : !omp_in_parallel())
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x * fast_sigmoidf(2.0f * GELU_K * (x + 0.044715f * x * x * x));
    }
}

// d/dx = s + 2 x s (1 - s) u'(x), s = sigmoid(2u)
void gelu_backward(float *dinp, const float *inp, const float *dout, long n) {
#pragma omp parallel for simd
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float s = fast_sigmoidf(2.0f * GELU_K * (x + 0.044715f * x * x * x));
        float g = s + 2.0f * x * s * (1.0f - s) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = g * dout[i];
    }
}

// GELU, exact: x * Phi(x) (torch.nn.GELU() default)
void gelu_erf_forward(float *out, const float *inp, long n) {
#pragma omp parallel for simd if (parallel : !omp_in_parallel())
    for (long i = 0; i < n; i++) out[i] = inp[i] * fast_normal_cdf(inp[i]);
}

void gelu_erf_backward(float *dinp, const float *inp, const float *dout, long n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp parallel for simd
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        dinp[i] = (fast_normal_cdf(x) + x * inv_sqrt_2pi * fast_expf(-0.5f * x * x)) * dout[i];
    }
}

void relu_forward(float *out, const float *inp, long n) {
#pragma omp parallel for simd if (parallel : !omp_in_parallel())
    for (long i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, const float *inp, const float *dout, long n) {
#pragma omp parallel for simd
    for (long i = 0; i < n; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
}

// SwiGLU: inp (N, 2H) = [gate | up] -> out (N,H) = silu(gate) * up
void swiglu_forward(float *out, const float *inp, int N, int H) {
#pragma omp parallel for if (parallel : !omp_in_parallel())
    for (long n = 0; n < N; n++) {
        const float *g = inp + n * 2 * H, *u = g + H;
        float *o = out + n * H;
#pragma omp simd
        for (int j = 0; j < H; j++) o[j] = g[j] * fast_sigmoidf(g[j]) * u[j];
    }
}

// dout (N,H) -> dinp (N,2H)
void swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int H) {
#pragma omp parallel for
    for (long n = 0; n < N; n++) {
        const float *g = inp + n * 2 * H, *u = g + H, *d = dout + n * H;
        float *dg = dinp + n * 2 * H, *du = dg + H;
#pragma omp simd
        for (int j = 0; j < H; j++) {
            float s = fast_sigmoidf(g[j]);
            float silu = g[j] * s;
            du[j] = d[j] * silu;
            dg[j] = d[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
        }
    }
}
