// decontam_index.c: normalised words, the n-gram index of evaluation items and
// the rolling-window scan of documents against it (see kiln/decontam.h).
#include "data/stage/decontam.h"

#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

// ---------------------------------------------------------------- words
// ASCII byte classes: '0' kept, '1' upper case, '2' punctuation (Python's
// string.punctuation, deleted), '3' whitespace (Python's str.split, which also
// splits on \x1c-\x1f).
static const char ASCII_CLASS[129] =
    "00000000033333000000000000003333"
    "32222222222222220000000000222222"
    "21111111111111111111111111122222"
    "20000000000000000000000000022220";

// The code point at t[i] (a byte >= 0x80) and its length; -1 (length 1) for a
// byte that starts no valid sequence, which is then kept as it is.
static int32_t decode(const char *t, size_t len, size_t i, int *n) {
    uint32_t cp;
    size_t m = utf8_decode(t + i, len - i, &cp);
    *n = m ? (int)m : 1;
    return m ? (int32_t)cp : -1;
}

size_t text_skip_space(const char *t, size_t len, size_t i) {
    while (i < len) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x80) {
            if (ASCII_CLASS[c] != '3') break;
            i++;
            continue;
        }
        int n;
        int32_t cp = decode(t, len, i, &n);
        if (cp < 0 || !utf8_isspace((uint32_t)cp)) break;
        i += (size_t)n;
    }
    return i;
}

// Normalises the whitespace-delimited piece starting at t[i] into out (room for
// cap bytes) and returns where the piece ends. *olen receives the full
// normalised length, which may exceed cap (out then holds only its start).
static size_t norm_piece(const char *t, size_t len, size_t i, char *out, size_t cap, size_t *olen) {
    size_t o = 0;
    while (i < len) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x80) {
            char k = ASCII_CLASS[c];
            if (k == '3') break;
            if (k != '2') {
                if (o < cap) out[o] = (char)(k == '1' ? c + 32 : c);
                o++;
            }
            i++;
            continue;
        }
        int n;
        int32_t cp = decode(t, len, i, &n);
        if (cp >= 0 && utf8_isspace((uint32_t)cp)) break;
        if (cp < 0) {
            if (o < cap) out[o] = (char)c;
            o++;
        } else {
            int cat = utf8proc_category(cp);
            if (cat < UTF8PROC_CATEGORY_PC || cat > UTF8PROC_CATEGORY_PO) {
                char enc[4];
                size_t m = utf8_encode((uint32_t)utf8proc_tolower(cp), enc);
                for (size_t k = 0; k < m; k++, o++)
                    if (o < cap) out[o] = enc[k];
            }
        }
        i += (size_t)n;
    }
    *olen = o;
    return i;
}

// The next word at or after *pos: its bytes [*ws, *we) and the XXH3 hash of its
// normalised form. Returns 1, 0 at the end of the text, -1 when out of memory
// (a normalised word longer than the stack buffer needs the heap).
static int next_word(const char *t, size_t len, size_t *pos, size_t *ws, size_t *we, uint64_t *h) {
    char buf[512];
    for (size_t i = *pos;;) {
        i = text_skip_space(t, len, i);
        if (i >= len) {
            *pos = len;
            return 0;
        }
        size_t olen, e = norm_piece(t, len, i, buf, sizeof buf, &olen);
        if (olen == 0) {  // only punctuation: not a word
            i = e;
            continue;
        }
        if (olen <= sizeof buf) {
            *h = XXH3_64bits(buf, olen);
        } else {
            char *big = malloc(olen);
            if (!big) return -1;
            norm_piece(t, len, i, big, olen, &olen);
            *h = XXH3_64bits(big, olen);
            free(big);
        }
        *ws = i;
        *we = *pos = e;
        return 1;
    }
}

long decontam_words(const char *text, size_t len, KilnWordFn fn, void *ctx) {
    char *buf = malloc(len + 1);
    if (!buf) return -1;
    long nw = 0;
    for (size_t i = 0;;) {
        i = text_skip_space(text, len, i);
        if (i >= len) break;
        size_t olen, e = norm_piece(text, len, i, buf, len + 1, &olen);
        if (olen > len + 1) {  // lowercase forms can be longer than the original
            char *big = malloc(olen);
            if (!big) {
                free(buf);
                return -1;
            }
            norm_piece(text, len, i, big, olen, &olen);
            fn(ctx, big, olen, i, e);
            free(big);
            nw++;
        } else if (olen) {
            fn(ctx, buf, olen, i, e);
            nw++;
        }
        i = e;
    }
    free(buf);
    return nw;
}

// ---------------------------------------------------------------- n-gram hashes
// hash(w_i..w_{i+L-1}) = mix(P[i+L] - P[i] * B^L, L) with prefix sums
// P[k+1] = P[k] * B + w_k (mod 2^64). B is odd with B - 1 = 2 * odd, so a swap of
// two random word hashes collides with probability 2^-63.
#define POLY_B 0xC2B2AE3D27D4EB4FULL

static inline uint64_t gram_mix(uint64_t h, int L) {
    h ^= (uint64_t)L << 56;  // n-grams of different lengths never share a hash
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return h;
}

// ---------------------------------------------------------------- the index
typedef struct {
    uint64_t h;
    uint32_t item, pad;
} Entry;

typedef struct {
    uint64_t h;
    uint32_t start, count;  // postings[start .. start+count); count 0: empty slot
} Slot;

typedef struct {
    char *name, *file;
    long items, too_short;
} Task;

struct KilnDecontamIndex {
    int n, min_words, built;
    uint64_t lengths;  // bit L-1: some n-gram has L words
    uint64_t pow[DECONTAM_MAX_N + 1];
    Task tasks[DECONTAM_MAX_TASKS];
    int ntasks;
    // items: ids in an arena of NUL-terminated strings
    char *ids;
    size_t ids_len, ids_cap;
    size_t *id_off;
    unsigned char *item_task;
    long nitems, items_cap;
    uint32_t *by_id;  // item numbers sorted by id (after build)
    // (hash, item) pairs while adding
    Entry *ent;
    size_t nent, ent_cap;
    // the built table
    Slot *slots;
    uint64_t mask;
    uint32_t *post;
    size_t npost;
    uint64_t *bloom;  // one 64-bit block per hash, two bits set in it
    int bloom_shift;  // block = hash >> bloom_shift
    long ngrams;
};

int decontam_index_new(KilnDecontamIndex **out, int n, int min_item_words, KilnErr *err) {
    *out = NULL;
    if (n < 1 || n > DECONTAM_MAX_N) return kiln_fail(err, "decontam: n = %d is not in 1..%d", n, DECONTAM_MAX_N);
    if (min_item_words < 1 || min_item_words > n)
        return kiln_fail(err, "decontam: min_item_words = %d is not in 1..n (%d)", min_item_words, n);
    KilnDecontamIndex *ix = calloc(1, sizeof *ix);
    if (!ix) return kiln_fail(err, "decontam: out of memory");
    ix->n = n;
    ix->min_words = min_item_words;
    ix->pow[0] = 1;
    for (int i = 1; i <= DECONTAM_MAX_N; i++) ix->pow[i] = ix->pow[i - 1] * POLY_B;
    *out = ix;
    return 0;
}

void decontam_index_free(KilnDecontamIndex *ix) {
    if (!ix) return;
    for (int t = 0; t < ix->ntasks; t++) {
        free(ix->tasks[t].name);
        free(ix->tasks[t].file);
    }
    free(ix->ids);
    free(ix->id_off);
    free(ix->item_task);
    free(ix->by_id);
    free(ix->ent);
    free(ix->slots);
    free(ix->post);
    free(ix->bloom);
    free(ix);
}

static int task_find(const KilnDecontamIndex *ix, const char *name) {
    for (int t = 0; t < ix->ntasks; t++)
        if (!strcmp(ix->tasks[t].name, name)) return t;
    return -1;
}

static int task_add(KilnDecontamIndex *ix, const char *name, const char *file, KilnErr *err) {
    if (ix->ntasks == DECONTAM_MAX_TASKS)
        return kiln_fail(err, "decontam: more than %d evaluation tasks", DECONTAM_MAX_TASKS);
    Task *t = &ix->tasks[ix->ntasks];
    t->name = strdup(name);
    t->file = strdup(file ? file : "");
    if (!t->name || !t->file) {
        free(t->name);
        free(t->file);
        return kiln_fail(err, "decontam: out of memory");
    }
    return ix->ntasks++;
}

static int add_entry(KilnDecontamIndex *ix, uint64_t h, uint32_t item) {
    if (ix->nent == ix->ent_cap) {
        size_t cap = ix->ent_cap ? 2 * ix->ent_cap : 4096;
        Entry *e = realloc(ix->ent, cap * sizeof *e);
        if (!e) return -1;
        ix->ent = e;
        ix->ent_cap = cap;
    }
    ix->ent[ix->nent++] = (Entry){h, item, 0};
    return 0;
}

// Indexes one text of an item; 1 if it was long enough to index, 0 if not, -1 out of memory.
static int index_text(KilnDecontamIndex *ix, const char *text, size_t len, uint32_t item) {
    size_t cap = 256, nw = 0, pos = 0, ws, we;
    uint64_t *P = malloc(cap * sizeof *P), h;
    if (!P) return -1;
    P[0] = 0;
    int r;
    while ((r = next_word(text, len, &pos, &ws, &we, &h)) == 1) {
        if (nw + 2 > cap) {
            uint64_t *q = realloc(P, 2 * cap * sizeof *P);
            if (!q) {
                free(P);
                return -1;
            }
            P = q;
            cap *= 2;
        }
        P[nw + 1] = P[nw] * POLY_B + h;
        nw++;
    }
    int rc = r < 0 ? -1 : 0;
    int n = ix->n;
    if (rc == 0 && nw >= (size_t)n) {
        for (size_t i = 0; i + (size_t)n <= nw && rc == 0; i++)
            rc = add_entry(ix, gram_mix(P[i + n] - P[i] * ix->pow[n], n), item);
        ix->lengths |= 1ULL << (n - 1);
        rc = rc ? -1 : 1;
    } else if (rc == 0 && nw >= (size_t)ix->min_words) {  // the whole text is one shorter n-gram
        rc = add_entry(ix, gram_mix(P[nw], (int)nw), item) ? -1 : 1;
        ix->lengths |= 1ULL << (nw - 1);
    }
    free(P);
    return rc;
}

long decontam_index_add_item(KilnDecontamIndex *ix, const char *task, const char *id, const char *const *texts,
                             const size_t *lens, int ntexts, KilnErr *err) {
    if (ix->built) return kiln_fail(err, "decontam: item %s added after the index was built", id);
    int t = task_find(ix, task);
    if (t < 0 && (t = task_add(ix, task, NULL, err)) < 0) return -1;
    if (ix->nitems == ix->items_cap) {
        long cap = ix->items_cap ? 2 * ix->items_cap : 1024;
        size_t *o = realloc(ix->id_off, (size_t)cap * sizeof *o);
        if (o) ix->id_off = o;
        unsigned char *tk = realloc(ix->item_task, (size_t)cap);
        if (tk) ix->item_task = tk;
        if (!o || !tk) return kiln_fail(err, "decontam: out of memory");
        ix->items_cap = cap;
    }
    size_t idl = strlen(id) + 1;
    if (ix->ids_len + idl > ix->ids_cap) {
        size_t cap = ix->ids_cap ? 2 * ix->ids_cap : 65536;
        while (cap < ix->ids_len + idl) cap *= 2;
        char *p = realloc(ix->ids, cap);
        if (!p) return kiln_fail(err, "decontam: out of memory");
        ix->ids = p;
        ix->ids_cap = cap;
    }
    memcpy(ix->ids + ix->ids_len, id, idl);
    long item = ix->nitems++;
    ix->id_off[item] = ix->ids_len;
    ix->ids_len += idl;
    ix->item_task[item] = (unsigned char)t;
    int indexed = 0;
    for (int k = 0; k < ntexts; k++) {
        int r = index_text(ix, texts[k], lens[k], (uint32_t)item);
        if (r < 0) return kiln_fail(err, "decontam: out of memory indexing %s", id);
        indexed |= r;
    }
    ix->tasks[t].items++;
    if (!indexed) ix->tasks[t].too_short++;
    return item;
}

typedef struct {
    KilnDecontamIndex *ix;
    const char *spec;
    int before;  // tasks that existed before this file
} AddCtx;

static int add_cb(void *ctx, const char *task, const char *id, const char *const *texts, const size_t *lens,
                  int ntexts, KilnErr *err) {
    AddCtx *a = ctx;
    int t = task_find(a->ix, task);
    if (t >= 0 && t < a->before)
        return kiln_fail(err, "decontam: task '%s' given twice (eval %s); name them: TASK=PATH", task, a->spec);
    return decontam_index_add_item(a->ix, task, id, texts, lens, ntexts, err) < 0 ? -1 : 0;
}

int decontam_index_add_file(KilnDecontamIndex *ix, const char *spec, KilnErr *err) {
    char *task = NULL;
    AddCtx a = {ix, spec, ix->ntasks};
    int t = -1;
    if (decontam_read_eval(spec, add_cb, &a, &task, err)) goto fail;
    t = task_find(ix, task);
    if (t >= 0 && t < a.before) {  // a second file of that task with no items
        kiln_fail(err, "decontam: task '%s' given twice (eval %s); name them: TASK=PATH", task, spec);
        goto fail;
    }
    if (t < 0 && (t = task_add(ix, task, spec, err)) < 0) goto fail;  // a file with no items
    free(ix->tasks[t].file);
    if (!(ix->tasks[t].file = strdup(spec))) {
        kiln_fail(err, "decontam: out of memory");
        goto fail;
    }
    free(task);
    return 0;
fail:
    free(task);
    return -1;
}

static int cmp_entry(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

typedef struct {
    const char *id;
    uint32_t item;
} IdRef;

static int cmp_id(const void *a, const void *b) { return strcmp(((const IdRef *)a)->id, ((const IdRef *)b)->id); }

// by_id: item numbers in id order, for decontam_item_find; a repeated id is an error.
static int build_ids(KilnDecontamIndex *ix, KilnErr *err) {
    size_t n = (size_t)ix->nitems;
    IdRef *r = malloc((n ? n : 1) * sizeof *r);
    ix->by_id = malloc((n ? n : 1) * sizeof *ix->by_id);
    if (!r || !ix->by_id) {
        free(r);
        return kiln_fail(err, "decontam: out of memory");
    }
    for (size_t i = 0; i < n; i++) r[i] = (IdRef){ix->ids + ix->id_off[i], (uint32_t)i};
    qsort(r, n, sizeof *r, cmp_id);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        ix->by_id[i] = r[i].item;
        if (i && !strcmp(r[i - 1].id, r[i].id) && !rc)
            rc = kiln_fail(err, "decontam: evaluation item id '%s' appears twice", r[i].id);
    }
    free(r);
    return rc;
}

int decontam_index_build(KilnDecontamIndex *ix, KilnErr *err) {
    if (ix->built) return 0;
    if (build_ids(ix, err)) return -1;
    qsort(ix->ent, ix->nent, sizeof *ix->ent, cmp_entry);
    size_t np = 0, nu = 0;  // distinct pairs, distinct hashes
    for (size_t i = 0; i < ix->nent; i++) {
        if (np && ix->ent[np - 1].h == ix->ent[i].h && ix->ent[np - 1].item == ix->ent[i].item) continue;
        if (!np || ix->ent[np - 1].h != ix->ent[i].h) nu++;
        ix->ent[np++] = ix->ent[i];
    }
    size_t nslots = 16;
    while (nslots < 2 * nu) nslots *= 2;
    size_t nbloom = 64;  // 16 bits per n-gram: with two bits each, ~1.4% false positives
    while (nbloom * 64 < 16 * nu) nbloom *= 2;
    ix->slots = calloc(nslots, sizeof *ix->slots);
    ix->post = malloc((np ? np : 1) * sizeof *ix->post);
    ix->bloom = calloc(nbloom, sizeof *ix->bloom);
    if (!ix->slots || !ix->post || !ix->bloom) return kiln_fail(err, "decontam: out of memory for the index");
    ix->mask = nslots - 1;
    ix->bloom_shift = 64 - __builtin_ctzll(nbloom);
    for (size_t i = 0; i < np;) {
        size_t j = i;
        uint64_t h = ix->ent[i].h;
        while (j < np && ix->ent[j].h == h) {
            ix->post[j] = ix->ent[j].item;
            j++;
        }
        size_t s = h & ix->mask;
        while (ix->slots[s].count) s = (s + 1) & ix->mask;
        ix->slots[s] = (Slot){h, (uint32_t)i, (uint32_t)(j - i)};
        ix->bloom[h >> ix->bloom_shift] |= (1ULL << (h & 63)) | (1ULL << ((h >> 6) & 63));
        i = j;
    }
    ix->npost = np;
    ix->ngrams = (long)nu;
    free(ix->ent);
    ix->ent = NULL;
    ix->nent = ix->ent_cap = 0;
    ix->built = 1;
    return 0;
}

int decontam_n(const KilnDecontamIndex *ix) { return ix->n; }
int decontam_ntasks(const KilnDecontamIndex *ix) { return ix->ntasks; }
const char *decontam_task_name(const KilnDecontamIndex *ix, int t) { return ix->tasks[t].name; }
const char *decontam_task_file(const KilnDecontamIndex *ix, int t) { return ix->tasks[t].file; }
long decontam_task_items(const KilnDecontamIndex *ix, int t) { return ix->tasks[t].items; }
long decontam_task_too_short(const KilnDecontamIndex *ix, int t) { return ix->tasks[t].too_short; }
long decontam_nitems(const KilnDecontamIndex *ix) { return ix->nitems; }
const char *decontam_item_id(const KilnDecontamIndex *ix, long item) { return ix->ids + ix->id_off[item]; }
int decontam_item_task(const KilnDecontamIndex *ix, long item) { return ix->item_task[item]; }
long decontam_nngrams(const KilnDecontamIndex *ix) { return ix->ngrams; }

long decontam_item_find(const KilnDecontamIndex *ix, const char *id) {
    if (!ix->by_id) return -1;
    long lo = 0, hi = ix->nitems;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        int c = strcmp(ix->ids + ix->id_off[ix->by_id[mid]], id);
        if (!c) return ix->by_id[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

size_t decontam_index_bytes(const KilnDecontamIndex *ix) {
    size_t b = sizeof *ix + ix->ids_cap + (size_t)ix->items_cap * (sizeof(size_t) + 1) +
               (size_t)ix->nitems * sizeof(uint32_t) + ix->ent_cap * sizeof(Entry) + ix->npost * sizeof(uint32_t);
    if (ix->built) b += (ix->mask + 1) * sizeof(Slot) + ((size_t)1 << (64 - ix->bloom_shift)) * sizeof(uint64_t);
    return b;
}

// ---------------------------------------------------------------- scanning
static inline const Slot *lookup(const KilnDecontamIndex *ix, uint64_t h) {
    uint64_t bits = (1ULL << (h & 63)) | (1ULL << ((h >> 6) & 63));
    if ((ix->bloom[h >> ix->bloom_shift] & bits) != bits) return NULL;
    for (size_t s = h & ix->mask; ix->slots[s].count; s = (s + 1) & ix->mask)
        if (ix->slots[s].h == h) return &ix->slots[s];
    return NULL;
}

#define RING 128  // > DECONTAM_MAX_N + LAG: prefix sums and word bounds of the last words
#define AT(i) ((size_t)(i) & (RING - 1))
typedef struct {
    uint64_t P[RING];
    size_t ws[RING], we[RING];
} Window;

static inline uint64_t window_hash(const KilnDecontamIndex *ix, const Window *w, long s, int L) {
    return gram_mix(w->P[AT(s + L)] - w->P[AT(s)] * ix->pow[L], L);
}

// Looks up the n-grams that start at word s and end by word `limit`, longest
// first (hn: the n-word one's hash, already computed, or 0). Returns the hits,
// or -1 when the callback stopped the scan.
static long try_start(const KilnDecontamIndex *ix, const Window *w, long s, long limit, uint64_t hn,
                      int (*hit)(void *, const KilnNgramHit *), void *ctx) {
    long hits = 0;
    for (uint64_t m = ix->lengths; m;) {
        int b = 63 - __builtin_clzll(m);
        m &= ~(1ULL << b);
        int L = b + 1;
        if (s + L > limit) continue;
        uint64_t h = L == ix->n && hn ? hn : window_hash(ix, w, s, L);
        const Slot *sl = lookup(ix, h);
        if (!sl) continue;
        KilnNgramHit hh = {w->ws[AT(s)], w->we[AT(s + L - 1)], ix->post + sl->start, (int)sl->count};
        hits++;
        if (hit(ctx, &hh)) return -1;
    }
    return hits;
}

// Lookups trail the words by LAG starts: the n-gram hash of a start is computed
// and its Bloom block prefetched LAG words before it is tested, which hides the
// cache misses of the filter (most n-grams of a document are not in it).
#define LAG 8

long decontam_scan(const KilnDecontamIndex *ix, const char *text, size_t len,
                   int (*hit)(void *ctx, const KilnNgramHit *h), void *ctx) {
    if (!ix->built || !ix->ngrams) return 0;
    Window w;
    uint64_t hn[RING];  // the n-gram hash of each pending start
    long k = 0, hits = 0, r, next = 0;  // next: the first start not yet tested
    int n = ix->n, rc;
    size_t pos = 0, ws, we;
    uint64_t h;
    w.P[0] = 0;
    while ((rc = next_word(text, len, &pos, &ws, &we, &h)) == 1) {
        w.ws[AT(k)] = ws;
        w.we[AT(k)] = we;
        w.P[AT(k + 1)] = w.P[AT(k)] * POLY_B + h;
        k++;
        if (k < n) continue;
        long s = k - n;  // every n-gram starting at word s now lies in the window
        hn[AT(s)] = window_hash(ix, &w, s, n);
        __builtin_prefetch(&ix->bloom[hn[AT(s)] >> ix->bloom_shift]);
        for (; next <= s - LAG; next++) {
            if ((r = try_start(ix, &w, next, k, hn[AT(next)], hit, ctx)) < 0) return -1;
            hits += r;
        }
    }
    if (rc < 0) return -1;
    for (; next < k; next++) {  // the trailing starts, and those with only shorter n-grams
        if ((r = try_start(ix, &w, next, k, 0, hit, ctx)) < 0) return -1;
        hits += r;
    }
    return hits;
}
