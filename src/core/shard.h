// shard.h: token shards in llm.c's .bin layout.
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

#endif
