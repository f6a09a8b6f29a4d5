// fuzz_jsonl: JSONL documents (docreader_open/next: lines, JSON objects, the
// text field, UTF-8 repair; gzip and zstd by magic bytes).
#include "fuzz_util.h"
#include "kiln/doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("docs.jsonl", data, size, path, sizeof path);
    KilnErr err;
    KilnDocReader *r;
    if (docreader_open(&r, path, NULL, NULL, &err)) return 0;
    KilnDoc d = {0};
    while (docreader_next(r, &d, &err) == 1) doc_free(&d);
    doc_free(&d);
    docreader_close(r);
    return 0;
}
