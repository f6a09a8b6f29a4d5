// fuzz_html: HTML to main text (html_main_text, libxml2's HTML parser and the
// extraction walk).
#include "data/read/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    KilnErr err;
    KilnBuf out = {0}, title = {0};
    html_main_text((const char *)data, size, &out, &title, &err);
    kbuf_free(&out);
    kbuf_free(&title);
    return 0;
}
