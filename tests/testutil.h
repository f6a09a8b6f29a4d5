// testutil.h: helpers shared by the C tests.
#ifndef KILN_TESTUTIL_H
#define KILN_TESTUTIL_H

#include "kiln/core.h"
#include "kiln/data.h"

#include <stddef.h>
#include <stdint.h>

struct CMUnitTest;

// main's skip check: SOURCE_ROOT/../shared/data[/sub] into dir[0..n), SOURCE_ROOT
// being argv[1] ("." without one). Returns 0 when each of the NULL-terminated
// probe paths (relative to dir; dir itself when none is given) is readable;
// otherwise prints "skip: PATH not found" and returns TEST_SKIP (ctest's
// SKIP_RETURN_CODE) for main to return.
#define TEST_SKIP 77
int test_data_dir(int argc, char **argv, const char *sub, char *dir, size_t n, ...);

// main's last step: runs the cmocka tests in a fresh test_tmpdir_create(name),
// removed afterwards; returns cmocka's result.
int test_run(const char *name, const struct CMUnitTest *tests, size_t ntests);
#define TEST_RUN(name, tests) test_run(name, tests, sizeof(tests) / sizeof(tests)[0])

// A fresh directory /tmp/kiln_NAME_XXXXXX for a test program's files; removed by
// test_tmpdir_remove. test_tmpdir() is its path, tmp(name) a file in it (the
// last four results stay valid).
const char *test_tmpdir_create(const char *name);
const char *test_tmpdir(void);
const char *tmp(const char *name);
void test_tmpdir_remove(void);

// Writes n bytes to path; aborts the test on failure.
void write_bytes(const char *path, const void *data, size_t n);

// data[0..n) compressed into out (replacing its content) as `parts` gzip
// members (zstd = 0) or zstd frames with content checksums (zstd = 1), cut at
// n*i/parts. Aborts the test on failure.
void test_pack(KilnBuf *out, int zstd, const void *data, size_t n, int parts);

// Mutation fuzzing of a reader: writes `iters` mutants of data[0..len) to path
// (truncations, byte flips anywhere, flips within the first head_span bytes where
// headers live, garbage appended past a point) and calls reader(path, ctx) on
// each. The reader must answer (0 or an error), never crash. Returns how many
// mutants the reader refused.
int fuzz_mutants(const char *data, size_t len, size_t head_span, const char *path, int iters, uint64_t seed,
                 int (*reader)(const char *path, void *ctx), void *ctx);

// A stage built from kv (key, value, ... NULL-terminated; NULL for none) with
// this seed, as a pipeline builds it (create, then unused keys are an error).
// Returns its state, or NULL with the error in *err (for stages whose state is
// never NULL).
void *test_stage_new(const KilnStageDef *def, const char *const *kv, uint64_t seed, KilnErr *err);
// The same from key, value, ... NULL pairs; fails the test on an error.
void *test_stage_make(const KilnStageDef *def, uint64_t seed, ...);

// One document {source, id, text[0..len)} (source "t" and id "1" when NULL)
// through a per-document stage (with one scratch, kept until test_run ends).
// Returns its reason (NULL: kept); with out, the text after it (malloc'd,
// NUL-terminated) and with out_len its length.
const char *test_apply(const KilnStageDef *def, void *st, const char *source, const char *id, const char *text,
                       size_t len, char **out, size_t *out_len);

#endif
