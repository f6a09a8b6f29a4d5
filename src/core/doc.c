// doc.c: documents, JSONL document streams and whole-file reads. Inputs may be
// plain, gzip or zstd (recognised by magic bytes, also on stdin); outputs are
// written to a temp name and renamed on commit, so an interrupted run leaves no
// half file.
#include "kiln/doc.h"
#include "core/utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

void doc_free(KilnDoc *d) {
    kbuf_free(&d->source);
    kbuf_free(&d->id);
    kbuf_free(&d->text);
}

int doc_copy(KilnDoc *dst, const KilnDoc *src) {
    return kbuf_set(&dst->source, src->source.data, src->source.len) ||
                   kbuf_set(&dst->id, src->id.data, src->id.len) ||
                   kbuf_set(&dst->text, src->text.data, src->text.len)
               ? -1
               : 0;
}

void skips_add(KilnSkips *s, const char *fmt, ...) {
    if (s->count < KILN_SKIP_EXAMPLES) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->examples[s->count], sizeof s->examples[0], fmt, ap);
        va_end(ap);
    }
    s->count++;
}

// ---------------------------------------------------------------- decompression
enum { RAW, GZIP, ZSTD };
#define CHUNK (1 << 18)

typedef struct {
    FILE *f;
    int kind;
    unsigned char *in;   // compressed bytes
    size_t in_len, in_pos;
    z_stream z;
    ZSTD_DCtx *zd;
    int eof, truncated, frame_done;
    const char *damage;  // with truncated: "truncated", or the decoder's word for corrupt data
} ByteIn;

// Stops the stream at damage: what was decoded so far is all there is.
static void bytein_damaged(ByteIn *b, const char *why) {
    b->truncated = 1;
    b->damage = why;
    b->eof = 1;
    b->in_pos = b->in_len;
}

static int bytein_fill(ByteIn *b) {
    if (b->in_pos < b->in_len || b->eof) return 0;
    b->in_len = fread(b->in, 1, CHUNK, b->f);
    b->in_pos = 0;
    if (b->in_len == 0) {
        if (ferror(b->f)) return -1;
        b->eof = 1;
    }
    return 0;
}

// Reads up to cap decompressed bytes; 0 at the end. -1 on I/O error; sets
// truncated when a compressed stream ends early or is corrupt.
static long bytein_read(ByteIn *b, unsigned char *out, size_t cap) {
    for (;;) {
        if (bytein_fill(b)) return -1;
        if (b->kind == RAW) {
            size_t k = b->in_len - b->in_pos < cap ? b->in_len - b->in_pos : cap;
            memcpy(out, b->in + b->in_pos, k);
            b->in_pos += k;
            return (long)k;
        }
        if (b->in_pos == b->in_len && b->eof) {
            if (!b->frame_done && !b->truncated) bytein_damaged(b, "truncated");  // ended inside a member or frame
            return 0;
        }
        if (b->kind == GZIP) {
            b->z.next_in = b->in + b->in_pos;
            b->z.avail_in = (uInt)(b->in_len - b->in_pos);
            b->z.next_out = out;
            b->z.avail_out = (uInt)cap;
            int rc = inflate(&b->z, Z_NO_FLUSH);
            size_t used = b->in_len - b->z.avail_in - b->in_pos;
            b->in_pos += used;
            size_t got = cap - b->z.avail_out;
            if (rc == Z_STREAM_END) {
                // multi-member gzip: another member may follow
                b->frame_done = 1;
                inflateReset(&b->z);
            } else if (rc == Z_OK || rc == Z_BUF_ERROR) {
                if (got || used) b->frame_done = 0;  // inside a member (a next member's header counts)
            } else {
                bytein_damaged(b, b->z.msg ? b->z.msg : "corrupt");
                return (long)got;
            }
            if (got) return (long)got;
        } else {
            ZSTD_inBuffer zin = {b->in + b->in_pos, b->in_len - b->in_pos, 0};
            ZSTD_outBuffer zout = {out, cap, 0};
            size_t rc = ZSTD_decompressStream(b->zd, &zout, &zin);
            b->in_pos += zin.pos;
            if (ZSTD_isError(rc)) {
                bytein_damaged(b, ZSTD_getErrorName(rc));
                return (long)zout.pos;
            }
            b->frame_done = rc == 0;  // 0: a frame is complete
            if (zout.pos) return (long)zout.pos;
            if (b->eof && b->in_pos == b->in_len && rc != 0) {
                bytein_damaged(b, "truncated");
                return 0;
            }
        }
    }
}

static int bytein_open(ByteIn *b, FILE *f) {
    memset(b, 0, sizeof *b);
    b->f = f;
    b->in = malloc(CHUNK);
    if (!b->in) return -1;
    if (bytein_fill(b)) return -1;
    const unsigned char *m = b->in;
    if (b->in_len >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
        b->kind = GZIP;
        if (inflateInit2(&b->z, 16 + MAX_WBITS) != Z_OK) return -1;
    } else if (b->in_len >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
        b->kind = ZSTD;
        b->zd = ZSTD_createDCtx();
        if (!b->zd) return -1;
    }
    return 0;
}

static void bytein_close(ByteIn *b) {
    if (b->kind == GZIP) inflateEnd(&b->z);
    if (b->zd) ZSTD_freeDCtx(b->zd);
    free(b->in);
}

int kiln_read_decompressed(const char *path, KilnBuf *out, KilnErr *err) {
    kbuf_clear(out);
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    size_t hint = !fstat(fileno(f), &st) && st.st_size > 0 ? (size_t)st.st_size : 0;  // exact when plain
    ByteIn in;
    int rc = 0;
    if (bytein_open(&in, f) || kbuf_reserve(out, hint)) rc = kiln_fail(err, "%s: read error: %s", path, strerror(errno));
    while (!rc) {
        if (kbuf_reserve(out, out->len + CHUNK)) {
            rc = kiln_fail(err, "%s: out of memory", path);
            break;
        }
        long got = bytein_read(&in, (unsigned char *)out->data + out->len, CHUNK);
        if (got < 0) rc = kiln_fail(err, "%s: read error: %s", path, strerror(errno));
        if (got <= 0) break;
        out->len += (size_t)got;
    }
    if (!rc && in.truncated) {
        kiln_fail(err, "%s: compressed data %s after %zu bytes", path, in.damage, out->len);
        rc = 1;
    }
    if (out->data) out->data[out->len] = 0;
    bytein_close(&in);
    fclose(f);
    return rc;
}

void skips_merge(KilnSkips *into, const KilnSkips *from) {
    for (long i = 0; i < from->count && i < KILN_SKIP_EXAMPLES; i++) skips_add(into, "%s", from->examples[i]);
    if (from->count > KILN_SKIP_EXAMPLES) into->count += from->count - KILN_SKIP_EXAMPLES;
}

// ---------------------------------------------------------------- reader
int doc_is_jsonl_path(const char *path) {
    static const char *const ends[] = {".jsonl", ".jsonl.gz", ".jsonl.zst"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
        size_t k = strlen(ends[i]);
        if (n > k && !strcmp(path + n - k, ends[i])) return 1;
    }
    return 0;
}

struct KilnDocReader {
    char *path, *text_field, *default_source;
    ByteIn in;
    int own_file;
    unsigned char *buf;  // decompressed bytes
    size_t buf_len, buf_pos;
    KilnBuf line, raw, tmp;
    long lineno, bytes, repaired;
    KilnSkips skips;
    int done;
};

// The file's base name without directories or extensions: "/a/b/wiki.en.jsonl.gz" -> "wiki".
static void base_name(const char *path, KilnBuf *out) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strcspn(b, ".");
    kbuf_set(out, b, n ? n : strlen(b));
}

int docreader_open(KilnDocReader **rp, const char *path, const char *text_field, const char *default_source,
                   KilnErr *err) {
    KilnDocReader *r = calloc(1, sizeof *r);
    if (!r) return kiln_fail(err, "out of memory");
    int stdin_in = !strcmp(path, "-");
    FILE *f = stdin_in ? stdin : fopen(path, "rb");
    if (!f) {
        free(r);
        return kiln_fail(err, "%s: %s", path, strerror(errno));
    }
    r->own_file = !stdin_in;
    r->path = strdup(stdin_in ? "<stdin>" : path);
    r->text_field = strdup(text_field ? text_field : "text");
    KilnBuf src = {0};
    if (default_source) kbuf_puts(&src, default_source);
    else if (stdin_in) kbuf_puts(&src, "stdin");
    else base_name(path, &src);
    r->default_source = src.data;
    r->buf = malloc(CHUNK);
    if (!r->path || !r->text_field || !r->default_source || !r->buf || bytein_open(&r->in, f)) {
        docreader_close(r);
        return kiln_fail(err, "%s: cannot start reading (out of memory or read error)", path);
    }
    *rp = r;
    return 0;
}

// Next line (without its \n) into r->line; 1, or 0 at the end, -1 on I/O error.
static int read_line(KilnDocReader *r, KilnErr *err) {
    kbuf_clear(&r->line);
    for (;;) {
        if (r->buf_pos == r->buf_len) {
            long got = bytein_read(&r->in, r->buf, CHUNK);
            if (got < 0) return kiln_fail(err, "%s: read error: %s", r->path, strerror(errno));
            if (got == 0) {
                if (r->in.truncated && !r->done) {
                    // the partial last line is known to be incomplete: not a document
                    skips_add(&r->skips, "%s:%ld: compressed stream truncated or corrupt; input ends here",
                              r->path, r->lineno + 1);
                    kbuf_clear(&r->line);
                }
                r->done = 1;
                return r->line.len ? 1 : 0;
            }
            r->buf_len = (size_t)got;
            r->buf_pos = 0;
            r->bytes += got;
        }
        unsigned char *p = r->buf + r->buf_pos, *nl = memchr(p, '\n', r->buf_len - r->buf_pos);
        size_t k = nl ? (size_t)(nl - p) : r->buf_len - r->buf_pos;
        if (kbuf_append(&r->line, p, k)) return kiln_fail(err, "%s: out of memory", r->path);
        r->buf_pos += k + (nl ? 1 : 0);
        if (nl) return 1;
    }
}

// Decodes the JSON string value at span into out; a number is kept as written.
static int field_value(const char *line, const size_t span[2], KilnBuf *out, int allow_number) {
    const char *v = line + span[0];
    size_t n = span[1] - span[0], len;
    if (n && v[0] != '"') {
        if (!allow_number || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))) return -1;
        return kbuf_set(out, v, n);
    }
    kbuf_clear(out);
    if (kbuf_reserve(out, n)) return -1;
    if (kiln_json_string(v, n, out->data, &len)) return -1;
    out->len = len;
    out->data[len] = 0;
    return 0;
}

int docreader_next_line(KilnDocReader *r, KilnBuf *line, long *lineno, KilnErr *err) {
    int rc = read_line(r, err);
    if (rc <= 0) return rc;
    r->lineno++;
    *lineno = r->lineno;
    kbuf_swap(line, &r->line);
    return 1;
}

int docreader_parse(const KilnDocReader *r, const KilnBuf *raw, long lineno, KilnDoc *doc, KilnBuf *tmp,
                    KilnLineOutcome *out) {
    const char *line = raw->data ? raw->data : "";
    size_t n = raw->len;
    out->why[0] = 0;
    out->repaired = 0;
    if (n && line[n - 1] == '\r') n--;
    size_t blank = 0;
    while (blank < n && (line[blank] == ' ' || line[blank] == '\t')) blank++;
    if (blank == n) return 0;  // blank lines are not documents
    const char *names[3] = {r->text_field, "id", "source"};
    size_t spans[3][2];
    if (kiln_json_fields(line, n, names, 3, spans)) {
        snprintf(out->why, sizeof out->why, "%s:%ld: not a JSON object", r->path, lineno);
        return 2;
    }
    if (!spans[0][1] || field_value(line, spans[0], &doc->text, 0)) {
        snprintf(out->why, sizeof out->why, "%s:%ld: no string field \"%s\"", r->path, lineno, r->text_field);
        return 2;
    }
    if (!utf8_valid(doc->text.data, doc->text.len)) {
        if (utf8_repair(doc->text.data, doc->text.len, tmp) < 0) return -1;
        kbuf_swap(&doc->text, tmp);
        out->repaired = 1;
    }
    int bad_id = spans[1][1] && field_value(line, spans[1], &doc->id, 1);
    int bad_src = spans[2][1] && field_value(line, spans[2], &doc->source, 0);
    if (bad_id || bad_src) {
        snprintf(out->why, sizeof out->why, "%s:%ld: \"%s\" must be a string", r->path, lineno,
                 bad_id ? "id" : "source");
        return 2;
    }
    if (!spans[1][1]) {
        char id[64];
        snprintf(id, sizeof id, ":%ld", lineno);
        if (kbuf_set(&doc->id, r->path, strlen(r->path)) || kbuf_puts(&doc->id, id)) return -1;
    }
    if (!spans[2][1] && kbuf_set(&doc->source, r->default_source, strlen(r->default_source))) return -1;
    // ids and sources must be valid UTF-8 too (they go into JSON and reports)
    if (!utf8_valid(doc->id.data, doc->id.len)) {
        if (utf8_repair(doc->id.data, doc->id.len, tmp) < 0) return -1;
        kbuf_swap(&doc->id, tmp);
    }
    if (!utf8_valid(doc->source.data, doc->source.len)) {
        if (utf8_repair(doc->source.data, doc->source.len, tmp) < 0) return -1;
        kbuf_swap(&doc->source, tmp);
    }
    return 1;
}

void docreader_note(KilnDocReader *r, const KilnLineOutcome *o) {
    if (o->why[0]) skips_add(&r->skips, "%s", o->why);
    r->repaired += o->repaired;
}

int docreader_next(KilnDocReader *r, KilnDoc *doc, KilnErr *err) {
    for (;;) {
        long lineno;
        int rc = docreader_next_line(r, &r->raw, &lineno, err);
        if (rc <= 0) return rc;
        KilnLineOutcome o;
        rc = docreader_parse(r, &r->raw, lineno, doc, &r->tmp, &o);
        if (rc < 0) return kiln_fail(err, "%s: out of memory", r->path);
        docreader_note(r, &o);
        if (rc == 1) return 1;
    }
}

const KilnSkips *docreader_skips(const KilnDocReader *r) { return &r->skips; }
long docreader_repaired(const KilnDocReader *r) { return r->repaired; }
long docreader_bytes(const KilnDocReader *r) { return r->bytes; }

void docreader_close(KilnDocReader *r) {
    if (!r) return;
    if (r->own_file && r->in.f) fclose(r->in.f);
    bytein_close(&r->in);
    free(r->path);
    free(r->text_field);
    free(r->default_source);
    free(r->buf);
    kbuf_free(&r->line);
    kbuf_free(&r->raw);
    kbuf_free(&r->tmp);
    free(r);
}

// ---------------------------------------------------------------- writer
struct KilnDocWriter {
    KilnAtomicFile af;  // regular files only
    FILE *out;          // stdout, a device or pipe, or af.f
    int to_stdout;      // not a regular file: written in place, never renamed over
    int own_out;        // a device or pipe we opened (closed on commit)
    KilnBuf line;
    char *path;
};

int docwriter_open(KilnDocWriter **wp, const char *path, KilnErr *err) {
    KilnDocWriter *w = calloc(1, sizeof *w);
    if (!w) return kiln_fail(err, "out of memory");
    w->path = strdup(path);
    struct stat st;
    if (!strcmp(path, "-")) {
        w->to_stdout = 1;
        w->out = stdout;
    } else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        // /dev/null, a FIFO, /dev/stdout: a temp file renamed over it would replace the device
        w->to_stdout = w->own_out = 1;
        if (!(w->out = fopen(path, "w"))) {
            free(w->path);
            free(w);
            return kiln_fail(err, "%s: %s", path, strerror(errno));
        }
    } else if (kiln_atomic_open(&w->af, path, err)) {
        free(w->path);
        free(w);
        return -1;
    } else {
        w->out = w->af.f;
    }
    *wp = w;
    return 0;
}

int doc_to_jsonl(const KilnDoc *doc, const char *extra_json, KilnBuf *b) {
    kbuf_clear(b);
    int bad = kbuf_puts(b, "{\"source\":\"") || kbuf_json_escape(b, doc->source.data, doc->source.len) ||
              kbuf_puts(b, "\",\"id\":\"") || kbuf_json_escape(b, doc->id.data, doc->id.len) ||
              kbuf_puts(b, "\",\"text\":\"") || kbuf_json_escape(b, doc->text.data, doc->text.len) ||
              kbuf_puts(b, "\"");
    if (!bad && extra_json && *extra_json) bad = kbuf_putc(b, ',') || kbuf_puts(b, extra_json);
    return bad || kbuf_puts(b, "}\n") ? -1 : 0;
}

int docwriter_put_line(KilnDocWriter *w, const char *line, size_t n, KilnErr *err) {
    if (w->to_stdout) {
        if (fwrite(line, 1, n, w->out) != n) return kiln_fail(err, "writing stdout: %s", strerror(errno));
        return 0;
    }
    return kiln_atomic_write(&w->af, line, n, err);
}

int docwriter_put(KilnDocWriter *w, const KilnDoc *doc, const char *extra_json, KilnErr *err) {
    if (doc_to_jsonl(doc, extra_json, &w->line)) return kiln_fail(err, "out of memory writing %s", w->path);
    return docwriter_put_line(w, w->line.data, w->line.len, err);
}

int docwriter_commit(KilnDocWriter *w, KilnErr *err) {
    int rc = 0;
    if (w->to_stdout) {
        if (fflush(w->out)) rc = kiln_fail(err, "writing %s: %s", w->path, strerror(errno));
        if (w->own_out && fclose(w->out) && !rc) rc = kiln_fail(err, "writing %s: %s", w->path, strerror(errno));
    } else {
        rc = kiln_atomic_commit(&w->af, err);
    }
    kbuf_free(&w->line);
    free(w->path);
    free(w);
    return rc;
}

void docwriter_abort(KilnDocWriter *w) {
    if (!w) return;
    if (!w->to_stdout) kiln_atomic_abort(&w->af);
    if (w->own_out) fclose(w->out);
    kbuf_free(&w->line);
    free(w->path);
    free(w);
}
