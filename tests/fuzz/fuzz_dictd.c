// fuzz_dictd: a dictd database, the .index then "\n--\n" then the .dict
// (entries by base64 offset and length, grouped into documents).
#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *part[2];
    size_t len[2];
    int k = fuzz_parts(data, size, part, len, 2);
    char path[128], dpath[128];
    fuzz_write("fuzz.dict", k > 1 ? part[1] : "", k > 1 ? len[1] : 0, dpath, sizeof dpath);
    fuzz_write("fuzz.index", part[0], len[0], path, sizeof path);
    fuzz_source("dictd", path);
    return 0;
}
