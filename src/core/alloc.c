// alloc.c: the one allocator for big buffers (parameters, activations, shards).
#include "kiln/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

// Memory and swap of the machine in bytes; 0 when unknown.
static double machine_memory(void) {
    struct sysinfo si;
    if (sysinfo(&si) != 0) return 0;
    return ((double)si.totalram + (double)si.totalswap) * si.mem_unit;
}

void *kiln_alloc(size_t bytes, KilnErr *err) {
    const double GiB = 1024.0 * 1024.0 * 1024.0;
    // more than the machine holds is refused before malloc: kiln zeroes what it
    // allocates, so an overcommitted block would end in the OOM killer, and a
    // sanitizer build aborts on such sizes where malloc would return NULL
    double have = machine_memory();
    if (have > 0 && (double)bytes > have) {
        kiln_fail(err, "out of memory: could not allocate %zu bytes (%.2f GiB; this machine has %.2f GiB of "
                  "memory and swap)", bytes, (double)bytes / GiB, have / GiB);
        return NULL;
    }
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        kiln_fail(err, "out of memory: could not allocate %zu bytes (%.2f GiB)", bytes, (double)bytes / GiB);
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
