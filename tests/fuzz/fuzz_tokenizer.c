// fuzz_tokenizer: libFuzzer target for the encoder. Every input is encoded with
// cl100k_base (special tokens as text, allowed, and refused) and must decode back
// to itself byte for byte. The rank file comes from $KILN_FUZZ_TOKENIZER or
// ../shared/data/tokenizers/cl100k_base.tiktoken. scripts/fuzz.sh builds and runs it.
#include "kiln/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static KilnTokenizer *tok;  // loaded once: libFuzzer calls the target millions of times

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    KilnErr err;
    if (!tok) {
        const char *p = getenv("KILN_FUZZ_TOKENIZER");
        if (tokenizer_load(&tok, p ? p : "../shared/data/tokenizers/cl100k_base.tiktoken", &err)) {
            fprintf(stderr, "%s\n", err.msg);
            abort();
        }
    }
    KilnSpecialMode modes[] = {KILN_SPECIAL_TEXT, KILN_SPECIAL_ALLOW, KILN_SPECIAL_ERROR};
    for (int m = 0; m < 3; m++) {
        KilnIds ids = {0};
        if (tokenizer_encode(tok, (const char *)data, size, modes[m], &ids, &err) == 0) {
            char *out;
            size_t len;
            if (tokenizer_decode(tok, ids.ids, ids.n, &out, &len, &err)) abort();
            if (len != size || memcmp(out, data, size)) abort();  // lossless in every mode
            free(out);
        } else if (modes[m] != KILN_SPECIAL_ERROR) {
            abort();  // only refusing special tokens may fail
        }
        ids_free(&ids);
    }
    return 0;
}
