// csv.h: the one RFC 4180 CSV reader of the library (task datasets, Davidson's
// tweets). Records come one at a time, each with the line it starts on: fields
// separated by ',', a quoted field ("...") holds ',', line breaks and "" for a
// quote. The reader returns what it found; callers word the errors with their
// file name and the record's line (file:line), as each reads its own format.
#ifndef KILN_CORE_CSV_H
#define KILN_CORE_CSV_H

#include "kiln/core.h"

#include <stddef.h>

// One record. The fields are reused from record to record (free with
// csv_record_free); each is NUL-terminated, even when empty.
typedef struct {
    KilnBuf *field;
    int nfields, cap;
    long line;  // the 1-based line the record starts on
    int nul;    // a NUL byte in some field (stored as it is)
} KilnCsvRecord;

// The reader's place in data[0..len) and its two dialect choices.
typedef struct {
    const char *data;
    size_t len, pos;
    long line;  // the line at pos
    // Text after a closing quote ("a"b): strict makes the record CSV_BAD_QUOTE
    // and reading goes on at the next line (Python's csv with strict=True);
    // otherwise the text joins the field (Python's default).
    int strict;
    // lf_only: only "\n" ends a record and '\r' outside quotes is dropped;
    // otherwise "\r\n", "\n" and a lone "\r" each end one.
    int lf_only;
} KilnCsv;

enum {
    CSV_END,           // no more data
    CSV_RECORD,        // a record (r->nul tells of a NUL byte in it)
    CSV_BLANK,         // an empty line (no fields)
    CSV_BAD_QUOTE,     // strict: text after a closing quote
    CSV_UNTERMINATED,  // a quoted field open at the end of the data
    CSV_OOM            // out of memory
};

// Starts reading data[0..len) at line 1, neither strict nor lf_only.
void csv_init(KilnCsv *c, const char *data, size_t len);
// Reads the next record into r; returns one of the CSV_ values. After
// CSV_UNTERMINATED or CSV_OOM the reader cannot go on.
int csv_next(KilnCsv *c, KilnCsvRecord *r);
void csv_record_free(KilnCsvRecord *r);

#endif
