// dataset.c: readers of evaluation datasets in their original files, each
// record handed on as a cJSON object: JSONL (one object a line), CSV (RFC
// 4180, header row, quoted fields across lines), lines (one record {"text"}
// a line) and text (one record {"page"}, or lm-evaluation-harness's
// wikitext_document_level pages), plus a label file aligned with the records.
#include "task/task_internal.h"

#include "core/csv.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The state of one read: where bad records go.
typedef struct {
    const char *name;
    int skip_bad;
    long *skipped;
    char **labels;  // label file lines (NULL: none)
    long nlabels;
    const char *label_path;
    DsRecordFn fn;
    void *ctx;
} Reader;

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

// A bad record: an error, or counted under skip_bad. Returns -1 or 0.
static int bad(Reader *r, KilnErr *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(Reader *r, KilnErr *err, const char *fmt, ...) {
    if (r->skip_bad) {
        (*r->skipped)++;
        return 0;
    }
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kiln_fail(err, "%s", msg);
}

// Adds the label of record index (label file) and hands the record on.
static int emit(Reader *r, cJSON *rec, long index, long line, KilnErr *err) {
    if (r->labels) {
        if (index >= r->nlabels)
            return kiln_fail(err, "%s: %ld labels, but %s:%ld is record %ld", r->label_path, r->nlabels, r->name, line,
                             index + 1);
        cJSON *v = cJSON_CreateString(r->labels[index]);
        if (!v) return kiln_fail(err, "out of memory");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "label");
        cJSON_AddItemToObject(rec, "label", v);
    }
    return r->fn(r->ctx, rec, index, line, err);
}

// ---------------------------------------------------------------- JSONL
// "\u0000" in a JSON text: cJSON would cut the string there, silently.
static int has_nul_escape(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '\\') {
            if (s[i + 1] == 'u' && n - i >= 6 && !memcmp(s + i + 2, "0000", 4)) return 1;
            i++;  // the escaped character
        }
    return 0;
}

static int read_jsonl(Reader *r, const char *data, size_t len, long *nrec, KilnErr *err) {
    long line = 0, index = 0;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        line++;
        if (!is_blank(data + i, e - i)) {
            cJSON *o = NULL;
            if (memchr(data + i, 0, e - i) || has_nul_escape(data + i, e - i))
                rc = bad(r, err, "%s:%ld: a NUL character in the record", r->name, line);
            else if (!cJSON_IsObject(o = cJSON_ParseWithLength(data + i, e - i)))
                rc = bad(r, err, "%s:%ld: not a JSON object", r->name, line);
            else
                rc = emit(r, o, index, line, err);
            cJSON_Delete(o);
            index++;
        }
        i = e + 1;
    }
    *nrec = index;
    return rc;
}

// ---------------------------------------------------------------- CSV
// The header's column names: an unnamed column (pandas' index) is named col<k>.
static int csv_names(Reader *r, const KilnCsvRecord *hdr, char ***out, KilnErr *err) {
    char **names = calloc((size_t)hdr->nfields, sizeof *names);
    *out = names;
    if (!names) return kiln_fail(err, "out of memory");
    for (int k = 0; k < hdr->nfields; k++) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "col%d", k);
        if (!(names[k] = strdup(hdr->field[k].len ? hdr->field[k].data : tmp))) return kiln_fail(err, "out of memory");
        for (int j = 0; j < k; j++)
            if (!strcmp(names[j], names[k]))
                return kiln_fail(err, "%s:%ld: column name '%s' twice in the header", r->name, hdr->line, names[k]);
    }
    return 0;
}

// One data record: a bad one is an error or a counted skip, a good one goes on as {column: value}.
static int csv_emit(Reader *r, int st, const KilnCsvRecord *rec, char **names, int ncols, long index, KilnErr *err) {
    if (st == CSV_OOM) return kiln_fail(err, "out of memory");
    if (st == CSV_UNTERMINATED) return kiln_fail(err, "%s:%ld: unterminated quoted field", r->name, rec->line);
    if (st == CSV_BAD_QUOTE) return bad(r, err, "%s:%ld: text after a closing quote", r->name, rec->line);
    if (rec->nul) return bad(r, err, "%s:%ld: a NUL character in the record", r->name, rec->line);
    if (rec->nfields != ncols)
        return bad(r, err, "%s:%ld: %d fields, the header has %d", r->name, rec->line, rec->nfields, ncols);
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < rec->nfields && o; k++)
        if (!cJSON_AddStringToObject(o, names[k], rec->field[k].data)) {
            cJSON_Delete(o);
            o = NULL;
        }
    int rc = o ? emit(r, o, index, rec->line, err) : kiln_fail(err, "out of memory");
    cJSON_Delete(o);
    return rc;
}

// RFC 4180 with a header row (the first non-empty line); strict: text after a
// closing quote makes a bad record rather than part of the field.
static int read_csv(Reader *r, const char *data, size_t len, long *nrec, KilnErr *err) {
    *nrec = 0;
    KilnCsv c;
    csv_init(&c, data, len);
    c.strict = 1;
    KilnCsvRecord hdr = {0}, rec = {0};
    int st, rc = 0;
    while ((st = csv_next(&c, &hdr)) == CSV_BLANK) {}
    if (st == CSV_END) rc = kiln_fail(err, "%s: no header line", r->name);
    else if (st == CSV_OOM) rc = kiln_fail(err, "out of memory");
    else if (st == CSV_UNTERMINATED) rc = kiln_fail(err, "%s:%ld: unterminated quoted field", r->name, hdr.line);
    else if (st != CSV_RECORD || hdr.nul) rc = kiln_fail(err, "%s:%ld: malformed header", r->name, hdr.line);
    char **names = NULL;
    if (!rc) rc = csv_names(r, &hdr, &names, err);
    long index = 0;
    while (!rc && (st = csv_next(&c, &rec)) != CSV_END) {
        if (st == CSV_BLANK) continue;
        rc = csv_emit(r, st, &rec, names, hdr.nfields, index++, err);
    }
    for (int k = 0; names && k < hdr.nfields; k++) free(names[k]);
    free(names);
    csv_record_free(&rec);
    csv_record_free(&hdr);
    *nrec = index;
    return rc;
}

int ds_read_csv_text(const char *data, size_t len, const char *name, int skip_bad, DsRecordFn fn, void *ctx,
                     long *nrecords, long *skipped, KilnErr *err) {
    long skip_local = 0;
    Reader r = {.name = name, .skip_bad = skip_bad, .skipped = skipped ? skipped : &skip_local, .fn = fn, .ctx = ctx};
    return read_csv(&r, data, len, nrecords, err);
}

// ---------------------------------------------------------------- lines and text
static int read_lines(Reader *r, const char *data, size_t len, long *nrec, KilnErr *err) {
    long line = 0, index = 0;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len, end = e;
        line++;
        if (end > i && data[end - 1] == '\r') end--;
        if (!is_blank(data + i, end - i)) {
            if (memchr(data + i, 0, end - i)) {
                rc = bad(r, err, "%s:%ld: a NUL character in the line", r->name, line);
            } else {
                cJSON *o = cJSON_CreateObject();
                char *s = strndup(data + i, end - i);
                rc = o && s && cJSON_AddStringToObject(o, "text", s) ? emit(r, o, index, line, err)
                                                                      : kiln_fail(err, "out of memory");
                free(s);
                cJSON_Delete(o);
            }
            index++;
        }
        i = e + 1;
    }
    *nrec = index;
    return rc;
}

// Python's universal newlines: "\r\n" and "\r" become "\n".
static void universal_newlines(char *s, size_t *len) {
    size_t w = 0;
    for (size_t i = 0; i < *len; i++) {
        if (s[i] == '\r') {
            s[w++] = '\n';
            if (i + 1 < *len && s[i + 1] == '\n') i++;
        } else {
            s[w++] = s[i];
        }
    }
    s[w] = 0;
    *len = w;
}

// s with every from replaced by to (Python str.replace), into out
static int replace_str(const char *s, size_t n, const char *from, const char *to, KilnBuf *out) {
    size_t fl = strlen(from);
    kbuf_clear(out);
    int rc = kbuf_reserve(out, n + 1);
    for (size_t i = 0; i < n && !rc;) {
        int hit = n - i >= fl && !memcmp(s + i, from, fl);
        rc = hit ? kbuf_puts(out, to) : kbuf_putc(out, s[i]);
        i += hit ? fl : 1;
    }
    return rc;
}

// lm-evaluation-harness's wikitext_document_level: a new page at each line that,
// with "= = =" -> "===" and "= =" -> "==" and stripped, starts with "= " and
// ends with " =" (a top-level heading); a page is its lines joined by "\n".
static int is_page_heading(const char *s, size_t n) {
    if (!memchr(s, '=', n)) return 0;
    KilnBuf t = {0}, u = {0};
    int yes = 0;
    if (!replace_str(s, n, "= = =", "===", &t) && !replace_str(t.data, t.len, "= =", "==", &u)) {
        size_t a, b;
        py_strip_span(u.data, u.len, &a, &b);
        yes = b - a >= 3 && !memcmp(u.data + a, "= ", 2) && !memcmp(u.data + b - 2, " =", 2);
    }
    kbuf_free(&t);
    kbuf_free(&u);
    return yes;
}

static int emit_page(Reader *r, const char *s, size_t n, long *index, long line, int always, KilnErr *err) {
    size_t a, b;
    py_strip_span(s, n, &a, &b);
    if (a == b && !always) return 0;
    cJSON *o = cJSON_CreateObject();
    char *page = strndup(s, n);
    int rc = o && page && cJSON_AddStringToObject(o, "page", page) ? emit(r, o, (*index)++, line, err)
                                                                    : kiln_fail(err, "out of memory");
    free(page);
    cJSON_Delete(o);
    return rc;
}

static int read_text(Reader *r, char *data, size_t len, DsSplit split, long *nrec, KilnErr *err) {
    universal_newlines(data, &len);
    long index = 0;
    int rc = 0;
    if (memchr(data, 0, len)) {
        rc = kiln_fail(err, "%s: a NUL character in the text", r->name);
    } else if (split == DS_SPLIT_NONE) {
        rc = emit_page(r, data, len, &index, 1, 0, err);
    } else {
        size_t page = 0;  // start of the current page
        long page_line = 1, line = 1;
        for (size_t i = 0; i <= len && !rc; line++) {
            const char *nl = memchr(data + i, '\n', len - i);
            size_t e = nl ? (size_t)(nl - data) : len;
            if (i > page && is_page_heading(data + i, e - i)) {
                rc = emit_page(r, data + page, i - 1 - page, &index, page_line, 0, err);  // without the '\n' before
                page = i;
                page_line = line;
            }
            i = e + 1;
        }
        if (!rc) rc = emit_page(r, data + page, len - page, &index, page_line, 0, err);
    }
    *nrec = index;
    return rc;
}

// ---------------------------------------------------------------- label files
static int read_labels(Reader *r, const char *path, KilnErr *err) {
    char *data;
    size_t len;
    if (kiln_read_file(path, &data, &len, err)) return -1;
    long line = 0;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len, a = i;
        line++;
        while (a < e && isspace((unsigned char)data[a])) a++;
        size_t b = e;
        while (b > a && isspace((unsigned char)data[b - 1])) b--;
        if (b > a) {
            if (memchr(data + a, 0, b - a)) {
                rc = kiln_fail(err, "%s:%ld: a NUL character in the label", path, line);
                break;
            }
            char **l = realloc(r->labels, sizeof *l * (size_t)(r->nlabels + 1));
            if (!l || !(l[r->nlabels] = strndup(data + a, b - a))) {
                if (l) r->labels = l;
                rc = kiln_fail(err, "out of memory");
                break;
            }
            r->labels = l;
            r->nlabels++;
        }
        i = e + 1;
    }
    free(data);
    return rc;
}

int ds_read(const DsSpec *spec, int skip_bad, DsRecordFn fn, void *ctx, long *nrecords, long *skipped, KilnErr *err) {
    long skip_local = 0, n = 0;
    Reader r = {.name = spec->path, .skip_bad = skip_bad, .skipped = skipped ? skipped : &skip_local, .fn = fn,
                .ctx = ctx, .label_path = spec->label_file};
    *nrecords = 0;
    if (spec->label_file && read_labels(&r, spec->label_file, err)) {
        for (long i = 0; i < r.nlabels; i++) free(r.labels[i]);
        free(r.labels);
        return -1;
    }
    if (spec->label_file && !r.labels) r.labels = calloc(1, sizeof *r.labels);  // an empty label file still aligns
    char *data;
    size_t len;
    int rc = kiln_read_file(spec->path, &data, &len, err);
    if (!rc) {
        size_t bom = len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3) ? 3 : 0;
        switch (spec->format) {
        case DS_JSONL: rc = read_jsonl(&r, data + bom, len - bom, &n, err); break;
        case DS_CSV: rc = read_csv(&r, data + bom, len - bom, &n, err); break;
        case DS_LINES: rc = read_lines(&r, data + bom, len - bom, &n, err); break;
        case DS_TEXT: rc = read_text(&r, data + bom, len - bom, spec->split, &n, err); break;
        }
        free(data);
    }
    if (!rc && spec->label_file && n != r.nlabels)
        rc = kiln_fail(err, "%s: %ld labels, but %s has %ld records", spec->label_file, r.nlabels, spec->path, n);
    for (long i = 0; i < r.nlabels; i++) free(r.labels[i]);
    free(r.labels);
    *nrecords = n;
    return rc;
}
