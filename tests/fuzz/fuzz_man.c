// fuzz_man: a man page file as `kiln data` reads it (plain, gzip or zstd by
// magic bytes, then roff to text; fuzz_roff drives roff_to_text alone).
#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("fuzz.1", data, size, path, sizeof path);
    fuzz_source("man", path);
    return 0;
}
