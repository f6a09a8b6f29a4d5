// fuzz_wordnet: a WordNet data.noun file (synset lines with glosses).
#include "fuzz_source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("data.noun", data, size, path, sizeof path);
    fuzz_source("wordnet", path);
    return 0;
}
