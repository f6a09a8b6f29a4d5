// warc.c: WARC 1.0/1.1 record reader (plain or gzip, one member per record or
// one stream), with HTTP response parsing, de-chunking and body gunzip.
//
// Damage is never fatal: a record whose header is broken, whose block is short
// or not followed by CRLF CRLF (a wrong Content-Length), or that spans corrupt
// gzip data is a counted skip, and reading resumes at the next line that starts
// with "WARC/1.".
#include "data/read/extract.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define ZIN_SIZE (1 << 16)
#define MAX_LINE (1 << 16)            // a header line longer than this is damage
#define MAX_HEADER (1 << 20)          // total WARC header bytes
#define MAX_RECORD (256LL << 20)      // blocks above this are skipped
#define MAX_BODY ((size_t)512 << 20)  // gunzipped HTTP body limit
#define DAMAGE_RING 32                // gzip damage points remembered (read-ahead is bounded)

struct KilnWarcReader {
    FILE *f;
    char *path;
    int gz;             // the file is gzip (any number of members)
    z_stream zs;
    unsigned char *zin;
    long long zin_off;  // file offset of zin[0]
    int in_member;      // inside a gzip member (EOF now means truncation)
    int src_done;       // no more decompressed bytes will come
    long long zout;     // decompressed bytes produced so far
    long long damage[DAMAGE_RING];  // stream offsets of recent gzip corruption
    long ndamage;
    char *buf;          // decompressed bytes buf[beg..end)
    size_t cap, beg, end;
    long long off;      // stream offset of buf[beg]
    int lost;           // scanning for the next version line after damage
    KilnSkips skips;
    KilnBuf line;
};

// ---------------------------------------------------------------- byte source
// Finds the next gzip magic after corruption; keeps two bytes of overlap
// across reads so a magic split between reads is still found.
static int gz_resync(KilnWarcReader *r, KilnErr *err) {
    z_stream *z = &r->zs;
    for (;;) {
        unsigned char *p = z->next_in;
        for (size_t i = 0; i + 2 < z->avail_in; i++)
            if (p[i] == 0x1f && p[i + 1] == 0x8b && p[i + 2] == 8) {
                z->next_in = p + i;
                z->avail_in -= (uInt)i;
                inflateReset(z);
                r->in_member = 0;
                return 0;
            }
        size_t keep = z->avail_in < 2 ? z->avail_in : 2;
        r->zin_off += (long long)(z->next_in + z->avail_in - keep - r->zin);
        memmove(r->zin, z->next_in + z->avail_in - keep, keep);
        size_t got = fread(r->zin + keep, 1, ZIN_SIZE - keep, r->f);
        if (got == 0) {
            if (ferror(r->f)) return kiln_fail(err, "%s: read error: %s", r->path, strerror(errno));
            r->src_done = 1;
            return 0;
        }
        z->next_in = r->zin;
        z->avail_in = (uInt)(keep + got);
    }
}

// Notes a gap in the decompressed stream at offset at: the record holding
// that offset is damaged.
static void note_damage(KilnWarcReader *r, long long at) { r->damage[r->ndamage++ % DAMAGE_RING] = at; }

static int damaged(const KilnWarcReader *r, long long from, long long to) {
    long n = r->ndamage < DAMAGE_RING ? r->ndamage : DAMAGE_RING;
    for (long i = 0; i < n; i++)
        if (r->damage[i] >= from && r->damage[i] < to) return 1;
    return 0;
}

static long long gz_in_offset(const KilnWarcReader *r) {
    return r->zin_off + (long long)(r->zs.next_in - r->zin);
}

// Fills dst[0..cap) with decompressed bytes as far as the input goes (greedy,
// so a member's CRC is checked before its record is handed out); 0 at the end;
// -1 on an I/O error.
static long gz_read(KilnWarcReader *r, char *dst, size_t cap, KilnErr *err) {
    z_stream *z = &r->zs;
    z->next_out = (unsigned char *)dst;
    z->avail_out = (uInt)cap;
    while (z->avail_out > 0 && !r->src_done) {
        long long at = r->zout + (long long)(cap - z->avail_out);  // stream offset of the next byte
        if (z->avail_in == 0) {
            r->zin_off += (long long)(z->next_in - r->zin);
            z->next_in = r->zin;
            size_t got = fread(r->zin, 1, ZIN_SIZE, r->f);
            if (got == 0) {
                if (ferror(r->f)) return kiln_fail(err, "%s: read error: %s", r->path, strerror(errno));
                if (r->in_member) {
                    note_damage(r, at);
                    skips_add(&r->skips, "%s: compressed byte %lld: gzip stream truncated", r->path,
                              gz_in_offset(r));
                }
                r->src_done = 1;
                break;
            }
            z->avail_in = (uInt)got;
        }
        unsigned avail_before = z->avail_in;
        size_t out_before = z->avail_out;
        int rc = inflate(z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            inflateReset(z);
            r->in_member = 0;
        } else if (rc == Z_OK || rc == Z_BUF_ERROR) {
            if (z->avail_in != avail_before || z->avail_out != out_before) r->in_member = 1;
        } else if (rc == Z_MEM_ERROR) {
            return kiln_fail(err, "%s: out of memory in inflate", r->path);
        } else {  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR: corrupt member
            // a bad CRC or length condemns the data before it; other errors what follows
            int trailer = z->msg && strstr(z->msg, "check");
            long long now = r->zout + (long long)(cap - z->avail_out);
            note_damage(r, trailer && now > 0 ? now - 1 : now);
            skips_add(&r->skips, "%s: compressed byte %lld: corrupt gzip data (%s); resuming at the next member",
                      r->path, gz_in_offset(r), z->msg ? z->msg : "inflate error");
            if (z->avail_in) z->next_in++, z->avail_in--;
            if (gz_resync(r, err)) return -1;
        }
    }
    long got = (long)(cap - z->avail_out);
    r->zout += got;
    return got;
}

// Makes at least `want` bytes available in buf[beg..end) if the input has
// them. Returns the bytes available, or -1 on an I/O error.
static long fill(KilnWarcReader *r, size_t want, KilnErr *err) {
    while (r->end - r->beg < want && !r->src_done) {
        if (r->beg > 0) {
            memmove(r->buf, r->buf + r->beg, r->end - r->beg);
            r->end -= r->beg;
            r->beg = 0;
        }
        if (r->cap - r->end < ZIN_SIZE) {
            size_t nc = r->cap * 2;
            while (nc - r->end < ZIN_SIZE) nc *= 2;
            char *nb = realloc(r->buf, nc);
            if (!nb) return kiln_fail(err, "%s: out of memory", r->path);
            r->buf = nb;
            r->cap = nc;
        }
        long got;
        if (r->gz) {
            got = gz_read(r, r->buf + r->end, r->cap - r->end, err);
            if (got < 0) return -1;
        } else {
            got = (long)fread(r->buf + r->end, 1, r->cap - r->end, r->f);
            if (got == 0) {
                if (ferror(r->f)) return kiln_fail(err, "%s: read error: %s", r->path, strerror(errno));
                r->src_done = 1;
            }
        }
        r->end += (size_t)got;
    }
    return (long)(r->end - r->beg);
}

static void consume(KilnWarcReader *r, size_t n) {
    r->beg += n;
    r->off += (long long)n;
}

// One line (with its '\n') into r->line, at most MAX_LINE bytes. Returns 1, or
// 0 at the end of input, -1 on error.
static int get_line(KilnWarcReader *r, KilnErr *err) {
    kbuf_clear(&r->line);
    for (;;) {
        long avail = fill(r, 1, err);
        if (avail < 0) return -1;
        if (avail == 0) return r->line.len > 0;
        const char *p = r->buf + r->beg;
        const char *nl = memchr(p, '\n', (size_t)avail);
        size_t take = nl ? (size_t)(nl - p) + 1 : (size_t)avail;
        if (r->line.len + take > MAX_LINE) take = MAX_LINE - r->line.len;
        if (kbuf_append(&r->line, p, take)) return kiln_fail(err, "%s: out of memory", r->path);
        consume(r, take);
        if (nl || r->line.len >= MAX_LINE) return 1;
    }
}

// Puts bytes back in front of the unread input (for resync inside a block).
static int unread(KilnWarcReader *r, const char *p, size_t n, KilnErr *err) {
    if (r->beg < n) {
        size_t have = r->end - r->beg;
        if (r->cap < have + n) {
            char *nb = realloc(r->buf, have + n + ZIN_SIZE);
            if (!nb) return kiln_fail(err, "%s: out of memory", r->path);
            r->buf = nb;
            r->cap = have + n + ZIN_SIZE;
        }
        memmove(r->buf + n, r->buf + r->beg, have);
        r->beg = n;
        r->end = n + have;
    }
    r->beg -= n;
    r->off -= (long long)n;
    memcpy(r->buf + r->beg, p, n);
    return 0;
}

// ---------------------------------------------------------------- open/close
int warc_open(KilnWarcReader **out, const char *path, KilnErr *err) {
    *out = NULL;
    KilnWarcReader *r = calloc(1, sizeof *r);
    if (!r) return kiln_fail(err, "%s: out of memory", path);
    r->path = strdup(path);
    r->cap = 4 * ZIN_SIZE;
    r->buf = malloc(r->cap);
    r->f = fopen(path, "rb");
    if (!r->path || !r->buf || !r->f) {
        const char *why = r->f ? "out of memory" : strerror(errno);
        warc_close(r);
        return kiln_fail(err, "%s: cannot open: %s", path, why);
    }
    unsigned char magic[2] = {0, 0};
    size_t got = fread(magic, 1, 2, r->f);
    r->gz = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    rewind(r->f);
    if (r->gz) {
        r->zin = malloc(ZIN_SIZE);
        if (!r->zin || inflateInit2(&r->zs, 15 + 16) != Z_OK) {
            warc_close(r);
            return kiln_fail(err, "%s: out of memory", path);
        }
        r->zs.next_in = r->zin;
    }
    *out = r;
    return 0;
}

void warc_close(KilnWarcReader *r) {
    if (!r) return;
    if (r->zin) inflateEnd(&r->zs);
    if (r->f) fclose(r->f);
    free(r->zin);
    free(r->buf);
    free(r->path);
    kbuf_free(&r->line);
    free(r);
}

const KilnSkips *warc_skips(const KilnWarcReader *r) { return &r->skips; }

void warc_record_free(KilnWarcRecord *rec) {
    kbuf_free(&rec->type);
    kbuf_free(&rec->target_uri);
    kbuf_free(&rec->record_id);
    kbuf_free(&rec->date);
    kbuf_free(&rec->content_type);
    kbuf_free(&rec->payload);
    rec->http_status = 0;
}

static void record_clear(KilnWarcRecord *rec) {
    kbuf_clear(&rec->type);
    kbuf_clear(&rec->target_uri);
    kbuf_clear(&rec->record_id);
    kbuf_clear(&rec->date);
    kbuf_clear(&rec->content_type);
    kbuf_clear(&rec->payload);
    rec->http_status = 0;
}

// ---------------------------------------------------------------- HTTP payloads
// Case-insensitive search for "name:" at a line start of hdr[0..n); the value,
// trimmed, in *v / *vn. 1 if found.
static int http_header(const char *hdr, size_t n, const char *name, const char **v, size_t *vn) {
    size_t nl = strlen(name);
    for (size_t i = 0; i < n;) {
        const char *eol = memchr(hdr + i, '\n', n - i);
        size_t end = eol ? (size_t)(eol - hdr) : n;
        if (end - i > nl && hdr[i + nl] == ':' && !strncasecmp(hdr + i, name, nl)) {
            size_t a = i + nl + 1, b = end;
            while (a < b && (hdr[a] == ' ' || hdr[a] == '\t')) a++;
            while (b > a && (hdr[b - 1] == '\r' || hdr[b - 1] == ' ' || hdr[b - 1] == '\t')) b--;
            *v = hdr + a;
            *vn = b - a;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

// Chunked transfer coding to the plain body; -1 if p is not validly chunked.
static int dechunk(const char *p, size_t n, KilnBuf *out) {
    size_t i = 0;
    kbuf_clear(out);
    for (;;) {
        size_t size = 0;
        int digits = 0;
        while (i < n) {
            char c = p[i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) break;
            if (size > ((size_t)1 << 40)) return -1;
            size = size * 16 + (size_t)d;
            digits++;
            i++;
        }
        if (!digits) return -1;
        const char *eol = memchr(p + i, '\n', n - i);  // chunk extensions end at the line end
        if (!eol) return -1;
        i = (size_t)(eol - p) + 1;
        if (size == 0) return 0;  // trailers ignored
        if (size > n - i) return -1;
        if (kbuf_append(out, p + i, size)) return -1;
        i += size;
        if (i < n && p[i] == '\r') i++;
        if (i < n && p[i] == '\n') i++;
        else if (i < n) return -1;
        if (i >= n) return 0;  // last chunk's zero line missing: accept what came
    }
}

// gzip, zlib or raw deflate body to plain bytes (concatenated gzip members
// too); -1 when it does not decompress completely.
static int inflate_body(const char *p, size_t n, int raw, KilnBuf *out) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, raw ? -15 : 15 + 32) != Z_OK) return -1;
    kbuf_clear(out);
    z.next_in = (unsigned char *)p;
    z.avail_in = (uInt)n;
    int rc = Z_OK;
    while (rc != Z_STREAM_END || z.avail_in > 0) {
        if (rc == Z_STREAM_END) {  // another gzip member follows?
            if (z.avail_in < 2 || z.next_in[0] != 0x1f || z.next_in[1] != 0x8b) break;
            inflateReset(&z);
        }
        if (out->len + 65536 > MAX_BODY || kbuf_reserve(out, out->len + 65536)) break;
        z.next_out = (unsigned char *)out->data + out->len;
        z.avail_out = 65536;
        rc = inflate(&z, Z_NO_FLUSH);
        out->len = (size_t)((char *)z.next_out - out->data);
        out->data[out->len] = 0;
        if (rc != Z_OK && rc != Z_STREAM_END) break;
        if (rc == Z_OK && z.avail_in == 0 && z.avail_out > 0) break;  // input ended mid-stream
    }
    inflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -1;
}

// Splits an HTTP response block into status, Content-Type and body (de-chunked
// and decoded). NULL on success, else why the record is damaged.
static const char *http_response(KilnWarcRecord *rec, KilnBuf *tmp) {
    const char *p = rec->payload.data;
    size_t n = rec->payload.len;
    if (n < 12 || strncmp(p, "HTTP/", 5)) return "response block does not start with an HTTP status line";
    const char *sp = memchr(p, ' ', n < 32 ? n : 32);
    if (!sp || sp + 4 > p + n || sp[1] < '1' || sp[1] > '9' || sp[2] < '0' || sp[2] > '9' || sp[3] < '0' ||
        sp[3] > '9')
        return "HTTP status line without a status code";
    rec->http_status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
    size_t hend = n, body = n;  // end of headers, start of body
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n') continue;
        if (p[i + 1] == '\n') { hend = i + 1; body = i + 2; break; }
        if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') { hend = i + 1; body = i + 3; break; }
    }
    const char *v;
    size_t vn;
    if (http_header(p, hend, "Content-Type", &v, &vn)) {
        if (kbuf_set(&rec->content_type, v, vn)) return "out of memory";
    } else {
        kbuf_clear(&rec->content_type);
    }
    int chunked = http_header(p, hend, "Transfer-Encoding", &v, &vn) && vn >= 7 && !strncasecmp(v, "chunked", 7);
    const char *enc = NULL;
    size_t encn = 0;
    if (http_header(p, hend, "Content-Encoding", &enc, &encn) && (encn == 0 || !strncasecmp(enc, "identity", encn)))
        enc = NULL;
    // Body into tmp, then back into payload.
    if (chunked && dechunk(p + body, n - body, tmp) == 0) {
        // de-chunked into tmp
    } else if (kbuf_set(tmp, p + body, n - body)) {
        return "out of memory";
    }
    if (enc && tmp->len > 0) {
        int gzip = (encn == 4 && !strncasecmp(enc, "gzip", 4)) || (encn == 6 && !strncasecmp(enc, "x-gzip", 6));
        int deflate = encn == 7 && !strncasecmp(enc, "deflate", 7);
        if (!gzip && !deflate) return "unsupported HTTP Content-Encoding";
        const unsigned char *b = (const unsigned char *)tmp->data;
        // Servers that say gzip but send plain bytes: keep them as they are.
        if (!gzip || (tmp->len >= 2 && b[0] == 0x1f && b[1] == 0x8b)) {
            if (inflate_body(tmp->data, tmp->len, 0, &rec->payload) &&
                (!deflate || inflate_body(tmp->data, tmp->len, 1, &rec->payload)))
                return "HTTP body does not decompress (Content-Encoding)";
            return NULL;
        }
    }
    kbuf_swap(&rec->payload, tmp);
    return NULL;
}

// ---------------------------------------------------------------- records
static int is_blank(const KilnBuf *l) {
    return (l->len == 1 && l->data[0] == '\n') || (l->len == 2 && l->data[0] == '\r' && l->data[1] == '\n');
}

// Reads lines up to the next version line. 1: found (its offset in *start);
// 0: end of input; -1: error.
static int find_version_line(KilnWarcReader *r, long long *start, KilnErr *err) {
    for (;;) {
        long long at = r->off;
        int rc = get_line(r, err);
        if (rc <= 0) return rc;
        if (!strncmp(r->line.data, "WARC/1.", 7) || !strncmp(r->line.data, "WARC/0.", 7)) {
            r->lost = 0;
            *start = at;
            return 1;
        }
        if (r->lost || is_blank(&r->line)) continue;
        skips_add(&r->skips, "%s: byte %lld: no WARC version line; skipping to the next record", r->path, at);
        r->lost = 1;
    }
}

static int set_field(KilnBuf *b, const char *v, size_t n, KilnErr *err) {
    return kbuf_set(b, v, n) ? kiln_fail(err, "out of memory") : 0;
}

// Header lines after the version line, up to the blank line. 1: fine (with
// *clen); 0: damaged (counted); -1: error.
static int read_headers(KilnWarcReader *r, KilnWarcRecord *rec, long long start, long long *clen,
                        KilnErr *err) {
    *clen = -1;
    size_t total = 0;
    KilnBuf *last = NULL;  // field a continuation line extends
    for (;;) {
        int rc = get_line(r, err);
        if (rc < 0) return -1;
        if (rc == 0) {
            skips_add(&r->skips, "%s: byte %lld: input ends inside a WARC header", r->path, start);
            return 0;
        }
        if (is_blank(&r->line)) break;
        total += r->line.len;
        if (r->line.data[r->line.len - 1] != '\n' && r->line.len < MAX_LINE) {
            skips_add(&r->skips, "%s: byte %lld: input ends inside a WARC header", r->path, start);
            return 0;
        }
        if (r->line.len >= MAX_LINE || total > MAX_HEADER) {
            skips_add(&r->skips, "%s: byte %lld: WARC header too long", r->path, start);
            return 0;
        }
        char *l = r->line.data;
        size_t n = r->line.len;
        while (n && (l[n - 1] == '\n' || l[n - 1] == '\r')) n--;
        if (l[0] == ' ' || l[0] == '\t') {  // folded continuation of the previous field
            size_t a = 0;
            while (a < n && (l[a] == ' ' || l[a] == '\t')) a++;
            if (last && (kbuf_putc(last, ' ') || kbuf_append(last, l + a, n - a)))
                return kiln_fail(err, "out of memory");
            continue;
        }
        char *colon = memchr(l, ':', n);
        if (!colon) {
            skips_add(&r->skips, "%s: byte %lld: WARC header line without a colon", r->path, start);
            return 0;
        }
        size_t kn = (size_t)(colon - l), a = kn + 1;
        while (a < n && (l[a] == ' ' || l[a] == '\t')) a++;
        const char *v = l + a;
        size_t vn = n - a;
        while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) vn--;
        last = NULL;
#define IS(name) (kn == sizeof name - 1 && !strncasecmp(l, name, kn))
        if (IS("WARC-Type")) last = &rec->type;
        else if (IS("WARC-Target-URI")) last = &rec->target_uri;
        else if (IS("WARC-Record-ID")) last = &rec->record_id;
        else if (IS("WARC-Date")) last = &rec->date;
        else if (IS("Content-Type")) last = &rec->content_type;
        else if (IS("Content-Length")) {
            long long c = 0;
            size_t i = 0;
            for (; i < vn && v[i] >= '0' && v[i] <= '9' && c < (1LL << 50); i++) c = c * 10 + (v[i] - '0');
            if (i == 0 || i != vn) {
                skips_add(&r->skips, "%s: byte %lld: bad Content-Length '%.40s'", r->path, start, v);
                return 0;
            }
            *clen = c;
        }
#undef IS
        if (last && set_field(last, v, vn, err)) return -1;
    }
    if (*clen < 0) {
        skips_add(&r->skips, "%s: byte %lld: WARC record without Content-Length", r->path, start);
        return 0;
    }
    return 1;
}

// After a block not followed by CRLF CRLF: if a version line starts inside
// what was read, put it back so the next record is not lost.
static int resync_in_block(KilnWarcReader *r, const KilnBuf *blk, KilnErr *err) {
    const char *p = blk->data;
    for (size_t i = 1; i + 7 <= blk->len; i++)
        if (p[i - 1] == '\n' && p[i] == 'W' && !memcmp(p + i, "WARC/1.", 7))
            return unread(r, p + i, blk->len - i, err);
    return unread(r, "\n", 1, err);  // so a version line right here still starts a line
}

int warc_next(KilnWarcReader *r, KilnWarcRecord *rec, KilnErr *err) {
    KilnBuf tmp = {0};
    int ret = -1;
    for (;;) {
        record_clear(rec);
        long long start;
        int rc = find_version_line(r, &start, err);
        if (rc <= 0) { ret = rc; break; }
        long long clen;
        rc = read_headers(r, rec, start, &clen, err);
        if (rc < 0) break;
        if (rc == 0) { r->lost = 1; continue; }
        if (clen > MAX_RECORD) {  // too big to hold: skip its bytes
            skips_add(&r->skips, "%s: byte %lld: record of %lld bytes is over the %lld limit", r->path, start,
                      clen, (long long)MAX_RECORD);
            for (long long left = clen; left > 0;) {
                long avail = fill(r, 1, err);
                if (avail < 0) goto done;
                if (avail == 0) break;
                size_t take = (size_t)avail < (unsigned long long)left ? (size_t)avail : (size_t)left;
                consume(r, take);
                left -= (long long)take;
            }
            r->lost = 1;
            continue;
        }
        // The block and the 4 bytes after it.
        long avail = fill(r, (size_t)clen + 4, err);
        if (avail < 0) break;
        size_t take = (size_t)avail < (size_t)clen + 4 ? (size_t)avail : (size_t)clen + 4;
        if (kbuf_set(&rec->payload, r->buf + r->beg, take)) { kiln_fail(err, "out of memory"); break; }
        consume(r, take);
        if (take < (size_t)clen) {
            skips_add(&r->skips, "%s: byte %lld: input ends inside the record (Content-Length %lld, %zu bytes left)",
                      r->path, start, clen, take);
            record_clear(rec);
            ret = 0;
            break;
        }
        const char *tail = rec->payload.data + clen;
        size_t tailn = take - (size_t)clen;
        // At the very end of the input a missing or short trailer is forgiven.
        int tail_ok = !memcmp(tail, "\r\n\r\n", tailn) && (tailn == 4 || take < (size_t)clen + 4);
        if (damaged(r, start, r->off)) {
            skips_add(&r->skips, "%s: byte %lld: record spans corrupt gzip data", r->path, start);
            if (resync_in_block(r, &rec->payload, err)) break;
            r->lost = 1;
            continue;
        }
        if (!tail_ok) {
            skips_add(&r->skips, "%s: byte %lld: block not followed by CRLF CRLF (wrong Content-Length %lld?)",
                      r->path, start, clen);
            if (resync_in_block(r, &rec->payload, err)) break;
            r->lost = 1;
            continue;
        }
        rec->payload.len = (size_t)clen;
        rec->payload.data[clen] = 0;
        const char *ct = rec->content_type.data ? rec->content_type.data : "";
        if (!strcmp(rec->type.data ? rec->type.data : "", "response") && !strncasecmp(ct, "application/http", 16)) {
            const char *why = http_response(rec, &tmp);
            if (why) {
                skips_add(&r->skips, "%s: byte %lld: %s", r->path, start, why);
                continue;
            }
        }
        ret = 1;
        break;
    }
done:
    kbuf_free(&tmp);
    return ret;
}
