// testutil.c: see testutil.h.
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[256];  // one per test program, set once in main

const char *test_tmpdir_create(const char *name) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln_%s_XXXXXX", name);
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create %s\n", tmpdir);
        abort();
    }
    return tmpdir;
}

const char *test_tmpdir(void) { return tmpdir; }

const char *tmp(const char *name) {
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

void test_tmpdir_remove(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        abort();
    }
    fclose(f);
}

int fuzz_mutants(const char *data, size_t len, size_t head_span, const char *path, int iters, uint64_t seed,
                 int (*reader)(const char *path, void *ctx), void *ctx) {
    char *buf = malloc(len + 64);
    if (!buf) abort();
    KilnRng r;
    kiln_rng_seed(&r, seed);
    if (head_span > len) head_span = len;
    int refused = 0;
    for (int it = 0; it < iters; it++) {
        size_t n = len;
        memcpy(buf, data, len);
        int kind = (int)(kiln_rng_u64(&r) % 4);
        if (kind == 0) {
            n = kiln_rng_u64(&r) % (len + 1);  // truncate
        } else if (kind == 1) {
            int flips = 1 + (int)(kiln_rng_u64(&r) % 8);
            for (int k = 0; k < flips; k++) buf[kiln_rng_u64(&r) % len] = (char)kiln_rng_u64(&r);
        } else if (kind == 2) {
            buf[kiln_rng_u64(&r) % head_span] = (char)kiln_rng_u64(&r);
        } else {
            size_t pos = kiln_rng_u64(&r) % len;  // garbage past a point
            n = pos + (kiln_rng_u64(&r) % 64);
            for (size_t k = pos; k < n; k++) buf[k] = (char)kiln_rng_u64(&r);
        }
        write_bytes(path, buf, n);
        refused += reader(path, ctx) != 0;
    }
    free(buf);
    return refused;
}
