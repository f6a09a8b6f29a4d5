// shard.c: token shards in llm.c's .bin layout: mapped and checked, or written.
#include "core/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int shard_open(KilnShard *s, const char *path, int vocab_size, KilnErr *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return kiln_fail(err, "%s: cannot open shard: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kiln_fail(err, "%s: not a regular file", path);
    }
    if (st.st_size < KILN_SHARD_HEADER_BYTES) {
        close(fd);
        return kiln_fail(err, "%s: truncated shard: %lld bytes, the header alone is %d", path,
                         (long long)st.st_size, KILN_SHARD_HEADER_BYTES);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return kiln_fail(err, "%s: mmap failed: %s", path, strerror(errno));
    s->map = map;
    s->map_len = (size_t)st.st_size;
    int32_t h[3];
    memcpy(h, map, sizeof h);
    if (h[0] == KILN_SHARD_MAGIC16) {
        s->tok_bytes = 2;
    } else if (h[0] == KILN_SHARD_MAGIC32) {
        s->tok_bytes = 4;
    } else {
        shard_close(s);
        return kiln_fail(err, "%s: not a token shard (magic %d, expected %d or %d)", path, h[0],
                         KILN_SHARD_MAGIC16, KILN_SHARD_MAGIC32);
    }
    s->ntok = (uint32_t)h[2];
    size_t want = KILN_SHARD_HEADER_BYTES + (size_t)s->ntok * s->tok_bytes;
    if (want != s->map_len) {
        size_t have = s->map_len;
        long ntok = s->ntok;
        shard_close(s);
        return kiln_fail(err, "%s: %s shard: header says %ld tokens (%zu bytes), file has %zu bytes",
                         path, have < want ? "truncated" : "oversized", ntok, want, have);
    }
    s->tokens = (const uint8_t *)map + KILN_SHARD_HEADER_BYTES;
    if (vocab_size > 0) {
        for (long i = 0; i < s->ntok; i++) {
            uint32_t t = shard_token(s, i);
            if (t >= (uint32_t)vocab_size) {
                shard_close(s);
                return kiln_fail(err, "%s: token %u at offset %ld (byte %ld) is outside the vocabulary (model.vocab_size = %d)",
                                 path, t, i, (long)(KILN_SHARD_HEADER_BYTES + i * s->tok_bytes) , vocab_size);
            }
        }
    }
    return 0;
}

void shard_close(KilnShard *s) {
    if (s->map) munmap(s->map, s->map_len);
    memset(s, 0, sizeof *s);
}

int shard_write(const char *path, const uint32_t *tokens, long n, int vocab_size, KilnErr *err) {
    if (n < 0 || n > INT32_MAX) return kiln_fail(err, "%s: %ld tokens do not fit one shard", path, n);
    int32_t header[256] = {0};
    int wide = vocab_size > 65536;
    header[0] = wide ? KILN_SHARD_MAGIC32 : KILN_SHARD_MAGIC16;
    header[1] = wide ? 7 : 1;
    header[2] = (int32_t)n;
    KilnAtomicFile af;
    if (kiln_atomic_open(&af, path, err)) return -1;
    kiln_atomic_write(&af, header, sizeof header, err);
    enum { CHUNK = 65536 };
    uint16_t buf[CHUNK];
    for (long i = 0; i < n && !af.failed; i += CHUNK) {
        long k = n - i < CHUNK ? n - i : CHUNK;
        if (wide) {
            kiln_atomic_write(&af, tokens + i, sizeof(uint32_t) * k, err);
        } else {
            for (long j = 0; j < k; j++) buf[j] = (uint16_t)tokens[i + j];
            kiln_atomic_write(&af, buf, sizeof(uint16_t) * k, err);
        }
    }
    return kiln_atomic_commit(&af, err);
}
