// testutil.h: helpers shared by the C tests.
#ifndef KILN_TESTUTIL_H
#define KILN_TESTUTIL_H

#include "kiln/core.h"

#include <stddef.h>
#include <stdint.h>

// A fresh directory /tmp/kiln_NAME_XXXXXX for a test program's files; removed by
// test_tmpdir_remove. test_tmpdir() is its path, tmp(name) a file in it (the
// last four results stay valid).
const char *test_tmpdir_create(const char *name);
const char *test_tmpdir(void);
const char *tmp(const char *name);
void test_tmpdir_remove(void);

// Writes n bytes to path; aborts the test on failure.
void write_bytes(const char *path, const void *data, size_t n);

// Mutation fuzzing of a reader: writes `iters` mutants of data[0..len) to path
// (truncations, byte flips anywhere, flips within the first head_span bytes where
// headers live, garbage appended past a point) and calls reader(path, ctx) on
// each. The reader must answer (0 or an error), never crash. Returns how many
// mutants the reader refused.
int fuzz_mutants(const char *data, size_t len, size_t head_span, const char *path, int iters, uint64_t seed,
                 int (*reader)(const char *path, void *ctx), void *ctx);

#endif
