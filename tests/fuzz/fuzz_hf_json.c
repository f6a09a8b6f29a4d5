// fuzz_hf_json: a Hugging Face tokenizer.json (model vocab and merges,
// pre-tokenizer, added tokens). A loaded tokenizer encodes and decodes a short text.
#include "fuzz_util.h"
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("tokenizer.json", data, size, path, sizeof path);
    fuzz_tokenizer_file(path);
    return 0;
}
