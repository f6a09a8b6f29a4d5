// fuzz_source.h: reads files through a source reader (data/read/sources.h) of
// one format, as `kiln data` does, and drops every document.
#ifndef KILN_FUZZ_SOURCE_H
#define KILN_FUZZ_SOURCE_H

#include "data/read/sources.h"
#include "fuzz_util.h"

static inline void fuzz_source(const char *format, const char *path) {
    const char *globs[] = {path};
    KilnSourceSpec spec = {.name = "fuzz", .format = format, .globs = globs, .nglobs = 1};
    KilnErr err;
    KilnSourceReader *r;
    if (source_open(&r, &spec, &err)) return;
    KilnDocSource src = source_docs(r);
    KilnDoc d = {0};
    while (src.next(src.ctx, &d, &err) == 1) doc_free(&d);
    doc_free(&d);
    source_close(r);
}

#endif
