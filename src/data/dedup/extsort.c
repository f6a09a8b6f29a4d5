// extsort.c: external sort of fixed-size uint64 records. Chunks of up to half
// the memory budget are radix-sorted; when the input outgrows one chunk, sorted
// runs go to one unlinked spill file (nothing is left behind after a crash) and
// are merged with a heap, each run read through its own slice of the budget.
#include "data/dedup/dedup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    uint64_t off, left;  // next unread record in the file, records not yet read
    uint64_t *buf;       // records read from the file
    size_t n, pos;
} Run;

struct KilnSorter {
    int words;
    size_t rec, mem_bytes, cap_max;  // record bytes, budget, most records in one chunk
    uint64_t *buf, *tmp;
    size_t n, cap;
    long count;
    int fd;
    char *path;
    uint64_t file_end;
    Run *runs;
    long nruns, runs_cap;
    long *heap, heap_n, last;  // merge heap of run indices; last: the run whose head was handed out
    size_t mem_pos;            // in-memory iteration
    int finished;
};

static int rec_cmp(const uint64_t *a, const uint64_t *b, int words) {
    for (int w = 0; w < words; w++)
        if (a[w] != b[w]) return a[w] < b[w] ? -1 : 1;
    return 0;
}

void radix_sort_records(uint64_t *recs, uint64_t *tmp, size_t n, int words) {
    if (n < 2) return;
    int npos = words * 8;
    size_t(*count)[256] = calloc((size_t)npos, sizeof *count);
    if (!count) {  // no room for the histograms: insertion sort keeps it correct
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && rec_cmp(recs + (j - 1) * words, recs + j * words, words) > 0; j--)
                for (int w = 0; w < words; w++) {
                    uint64_t t = recs[(j - 1) * words + w];
                    recs[(j - 1) * words + w] = recs[j * words + w];
                    recs[j * words + w] = t;
                }
        return;
    }
    // position p = word * 8 + byte; all histograms in one pass
    for (size_t i = 0; i < n; i++)
        for (int w = 0; w < words; w++) {
            uint64_t v = recs[i * words + w];
            for (int b = 0; b < 8; b++) count[w * 8 + b][(v >> (8 * b)) & 255]++;
        }
    uint64_t *src = recs, *dst = tmp;
    for (int w = words - 1; w >= 0; w--)
        for (int b = 0; b < 8; b++) {
            size_t *c = count[w * 8 + b];
            int trivial = 0;
            for (int d = 0; d < 256 && !trivial; d++) trivial = c[d] == n;
            if (trivial) continue;  // every record has the same byte here
            size_t sum = 0;
            for (int d = 0; d < 256; d++) {
                size_t t = c[d];
                c[d] = sum;
                sum += t;
            }
            for (size_t i = 0; i < n; i++) {
                const uint64_t *r = src + i * words;
                size_t at = c[(r[w] >> (8 * b)) & 255]++;
                memcpy(dst + at * words, r, sizeof(uint64_t) * words);
            }
            uint64_t *t = src;
            src = dst;
            dst = t;
        }
    if (src != recs) memcpy(recs, src, sizeof(uint64_t) * words * n);
    free(count);
}

int sorter_open(KilnSorter **sp, int words, size_t mem_bytes, const char *work_dir, const char *name, KilnErr *err) {
    KilnSorter *s = calloc(1, sizeof *s);
    if (!s) return kiln_fail(err, "out of memory");
    s->words = words;
    s->rec = sizeof(uint64_t) * (size_t)words;
    s->mem_bytes = mem_bytes;
    s->cap_max = mem_bytes / 2 / s->rec;
    if (s->cap_max < 16) s->cap_max = 16;
    s->fd = -1;
    s->last = -1;
    size_t need = strlen(work_dir ? work_dir : "/tmp") + strlen(name) + 16;
    s->path = malloc(need);
    if (!s->path) {
        free(s);
        return kiln_fail(err, "out of memory");
    }
    snprintf(s->path, need, "%s/%s.XXXXXX", work_dir ? work_dir : "/tmp", name);
    *sp = s;
    return 0;
}

// Makes room for one more record in the in-memory chunk (grows up to cap_max).
static int grow(KilnSorter *s, KilnErr *err) {
    size_t c = s->cap ? s->cap * 2 : 4096;
    if (c > s->cap_max) c = s->cap_max;
    uint64_t *b = realloc(s->buf, c * s->rec);
    if (!b) return kiln_fail(err, "out of memory sorting %zu records", c);
    s->buf = b;
    s->cap = c;
    return 0;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off) {
    const char *c = p;
    while (n) {
        ssize_t k = pwrite(fd, c, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

// Sorts the in-memory chunk and appends it to the spill file as a run.
static int spill(KilnSorter *s, KilnErr *err) {
    if (s->fd < 0) {
        s->fd = mkstemp(s->path);
        if (s->fd < 0) return kiln_fail(err, "%s: cannot create spill file: %s", s->path, strerror(errno));
        unlink(s->path);  // the open descriptor keeps it; nothing remains after a crash
    }
    if (!s->tmp && !(s->tmp = malloc(s->cap_max * s->rec))) return kiln_fail(err, "out of memory sorting");
    radix_sort_records(s->buf, s->tmp, s->n, s->words);
    if (s->nruns == s->runs_cap) {
        long c = s->runs_cap ? s->runs_cap * 2 : 16;
        Run *r = realloc(s->runs, sizeof *r * (size_t)c);
        if (!r) return kiln_fail(err, "out of memory");
        s->runs = r;
        s->runs_cap = c;
    }
    if (write_all(s->fd, s->buf, s->n * s->rec, s->file_end))
        return kiln_fail(err, "%s: writing a sorted run: %s", s->path, strerror(errno));
    s->runs[s->nruns++] = (Run){.off = s->file_end, .left = s->n};
    s->file_end += s->n * s->rec;
    s->n = 0;
    return 0;
}

int sorter_push(KilnSorter *s, const uint64_t *recs, size_t n, KilnErr *err) {
    if (s->finished) return kiln_fail(err, "sorter: push after finish");
    s->count += (long)n;
    while (n) {
        if (s->n == s->cap && s->cap < s->cap_max && grow(s, err)) return -1;
        if (s->n == s->cap && spill(s, err)) return -1;
        size_t k = s->cap - s->n < n ? s->cap - s->n : n;
        memcpy(s->buf + s->n * s->words, recs, k * s->rec);
        s->n += k;
        recs += k * s->words;
        n -= k;
    }
    return 0;
}

// Reads the next slice of run r; its buffer was sized at finish.
static int run_fill(KilnSorter *s, Run *r, size_t slice, KilnErr *err) {
    size_t k = r->left < slice ? (size_t)r->left : slice;
    size_t bytes = k * s->rec, got = 0;
    while (got < bytes) {
        ssize_t m = pread(s->fd, (char *)r->buf + got, bytes - got, (off_t)(r->off + got));
        if (m < 0 && errno == EINTR) continue;
        if (m <= 0) return kiln_fail(err, "%s: reading a sorted run: %s", s->path, m < 0 ? strerror(errno) : "short file");
        got += (size_t)m;
    }
    r->off += bytes;
    r->left -= k;
    r->n = k;
    r->pos = 0;
    return 0;
}

static const uint64_t *run_head(const KilnSorter *s, const Run *r) { return r->buf + r->pos * s->words; }

static int heap_less(const KilnSorter *s, long a, long b) {
    return rec_cmp(run_head(s, &s->runs[a]), run_head(s, &s->runs[b]), s->words) < 0;
}

static void sift_down(KilnSorter *s, long i) {
    for (;;) {
        long l = 2 * i + 1, m = i;
        if (l < s->heap_n && heap_less(s, s->heap[l], s->heap[m])) m = l;
        if (l + 1 < s->heap_n && heap_less(s, s->heap[l + 1], s->heap[m])) m = l + 1;
        if (m == i) return;
        long t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

static size_t slice_records(const KilnSorter *s) {
    size_t slice = s->mem_bytes / (size_t)s->nruns / s->rec;
    return slice < 512 ? 512 : slice;  // 4-12 KiB at least, whatever the budget
}

int sorter_finish(KilnSorter *s, KilnErr *err) {
    if (s->finished) return 0;
    s->finished = 1;
    if (!s->nruns) {  // it all fit: sort in place and hand out from memory
        if (s->n > 1) {
            uint64_t *tmp = malloc(s->n * s->rec);
            if (!tmp) return kiln_fail(err, "out of memory sorting %zu records", s->n);
            radix_sort_records(s->buf, tmp, s->n, s->words);
            free(tmp);
        }
        return 0;
    }
    if (s->n && spill(s, err)) return -1;
    free(s->buf);
    free(s->tmp);
    s->buf = s->tmp = NULL;
    s->heap = malloc(sizeof(long) * (size_t)s->nruns);
    if (!s->heap) return kiln_fail(err, "out of memory");
    size_t slice = slice_records(s);
    for (long i = 0; i < s->nruns; i++) {
        Run *r = &s->runs[i];
        r->buf = malloc(slice * s->rec);
        if (!r->buf) return kiln_fail(err, "out of memory merging %ld runs", s->nruns);
        if (run_fill(s, r, slice, err)) return -1;
        if (r->n) s->heap[s->heap_n++] = i;
    }
    for (long i = s->heap_n / 2 - 1; i >= 0; i--) sift_down(s, i);
    return 0;
}

int sorter_next(KilnSorter *s, const uint64_t **rec, KilnErr *err) {
    if (!s->finished) return kiln_fail(err, "sorter: next before finish");
    if (!s->nruns) {
        if (s->mem_pos == s->n) return 0;
        *rec = s->buf + s->mem_pos++ * s->words;
        return 1;
    }
    if (s->last >= 0) {  // advance the run whose record was handed out last time
        Run *r = &s->runs[s->last];
        if (++r->pos == r->n) {
            if (r->left && run_fill(s, r, slice_records(s), err)) return -1;
            if (r->pos == r->n) {  // run exhausted
                s->heap[0] = s->heap[--s->heap_n];
            }
        }
        if (s->heap_n) sift_down(s, 0);
        s->last = -1;
    }
    if (!s->heap_n) return 0;
    s->last = s->heap[0];
    *rec = run_head(s, &s->runs[s->last]);
    return 1;
}

long sorter_runs(const KilnSorter *s) { return s->nruns; }
long sorter_count(const KilnSorter *s) { return s->count; }

void sorter_close(KilnSorter *s) {
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    for (long i = 0; i < s->nruns; i++) free(s->runs[i].buf);
    free(s->runs);
    free(s->heap);
    free(s->buf);
    free(s->tmp);
    free(s->path);
    free(s);
}
