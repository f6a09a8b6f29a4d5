// shard.h: token shards in llm.c's .bin layout, and the batch loader over them.
//   header: 256 int32 (little endian): [0] magic, [1] version, [2] token count
//   magic 20240520 (version 1): uint16 tokens (GPT-2 sized vocabularies)
//   magic 20240801 (version 7): uint32 tokens (llm.c's Llama-3 layout), for vocab > 65536
#ifndef KILN_SHARD_H
#define KILN_SHARD_H

#include "kiln/core.h"

#include <stdint.h>

#define KILN_SHARD_MAGIC16 20240520
#define KILN_SHARD_MAGIC32 20240801
#define KILN_SHARD_HEADER_BYTES 1024

typedef struct {
    char path[1024];
    void *map;
    size_t map_len;
    long ntok;
    int tok_bytes;  // 2 or 4
    const uint8_t *tokens;
} KilnShard;

// Maps a shard and checks its header, its size and that every token is < vocab_size
// (vocab_size <= 0 skips the range check).
int shard_open(KilnShard *s, const char *path, int vocab_size, KilnErr *err);
void shard_close(KilnShard *s);
static inline uint32_t shard_token(const KilnShard *s, long i) {
    if (s->tok_bytes == 2) return ((const uint16_t *)s->tokens)[i];
    return ((const uint32_t *)s->tokens)[i];
}
// Writes tokens as a shard, uint16 when vocab_size <= 65536 else uint32; atomic.
int shard_write(const char *path, const uint32_t *tokens, long n, int vocab_size, KilnErr *err);

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
