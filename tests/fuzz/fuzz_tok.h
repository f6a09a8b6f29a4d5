// fuzz_tok.h: what the tokenizer-file targets (tiktoken, hf_json) do with a
// file once written: load it and, when it loads, encode a short text with
// every kind of byte in it and decode the ids again.
#ifndef KILN_FUZZ_TOK_H
#define KILN_FUZZ_TOK_H

#include "kiln/tokenizer.h"

#include <stdlib.h>

static void fuzz_tokenizer_file(const char *path) {
    KilnErr err;
    KilnTokenizer *tok;
    if (tokenizer_load(&tok, path, &err)) return;
    static const char text[] = "Hello, world! 123 <|endoftext|> caf\xc3\xa9 \xff";
    KilnIds ids = {0};
    if (tokenizer_encode(tok, text, sizeof text - 1, KILN_SPECIAL_TEXT, &ids, &err) == 0) {
        char *out;
        size_t len;
        if (tokenizer_decode(tok, ids.ids, ids.n, &out, &len, &err) == 0) free(out);
    }
    ids_free(&ids);
    tokenizer_free(tok);
}

#endif
