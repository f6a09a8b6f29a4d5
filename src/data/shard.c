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

static long shard_samples(const KilnLoader *l, int i) { return (l->shards[i].ntok - 1) / l->T; }

// Shard order for the current epoch, and the sample order of the current shard.
static void loader_plan_epoch(KilnLoader *l) {
    for (int i = 0; i < l->nshards; i++) l->order[i] = i;
    if (!l->shuffle) return;
    KilnRng r;
    kiln_rng_seed(&r, kiln_hash64(l->seed ^ kiln_hash64((uint64_t)l->epoch)));
    for (int i = l->nshards - 1; i > 0; i--) {
        int j = (int)(kiln_rng_u64(&r) % (uint64_t)(i + 1));
        int t = l->order[i];
        l->order[i] = l->order[j];
        l->order[j] = t;
    }
}

static void loader_plan_shard(KilnLoader *l) {
    int s = l->order[l->shard];
    long n = shard_samples(l, s);
    for (long i = 0; i < n; i++) l->perm[i] = i;
    if (!l->shuffle) return;
    KilnRng r;
    kiln_rng_seed(&r, kiln_hash64(l->seed ^ kiln_hash64(((uint64_t)l->epoch << 20) + (uint64_t)s + 1)));
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(kiln_rng_u64(&r) % (uint64_t)(i + 1));
        long t = l->perm[i];
        l->perm[i] = l->perm[j];
        l->perm[j] = t;
    }
}

int loader_open(KilnLoader *l, const char *pattern, int B, int T, int vocab_size, int shuffle,
                uint64_t seed, KilnErr *err) {
    memset(l, 0, sizeof *l);
    l->B = B;
    l->T = T;
    l->shuffle = shuffle;
    l->seed = seed;
    glob_t g;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) return kiln_fail(err, "%s: no shard matches", pattern);
    if (rc != 0) return kiln_fail(err, "%s: cannot list shards", pattern);
    l->shards = calloc(g.gl_pathc, sizeof(KilnShard));
    l->order = calloc(g.gl_pathc, sizeof(int));
    if (!l->shards || !l->order) {
        globfree(&g);
        loader_close(l);
        return kiln_fail(err, "out of memory");
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (shard_open(&l->shards[i], g.gl_pathv[i], vocab_size, err)) {
            globfree(&g);
            loader_close(l);
            return -1;
        }
        l->nshards = (int)i + 1;
    }
    globfree(&g);
    for (int i = 0; i < l->nshards; i++) {
        if (shard_samples(l, i) < 1) {
            int rc2 = kiln_fail(err, "%s: %ld tokens, fewer than one sequence needs (%d + 1)",
                                l->shards[i].path, l->shards[i].ntok, T);
            loader_close(l);
            return rc2;
        }
        if (shard_samples(l, i) > l->perm_cap) l->perm_cap = shard_samples(l, i);
    }
    l->perm = malloc(sizeof(long) * l->perm_cap);
    l->row_shard = calloc((size_t)B, sizeof(int));
    l->row_start = calloc((size_t)B, sizeof(long));
    if (!l->perm || !l->row_shard || !l->row_start) {
        loader_close(l);
        return kiln_fail(err, "out of memory for the sample order of %ld sequences", l->perm_cap);
    }
    loader_reset(l);
    return 0;
}

void loader_close(KilnLoader *l) {
    for (int i = 0; i < l->nshards; i++) shard_close(&l->shards[i]);
    free(l->shards);
    free(l->order);
    free(l->perm);
    free(l->row_shard);
    free(l->row_start);
    memset(l, 0, sizeof *l);
}

long loader_total_tokens(const KilnLoader *l) {
    long n = 0;
    for (int i = 0; i < l->nshards; i++) n += l->shards[i].ntok;
    return n;
}

void loader_reset(KilnLoader *l) {
    l->epoch = 0;
    l->shard = 0;
    l->pos = 0;
    loader_plan_epoch(l);
    loader_plan_shard(l);
}

int loader_seek(KilnLoader *l, long epoch, int shard, long pos, KilnErr *err) {
    if (epoch < 0 || shard < 0 || shard >= l->nshards || pos < 0)
        return kiln_fail(err, "loader position (epoch %ld, shard %d, sample %ld) does not exist", epoch, shard, pos);
    l->epoch = epoch;
    l->shard = shard;
    loader_plan_epoch(l);
    if (pos > shard_samples(l, l->order[shard]))
        return kiln_fail(err, "loader position: sample %ld is past the end of %s", pos,
                         l->shards[l->order[shard]].path);
    l->pos = pos;
    loader_plan_shard(l);
    return 0;
}

// One sample (row) of T inputs and T targets.
static void read_sample(const KilnShard *s, long start, int T, int32_t *tokens, int32_t *targets) {
    for (int i = 0; i < T; i++) {
        tokens[i] = (int32_t)shard_token(s, start + i);
        targets[i] = (int32_t)shard_token(s, start + i + 1);
    }
}

void loader_next(KilnLoader *l, int32_t *tokens, int32_t *targets) {
    for (int b = 0; b < l->B; b++) {
        if (l->pos == shard_samples(l, l->order[l->shard])) {
            l->pos = 0;
            if (++l->shard == l->nshards) {
                l->shard = 0;
                l->epoch++;
                loader_plan_epoch(l);
            }
            loader_plan_shard(l);
        }
        const KilnShard *s = &l->shards[l->order[l->shard]];
        l->row_shard[b] = l->order[l->shard];
        l->row_start[b] = l->perm[l->pos] * l->T;
        read_sample(s, l->perm[l->pos++] * l->T, l->T, tokens + (long)b * l->T, targets + (long)b * l->T);
    }
}

int loader_next_eval(KilnLoader *l, int32_t *tokens, int32_t *targets) {
    int rows = 0;
    while (rows < l->B && l->shard < l->nshards) {
        if (l->pos == shard_samples(l, l->shard)) {
            l->shard++;
            l->pos = 0;
            continue;
        }
        read_sample(&l->shards[l->shard], l->pos * l->T, l->T, tokens + (long)rows * l->T,
                    targets + (long)rows * l->T);
        l->pos++;
        rows++;
    }
    return rows;
}
