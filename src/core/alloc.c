// alloc.c: the one allocator for big buffers (parameters, activations, shards).
#include "kiln/core.h"

#include <stdlib.h>
#include <string.h>

void *kiln_alloc(size_t bytes, KilnErr *err) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        kiln_fail(err, "out of memory: could not allocate %zu bytes (%.2f GiB)", bytes,
                  (double)bytes / (1024.0 * 1024.0 * 1024.0));
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void kiln_free(void *p) { free(p); }
