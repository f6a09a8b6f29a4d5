// rope.c: rotary position embeddings, "rotate half" convention (HF Llama, GPT-NeoX):
// channel i pairs with channel i + HD/2 within each head.
#include "backend/backend.h"

#include <math.h>
#include <omp.h>

void rope_tables(float *cos_t, float *sin_t, int block_size, int HD, float theta) {
    int half = HD / 2;
    for (int t = 0; t < block_size; t++) {
        for (int i = 0; i < half; i++) {
            double freq = pow((double)theta, -2.0 * i / HD);
            double a = (double)t * freq;
            cos_t[t * half + i] = (float)cos(a);
            sin_t[t * half + i] = (float)sin(a);
        }
    }
}

// Rotates each q head and k head of row (b,t) by angle t*freq; sign = +1 forward, -1 backward.
static void rope_rotate(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int NH,
                        int NKV, int HD, float sign) {
    int half = HD / 2, QKV = (NH + 2 * NKV) * HD;
#pragma omp parallel for if (parallel : !omp_in_parallel())
    for (long n = 0; n < (long)B * T; n++) {
        int t = (int)(n % T);
        const float *c = cos_t + t * half, *s = sin_t + t * half;
        float *row = qkv + n * QKV;
        for (int h = 0; h < NH + NKV; h++) {  // q heads, then k heads; v is untouched
            float *x = row + h * HD;
            for (int i = 0; i < half; i++) {
                float x1 = x[i], x2 = x[i + half], sn = sign * s[i];
                x[i] = x1 * c[i] - x2 * sn;
                x[i + half] = x2 * c[i] + x1 * sn;
            }
        }
    }
}

// qkv (B,T,(NH+2NKV)*HD): rotates q and k in place
void rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int NH, int NKV,
                  int HD) {
    rope_rotate(qkv, cos_t, sin_t, B, T, NH, NKV, HD, 1.0f);
}

// the rotation is orthogonal, so the gradient rotates back by the inverse (transpose)
void rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int NH,
                   int NKV, int HD) {
    rope_rotate(dqkv, cos_t, sin_t, B, T, NH, NKV, HD, -1.0f);
}
