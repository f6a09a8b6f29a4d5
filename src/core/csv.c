// csv.c: the RFC 4180 CSV reader (csv.h): one record per call, quoted fields
// across lines, line numbers counted as the data is read.
#include "core/csv.h"

#include <stdlib.h>
#include <string.h>

void csv_init(KilnCsv *c, const char *data, size_t len) {
    memset(c, 0, sizeof *c);
    c->data = data;
    c->len = len;
    c->line = 1;
}

void csv_record_free(KilnCsvRecord *r) {
    for (int i = 0; i < r->cap; i++) kbuf_free(&r->field[i]);
    free(r->field);
    memset(r, 0, sizeof *r);
}

// The next field of r, empty (its text "" rather than NULL), or NULL when out of memory.
static KilnBuf *field_next(KilnCsvRecord *r) {
    if (r->nfields == r->cap) {
        int cap = r->cap ? r->cap * 2 : 16;
        KilnBuf *f = realloc(r->field, sizeof *f * (size_t)cap);
        if (!f) return NULL;
        memset(f + r->cap, 0, sizeof *f * (size_t)(cap - r->cap));
        r->field = f;
        r->cap = cap;
    }
    KilnBuf *b = &r->field[r->nfields++];
    kbuf_clear(b);
    if (!b->data && kbuf_reserve(b, 16)) return NULL;
    return b;
}

// Bytes of the line break at data[i] ("\r\n" is one).
static size_t break_len(const KilnCsv *c, size_t i) {
    return !c->lf_only && c->data[i] == '\r' && i + 1 < c->len && c->data[i + 1] == '\n' ? 2 : 1;
}

// Whether data[i] ends a field or a record (lone '\r' only outside lf_only).
static int ends_field(const KilnCsv *c, char ch) { return ch == ',' || ch == '\n' || (ch == '\r' && !c->lf_only); }

// A quoted field from the opening quote at c->pos: "" is a quote, line breaks
// are data. Leaves c->pos after the closing quote.
static int read_quoted(KilnCsv *c, KilnCsvRecord *r, KilnBuf *f) {
    const char *s = c->data;
    size_t i = c->pos + 1;
    for (;; i++) {
        if (i >= c->len) return CSV_UNTERMINATED;
        if (s[i] == '"' && i + 1 < c->len && s[i + 1] == '"') i++;  // the second quote is kept
        else if (s[i] == '"') break;
        if (s[i] == '\n') c->line++;
        if (!s[i]) r->nul = 1;
        if (kbuf_putc(f, s[i])) return CSV_OOM;
    }
    c->pos = i + 1;
    return CSV_RECORD;
}

// Unquoted text (a whole field, or what follows a closing quote) up to the
// end of the field; lf_only drops '\r'.
static int read_plain(KilnCsv *c, KilnCsvRecord *r, KilnBuf *f) {
    const char *s = c->data;
    size_t i = c->pos;
    for (; i < c->len && !ends_field(c, s[i]); i++) {
        if (s[i] == '\r') continue;  // lf_only
        if (!s[i]) r->nul = 1;
        if (kbuf_putc(f, s[i])) return CSV_OOM;
    }
    c->pos = i;
    return CSV_RECORD;
}

// strict: the rest of the physical line is skipped after text that followed a closing quote.
static int skip_line(KilnCsv *c) {
    while (c->pos < c->len && c->data[c->pos] != '\n') c->pos++;
    if (c->pos < c->len) c->pos++, c->line++;
    return CSV_BAD_QUOTE;
}

int csv_next(KilnCsv *c, KilnCsvRecord *r) {
    r->nfields = 0;
    r->nul = 0;
    r->line = c->line;
    if (c->pos >= c->len) return CSV_END;
    if (c->data[c->pos] == '\n' || (c->data[c->pos] == '\r' && !c->lf_only)) {  // an empty line
        c->pos += break_len(c, c->pos);
        c->line++;
        return CSV_BLANK;
    }
    for (;;) {
        KilnBuf *f = field_next(r);
        if (!f) return CSV_OOM;
        int st;
        if (c->pos < c->len && c->data[c->pos] == '"') {
            if ((st = read_quoted(c, r, f)) != CSV_RECORD) return st;
            if (c->strict && c->pos < c->len && !ends_field(c, c->data[c->pos])) return skip_line(c);
        }
        if ((st = read_plain(c, r, f)) != CSV_RECORD) return st;
        if (c->pos < c->len && c->data[c->pos] == ',') {
            c->pos++;
            continue;
        }
        if (c->pos < c->len) {  // the line break ending the record
            c->pos += break_len(c, c->pos);
            c->line++;
        }
        return CSV_RECORD;
    }
}
