// data.h: documents, JSONL document streams, and the stage interface of the
// data pipeline (issue 4).
//
//   sources (text, JSONL, HTML, WARC, man, code) --> documents {source, id, text}
//     --> per-document stages (clean, filters, decontaminate, augment)   [parallel, in order]
//     --> corpus stages (dedup, line dedup, mixing)                       [whole-corpus passes]
//     --> tokenizer --> token shards + manifest.json + report.json
//
// A document keeps its source and id from the first reader to the manifest, so a
// training batch can be traced back to the documents that made it.
// Every stage also runs alone as `kiln data STAGE`: JSONL in, JSONL out.
#ifndef KILN_DATA_H
#define KILN_DATA_H

#include "kiln/core.h"

#include <stddef.h>
#include <stdint.h>

// ---------------------------------------------------------------- byte buffers
// A growable byte string, always NUL-terminated when data != NULL.
typedef struct {
    char *data;
    size_t len, cap;
} KilnBuf;

int kbuf_reserve(KilnBuf *b, size_t cap);                 // -1 when out of memory
int kbuf_append(KilnBuf *b, const void *p, size_t n);     // -1 when out of memory
int kbuf_puts(KilnBuf *b, const char *s);
int kbuf_putc(KilnBuf *b, char c);
int kbuf_printf(KilnBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));  // appends
int kbuf_set(KilnBuf *b, const void *p, size_t n);        // replace contents
void kbuf_clear(KilnBuf *b);                              // len = 0, keeps memory
void kbuf_swap(KilnBuf *a, KilnBuf *b);
void kbuf_free(KilnBuf *b);
// Appends s[0..n) as the body of a JSON string (no quotes): escapes ", \, control
// characters; invalid UTF-8 bytes become U+FFFD so the output is always valid JSON.
int kbuf_json_escape(KilnBuf *b, const char *s, size_t n);
int kbuf_json_str(KilnBuf *b, const char *s);  // the NUL-terminated s as a quoted JSON string

// ---------------------------------------------------------------- UTF-8
// 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or values > U+10FFFF).
int utf8_valid(const char *s, size_t n);
// Code points in s[0..n) (bytes that do not continue a sequence; Python's len for valid UTF-8).
long utf8_chars(const char *s, size_t n);
// Copies s into out (cleared first) with every invalid byte sequence replaced by
// U+FFFD; returns the number of replacements, or -1 when out of memory.
long utf8_repair(const char *s, size_t n, KilnBuf *out);

// ---------------------------------------------------------------- documents
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

// ---------------------------------------------------------------- parameters
// A stage's parameters: key -> one or more string values, from the pipeline YAML
// (a mapping under the stage name) or from the command line (--key value,
// repeated for lists). `where` says where each came from, for error messages.
typedef struct {
    char *key;
    char **vals;
    int nvals;
    char *where;  // "pipeline.yaml:14" or "command line"
    int used;
} KilnParam;
typedef struct {
    KilnParam *p;
    int n;
    char *stage;  // for messages
} KilnParams;

int params_add(KilnParams *ps, const char *key, const char *val, const char *where, KilnErr *err);
void params_free(KilnParams *ps);
// Getters: when the key is absent *out keeps the default passed in it; a value
// of the wrong type is an error naming stage, key, value and where.
int params_int(KilnParams *ps, const char *key, long *out, KilnErr *err);
int params_double(KilnParams *ps, const char *key, double *out, KilnErr *err);
int params_bool(KilnParams *ps, const char *key, int *out, KilnErr *err);  // true/false/yes/no/1/0
int params_str(KilnParams *ps, const char *key, const char **out, KilnErr *err);
// One of the names in choices (NULL-terminated); *out is its index.
int params_enum(KilnParams *ps, const char *key, const char *const *choices, int *out, KilnErr *err);
// All values of a list key (absent: n = 0). Values stay owned by ps.
int params_list(KilnParams *ps, const char *key, const char *const **vals, int *n, KilnErr *err);
// Error naming the first key no getter asked for (a misspelt parameter).
int params_check_unused(const KilnParams *ps, KilnErr *err);

// ---------------------------------------------------------------- stages
// What happened to the documents of one stage: counts in and out, and each drop
// reason with its count and the first few documents it dropped.
#define KILN_DROP_EXAMPLES 3
typedef struct {
    char *reason;
    long docs, bytes;
    char examples[KILN_DROP_EXAMPLES][320];  // "source/id: first words..."
} KilnDropReason;

typedef struct {
    char *name;
    long docs_in, docs_out, bytes_in, bytes_out;
    long docs_changed;  // documents whose text a stage rewrote
    KilnDropReason *reasons;
    int nreasons;
    double seconds;     // thread-seconds spent in the stage (per-core throughput = bytes_in / seconds)
    char *extra_json;   // stage-specific details (a JSON object), or NULL
} KilnStageReport;

void stage_report_init(KilnStageReport *r, const char *name);
void stage_report_free(KilnStageReport *r);
// Counts one dropped document under reason (kept with an example if among the first).
void stage_report_drop(KilnStageReport *r, const char *reason, const KilnDoc *doc);

// Scratch a stage may use while working on one document; one per thread.
typedef struct {
    KilnBuf a, b;
} KilnScratch;
void scratch_free(KilnScratch *s);

typedef struct KilnStageDef {
    const char *name;     // "clean", "gopher_quality", "dedup", ...
    const char *summary;  // one line for `kiln data --help`
    const char *params_help;  // "  key (default): meaning\n" lines
    // Builds the stage's state from its parameters (must consume every key it
    // understands; the caller rejects leftovers). seed: the pipeline's seed.
    int (*create)(KilnParams *ps, uint64_t seed, void **state, KilnErr *err);
    void (*destroy)(void *state);
    // Per-document stages: called from many threads at once with the same state
    // (which must be read-only, or updated atomically). Returns NULL to keep the
    // document (possibly after rewriting doc->text, e.g. into s->a then
    // kbuf_swap(&doc->text, &s->a)) or a static reason string to drop it.
    const char *(*apply)(void *state, KilnDoc *doc, KilnScratch *s);
    // Corpus stages (apply == NULL): read every document of in_path (JSONL, may be
    // read more than once), write the kept ones to out in input order, and count
    // drops in rep. May put temporary files in work_dir.
    int (*run_corpus)(void *state, const char *in_path, KilnDocWriter *out, const char *work_dir,
                      KilnStageReport *rep, KilnErr *err);
    // Optional: stage-specific report details as a JSON object, malloc'd
    // (e.g. the evaluation items decontamination found, per source).
    char *(*report_json)(void *state);
} KilnStageDef;

// All stages, by name; NULL when unknown.
const KilnStageDef *stage_find(const char *name);
const KilnStageDef *const *stage_all(int *n);

// ---------------------------------------------------------------- running stages
// Anything that yields documents: a JSONL reader, or a source reader over raw
// files (sources.h). next() returns 1 with a document, 0 at the end, -1 on a
// fatal error.
typedef struct {
    int (*next)(void *ctx, KilnDoc *doc, KilnErr *err);
    void *ctx;
    KilnDocReader *reader;  // set when the source is a JSONL reader: lines are then parsed in parallel
} KilnDocSource;
KilnDocSource docreader_source(KilnDocReader *r);

// Runs consecutive per-document stages over a source, in batches processed on
// all threads, writing kept documents (in input order) to out and optionally the
// dropped ones, with "drop":"stage:reason", to rejects (may be NULL).
// reps[i] receives stage i's counts.
typedef struct {
    const KilnStageDef *def;
    void *state;
    const char *const *only;  // per-document stages: apply only to these sources
    int nonly;                // (0: all); other documents pass through unchanged
} KilnStage;
int stages_run_stream(KilnStage *stages, int nstages, KilnDocSource in, KilnDocWriter *out,
                      KilnDocWriter *rejects, KilnStageReport *reps, KilnErr *err);

#endif
