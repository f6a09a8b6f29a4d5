// fuzz_dictd: a dictd database, the .index then "\n--\n" then the .dict
// (entries by base64 offset and length, grouped into documents).
#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *index, *dict;
    size_t in, dn;
    fuzz_split(data, size, &index, &in, &dict, &dn);
    char path[128], dpath[128];
    fuzz_write("fuzz.dict", dict ? dict : "", dn, dpath, sizeof dpath);
    fuzz_write("fuzz.index", index, in, path, sizeof path);
    fuzz_source("dictd", path);
    return 0;
}
