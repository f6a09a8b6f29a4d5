// shard.c: memory-mapped token shards and the sequential batch loader.
#include "kiln/shard.h"

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
    const int32_t *h = map;
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
        long long have = (long long)s->map_len;
        shard_close(s);
        return kiln_fail(err, "%s: %s shard: header says %ld tokens (%zu bytes), file has %lld bytes",
                         path, (size_t)have < want ? "truncated" : "oversized", (long)((uint32_t)h[2]),
                         want, have);
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

int loader_open(KilnLoader *l, const char *pattern, int B, int T, int vocab_size, KilnErr *err) {
    memset(l, 0, sizeof *l);
    l->B = B;
    l->T = T;
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) return kiln_fail(err, "%s: no shard matches", pattern);
    if (rc != 0) return kiln_fail(err, "%s: cannot list shards", pattern);
    l->shards = calloc(g.gl_pathc, sizeof(KilnShard));
    if (!l->shards) {
        globfree(&g);
        return kiln_fail(err, "out of memory");
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (shard_open(&l->shards[i], g.gl_pathv[i], vocab_size, err)) {
            l->nshards = (int)i;
            loader_close(l);
            globfree(&g);
            return -1;
        }
        l->nshards = (int)i + 1;
    }
    globfree(&g);
    long need = (long)B * T + 1;
    for (int i = 0; i < l->nshards; i++) {
        if (l->shards[i].ntok < need) {
            int rc2 = kiln_fail(err, "%s: %ld tokens, fewer than one batch needs (%d x %d + 1)",
                                l->shards[i].path, l->shards[i].ntok, B, T);
            loader_close(l);
            return rc2;
        }
    }
    return 0;
}

void loader_close(KilnLoader *l) {
    for (int i = 0; i < l->nshards; i++) shard_close(&l->shards[i]);
    free(l->shards);
    memset(l, 0, sizeof *l);
}

long loader_total_tokens(const KilnLoader *l) {
    long n = 0;
    for (int i = 0; i < l->nshards; i++) n += l->shards[i].ntok;
    return n;
}

void loader_reset(KilnLoader *l) {
    l->shard = 0;
    l->pos = 0;
    l->epoch = 0;
}

static void fill_rows(const KilnShard *s, long pos, int rows, int T, int32_t *tokens, int32_t *targets) {
    for (long i = 0; i < (long)rows * T; i++) {
        tokens[i] = (int32_t)shard_token(s, pos + i);
        targets[i] = (int32_t)shard_token(s, pos + i + 1);
    }
}

void loader_next(KilnLoader *l, int32_t *tokens, int32_t *targets) {
    long need = (long)l->B * l->T + 1;
    if (l->pos + need > l->shards[l->shard].ntok) {
        l->pos = 0;
        if (++l->shard == l->nshards) {
            l->shard = 0;
            l->epoch++;
        }
    }
    fill_rows(&l->shards[l->shard], l->pos, l->B, l->T, tokens, targets);
    l->pos += (long)l->B * l->T;
}

int loader_next_eval(KilnLoader *l, int32_t *tokens, int32_t *targets) {
    while (l->shard < l->nshards) {
        const KilnShard *s = &l->shards[l->shard];
        long rows = (s->ntok - 1 - l->pos) / l->T;
        if (rows > 0) {
            int r = rows < l->B ? (int)rows : l->B;
            fill_rows(s, l->pos, r, l->T, tokens, targets);
            l->pos += (long)r * l->T;
            return r;
        }
        l->shard++;
        l->pos = 0;
    }
    return 0;
}
