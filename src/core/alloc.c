// alloc.c: the one allocator for big buffers (parameters, activations, shards).
#include "kiln/core.h"

#include <stdio.h>
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

// Linux keeps the peak resident set (VmHWM in /proc/self/status); writing 5
// to /proc/self/clear_refs resets it to the current one, so a peak per step
// costs two small file operations.
void kiln_peak_rss_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

double kiln_peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double kib = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kib = atof(line + 6);
            break;
        }
    fclose(f);
    return kib * 1024;
}
