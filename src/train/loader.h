// loader.h: the batch loader over token shards (core/shard.h).
#ifndef KILN_TRAIN_LOADER_H
#define KILN_TRAIN_LOADER_H

#include "core/shard.h"

// Cuts shards into samples of T+1 tokens (inputs and next-token targets) and
// serves B of them per batch. With shuffle, the shard order and each shard's
// sample order are seeded permutations, fresh every epoch (as llm.c does), so a
// batch mixes distant text; without, samples come in file order. The position
// (epoch, shard, sample) is all a checkpoint needs: permutations are recomputed.
typedef struct {
    KilnShard *shards;
    int nshards;
    int B, T;
    int shuffle;
    uint64_t seed;
    long epoch;        // completed passes over all shards
    int shard;         // index into order[]
    long pos;          // next sample in the current shard's permutation
    int *order;        // shard order of this epoch
    long *perm;        // sample order of the current shard
    long perm_cap;
    // where the rows of the last loader_next batch came from: shard file index
    // (into shards[]) and first token, so a batch can be traced to documents
    int *row_shard;    // (B)
    long *row_start;   // (B)
} KilnLoader;

// pattern: a path or a glob; shards sorted by name.
int loader_open(KilnLoader *l, const char *pattern, int B, int T, int vocab_size, int shuffle,
                uint64_t seed, KilnErr *err);
void loader_close(KilnLoader *l);
long loader_total_tokens(const KilnLoader *l);
void loader_reset(KilnLoader *l);
// Moves to a saved position (epoch, shard, sample); -1 if it does not exist.
int loader_seek(KilnLoader *l, long epoch, int shard, long pos, KilnErr *err);
// Fills tokens/targets (B,T). Training loader: wraps around forever.
void loader_next(KilnLoader *l, int32_t *tokens, int32_t *targets);
// Validation: sequential windows without wrapping; returns rows filled (0 at the end).
int loader_next_eval(KilnLoader *l, int32_t *tokens, int32_t *targets);

#endif
