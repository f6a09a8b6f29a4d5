// bpe.c: byte-pair merging of one piece. Repeatedly merges the adjacent pair with
// the lowest priority, the leftmost one on ties (tiktoken's and HF's order), until
// no pair is in the table. Short pieces use a plain array (O(n^2), cache-friendly);
// long ones a linked list and a heap (O(n log n)), so a megabyte without spaces
// is no slower per byte than prose.
#include "tokenizer/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

#define NO_PAIR UINT32_MAX
enum { SHORT_PIECE = 48 };

// Priority and merged id of (l, r); NO_PAIR if they do not merge.
static inline uint32_t pair_lookup(const PairMap *p, uint32_t l, uint32_t r, uint32_t *id) {
    if (!p->key) return NO_PAIR;
    uint64_t key = (uint64_t)l << 32 | r;
    for (uint64_t i = kiln_hash64(key) & p->mask;; i = (i + 1) & p->mask) {
        if (p->key[i] == key) {
            *id = p->id[i];
            return p->prio[i];
        }
        if (p->key[i] == UINT64_MAX) return NO_PAIR;
    }
}

static int bpe_short(const KilnTokenizer *t, const uint8_t *b, size_t n, KilnIds *out) {
    uint32_t ids[SHORT_PIECE], prio[SHORT_PIECE], merged[SHORT_PIECE];
    for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)t->byte_id[b[i]];
    for (size_t i = 0; i + 1 < n; i++) prio[i] = pair_lookup(&t->pairs, ids[i], ids[i + 1], &merged[i]);
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (prio[i] < prio[best]) best = i;
        if (prio[best] == NO_PAIR) break;
        ids[best] = merged[best];
        memmove(ids + best + 1, ids + best + 2, sizeof(uint32_t) * (n - best - 2));
        if (best + 3 <= n) {  // pairs after the merged one move left by one
            memmove(prio + best + 1, prio + best + 2, sizeof(uint32_t) * (n - best - 3));
            memmove(merged + best + 1, merged + best + 2, sizeof(uint32_t) * (n - best - 3));
        }
        n--;
        if (best > 0) prio[best - 1] = pair_lookup(&t->pairs, ids[best - 1], ids[best], &merged[best - 1]);
        if (best + 1 < n) prio[best] = pair_lookup(&t->pairs, ids[best], ids[best + 1], &merged[best]);
    }
    for (size_t i = 0; i < n; i++)
        if (ids_push(out, ids[i])) return -1;
    return 0;
}

// Heap of candidate merges ordered by (priority, position); stale entries are
// skipped when popped (either side merged since, or its id changed).
typedef struct {
    uint32_t prio, pos, left_id, right_id, merged;
} Cand;

static int cand_less(const Cand *a, const Cand *b) {
    return a->prio < b->prio || (a->prio == b->prio && a->pos < b->pos);
}

static void heap_push(Cand *h, size_t *n, Cand c) {
    size_t i = (*n)++;
    h[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&h[i], &h[p])) break;
        Cand tmp = h[i];
        h[i] = h[p];
        h[p] = tmp;
        i = p;
    }
}

static Cand heap_pop(Cand *h, size_t *n) {
    Cand top = h[0];
    h[0] = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && cand_less(&h[l], &h[m])) m = l;
        if (r < *n && cand_less(&h[r], &h[m])) m = r;
        if (m == i) break;
        Cand tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
    return top;
}

static int bpe_long(const KilnTokenizer *t, const uint8_t *b, size_t n, KilnIds *out) {
    // node i starts at byte i; next/prev link live nodes; merged nodes keep the left index
    uint32_t *id = malloc(sizeof(uint32_t) * n), *next = malloc(sizeof(uint32_t) * n),
             *prev = malloc(sizeof(uint32_t) * n);
    Cand *heap = malloc(sizeof(Cand) * 2 * n);  // each merge pushes at most 2
    int rc = -1;
    if (!id || !next || !prev || !heap) goto done;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        id[i] = (uint32_t)t->byte_id[b[i]];
        next[i] = (uint32_t)(i + 1);
        prev[i] = i ? (uint32_t)(i - 1) : UINT32_MAX;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        Cand c = {0, (uint32_t)i, id[i], id[i + 1], 0};
        c.prio = pair_lookup(&t->pairs, id[i], id[i + 1], &c.merged);
        if (c.prio != NO_PAIR) heap_push(heap, &hn, c);
    }
    while (hn > 0) {
        Cand c = heap_pop(heap, &hn);
        uint32_t l = c.pos, r = next[l];
        if (id[l] == UINT32_MAX || r >= n || id[l] != c.left_id || id[r] != c.right_id) continue;
        id[l] = c.merged;  // merge r into l
        id[r] = UINT32_MAX;
        next[l] = next[r];
        if (next[r] < n) prev[next[r]] = l;
        if (prev[l] != UINT32_MAX) {
            uint32_t p = prev[l];
            Cand d = {0, p, id[p], id[l], 0};
            d.prio = pair_lookup(&t->pairs, id[p], id[l], &d.merged);
            if (d.prio != NO_PAIR) heap_push(heap, &hn, d);
        }
        if (next[l] < n) {
            uint32_t q = next[l];
            Cand d = {0, l, id[l], id[q], 0};
            d.prio = pair_lookup(&t->pairs, id[l], id[q], &d.merged);
            if (d.prio != NO_PAIR) heap_push(heap, &hn, d);
        }
    }
    rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i = next[i]) rc = ids_push(out, id[i]);
done:
    free(id);
    free(next);
    free(prev);
    free(heap);
    return rc;
}

int bpe_encode_piece(const KilnTokenizer *t, const uint8_t *p, size_t n, KilnIds *out) {
    if (n == 1) return ids_push(out, (uint32_t)t->byte_id[p[0]]);
    if (t->whole_piece) {
        int32_t id = tok_lookup(t, p, n);
        if (id >= 0) return ids_push(out, (uint32_t)id);
    }
    return n <= SHORT_PIECE ? bpe_short(t, p, n, out) : bpe_long(t, p, n, out);
}
