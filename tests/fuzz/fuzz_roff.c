// fuzz_roff: a man page's roff source to text (roff_to_text).
#include "data/read/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    KilnErr err;
    KilnBuf out = {0}, title = {0};
    roff_to_text((const char *)data, size, &out, &title, &err);
    kbuf_free(&out);
    kbuf_free(&title);
    return 0;
}
