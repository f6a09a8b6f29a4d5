// dataset.c: readers of evaluation datasets in their original files, each
// record handed on as a cJSON object: JSONL (one object a line), CSV (RFC
// 4180, header row, quoted fields across lines), lines (one record {"text"}
// a line) and text (one record {"page"}, or lm-evaluation-harness's
// wikitext_document_level pages), plus a label file aligned with the records.
#include "task/task_internal.h"

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
typedef struct {
    KilnBuf *f;  // fields of the record
    int n, cap;
} Fields;

static KilnBuf *field_next(Fields *fs) {
    if (fs->n == fs->cap) {
        int cap = fs->cap ? fs->cap * 2 : 16;
        KilnBuf *f = realloc(fs->f, sizeof *f * (size_t)cap);
        if (!f) return NULL;
        memset(f + fs->cap, 0, sizeof *f * (size_t)(cap - fs->cap));
        fs->f = f;
        fs->cap = cap;
    }
    KilnBuf *b = &fs->f[fs->n++];
    kbuf_clear(b);
    if (!b->data && kbuf_reserve(b, 16)) return NULL;
    return b;
}

static void fields_free(Fields *fs) {
    for (int i = 0; i < fs->cap; i++) kbuf_free(&fs->f[i]);
    free(fs->f);
}

enum { CSV_OK, CSV_BLANK, CSV_BAD_QUOTE, CSV_UNTERMINATED, CSV_NUL, CSV_OOM };

// One record from data[*pos..len): fields into fs, *pos past its line end,
// *line advanced by the line breaks read. CSV_BAD_QUOTE skips to the end of
// the physical line.
static int csv_record(const char *data, size_t len, size_t *pos, long *line, Fields *fs) {
    size_t i = *pos;
    fs->n = 0;
    if (i < len && (data[i] == '\n' || data[i] == '\r')) {  // an empty line
        i += data[i] == '\r' && i + 1 < len && data[i + 1] == '\n' ? 2 : 1;
        (*line)++;
        *pos = i;
        return CSV_BLANK;
    }
    int status = CSV_OK;
    for (;;) {
        KilnBuf *f = field_next(fs);
        if (!f) return CSV_OOM;
        if (i < len && data[i] == '"') {  // quoted: "" is a quote, line breaks are data
            i++;
            for (;;) {
                if (i >= len) return CSV_UNTERMINATED;
                if (data[i] == '"') {
                    if (i + 1 < len && data[i + 1] == '"') {
                        if (kbuf_putc(f, '"')) return CSV_OOM;
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (data[i] == '\n') (*line)++;
                if (data[i] == 0) status = CSV_NUL;
                if (kbuf_putc(f, data[i++])) return CSV_OOM;
            }
            if (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r') {
                while (i < len && data[i] != '\n') i++;
                if (i < len) i++, (*line)++;
                *pos = i;
                return CSV_BAD_QUOTE;
            }
        } else {
            size_t s = i;
            while (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r') {
                if (data[i] == 0) status = CSV_NUL;
                i++;
            }
            if (kbuf_append(f, data + s, i - s)) return CSV_OOM;
        }
        if (i < len && data[i] == ',') {
            i++;
            continue;
        }
        if (i < len) {  // the line break ending the record
            i += data[i] == '\r' && i + 1 < len && data[i + 1] == '\n' ? 2 : 1;
            (*line)++;
        }
        *pos = i;
        return status;
    }
}

static int read_csv(Reader *r, const char *data, size_t len, long *nrec, KilnErr *err) {
    *nrec = 0;
    Fields fs = {0}, hdr = {0};
    size_t pos = 0;
    long line = 1, start;
    int st, rc = 0;
    do {  // the header: the first non-empty line
        start = line;
        st = pos < len ? csv_record(data, len, &pos, &line, &hdr) : -1;
    } while (st == CSV_BLANK);
    if (st == -1) rc = kiln_fail(err, "%s: no header line", r->name);
    else if (st == CSV_OOM) rc = kiln_fail(err, "out of memory");
    else if (st == CSV_UNTERMINATED) rc = kiln_fail(err, "%s:%ld: unterminated quoted field", r->name, start);
    else if (st != CSV_OK) rc = kiln_fail(err, "%s:%ld: malformed header", r->name, start);
    char **names = rc ? NULL : calloc((size_t)hdr.n, sizeof *names);
    if (!rc && !names) rc = kiln_fail(err, "out of memory");
    for (int k = 0; k < hdr.n && !rc; k++) {  // an unnamed column (pandas' index) is named col<k>
        char tmp[32];
        snprintf(tmp, sizeof tmp, "col%d", k);
        if (!(names[k] = strdup(hdr.f[k].len ? hdr.f[k].data : tmp))) rc = kiln_fail(err, "out of memory");
        for (int j = 0; j < k && !rc; j++)
            if (!strcmp(names[j], names[k]))
                rc = kiln_fail(err, "%s:%ld: column name '%s' twice in the header", r->name, start, names[k]);
    }
    long index = 0;
    while (!rc && pos < len) {
        start = line;
        st = csv_record(data, len, &pos, &line, &fs);
        if (st == CSV_BLANK) continue;
        if (st == CSV_OOM) rc = kiln_fail(err, "out of memory");
        else if (st == CSV_UNTERMINATED) rc = kiln_fail(err, "%s:%ld: unterminated quoted field", r->name, start);
        else if (st == CSV_BAD_QUOTE) rc = bad(r, err, "%s:%ld: text after a closing quote", r->name, start);
        else if (st == CSV_NUL) rc = bad(r, err, "%s:%ld: a NUL character in the record", r->name, start);
        else if (fs.n != hdr.n)
            rc = bad(r, err, "%s:%ld: %d fields, the header has %d", r->name, start, fs.n, hdr.n);
        else {
            cJSON *o = cJSON_CreateObject();
            for (int k = 0; k < fs.n && o; k++)
                if (!cJSON_AddStringToObject(o, names[k], fs.f[k].data)) {
                    cJSON_Delete(o);
                    o = NULL;
                }
            rc = o ? emit(r, o, index, start, err) : kiln_fail(err, "out of memory");
            cJSON_Delete(o);
        }
        index++;
    }
    for (int k = 0; names && k < hdr.n; k++) free(names[k]);
    free(names);
    fields_free(&fs);
    fields_free(&hdr);
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
