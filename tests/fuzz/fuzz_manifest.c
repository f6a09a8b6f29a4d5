// fuzz_manifest: a corpus's manifest.json (manifest_load), then tracing a few
// token positions back to documents (manifest_find).
#include "fuzz_util.h"
#include "kiln/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("manifest.json", data, size, path, sizeof path);
    KilnErr err;
    KilnManifest *m;
    if (manifest_load(&m, path, &err) == 0) {
        const long pos[] = {0, 1, 7, 1000, -1, 1L << 40};
        for (int i = 0; i < 6; i++) {
            const char *source, *id;
            long start, n;
            manifest_find(m, "train_000000.bin", pos[i], &source, &id, &start, &n, &err);
            manifest_find(m, "val_000000.bin", pos[i], &source, &id, &start, &n, &err);
        }
        manifest_free(m);
    }
    return 0;
}
