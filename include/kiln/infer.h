// infer.h: inference with a KV cache, for evaluation and generation. One
// KilnInfer holds one sequence's cache and scratch; it reads the model's
// parameters and never writes them, so many KilnInfers (one per thread) can
// share one KilnModel. The logits equal gpt_forward's for the same tokens.
//
//   infer_append(s, tokens, n)  positions pos..pos+n-1 attend to 0..pos+n-1;
//                               writes the (n,V) logits; pos += n
//   infer_truncate(s, k)        forget positions >= k (e.g. back to the end of a
//                               shared context, to score the next choice)
#ifndef KILN_INFER_H
#define KILN_INFER_H

#include "kiln/model.h"

typedef struct KilnInfer KilnInfer;

// A cache for sequences of up to max_len tokens (<= block_size).
int infer_create(KilnInfer **s, const KilnModel *m, int max_len, KilnErr *err);
void infer_free(KilnInfer *s);
int infer_pos(const KilnInfer *s);  // tokens in the cache
int infer_max_len(const KilnInfer *s);
// Appends n tokens and writes their logits (n,V) to logits (which may be NULL
// to only fill the cache). -1 (err set) when pos + n > max_len or a token is
// outside the vocabulary.
int infer_append(KilnInfer *s, const int32_t *tokens, int n, float *logits, KilnErr *err);
void infer_truncate(KilnInfer *s, int k);

// The most likely token of a logits row (V); the lowest id wins a tie.
int argmax_token(const float *logits, int V);
// log_softmax of one logits row (V) at index t, in double.
double logprob_at(const float *logits, int V, int t);

// Next-token sampling: temperature 0 = greedy (argmax, lowest id on ties);
// otherwise softmax(logits/temperature) restricted to the top_k (0: all) most
// likely tokens and then to the smallest set whose probability reaches top_p
// (1: all). u is a uniform draw in [0,1) (so the caller owns the randomness),
// mapped through the kept tokens' cumulative distribution in id order. Ties in
// probability rank the lower id first. -1 only if memory runs out.
int sample_token(const float *logits, int V, float temperature, int top_k, float top_p, float u);

#endif
