// fuzz_util.h: what the libFuzzer targets share. Readers that only take a path
// get the input written to a file in a per-process temporary directory
// (removed at exit); inputs holding several files are split at "\n--\n".
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

// Splits the input at each "\n--\n" into at most max parts; returns how many.
static inline int fuzz_parts(const uint8_t *data, size_t size, const char **part, size_t *len, int max) {
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; k + 1 < max && i + 4 <= size; i++)
        if (!memcmp(data + i, "\n--\n", 4)) {
            part[k] = (const char *)data + start, len[k++] = i - start;
            start = i + 4, i += 3;
        }
    part[k] = (const char *)data + start, len[k++] = size - start;
    return k;
}

#endif
