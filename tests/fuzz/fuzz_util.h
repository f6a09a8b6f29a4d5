// fuzz_util.h: what the libFuzzer targets share. Readers that only take a path
// get the input written to a file in a per-process temporary directory
// (removed at exit); inputs holding two files are split at the first "\n--\n"
// (the part after it is the second file).
#ifndef KILN_FUZZ_UTIL_H
#define KILN_FUZZ_UTIL_H

#include "kiln/core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[64];

static inline void fuzz_dir_remove(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", fuzz_dir);
}

// Writes data[0..n) to NAME in the temp dir; the full path goes to path.
static inline void fuzz_write(const char *name, const void *data, size_t n, char *path, size_t cap) {
    if (!fuzz_dir[0]) {
        // /dev/shm where there is one: a file per input on disk costs a few ms
        strcpy(fuzz_dir, access("/dev/shm", W_OK) ? "/tmp/kiln_fuzz_XXXXXX" : "/dev/shm/kiln_fuzz_XXXXXX");
        if (!mkdtemp(fuzz_dir)) abort();
        atexit(fuzz_dir_remove);
    }
    snprintf(path, cap, "%s/%s", fuzz_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) abort();
}

// Splits the input at the first "\n--\n": *b is NULL when there is none.
static inline void fuzz_split(const uint8_t *data, size_t size, const char **a, size_t *an, const char **b, size_t *bn) {
    *a = (const char *)data, *an = size, *b = NULL, *bn = 0;
    for (size_t i = 0; i + 4 <= size; i++)
        if (!memcmp(data + i, "\n--\n", 4)) {
            *an = i;
            *b = (const char *)data + i + 4, *bn = size - i - 4;
            return;
        }
}

#endif
