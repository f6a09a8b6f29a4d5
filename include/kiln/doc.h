// doc.h: documents {source, id, text} and the JSONL files that carry them
// between the data pipeline's steps, read plain, gzip or zstd; skipped input
// counted with examples; whole files read through any compression.
#ifndef KILN_DOC_H
#define KILN_DOC_H

#include "kiln/core.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    KilnBuf source;  // where it came from: "kjv", "man", "cc-2024-22", ...
    KilnBuf id;      // unique within its source: a path, a URL, "file:line"
    KilnBuf text;    // UTF-8
} KilnDoc;

void doc_free(KilnDoc *d);
int doc_copy(KilnDoc *dst, const KilnDoc *src);  // -1 when out of memory

// Problems in the input that are skipped, not fatal: counted, with the first few
// messages kept ("file:line: why") for the report.
#define KILN_SKIP_EXAMPLES 5
typedef struct {
    long count;
    char examples[KILN_SKIP_EXAMPLES][256];
} KilnSkips;
void skips_add(KilnSkips *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void skips_merge(KilnSkips *into, const KilnSkips *from);  // counts add up; examples while room is left

// Reads a whole file into out (NUL-terminated), decompressing gzip (any number
// of members; dictzip too) or zstd (any number of frames), recognised by their
// magic bytes, not by the name. 0: complete; 1: damaged (truncated or corrupt
// compressed data, junk after the last member or frame included): out holds
// the bytes decoded before the damage, err says so ("PATH: compressed data
// truncated after N bytes"); -1: cannot open or read (err names the file).
int kiln_read_decompressed(const char *path, KilnBuf *out, KilnErr *err);

// Reads JSONL documents from a file or "-" (stdin); gzip and zstd inputs are
// recognised by their magic bytes. Fields: "text" (required, or the field named
// by text_field), "id" (default "<path>:<line>") and "source" (default: the
// reader's default_source, else the file's base name without extensions).
// Lines that are not JSON objects with a string text field are skipped into
// `bad`; invalid UTF-8 in a text is repaired (U+FFFD) and counted in `repaired`.
typedef struct KilnDocReader KilnDocReader;
// 1 if path names a JSONL file by its ending: .jsonl, .jsonl.gz or .jsonl.zst
// (for commands that take plain text files and JSONL files alike).
int doc_is_jsonl_path(const char *path);
int docreader_open(KilnDocReader **r, const char *path, const char *text_field,
                   const char *default_source, KilnErr *err);
// 1: a document in *doc; 0: end of input; -1: a fatal error (I/O, truncated
// compressed stream is *not* fatal: it is a skip, and the stream ends).
int docreader_next(KilnDocReader *r, KilnDoc *doc, KilnErr *err);
// The same in three steps, so a caller can parse lines on many threads (the
// stage runner does): raw lines in order (*line is swapped in, no copy), a
// thread-safe parse (1: a document; 0: a blank line; 2: skipped, see out->why;
// -1: out of memory), and the outcome noted back in input order.
typedef struct {
    char why[256];  // the skip message, or ""
    int repaired;   // invalid UTF-8 in the text was repaired
} KilnLineOutcome;
int docreader_next_line(KilnDocReader *r, KilnBuf *line, long *lineno, KilnErr *err);
int docreader_parse(const KilnDocReader *r, const KilnBuf *line, long lineno, KilnDoc *doc, KilnBuf *tmp,
                    KilnLineOutcome *out);
void docreader_note(KilnDocReader *r, const KilnLineOutcome *o);
const KilnSkips *docreader_skips(const KilnDocReader *r);
long docreader_repaired(const KilnDocReader *r);
long docreader_bytes(const KilnDocReader *r);  // input bytes consumed (decompressed)
void docreader_close(KilnDocReader *r);

// Writes JSONL documents {"source","id","text"[, extra fields]} to a file
// (temp name, renamed by docwriter_commit) or to "-" (stdout).
typedef struct KilnDocWriter KilnDocWriter;
int docwriter_open(KilnDocWriter **w, const char *path, KilnErr *err);
// extra_json: NULL, or `"key":value,...` pasted into the object (for rejects:
// "drop":"reason").
int docwriter_put(KilnDocWriter *w, const KilnDoc *doc, const char *extra_json, KilnErr *err);
// The JSONL line (with its newline) docwriter_put writes, into out; -1 when out
// of memory. Thread-safe, so lines can be made in parallel and put in order.
int doc_to_jsonl(const KilnDoc *doc, const char *extra_json, KilnBuf *out);
int docwriter_put_line(KilnDocWriter *w, const char *line, size_t n, KilnErr *err);
int docwriter_commit(KilnDocWriter *w, KilnErr *err);  // flush, fsync, rename; frees w
void docwriter_abort(KilnDocWriter *w);                // remove the temp file; frees w

#endif
