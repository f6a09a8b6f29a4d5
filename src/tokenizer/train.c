// train.c: byte-level BPE training.
//
// 1. Count: the corpus is pre-tokenized with the pattern (PCRE2 JIT) on all
//    threads, each into its own piece -> count map; the maps are then summed.
//    Memory grows with the number of distinct pieces, not with the corpus.
// 2. Merge: every distinct piece is a word of byte symbols weighted by its count.
//    Pair counts live in a hash table, with the words each pair occurs in; a
//    max-heap picks the most frequent pair (ties: smaller left id, then smaller
//    right id). A merge rewrites only the words that hold the pair and adjusts
//    the counts of the neighbouring pairs; stale heap entries are re-pushed with
//    their current count when popped (counts only fall between pushes).
// Ids: 0..255 are the bytes, then one id per merge in order, then the specials.
#include "tokenizer/tokenizer_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

// ---- piece -> count ----
typedef struct {
    uint64_t *hash;   // 0 = empty
    uint64_t *off;    // into blob
    uint32_t *len;
    uint64_t *count;
    uint64_t cap, n;
    uint8_t *blob;
    uint64_t blob_used, blob_cap;
    int oom;
} PieceMap;

static int piecemap_init(PieceMap *m, uint64_t cap) {
    memset(m, 0, sizeof *m);
    m->cap = cap;
    m->hash = calloc(cap, sizeof(uint64_t));
    m->off = malloc(cap * sizeof(uint64_t));
    m->len = malloc(cap * sizeof(uint32_t));
    m->count = malloc(cap * sizeof(uint64_t));
    m->blob_cap = 1 << 20;
    m->blob = malloc(m->blob_cap);
    return m->hash && m->off && m->len && m->count && m->blob ? 0 : -1;
}

static void piecemap_free(PieceMap *m) {
    free(m->hash);
    free(m->off);
    free(m->len);
    free(m->count);
    free(m->blob);
    memset(m, 0, sizeof *m);
}

static int piecemap_add(PieceMap *m, const uint8_t *p, uint32_t n, uint64_t h, uint64_t count);

static int piecemap_grow(PieceMap *m) {
    PieceMap g;
    if (piecemap_init(&g, m->cap * 2)) return -1;
    free(g.blob);
    g.blob = m->blob;  // keep the byte store; only the table is rebuilt
    g.blob_used = m->blob_used;
    g.blob_cap = m->blob_cap;
    for (uint64_t i = 0; i < m->cap; i++) {
        if (!m->hash[i]) continue;
        uint64_t j = m->hash[i] & (g.cap - 1);
        while (g.hash[j]) j = (j + 1) & (g.cap - 1);
        g.hash[j] = m->hash[i];
        g.off[j] = m->off[i];
        g.len[j] = m->len[i];
        g.count[j] = m->count[i];
    }
    g.n = m->n;
    m->blob = NULL;
    piecemap_free(m);
    *m = g;
    return 0;
}

static int piecemap_add(PieceMap *m, const uint8_t *p, uint32_t n, uint64_t h, uint64_t count) {
    if (2 * (m->n + 1) > m->cap && piecemap_grow(m)) return -1;
    uint64_t mask = m->cap - 1;
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
        if (!m->hash[i]) {
            if (m->blob_used + n > m->blob_cap) {
                uint64_t cap = 2 * (m->blob_cap + n);
                uint8_t *b = realloc(m->blob, cap);
                if (!b) return -1;
                m->blob = b;
                m->blob_cap = cap;
            }
            memcpy(m->blob + m->blob_used, p, n);
            m->hash[i] = h;
            m->off[i] = m->blob_used;
            m->len[i] = n;
            m->count[i] = count;
            m->blob_used += n;
            m->n++;
            return 0;
        }
        if (m->hash[i] == h && m->len[i] == n && !memcmp(m->blob + m->off[i], p, n)) {
            m->count[i] += count;
            return 0;
        }
    }
}

static uint64_t piece_hash(const uint8_t *p, size_t n) {
    uint64_t h = XXH3_64bits(p, n);
    return h ? h : 1;
}

static int count_piece(void *ctx, const uint8_t *p, size_t n) {
    return piecemap_add(ctx, p, (uint32_t)n, piece_hash(p, n), 1);
}

// ---- reading the corpus in batches of segments ----
typedef struct {
    KilnBuf text;  // the segments, one after another
    size_t *seg_off, *seg_len;
    int nseg, segcap;
} Batch;

static int batch_add(Batch *b, const char *p, size_t n) {
    if (b->nseg == b->segcap) {
        b->segcap = b->segcap ? 2 * b->segcap : 1024;
        size_t *o = realloc(b->seg_off, sizeof(size_t) * b->segcap);
        if (o) b->seg_off = o;
        size_t *l = realloc(b->seg_len, sizeof(size_t) * b->segcap);
        if (l) b->seg_len = l;
        if (!o || !l) return -1;
    }
    b->seg_off[b->nseg] = b->text.len;
    b->seg_len[b->nseg] = n;
    if (kbuf_append(&b->text, p, n)) return -1;
    b->nseg++;
    return 0;
}

enum { BATCH_BYTES = 64 << 20, SEGMENT_BYTES = 1 << 20 };

// Counts one batch on all threads into the per-thread maps.
static int count_batch(const KilnTokenizer *t, Batch *b, PieceMap *maps, KilnErr *err) {
    int failed = 0;
    KilnErr first = {{0}};
#pragma omp parallel
    {
        PieceMap *m = &maps[omp_get_thread_num()];
        TokScratch sc = {0};
        int ok = tok_scratch_init(&sc, t->re) == 0;
        if (!ok) failed = 1;
#pragma omp for schedule(dynamic)
        for (int s = 0; s < b->nseg; s++) {
            KilnErr e;
            if (ok && !failed && tok_split(t->re, (const uint8_t *)b->text.data + b->seg_off[s], b->seg_len[s], &sc, count_piece, m, &e)) {
#pragma omp critical
                {
                    failed = 1;
                    first = e;
                }
            }
        }
        if (ok) tok_scratch_free(&sc);
    }
    kbuf_clear(&b->text);
    b->nseg = 0;
    if (!failed) return 0;
    if (err) *err = first;
    return first.msg[0] ? kiln_wrap(err, "counting") : kiln_fail(err, "out of memory");
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Plain text is cut into segments after a newline that a non-space follows: no
// pattern piece of the built-in patterns spans such a point, so the counts equal
// those of the whole file.
static int read_text_file(const KilnTokenizer *t, const char *path, Batch *b, PieceMap *maps, KilnErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(err, "%s: cannot open", path);
    size_t cap = SEGMENT_BYTES * 2, have = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return kiln_fail(err, "out of memory");
    }
    int rc = 0, eof = 0;
    while (rc == 0 && (!eof || have)) {
        if (!eof) {
            size_t got = fread(buf + have, 1, cap - have, f);
            have += got;
            if (got == 0) eof = 1;
        }
        size_t cut = have;
        if (!eof || have > SEGMENT_BYTES) {
            cut = 0;
            for (size_t i = have < SEGMENT_BYTES ? have : SEGMENT_BYTES; i > 1; i--)
                if (buf[i - 2] == '\n' && !is_space((unsigned char)buf[i - 1])) {
                    cut = i - 1;
                    break;
                }
            if (cut == 0) {
                if (have < cap && !eof) continue;       // read more before cutting
                cut = have < SEGMENT_BYTES ? have : SEGMENT_BYTES;  // no safe point: cut anyway
            }
        }
        if (batch_add(b, buf, cut)) rc = kiln_fail(err, "out of memory");
        memmove(buf, buf + cut, have - cut);
        have -= cut;
        if (rc == 0 && b->text.len >= BATCH_BYTES) rc = count_batch(t, b, maps, err);
    }
    free(buf);
    fclose(f);
    return rc;
}

// JSONL (plain, gzip or zstd): one document per line, its text in `field`;
// lines that are not documents are added to *skips.
static int read_jsonl_file(const KilnTokenizer *t, const char *path, const char *field, Batch *b,
                           PieceMap *maps, KilnSkips *skips, KilnErr *err) {
    KilnDocReader *r;
    if (docreader_open(&r, path, field, NULL, err)) return -1;
    KilnDoc doc = {0};
    int rc;
    while ((rc = docreader_next(r, &doc, err)) == 1) {
        if (batch_add(b, doc.text.data, doc.text.len)) rc = kiln_fail(err, "out of memory");
        else if (b->text.len >= BATCH_BYTES) rc = count_batch(t, b, maps, err);
        if (rc < 0) break;
    }
    skips_merge(skips, docreader_skips(r));
    docreader_close(r);
    doc_free(&doc);
    return rc < 0 ? -1 : 0;
}

// ---- merging ----
typedef struct {
    int64_t count;
    uint32_t a, b;
} HeapItem;

// Pair table: (a,b) -> index, and per pair its count, its ids and the words it
// was seen in (entries may be stale or repeated; a merge re-scans them).
typedef struct {
    uint64_t *key;   // UINT64_MAX = empty
    uint32_t *idx;
    uint64_t mask;
    int64_t *count;
    uint32_t *pa, *pb;
    uint32_t **occ;
    uint32_t *occ_n, *occ_cap;
    uint32_t *stamp;  // last merge that recorded the pair as grown
    uint32_t npairs, cap;
} Pairs;

static int pairs_init(Pairs *p, uint64_t expect) {
    memset(p, 0, sizeof *p);
    uint64_t c = 1024;
    while (c < 2 * expect) c <<= 1;
    p->key = malloc(c * sizeof(uint64_t));
    p->idx = malloc(c * sizeof(uint32_t));
    if (!p->key || !p->idx) return -1;
    memset(p->key, 0xff, c * sizeof(uint64_t));
    p->mask = c - 1;
    return 0;
}

static int pairs_rehash(Pairs *p) {
    uint64_t c = 2 * (p->mask + 1);
    uint64_t *key = malloc(c * sizeof(uint64_t));
    uint32_t *idx = malloc(c * sizeof(uint32_t));
    if (!key || !idx) {
        free(key);
        free(idx);
        return -1;
    }
    memset(key, 0xff, c * sizeof(uint64_t));
    for (uint64_t i = 0; i <= p->mask; i++) {
        if (p->key[i] == UINT64_MAX) continue;
        uint64_t j = kiln_hash64(p->key[i]) & (c - 1);
        while (key[j] != UINT64_MAX) j = (j + 1) & (c - 1);
        key[j] = p->key[i];
        idx[j] = p->idx[i];
    }
    free(p->key);
    free(p->idx);
    p->key = key;
    p->idx = idx;
    p->mask = c - 1;
    return 0;
}

static int pairs_reserve(Pairs *p) {
    if (p->npairs < p->cap) return 0;
    uint32_t cap = p->cap ? 2 * p->cap : 1 << 16;
#define GROW(field, type)                                          \
    do {                                                           \
        type *g = realloc(p->field, sizeof(type) * cap);           \
        if (!g) return -1;                                         \
        p->field = g;                                              \
    } while (0)
    GROW(count, int64_t);
    GROW(pa, uint32_t);
    GROW(pb, uint32_t);
    GROW(occ, uint32_t *);
    GROW(occ_n, uint32_t);
    GROW(occ_cap, uint32_t);
    GROW(stamp, uint32_t);
#undef GROW
    p->cap = cap;
    return 0;
}

// Index of pair (a,b); created with count 0 if absent and create is set.
// UINT32_MAX if absent (or out of memory).
static uint32_t pair_get(Pairs *p, uint32_t a, uint32_t b, int create) {
    uint64_t key = (uint64_t)a << 32 | b;
    for (uint64_t i = kiln_hash64(key) & p->mask;; i = (i + 1) & p->mask) {
        if (p->key[i] == key) return p->idx[i];
        if (p->key[i] != UINT64_MAX) continue;
        if (!create || pairs_reserve(p)) return UINT32_MAX;
        uint32_t x = p->npairs++;
        p->count[x] = 0;
        p->pa[x] = a;
        p->pb[x] = b;
        p->occ[x] = NULL;
        p->occ_n[x] = p->occ_cap[x] = 0;
        p->stamp[x] = 0;
        p->key[i] = key;
        p->idx[i] = x;
        if (2 * (uint64_t)p->npairs > p->mask && pairs_rehash(p)) return UINT32_MAX;
        return x;
    }
}

static int occ_add(Pairs *p, uint32_t x, uint32_t w) {
    if (p->occ_n[x] && p->occ[x][p->occ_n[x] - 1] == w) return 0;  // the common repeat
    if (p->occ_n[x] == p->occ_cap[x]) {
        uint32_t cap = p->occ_cap[x] ? 2 * p->occ_cap[x] : 4;
        uint32_t *o = realloc(p->occ[x], sizeof(uint32_t) * cap);
        if (!o) return -1;
        p->occ[x] = o;
        p->occ_cap[x] = cap;
    }
    p->occ[x][p->occ_n[x]++] = w;
    return 0;
}

static void pairs_free(Pairs *p) {
    for (uint32_t i = 0; i < p->npairs; i++) free(p->occ[i]);
    free(p->key);
    free(p->idx);
    free(p->count);
    free(p->pa);
    free(p->pb);
    free(p->occ);
    free(p->occ_n);
    free(p->occ_cap);
    free(p->stamp);
}

// Most frequent first; ties: smaller left id, then smaller right id.
static int heap_before(const HeapItem *x, const HeapItem *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    return x->b < y->b;
}

typedef struct {
    HeapItem *h;
    size_t n, cap;
} Heap;

static int heap_push(Heap *q, HeapItem it) {
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 1 << 16;
        HeapItem *h = realloc(q->h, sizeof(HeapItem) * cap);
        if (!h) return -1;
        q->h = h;
        q->cap = cap;
    }
    size_t i = q->n++;
    q->h[i] = it;
    while (i > 0 && heap_before(&q->h[i], &q->h[(i - 1) / 2])) {
        HeapItem tmp = q->h[i];
        q->h[i] = q->h[(i - 1) / 2];
        q->h[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
    return 0;
}

static HeapItem heap_pop(Heap *q) {
    HeapItem top = q->h[0];
    q->h[0] = q->h[--q->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->n && heap_before(&q->h[l], &q->h[m])) m = l;
        if (r < q->n && heap_before(&q->h[r], &q->h[m])) m = r;
        if (m == i) break;
        HeapItem tmp = q->h[i];
        q->h[i] = q->h[m];
        q->h[m] = tmp;
        i = m;
    }
    return top;
}

// The merge loop's state.
typedef struct {
    // words: distinct pieces as symbol sequences, weighted by count
    uint32_t nw;
    int64_t *wcount;
    uint64_t *wstart;
    uint32_t *wlen, *wstamp, *sym;
    Pairs P;
    Heap Q;
    uint32_t *grown;  // pairs whose count rose during the current merge
    uint32_t ngrown, grown_cap;
    uint32_t stamp;
    // vocabulary so far: bytes of each id, and bytes -> id
    uint8_t *blob;
    uint64_t *off;
    uint32_t *len;
    uint64_t blob_used, blob_cap;
    uint32_t ntok;
    uint64_t *vhash;
    uint32_t *vid;
    uint64_t vmask;
    // merges in order: (a, b) -> id
    uint32_t *ma, *mb, *mid;
    uint32_t nmerge;
} Trainer;

static int pair_change(Trainer *tr, uint32_t a, uint32_t b, int64_t delta, uint32_t w) {
    Pairs *p = &tr->P;
    uint32_t x = pair_get(p, a, b, delta > 0);
    if (x == UINT32_MAX) return delta > 0 ? -1 : 0;
    p->count[x] += delta;
    if (delta <= 0) return 0;
    if (occ_add(p, x, w)) return -1;
    if (p->stamp[x] != tr->stamp) {
        p->stamp[x] = tr->stamp;
        if (tr->ngrown == tr->grown_cap) {
            tr->grown_cap = tr->grown_cap ? 2 * tr->grown_cap : 1024;
            uint32_t *g = realloc(tr->grown, sizeof(uint32_t) * tr->grown_cap);
            if (!g) return -1;
            tr->grown = g;
        }
        tr->grown[tr->ngrown++] = x;
    }
    return 0;
}

// Id of the token with these bytes, adding it if new; UINT32_MAX on OOM.
static uint32_t vocab_intern(Trainer *tr, const uint8_t *a, uint32_t la, const uint8_t *b, uint32_t lb) {
    uint8_t tmp[4096];
    uint32_t n = la + lb;
    uint8_t *bytes = n <= sizeof tmp ? tmp : malloc(n);
    if (!bytes) return UINT32_MAX;
    memcpy(bytes, a, la);
    memcpy(bytes + la, b, lb);
    uint64_t h = piece_hash(bytes, n);
    uint64_t i = h & tr->vmask;
    uint32_t id = UINT32_MAX;
    for (;; i = (i + 1) & tr->vmask) {
        if (!tr->vhash[i]) break;
        uint32_t c = tr->vid[i];
        if (tr->vhash[i] == h && tr->len[c] == n && !memcmp(tr->blob + tr->off[c], bytes, n)) {
            id = c;  // two merges can spell the same bytes: they share the id (as HF does)
            break;
        }
    }
    if (id == UINT32_MAX) {
        if (tr->blob_used + n > tr->blob_cap) {
            uint64_t cap = 2 * (tr->blob_cap + n);
            uint8_t *nb = realloc(tr->blob, cap);
            if (!nb) goto out;
            tr->blob = nb;
            tr->blob_cap = cap;
        }
        id = tr->ntok++;
        memcpy(tr->blob + tr->blob_used, bytes, n);
        tr->off[id] = tr->blob_used;
        tr->len[id] = n;
        tr->blob_used += n;
        tr->vhash[i] = h;
        tr->vid[i] = id;
    }
out:
    if (bytes != tmp) free(bytes);
    return id;
}

// Applies merge (a,b) -> nid to every word that holds it.
static int apply_merge(Trainer *tr, uint32_t x, uint32_t a, uint32_t b, uint32_t nid) {
    Pairs *p = &tr->P;
    tr->stamp++;
    tr->ngrown = 0;
    int rc = 0;
    // occ[x] does not grow during this loop: (a,b) cannot form anew
    for (uint32_t k = 0; k < p->occ_n[x] && rc == 0; k++) {
        uint32_t w = p->occ[x][k];
        if (tr->wstamp[w] == tr->stamp) continue;
        tr->wstamp[w] = tr->stamp;
        uint32_t *s = tr->sym + tr->wstart[w], L = tr->wlen[w], o = 0;
        int64_t c = tr->wcount[w];
        for (uint32_t i = 0; i < L && rc == 0;) {
            if (i + 1 < L && s[i] == a && s[i + 1] == b) {
                if (o > 0) rc |= pair_change(tr, s[o - 1], a, -c, w) | pair_change(tr, s[o - 1], nid, c, w);
                if (i + 2 < L) rc |= pair_change(tr, b, s[i + 2], -c, w) | pair_change(tr, nid, s[i + 2], c, w);
                s[o++] = nid;
                i += 2;
            } else {
                s[o++] = s[i++];
            }
        }
        tr->wlen[w] = o;
    }
    p->count[x] = 0;
    free(p->occ[x]);
    p->occ[x] = NULL;
    p->occ_n[x] = p->occ_cap[x] = 0;
    for (uint32_t g = 0; g < tr->ngrown && rc == 0; g++) {
        uint32_t y = tr->grown[g];
        HeapItem it = {p->count[y], p->pa[y], p->pb[y]};
        if (it.count > 0) rc = heap_push(&tr->Q, it);
    }
    return rc;
}

static void trainer_free(Trainer *tr) {
    free(tr->wcount);
    free(tr->wstart);
    free(tr->wlen);
    free(tr->wstamp);
    free(tr->sym);
    pairs_free(&tr->P);
    free(tr->Q.h);
    free(tr->grown);
    free(tr->blob);
    free(tr->off);
    free(tr->len);
    free(tr->vhash);
    free(tr->vid);
    free(tr->ma);
    free(tr->mb);
    free(tr->mid);
}

// Words from the counted pieces (single bytes never merge and are skipped).
static int trainer_words(Trainer *tr, const PieceMap *m) {
    tr->wcount = malloc(sizeof(int64_t) * (m->n + 1));
    tr->wstart = malloc(sizeof(uint64_t) * (m->n + 1));
    tr->wlen = malloc(sizeof(uint32_t) * (m->n + 1));
    tr->wstamp = calloc(m->n + 1, sizeof(uint32_t));
    tr->sym = malloc(sizeof(uint32_t) * (m->blob_used + 1));
    if (!tr->wcount || !tr->wstart || !tr->wlen || !tr->wstamp || !tr->sym) return -1;
    uint64_t nsym = 0;
    for (uint64_t k = 0; k < m->cap; k++) {
        if (!m->hash[k] || m->len[k] < 2) continue;
        uint32_t w = tr->nw++;
        tr->wcount[w] = (int64_t)m->count[k];
        tr->wstart[w] = nsym;
        tr->wlen[w] = m->len[k];
        for (uint32_t i = 0; i < m->len[k]; i++) tr->sym[nsym++] = m->blob[m->off[k] + i];
    }
    if (pairs_init(&tr->P, nsym)) return -1;
    tr->stamp = 1;
    for (uint32_t w = 0; w < tr->nw; w++)
        for (uint32_t i = 0; i + 1 < tr->wlen[w]; i++)
            if (pair_change(tr, tr->sym[tr->wstart[w] + i], tr->sym[tr->wstart[w] + i + 1], tr->wcount[w], w)) return -1;
    for (uint32_t x = 0; x < tr->P.npairs; x++) {
        HeapItem it = {tr->P.count[x], tr->P.pa[x], tr->P.pb[x]};
        if (heap_push(&tr->Q, it)) return -1;
    }
    return 0;
}

static int trainer_vocab_init(Trainer *tr, int vocab) {
    tr->off = malloc(sizeof(uint64_t) * vocab);
    tr->len = malloc(sizeof(uint32_t) * vocab);
    tr->blob_cap = 1 << 20;
    tr->blob = malloc(tr->blob_cap);
    uint64_t c = 1024;
    while (c < 2 * (uint64_t)vocab) c <<= 1;
    tr->vhash = calloc(c, sizeof(uint64_t));
    tr->vid = malloc(sizeof(uint32_t) * c);
    tr->vmask = c - 1;
    tr->ma = malloc(sizeof(uint32_t) * vocab);
    tr->mb = malloc(sizeof(uint32_t) * vocab);
    tr->mid = malloc(sizeof(uint32_t) * vocab);
    if (!tr->off || !tr->len || !tr->blob || !tr->vhash || !tr->vid || !tr->ma || !tr->mb || !tr->mid) return -1;
    for (int b = 0; b < 256; b++) {  // ids 0..255 are the bytes
        uint8_t byte = (uint8_t)b;
        if (vocab_intern(tr, &byte, 1, &byte, 0) != (uint32_t)b) return -1;
    }
    return 0;
}

// Builds the KilnTokenizer from the trained vocabulary and merges.
static int build_tokenizer(KilnTokenizer *t, const Trainer *tr, const KilnBpeTrainOptions *opt, KilnErr *err) {
    KilnTokenizer fresh;
    char *pattern = t->pattern;
    pcre2_code *re = t->re;
    if (tok_init(&fresh, (int)tr->ntok + opt->n_special, tr->blob_used + 1024, err)) return -1;
    *t = fresh;
    t->pattern = pattern;
    t->re = re;
    for (uint32_t id = 0; id < tr->ntok; id++)
        if (tok_set_token(t, (int)id, tr->blob + tr->off[id], (int)tr->len[id], err)) return -1;
    for (int s = 0; s < opt->n_special; s++)
        if (tok_add_special(t, opt->specials[s], (int)tr->ntok + s, err)) return -1;
    if (tok_finish(t, 0, err)) return -1;
    if (tok_alloc_pairs(&t->pairs, tr->nmerge, err)) return -1;
    for (uint32_t i = 0; i < tr->nmerge; i++)
        if (tok_add_pair(t, (int)tr->ma[i], (int)tr->mb[i], i, (int)tr->mid[i], err)) return -1;
    return 0;
}

int tokenizer_train(KilnTokenizer **out, const char *const *files, int nfiles, const KilnBpeTrainOptions *opt,
                    KilnErr *err) {
    int vocab = opt->vocab_size;
    if (vocab < 256 + opt->n_special)
        return kiln_fail(err, "vocabulary size %d is smaller than the 256 bytes plus %d special token(s)", vocab,
                         opt->n_special);
    for (int s = 0; s < opt->n_special; s++)
        for (int r = 0; r < s; r++)
            if (!strcmp(opt->specials[s], opt->specials[r]))
                return kiln_fail(err, "special token '%s' is given twice", opt->specials[s]);
    KilnTokenizer *t = calloc(1, sizeof *t);
    if (!t) return kiln_fail(err, "out of memory");
    int rc = tok_compile_pattern(t, opt->pattern, err);
    int nthreads = omp_get_max_threads();
    PieceMap *maps = calloc((size_t)nthreads, sizeof *maps);
    Batch batch = {0};
    KilnSkips skips = {0};
    double t0 = kiln_now();
    if (!maps) rc = kiln_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < nthreads; i++)
        if (piecemap_init(&maps[i], 1 << 16)) rc = kiln_fail(err, "out of memory");
    for (int f = 0; rc == 0 && f < nfiles; f++) {
        if (doc_is_jsonl_path(files[f]))
            rc = read_jsonl_file(t, files[f], opt->text_field ? opt->text_field : "text", &batch, maps, &skips, err);
        else
            rc = read_text_file(t, files[f], &batch, maps, err);
    }
    if (opt->skips) *opt->skips = skips;
    if (rc == 0 && batch.nseg) rc = count_batch(t, &batch, maps, err);
    kbuf_free(&batch.text);
    free(batch.seg_off);
    free(batch.seg_len);
    for (int i = 1; rc == 0 && i < nthreads; i++) {  // sum the thread maps into the first
        for (uint64_t k = 0; k < maps[i].cap && rc == 0; k++)
            if (maps[i].hash[k] &&
                piecemap_add(&maps[0], maps[i].blob + maps[i].off[k], maps[i].len[k], maps[i].hash[k], maps[i].count[k]))
                rc = kiln_fail(err, "out of memory");
    }
    for (int i = 1; maps && i < nthreads; i++) piecemap_free(&maps[i]);
    if (rc == 0 && opt->log)
        fprintf(opt->log, "counted %llu distinct pieces in %.2f s\n", (unsigned long long)maps[0].n, kiln_now() - t0);
    Trainer tr;
    memset(&tr, 0, sizeof tr);
    if (rc == 0 && (trainer_vocab_init(&tr, vocab) || trainer_words(&tr, &maps[0])))
        rc = kiln_fail(err, "out of memory");
    if (maps) piecemap_free(&maps[0]);
    free(maps);
    int64_t min_freq = opt->min_frequency > 0 ? opt->min_frequency : 1;
    uint32_t want = (uint32_t)(vocab - opt->n_special);
    double t1 = kiln_now();
    while (rc == 0 && tr.ntok < want && tr.Q.n > 0) {
        HeapItem top = heap_pop(&tr.Q);
        uint32_t x = pair_get(&tr.P, top.a, top.b, 0);
        if (x == UINT32_MAX || tr.P.count[x] <= 0) continue;
        if (tr.P.count[x] != top.count) {  // stale: re-queue with the current count
            HeapItem it = {tr.P.count[x], top.a, top.b};
            if (heap_push(&tr.Q, it)) rc = kiln_fail(err, "out of memory");
            continue;
        }
        if (top.count < min_freq) break;
        uint32_t nid = vocab_intern(&tr, tr.blob + tr.off[top.a], tr.len[top.a], tr.blob + tr.off[top.b], tr.len[top.b]);
        if (nid == UINT32_MAX) {
            rc = kiln_fail(err, "out of memory");
            break;
        }
        tr.ma[tr.nmerge] = top.a;
        tr.mb[tr.nmerge] = top.b;
        tr.mid[tr.nmerge++] = nid;
        if (apply_merge(&tr, x, top.a, top.b, nid)) rc = kiln_fail(err, "out of memory");
        if (opt->log && tr.nmerge % 5000 == 0)
            fprintf(opt->log, "merge %u: vocabulary %u/%d, pair count %lld, %.1f s\n", tr.nmerge, tr.ntok, vocab,
                    (long long)top.count, kiln_now() - t1);
    }
    if (rc == 0) rc = build_tokenizer(t, &tr, opt, err);
    if (rc == 0 && opt->log)
        fprintf(opt->log, "trained %u merges, vocabulary %d, in %.2f s\n", tr.nmerge, t->n_vocab, kiln_now() - t0);
    trainer_free(&tr);
    if (rc) {
        tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

const char *tokenizer_pattern_by_name(const char *name) {
    static const struct {
        const char *name, *pattern;
    } P[] = {
        {"gpt2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
        {"cl100k", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
        {"o200k", "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++)
        if (!strcmp(P[i].name, name)) return P[i].pattern;
    return NULL;
}
