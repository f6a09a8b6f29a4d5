// testutil.c: see testutil.h.
#include "testutil.h"
#include "kiln/data.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

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

static void gzip_member(KilnBuf *out, const void *data, size_t n) {
    z_stream z = {0};
    uLong cap = compressBound((uLong)n) + 32;  // + the gzip header and trailer
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK ||
        kbuf_reserve(out, out->len + cap))
        abort();
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out->data + out->len;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    out->len += z.total_out;
    out->data[out->len] = 0;
    deflateEnd(&z);
}

static void zstd_frame(KilnBuf *out, const void *data, size_t n) {
    size_t cap = ZSTD_compressBound(n);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (!c || kbuf_reserve(out, out->len + cap) || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)))
        abort();
    size_t got = ZSTD_compress2(c, out->data + out->len, cap, data, n);
    if (ZSTD_isError(got)) abort();
    out->len += got;
    out->data[out->len] = 0;
    ZSTD_freeCCtx(c);
}

void test_pack(KilnBuf *out, int zstd, const void *data, size_t n, int parts) {
    kbuf_clear(out);
    for (int i = 0; i < parts; i++) {
        size_t a = n * (size_t)i / (size_t)parts, b = n * (size_t)(i + 1) / (size_t)parts;
        (zstd ? zstd_frame : gzip_member)(out, (const char *)data + a, b - a);
    }
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

int test_data_dir(int argc, char **argv, const char *sub, char *dir, size_t n, ...) {
    snprintf(dir, n, "%s/../shared/data%s%s", argc > 1 ? argv[1] : ".", sub ? "/" : "", sub ? sub : "");
    va_list ap;
    va_start(ap, n);
    const char *probe = va_arg(ap, const char *);
    int rc = 0;
    do {
        char path[8192];
        snprintf(path, sizeof path, "%s%s%s", dir, probe ? "/" : "", probe ? probe : "");
        if (access(path, R_OK)) {
            fprintf(stderr, "skip: %s not found\n", path);
            rc = TEST_SKIP;
            break;
        }
    } while (probe && (probe = va_arg(ap, const char *)));
    va_end(ap);
    return rc;
}

static KilnScratch apply_scratch;  // test_apply's, freed by test_run

int test_run(const char *name, const struct CMUnitTest *tests, size_t ntests) {
    test_tmpdir_create(name);
    int rc = _cmocka_run_group_tests("tests", tests, ntests, NULL, NULL);
    scratch_free(&apply_scratch);
    test_tmpdir_remove();
    return rc;
}

// test_stage_new's work; returns 0 or -1 (*state may be NULL on success).
static int stage_build(const KilnStageDef *def, const char *const *kv, uint64_t seed, void **state, KilnErr *err) {
    assert_non_null(def);
    KilnParams ps = {0};
    ps.stage = strdup(def->name);  // params_free frees it
    for (int i = 0; kv && kv[i]; i += 2) assert_int_equal(params_add(&ps, kv[i], kv[i + 1], "test", err), 0);
    *state = NULL;
    int rc = def->create(&ps, seed, state, err);
    if (!rc && params_check_unused(&ps, err)) {
        def->destroy(*state);
        *state = NULL;
        rc = -1;
    }
    params_free(&ps);
    return rc ? -1 : 0;
}

void *test_stage_new(const KilnStageDef *def, const char *const *kv, uint64_t seed, KilnErr *err) {
    void *st;
    return stage_build(def, kv, seed, &st, err) ? NULL : st;
}

void *test_stage_make(const KilnStageDef *def, uint64_t seed, ...) {
    const char *kv[65];
    int n = 0;
    va_list ap;
    va_start(ap, seed);
    for (const char *k; (k = va_arg(ap, const char *));) {
        assert_true(n < 64);
        kv[n++] = k;
        kv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    kv[n] = NULL;
    KilnErr err = {{0}};
    void *st;
    if (stage_build(def, kv, seed, &st, &err)) fail_msg("%s: %s", def->name, err.msg);
    return st;
}

const char *test_apply(const KilnStageDef *def, void *st, const char *source, const char *id, const char *text,
                       size_t len, char **out, size_t *out_len) {
    KilnDoc d = {0};
    kbuf_puts(&d.source, source ? source : "t");
    kbuf_puts(&d.id, id ? id : "1");
    kbuf_set(&d.text, text, len);
    const char *r = def->apply(st, &d, &apply_scratch);
    if (out) {
        *out = malloc(d.text.len + 1);
        if (!*out) abort();
        memcpy(*out, d.text.data ? d.text.data : "", d.text.len);
        (*out)[d.text.len] = 0;
    }
    if (out_len) *out_len = d.text.len;
    doc_free(&d);
    return r;
}
