// extract.h: raw formats to plain text — HTML main text (libxml2), roff man
// pages, and WARC/WET records (Common Crawl's container).
#ifndef KILN_EXTRACT_H
#define KILN_EXTRACT_H

#include "kiln/data.h"

// HTML to its main text: script, style, navigation, header/footer, forms and
// other boilerplate dropped; headings, paragraphs, list items and table cells
// kept as lines, blank line between blocks. Never fails on broken HTML
// (libxml2 recovers); -1 only when out of memory. title (may be NULL) receives
// the <title>.
int html_main_text(const char *html, size_t n, KilnBuf *out, KilnBuf *title, KilnErr *err);

// roff (man page source, already decompressed) to readable text: requests and
// escapes interpreted or dropped, fonts removed, paragraphs joined. title (may be
// NULL) receives "name(section)" from .TH.
int roff_to_text(const char *src, size_t n, KilnBuf *out, KilnBuf *title, KilnErr *err);

// WARC 1.0/1.1 records, plain or gzip (per-record members); WET and WAT too.
typedef struct {
    KilnBuf type;          // WARC-Type: response, request, conversion, metadata, ...
    KilnBuf target_uri;    // WARC-Target-URI
    KilnBuf record_id;     // WARC-Record-ID
    KilnBuf date;          // WARC-Date
    KilnBuf content_type;  // of the payload: for response records the HTTP Content-Type
    KilnBuf payload;       // the block; for HTTP responses the body after the HTTP headers,
                           // de-chunked when Transfer-Encoding: chunked
    int http_status;       // response records: HTTP status, else 0
} KilnWarcRecord;
typedef struct KilnWarcReader KilnWarcReader;
int warc_open(KilnWarcReader **r, const char *path, KilnErr *err);
// 1: a record; 0: end. A damaged record (bad header, short block, truncated gzip)
// is a counted skip in warc_skips(), with the file and byte offset, and reading
// goes on from the next record when it can be found; -1 only for I/O errors.
int warc_next(KilnWarcReader *r, KilnWarcRecord *rec, KilnErr *err);
const KilnSkips *warc_skips(const KilnWarcReader *r);
void warc_record_free(KilnWarcRecord *rec);
void warc_close(KilnWarcReader *r);

#endif
