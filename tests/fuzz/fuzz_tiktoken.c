// fuzz_tiktoken: a tiktoken rank file (base64 token, rank per line), then
// "\n--\n" and the NAME.json beside it (pat_str, special_tokens); without the
// separator a fixed GPT-2 style JSON. A loaded tokenizer encodes and decodes
// a short text.
#include "fuzz_util.h"
#include "fuzz_tok.h"

static const char DEFAULT_JSON[] =
    "{\"pat_str\": \"'s|'t|'re|'ve|'m|'ll|'d| ?\\\\p{L}+| ?\\\\p{N}+| ?[^\\\\s\\\\p{L}\\\\p{N}]+|\\\\s+(?!\\\\S)|\\\\s+\","
    " \"special_tokens\": {\"<|endoftext|>\": 50256}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *part[2];
    size_t plen[2];
    if (fuzz_parts(data, size, part, plen, 2) == 1) part[1] = DEFAULT_JSON, plen[1] = sizeof DEFAULT_JSON - 1;
    char path[128], jpath[128];
    fuzz_write("fuzz.json", part[1], plen[1], jpath, sizeof jpath);
    fuzz_write("fuzz.tiktoken", part[0], plen[0], path, sizeof path);
    fuzz_tokenizer_file(path);
    return 0;
}
