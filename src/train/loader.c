// loader.c: the batch loader over token shards (loader.h).
#include "train/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
