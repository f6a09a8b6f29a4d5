// fuzz_warc: WARC and WET files (warc_open/next: record headers, lengths,
// HTTP responses; gzip members by magic bytes).
#include "data/read/extract.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fuzz_write("crawl.warc", data, size, path, sizeof path);
    KilnErr err;
    KilnWarcReader *r;
    if (warc_open(&r, path, &err)) return 0;
    KilnWarcRecord rec;
    memset(&rec, 0, sizeof rec);
    while (warc_next(r, &rec, &err) == 1) warc_record_free(&rec);
    warc_record_free(&rec);
    warc_close(r);
    return 0;
}
