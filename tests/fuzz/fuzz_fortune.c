// fuzz_fortune: a fortune file (entries between % lines, grouped).
#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("fortunes", data, size, path, sizeof path);
    fuzz_source("fortune", path);
    return 0;
}
