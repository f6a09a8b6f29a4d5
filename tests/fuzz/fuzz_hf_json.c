// fuzz_hf_json: a Hugging Face tokenizer.json (model vocab and merges,
// pre-tokenizer, added tokens). A loaded tokenizer encodes and decodes a short text.
#include "fuzz_util.h"
#include "kiln/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("tokenizer.json", data, size, path, sizeof path);
    KilnErr err;
    KilnTokenizer *tok;
    if (tokenizer_load(&tok, path, &err)) return 0;
    static const char text[] = "Hello, world! 123 <|endoftext|> caf\xc3\xa9 \xff";
    KilnIds ids = {0};
    if (tokenizer_encode(tok, text, sizeof text - 1, KILN_SPECIAL_TEXT, &ids, &err) == 0) {
        char *out;
        size_t len;
        if (tokenizer_decode(tok, ids.ids, ids.n, &out, &len, &err) == 0) free(out);
    }
    ids_free(&ids);
    tokenizer_free(tok);
    return 0;
}
