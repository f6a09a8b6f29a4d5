// test_data_dedup: exact, near-duplicate (MinHash LSH) and line deduplication on
// real text: planted near-duplicates of TinyStories stories and WikiText
// paragraphs (true Jaccard of the 5-gram shingle sets computed exactly), licence
// boilerplate of /usr/share/doc/*/copyright against a naive reference, spilled
// (tiny memory budget) runs against in-memory ones, one thread against two,
// malformed and mutated JSONL through the stages.
#include "kiln/data.h"
#include "core/utf8.h"
#include "data/dedup/dedup.h"
#include "data/dedup/minhash.h"
#include "testutil.h"

#include <glob.h>
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char data_dir[1024];

// ---------------------------------------------------------------- text lists
typedef struct {
    char **t;
    size_t *len;
    int n, cap;
} Texts;

static void texts_add(Texts *x, const char *s, size_t n) {
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 64;
        x->t = realloc(x->t, sizeof(char *) * (size_t)x->cap);
        x->len = realloc(x->len, sizeof(size_t) * (size_t)x->cap);
        assert_non_null(x->t);
        assert_non_null(x->len);
    }
    x->t[x->n] = malloc(n + 1);
    memcpy(x->t[x->n], s, n);
    x->t[x->n][n] = 0;
    x->len[x->n++] = n;
}

static void texts_free(Texts *x) {
    for (int i = 0; i < x->n; i++) free(x->t[i]);
    free(x->t);
    free(x->len);
    memset(x, 0, sizeof *x);
}

static long word_count(const char *s, size_t n) {
    long w = 0;
    for (size_t i = 0; i < n; i++) w += (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\n') && s[i] != ' ' && s[i] != '\n';
    return w;
}

static char *read_data(const char *rel, size_t *len) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", data_dir, rel);
    char *d;
    KilnErr err;
    if (kiln_read_file(path, &d, len, &err)) fail_msg("%s", err.msg);
    return d;
}

// TinyStories stories (between <|endoftext|> lines) of at least min_words words.
static void load_stories(Texts *x, int max, long min_words) {
    size_t len;
    char *d = read_data("pretrain/tinystories/TinyStories-train.head-part1.txt", &len);
    const char *sep = "<|endoftext|>";
    char *p = d, *end = d + len;
    while (p < end && x->n < max) {
        char *q = strstr(p, sep);
        if (!q) q = end;
        char *s = p, *e = q;
        while (s < e && (*s == '\n' || *s == ' ')) s++;
        while (e > s && (e[-1] == '\n' || e[-1] == ' ')) e--;
        if (word_count(s, (size_t)(e - s)) >= min_words) texts_add(x, s, (size_t)(e - s));
        p = q < end ? q + strlen(sep) : end;
    }
    free(d);
}

// WikiText-2 raw paragraphs (one per line, headings skipped) of at least min_words words.
static void load_wiki(Texts *x, int max, long min_words) {
    size_t len;
    char *d = read_data("pretrain/wikitext-2-raw/wiki.test.raw", &len);
    char *p = d, *end = d + len;
    while (p < end && x->n < max) {
        char *q = memchr(p, '\n', (size_t)(end - p));
        if (!q) q = end;
        char *e = q;
        while (e > p && (e[-1] == '\r' || e[-1] == ' ')) e--;
        char *s = p;
        while (s < e && *s == ' ') s++;
        if (*s != '=' && word_count(s, (size_t)(e - s)) >= min_words) texts_add(x, s, (size_t)(e - s));
        p = q + 1;
    }
    free(d);
}

// ---------------------------------------------------------------- exact Jaccard
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static long unique_shingles(const KilnMinHash *m, const char *t, size_t n, uint64_t **out) {
    long k = minhash_shingles(m, t, n, out);
    assert_true(k >= 0);
    qsort(*out, (size_t)k, 8, cmp_u64);
    long u = 0;
    for (long i = 0; i < k; i++)
        if (!u || (*out)[u - 1] != (*out)[i]) (*out)[u++] = (*out)[i];
    return u;
}

static double exact_jaccard(const KilnMinHash *m, const char *a, size_t la, const char *b, size_t lb) {
    uint64_t *x, *y;
    long ux = unique_shingles(m, a, la, &x), uy = unique_shingles(m, b, lb, &y);
    long i = 0, j = 0, inter = 0;
    while (i < ux && j < uy) {
        if (x[i] == y[j]) inter++, i++, j++;
        else if (x[i] < y[j]) i++;
        else j++;
    }
    free(x);
    free(y);
    return ux + uy - inter ? (double)inter / (double)(ux + uy - inter) : 1.0;
}

// ---------------------------------------------------------------- planted corpus
// A copy of src with `edits` word edits (substitution by a word from elsewhere
// in the pool, deletion, or insertion), words joined by single spaces.
static void make_variant(const char *src, size_t n, int edits, const Texts *pool, KilnRng *r, KilnBuf *out) {
    size_t nw = 0, cap = 64;
    size_t(*w)[2] = malloc(sizeof *w * cap);
    for (size_t i = 0; i < n;) {
        while (i < n && (src[i] == ' ' || src[i] == '\n')) i++;
        if (i == n) break;
        size_t s = i;
        while (i < n && src[i] != ' ' && src[i] != '\n') i++;
        if (nw == cap) w = realloc(w, sizeof *w * (cap *= 2));
        w[nw][0] = s;
        w[nw++][1] = i;
    }
    // per word: 0 keep, 1 substitute, 2 delete, 3 insert before
    unsigned char *op = calloc(nw + 1, 1);
    for (int e = 0; e < edits; e++) op[kiln_rng_u64(r) % nw] = (unsigned char)(1 + kiln_rng_u64(r) % 3);
    kbuf_clear(out);
    for (size_t k = 0; k < nw; k++) {
        if (op[k] == 1 || op[k] == 3) {  // a random word of a random pool text
            const char *t = pool->t[kiln_rng_u64(r) % (uint64_t)pool->n];
            size_t tl = strlen(t), p = kiln_rng_u64(r) % tl;
            while (p > 0 && t[p - 1] != ' ') p--;
            size_t q = p;
            while (q < tl && t[q] != ' ' && t[q] != '\n') q++;
            if (out->len) kbuf_putc(out, ' ');
            kbuf_append(out, t + p, q - p);
            if (op[k] == 1) continue;
        }
        if (op[k] == 2) continue;
        if (out->len) kbuf_putc(out, ' ');
        kbuf_append(out, src + w[k][0], w[k][1] - w[k][0]);
    }
    free(op);
    free(w);
}

typedef struct {
    int a, b;  // indices in the final (shuffled) corpus
    double j;  // exact Jaccard of their shingle sets
} Pair;

typedef struct {
    Texts docs;
    Pair *pairs;
    int npairs;
} Planted;

// 400 stories and 150 wiki paragraphs; 200 of them get one lightly edited copy,
// 50 two copies, 100 one heavily edited copy (true Jaccard mostly < 0.5); then
// all are shuffled so copies may come before their originals.
static void build_planted(Planted *pl) {
    memset(pl, 0, sizeof *pl);
    Texts orig = {0};
    load_stories(&orig, 400, 80);
    load_wiki(&orig, 550, 120);
    assert_int_equal(orig.n, 550);
    KilnRng r;
    kiln_rng_seed(&r, 2024);
    Texts all = {0};
    int *from = malloc(sizeof(int) * 1000);  // original of each text, -1 for originals
    for (int i = 0; i < orig.n; i++) {
        texts_add(&all, orig.t[i], orig.len[i]);
        from[all.n - 1] = -1;
    }
    KilnBuf v = {0};
    for (int i = 0; i < 350; i++) {
        int copies = i < 200 ? 1 : i < 250 ? 2 : 1;
        long words = word_count(orig.t[i], orig.len[i]);
        for (int c = 0; c < copies; c++) {
            int edits = i < 250 ? 1 + (int)(kiln_rng_u64(&r) % (uint64_t)(words / 60 + 1))
                                : (int)(words * (0.15 + 0.15 * kiln_rng_uniform(&r)));
            make_variant(orig.t[i], orig.len[i], edits, &orig, &r, &v);
            texts_add(&all, v.data, v.len);
            from[all.n - 1] = i;
        }
    }
    kbuf_free(&v);
    // shuffle
    int *perm = malloc(sizeof(int) * (size_t)all.n), *pos = malloc(sizeof(int) * (size_t)all.n);
    for (int i = 0; i < all.n; i++) perm[i] = i;
    for (int i = all.n - 1; i > 0; i--) {
        int k = (int)(kiln_rng_u64(&r) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[k];
        perm[k] = t;
    }
    for (int i = 0; i < all.n; i++) {
        texts_add(&pl->docs, all.t[perm[i]], all.len[perm[i]]);
        pos[perm[i]] = i;
    }
    // planted pairs: original-copy, and copies of one original with each other
    KilnMinHash m;
    assert_int_equal(minhash_init(&m, 1, 5, 1), 0);
    pl->pairs = malloc(sizeof(Pair) * 1000);
    for (int i = orig.n; i < all.n; i++) {
        int o = from[i];
        pl->pairs[pl->npairs++] = (Pair){pos[o], pos[i], exact_jaccard(&m, all.t[o], all.len[o], all.t[i], all.len[i])};
        if (i > orig.n && from[i - 1] == o)
            pl->pairs[pl->npairs++] =
                (Pair){pos[i - 1], pos[i], exact_jaccard(&m, all.t[i - 1], all.len[i - 1], all.t[i], all.len[i])};
    }
    minhash_free(&m);
    free(perm);
    free(pos);
    free(from);
    texts_free(&all);
    texts_free(&orig);
}

static void planted_free(Planted *pl) {
    texts_free(&pl->docs);
    free(pl->pairs);
}

static KilnNearParams near_defaults(void) {
    return (KilnNearParams){.ngram = 5, .num_perm = 112, .bands = 14, .rows = 8, .threshold = 0.8,
                            .verify_z = 1.645, .mem_bytes = 256u << 20, .seed = 42};
}

// Runs the near-dedup core over texts in batches of 97; reps[i] = cluster root.
static void near_run_core(const Texts *x, const KilnNearParams *p, long *reps, KilnNearStats *st) {
    KilnNearDedup *nd;
    KilnErr err;
    if (near_open(&nd, p, test_tmpdir(), &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < x->n; i += 97) {
        int k = x->n - i < 97 ? x->n - i : 97;
        if (near_add(nd, (const char *const *)x->t + i, x->len + i, k, &err)) fail_msg("%s", err.msg);
    }
    if (near_cluster(nd, &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < x->n; i++) reps[i] = near_rep(nd, i);
    if (st) *st = *near_stats(nd);
    near_close(nd);
}

// ---------------------------------------------------------------- normalisation
static void expect_norm(const char *in, const char *want) {
    KilnBuf b = {0};
    assert_int_equal(dedup_normalize(in, strlen(in), &b), 0);
    if (strcmp(b.data ? b.data : "", want)) fail_msg("normalise \"%s\": got \"%s\", want \"%s\"", in, b.data, want);
    kbuf_free(&b);
}

// The cases of datatrove's simplify_text, in its order of steps.
static void test_normalize(void **state) {
    expect_norm("Hello,  World!\n\tFoo", "hello world foo");
    expect_norm("a - b", "a  b");  // whitespace collapses before punctuation goes
    expect_norm("  -leading and trailing-  ", "leading and trailing");
    expect_norm("1,000 and 3.14 and 2024", "0 and 0 and 0");  // digit runs after punctuation removal
    expect_norm("Caf\xc3\xa9 na\xc3\xafve \xc3\x85ngstr\xc3\xb6m", "cafe naive angstrom");  // diacritics
    expect_norm("\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93 \xd9\xa3", "0 0");  // fullwidth and Arabic-Indic digits
    expect_norm("\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\x94 dash\xe2\x80\xa6", "quoted  dash");  // Unicode P
    expect_norm("x\xc2\xa0y\xe3\x80\x80z", "x y z");  // NBSP and ideographic space are whitespace
    expect_norm("\xce\x91\xce\x98\xce\x97\xce\x9d\xce\x91", "\xce\xb1\xce\xb8\xce\xb7\xce\xbd\xce\xb1");  // Greek lowercase
    expect_norm("", "");
    expect_norm("!!! ...", "");
    expect_norm("tab\x01\x02" "ctrl", "tabctrl");
}

// ---------------------------------------------------------------- sorter
static int cmp_rec3(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    for (int w = 0; w < 3; w++)
        if (x[w] != y[w]) return x[w] < y[w] ? -1 : 1;
    return 0;
}

static int cmp_rec2(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    for (int w = 0; w < 2; w++)
        if (x[w] != y[w]) return x[w] < y[w] ? -1 : 1;
    return 0;
}

static void check_sorter(int words, size_t n, size_t mem, int expect_spill) {
    KilnRng r;
    kiln_rng_seed(&r, n + mem);
    uint64_t *recs = malloc(sizeof(uint64_t) * words * n);
    for (size_t i = 0; i < n * (size_t)words; i++)  // few distinct keys: many ties across runs
        recs[i] = (i % words == 0) ? kiln_rng_u64(&r) % 1000 * 0x9E3779B97F4A7C15ull : kiln_rng_u64(&r) % 50;
    KilnSorter *s;
    KilnErr err;
    assert_int_equal(sorter_open(&s, words, mem, test_tmpdir(), "sorttest", &err), 0);
    for (size_t i = 0; i < n; i += 1000)
        assert_int_equal(sorter_push(s, recs + i * words, n - i < 1000 ? n - i : 1000, &err), 0);
    assert_int_equal(sorter_finish(s, &err), 0);
    qsort(recs, n, sizeof(uint64_t) * words, words == 3 ? cmp_rec3 : cmp_rec2);
    const uint64_t *rec;
    size_t k = 0;
    int got;
    while ((got = sorter_next(s, &rec, &err)) > 0) {
        assert_true(k < n);
        assert_memory_equal(rec, recs + k * words, sizeof(uint64_t) * words);
        k++;
    }
    assert_int_equal(got, 0);
    assert_int_equal(k, n);
    assert_int_equal(sorter_count(s), (long)n);
    if (expect_spill) assert_true(sorter_runs(s) > 1);
    else assert_int_equal(sorter_runs(s), 0);
    sorter_close(s);
    free(recs);
}

static void test_sorter(void **state) {
    check_sorter(2, 100000, 64u << 20, 0);
    check_sorter(2, 100000, 64 << 10, 1);  // 2048 records a run: 49 runs
    check_sorter(3, 30001, 10000, 1);
    check_sorter(3, 0, 4096, 0);
    check_sorter(2, 1, 4096, 0);
}

// ---------------------------------------------------------------- exact
static void exact_core(const Texts *x, size_t mem, int *dup, long *runs) {
    KilnExactDedup *e;
    KilnErr err;
    assert_int_equal(exact_open(&e, mem, test_tmpdir(), &err), 0);
    for (int i = 0; i < x->n; i += 50) {
        int k = x->n - i < 50 ? x->n - i : 50;
        assert_int_equal(exact_add(e, (const char *const *)x->t + i, x->len + i, k, &err), 0);
    }
    assert_int_equal(exact_finish(e, &err), 0);
    for (int i = 0; i < x->n; i++) dup[i] = exact_is_dup(e, i);
    if (runs) *runs = exact_runs(e);
    exact_close(e);
}

static void test_exact_rules(void **state) {
    Texts x = {0};
    const char *t[] = {
        "Hello World.",          // 0 first
        "hello   world",         // 1 dup of 0: case, whitespace, punctuation
        "Hello Worlds",          // 2 different word
        "Born in 1999 here",     // 3 first
        "Born in 2024 here",     // 4 dup of 3: digit runs are all "0"
        "Caf\xc3\xa9 du monde",  // 5 first
        "cafe du monde!",        // 6 dup of 5: diacritics
        "",                      // 7 first empty
        "  ...  ",               // 8 dup of 7: normalises to nothing
        "Hello World.",          // 9 dup of 0, later
    };
    int want[] = {0, 1, 0, 0, 1, 0, 1, 0, 1, 1};
    for (int i = 0; i < 10; i++) texts_add(&x, t[i], strlen(t[i]));
    int dup[10];
    exact_core(&x, 1 << 20, dup, NULL);
    for (int i = 0; i < 10; i++)
        if (dup[i] != want[i]) fail_msg("text %d \"%s\": duplicate %d, want %d", i, t[i], dup[i], want[i]);
    texts_free(&x);
}

// Real stories plus 100 exact copies (some re-cased or re-spaced): exactly the
// later copies are flagged, with or without spilling.
static void test_exact_real(void **state) {
    Texts x = {0}, base = {0};
    load_stories(&base, 500, 20);
    for (int i = 0; i < base.n; i++) texts_add(&x, base.t[i], base.len[i]);
    int nb = x.n;
    KilnBuf v = {0};
    for (int k = 0; k < 100; k++) {
        int i = (k * 37) % nb;
        kbuf_set(&v, base.t[i], base.len[i]);
        if (k % 3 == 1)
            for (size_t j = 0; j < v.len; j++) v.data[j] = (char)(v.data[j] >= 'a' && v.data[j] <= 'z' ? v.data[j] - 32 : v.data[j]);
        if (k % 3 == 2) kbuf_puts(&v, "  \n ");
        texts_add(&x, v.data, v.len);
    }
    kbuf_free(&v);
    int *dup = calloc((size_t)x.n, sizeof(int)), *dup2 = calloc((size_t)x.n, sizeof(int));
    long runs;
    exact_core(&x, 256u << 20, dup, &runs);
    assert_int_equal(runs, 0);
    // reference: string comparison of the normalised texts (TinyStories repeats a few stories itself)
    Texts norm = {0};
    KilnBuf a = {0};
    for (int i = 0; i < x.n; i++) {
        dedup_normalize(x.t[i], x.len[i], &a);
        texts_add(&norm, a.data ? a.data : "", a.len);
    }
    int expect_dups = 0;
    for (int i = 0; i < x.n; i++) {
        int is_dup = 0;
        for (int j = 0; j < i && !is_dup; j++)
            is_dup = norm.len[i] == norm.len[j] && !memcmp(norm.t[i], norm.t[j], norm.len[i]);
        assert_int_equal(dup[i], is_dup);
        expect_dups += is_dup;
        if (i >= nb) assert_int_equal(dup[i], 1);
    }
    texts_free(&norm);
    print_message("exact: %d texts, %d duplicates\n", x.n, expect_dups);
    exact_core(&x, 2048, dup2, &runs);  // 85 records a run
    assert_true(runs > 5);
    assert_memory_equal(dup, dup2, sizeof(int) * (size_t)x.n);
    kbuf_free(&a);
    free(dup);
    free(dup2);
    texts_free(&x);
    texts_free(&base);
}

// ---------------------------------------------------------------- near
static void test_near_planted(void **state) {
    Planted pl;
    build_planted(&pl);
    long *reps = malloc(sizeof(long) * (size_t)pl.docs.n);
    KilnNearParams p = near_defaults();
    KilnNearStats st;
    near_run_core(&pl.docs, &p, reps, &st);
    // recall over planted pairs with true Jaccard >= 0.8, by band of Jaccard
    int pos = 0, found = 0, neg = 0, lo_pos[4] = {0}, lo_found[4] = {0};
    for (int k = 0; k < pl.npairs; k++) {
        const Pair *q = &pl.pairs[k];
        int same = reps[q->a] == reps[q->b];
        if (q->j >= 0.8) {
            int band = q->j >= 0.95 ? 3 : q->j >= 0.9 ? 2 : q->j >= 0.85 ? 1 : 0;
            pos++, found += same;
            lo_pos[band]++, lo_found[band] += same;
        }
        if (q->j < 0.5) {
            neg++;
            if (same) fail_msg("planted pair %d-%d with Jaccard %.3f merged", q->a, q->b, q->j);
        }
    }
    print_message("near: %d docs, %ld clusters, %ld candidate pairs, %ld verified; planted J>=0.8: %d/%d found "
                  "([.8,.85) %d/%d, [.85,.9) %d/%d, [.9,.95) %d/%d, >=.95 %d/%d); %d planted pairs J<0.5 kept apart\n",
                  pl.docs.n, st.clusters, st.candidate_pairs, st.verified_pairs, found, pos, lo_found[0], lo_pos[0],
                  lo_found[1], lo_pos[1], lo_found[2], lo_pos[2], lo_found[3], lo_pos[3], neg);
    assert_true(pos >= 250);
    assert_true(neg >= 50);
    assert_true(found >= 0.95 * pos);
    // no cluster holds two documents with true Jaccard < 0.5 (planted or not)
    KilnMinHash m;
    assert_int_equal(minhash_init(&m, 1, 5, 1), 0);
    long checked = 0;
    for (int i = 0; i < pl.docs.n; i++)
        for (int j = i + 1; j < pl.docs.n; j++)
            if (reps[i] == reps[j]) {
                double jac = exact_jaccard(&m, pl.docs.t[i], pl.docs.len[i], pl.docs.t[j], pl.docs.len[j]);
                if (jac < 0.5) fail_msg("documents %d and %d merged with true Jaccard %.3f", i, j, jac);
                checked++;
            }
    assert_true(checked >= found);
    // each root is the first document of its cluster
    for (int i = 0; i < pl.docs.n; i++) assert_true(reps[i] <= i && reps[reps[i]] == reps[i]);
    minhash_free(&m);
    free(reps);
    planted_free(&pl);
}

// The same clusters on one thread, on two, and with band sorts spilled to disk.
static void test_near_deterministic(void **state) {
    Planted pl;
    build_planted(&pl);
    int n = pl.docs.n;
    long *a = malloc(sizeof(long) * n), *b = malloc(sizeof(long) * n), *c = malloc(sizeof(long) * n);
    KilnNearParams p = near_defaults();
    KilnNearStats sa, sb, sc;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    near_run_core(&pl.docs, &p, a, &sa);
    omp_set_num_threads(2);
    near_run_core(&pl.docs, &p, b, &sb);
    p.mem_bytes = 4096;  // 128 records a run, 7 runs per band
    near_run_core(&pl.docs, &p, c, &sc);
    omp_set_num_threads(saved);
    assert_memory_equal(a, b, sizeof(long) * n);
    assert_memory_equal(a, c, sizeof(long) * n);
    assert_int_equal(sa.candidate_pairs, sb.candidate_pairs);
    assert_int_equal(sa.verified_pairs, sc.verified_pairs);
    assert_int_equal(sa.spilled_runs, 0);
    assert_true(sc.spilled_runs >= 14 * 2);
    // another seed: other permutations, (almost) the same clusters
    p.seed = 7;
    p.mem_bytes = 1 << 20;
    near_run_core(&pl.docs, &p, c, NULL);
    int differ = 0;
    for (int i = 0; i < n; i++) differ += a[i] != c[i];
    print_message("seed 42 vs 7: %d of %d documents in another cluster\n", differ, n);
    assert_true(differ < n / 20);
    free(a);
    free(b);
    free(c);
    planted_free(&pl);
}

// The verification threshold at its boundary: a story and a copy whose
// signatures agree in exactly `eq` of 112 positions are merged at threshold
// eq/112 and kept apart at (eq+1)/112 (verify_z 0: the estimate itself counts);
// with verify_z 1.645 at threshold 0.8, 83 equal positions suffice (0.8 - 0.062).
static void test_near_threshold(void **state) {
    Texts x = {0};
    load_stories(&x, 1, 150);
    KilnRng r;
    kiln_rng_seed(&r, 3);
    KilnBuf v = {0};
    make_variant(x.t[0], x.len[0], 4, &x, &r, &v);
    texts_add(&x, v.data, v.len);
    kbuf_free(&v);
    KilnNearParams p = near_defaults();
    p.verify_z = 0;
    KilnMinHash m;
    assert_int_equal(minhash_init(&m, 112, 5, p.seed), 0);
    uint32_t sa[112], sb[112];
    assert_int_equal(minhash_signature(&m, x.t[0], x.len[0], sa), 0);
    assert_int_equal(minhash_signature(&m, x.t[1], x.len[1], sb), 0);
    minhash_free(&m);
    int eq = 0, bands = 0;
    for (int i = 0; i < 112; i++) eq += sa[i] == sb[i];
    for (int b = 0; b < 14; b++) bands += !memcmp(sa + 8 * b, sb + 8 * b, 32);
    print_message("boundary pair: %d of 112 positions equal, %d bands collide\n", eq, bands);
    assert_true(bands >= 1 && eq < 112);
    long reps[2];
    p.threshold = eq / 112.0;
    near_run_core(&x, &p, reps, NULL);
    assert_int_equal(reps[1], 0);
    p.threshold = (eq + 1) / 112.0;
    near_run_core(&x, &p, reps, NULL);
    assert_int_equal(reps[1], 1);
    // the margin: 0.8 - 1.645 * sqrt(0.8 * 0.2 / 112) = 0.7378: 83 equal positions (0.741) suffice, 82 do not
    p.threshold = 0.8;
    p.verify_z = 1.645;
    near_run_core(&x, &p, reps, NULL);
    assert_int_equal(reps[1], eq >= 83 ? 0 : 1);
    texts_free(&x);
}

static void test_near_params(void **state) {
    KilnNearDedup *nd;
    KilnErr err;
    KilnNearParams p = near_defaults();
    p.bands = 10;
    assert_int_equal(near_open(&nd, &p, test_tmpdir(), &err), -1);
    assert_non_null(strstr(err.msg, "bands"));
    p = near_defaults();
    p.threshold = 1.5;
    assert_int_equal(near_open(&nd, &p, test_tmpdir(), &err), -1);
    p = near_defaults();
    assert_int_equal(near_open(&nd, &p, "/nonexistent/dir", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/dir"));
    // empty and wordless documents are never near-duplicates of each other
    assert_int_equal(near_open(&nd, &p, test_tmpdir(), &err), 0);
    const char *t[] = {"", "...", "", "!!"};
    size_t l[] = {0, 3, 0, 2};
    assert_int_equal(near_add(nd, t, l, 4, &err), 0);
    assert_int_equal(near_cluster(nd, &err), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(near_rep(nd, i), i);
    assert_int_equal(near_stats(nd)->skipped_empty, 4);
    near_close(nd);
}

// ---------------------------------------------------------------- line dedup
static void line_core(const Texts *x, const KilnLineParams *p, Texts *out, unsigned char *keep, KilnLineStats *st) {
    KilnLineDedup *ld;
    KilnErr err;
    if (line_open(&ld, p, test_tmpdir(), &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < x->n; i += 64) {
        int k = x->n - i < 64 ? x->n - i : 64;
        if (line_add(ld, (const char *const *)x->t + i, x->len + i, k, &err)) fail_msg("%s", err.msg);
    }
    if (line_finish(ld, &err)) fail_msg("%s", err.msg);
    KilnBuf outs[64] = {{0}};
    for (int i = 0; i < x->n; i += 64) {
        int k = x->n - i < 64 ? x->n - i : 64;
        if (line_rewrite(ld, i, (const char *const *)x->t + i, x->len + i, k, outs, NULL, keep + i, &err))
            fail_msg("%s", err.msg);
        for (int j = 0; j < k; j++)
            if (keep[i + j] == 2) texts_add(out, outs[j].data, outs[j].len);
            else texts_add(out, x->t[i + j], x->len[i + j]);
    }
    for (int j = 0; j < 64; j++) kbuf_free(&outs[j]);
    if (st) *st = *line_stats(ld);
    line_close(ld);
}

// Distinct licence files as documents, in sorted path order.
static void load_copyrights(Texts *x, int max) {
    glob_t g;
    if (glob("/usr/share/doc/*/copyright", 0, NULL, &g) != 0) return;
    for (size_t i = 0; i < g.gl_pathc && x->n < max; i++) {
        char *d;
        size_t len;
        KilnErr err;
        if (kiln_read_file(g.gl_pathv[i], &d, &len, &err)) continue;
        int seen = !utf8_valid(d, len);  // many packages of one source ship the same file: keep one
        for (int k = 0; k < x->n && !seen; k++) seen = x->len[k] == len && !memcmp(x->t[k], d, len);
        if (!seen) texts_add(x, d, len);
        free(d);
    }
    globfree(&g);
}

// A naive reference for line mode: a line goes when its normalised form has at
// least min_chars characters and min_docs documents have it, unless this is
// the first of them.
typedef struct {
    char *norm;
    int first, docs, last;
} RefLine;

static long utf8_len(const char *s, size_t n) {
    long c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static void line_reference(const Texts *x, const KilnLineParams *p, Texts *want) {
    size_t cap = 1 << 20;  // open addressing on the normalised text
    RefLine *tab = calloc(cap, sizeof *tab);
    KilnBuf nb = {0};
    for (int pass = 0; pass < 2; pass++)
        for (int d = 0; d < x->n; d++) {
            KilnBuf out = {0};
            kbuf_puts(&out, "");
            const char *t = x->t[d];
            size_t n = x->len[d];
            for (size_t s = 0; s < n;) {
                const char *nl = memchr(t + s, '\n', n - s);
                size_t e = nl ? (size_t)(nl - t) : n, next = nl ? e + 1 : n;
                dedup_normalize(t + s, e - s, &nb);
                int removable = nb.len && utf8_len(nb.data, nb.len) >= p->min_chars;
                RefLine *r = NULL;
                if (removable) {
                    size_t h = 5381;
                    for (size_t i = 0; i < nb.len; i++) h = h * 33 + (unsigned char)nb.data[i];
                    for (h %= cap; tab[h].norm && strcmp(tab[h].norm, nb.data); h = (h + 1) % cap) {}
                    r = &tab[h];
                    if (!r->norm) {
                        r->norm = strdup(nb.data);
                        r->first = d;
                        r->last = -1;
                    }
                }
                if (pass == 0 && r && r->last != d) {
                    r->docs++;
                    r->last = d;
                }
                if (pass == 1 && !(r && r->docs >= p->min_docs && r->first != d)) kbuf_append(&out, t + s, next - s);
                s = next;
            }
            if (pass == 1) texts_add(want, out.data, out.len);
            kbuf_free(&out);
        }
    for (size_t i = 0; i < cap; i++) free(tab[i].norm);
    free(tab);
    kbuf_free(&nb);
}

static int count_docs_with_line(const Texts *x, const char *norm_line) {
    KilnBuf nb = {0};
    int docs = 0;
    for (int d = 0; d < x->n; d++) {
        int has = 0;
        for (size_t s = 0; s < x->len[d] && !has;) {
            const char *nl = memchr(x->t[d] + s, '\n', x->len[d] - s);
            size_t e = nl ? (size_t)(nl - x->t[d]) : x->len[d];
            dedup_normalize(x->t[d] + s, e - s, &nb);
            has = !strcmp(nb.data, norm_line);
            s = e + 1;
        }
        docs += has;
    }
    kbuf_free(&nb);
    return docs;
}

static void check_copyrights(long min_docs, size_t mem) {
    Texts x = {0}, out = {0}, want = {0};
    load_copyrights(&x, 400);
    if (x.n < 50) skip();
    KilnLineParams p = {.unit = LINE_UNIT_LINE, .min_docs = min_docs, .min_chars = 20, .min_words = 0, .mem_bytes = mem};
    unsigned char *keep = malloc((size_t)x.n);
    KilnLineStats st;
    line_core(&x, &p, &out, keep, &st);
    line_reference(&x, &p, &want);
    assert_int_equal(out.n, want.n);
    for (int i = 0; i < x.n; i++) {
        assert_int_equal(keep[i] != 0, 1);
        if (out.len[i] != want.len[i] || memcmp(out.t[i], want.t[i], out.len[i]))
            fail_msg("copyright file %d: output differs from the reference (%zu vs %zu bytes)", i, out.len[i],
                     want.len[i]);
    }
    // the GPL's warranty lines: in many files before, in exactly one after
    const char *gpl[] = {"but without any warranty without even the implied warranty of",
                         "this program is distributed in the hope that it will be useful"};
    for (int k = 0; k < 2; k++) {
        int before = count_docs_with_line(&x, gpl[k]), after = count_docs_with_line(&out, gpl[k]);
        print_message("line_dedup min_docs %ld: \"%s\" in %d files before, %d after\n", min_docs, gpl[k], before, after);
        assert_true(before >= 20);
        assert_int_equal(after, 1);
    }
    print_message("line_dedup: %d files, %ld lines, %ld removed (%ld bytes), %ld files changed, %ld runs spilled\n", x.n,
                  st.units, st.units_removed, st.bytes_removed, st.docs_changed, st.spilled_runs);
    if (mem < 100000) assert_true(st.spilled_runs > 2);
    free(keep);
    texts_free(&x);
    texts_free(&out);
    texts_free(&want);
}

static void test_line_copyrights(void **state) {
    check_copyrights(2, 256u << 20);
    check_copyrights(3, 256u << 20);
    check_copyrights(2, 16384);  // spilled: same output as the reference
}

// Boundaries of min_docs, min_chars and min_words on real lines.
static void test_line_rules(void **state) {
    Texts s = {0};
    load_wiki(&s, 3, 60);
    const char *l20 = "twenty characters ok";  // normalises to exactly 20 characters
    const char *l19 = "nineteen characters";   // 19
    assert_int_equal(strlen(l20), 20);
    assert_int_equal(strlen(l19), 19);
    Texts x = {0};
    KilnBuf b = {0};
    // doc 0 and 1 share l20, l19 and wiki line 0; wiki line 1 is in docs 0, 1, 2
    for (int d = 0; d < 3; d++) {
        kbuf_clear(&b);
        if (d < 2) {
            kbuf_puts(&b, l20), kbuf_putc(&b, '\n');
            kbuf_puts(&b, l19), kbuf_putc(&b, '\n');
            kbuf_append(&b, s.t[0], s.len[0]), kbuf_putc(&b, '\n');
        }
        kbuf_append(&b, s.t[1], s.len[1]), kbuf_putc(&b, '\n');
        kbuf_puts(&b, d == 0 ? "first document only words\n" : d == 1 ? "one two three four five\n" : "x\n");
        texts_add(&x, b.data, b.len);
    }
    kbuf_free(&b);
    KilnLineParams p = {.unit = LINE_UNIT_LINE, .min_docs = 2, .min_chars = 20, .min_words = 0, .mem_bytes = 1 << 20};
    unsigned char keep[3];
    Texts out = {0};
    line_core(&x, &p, &out, keep, NULL);
    // doc 0 unchanged; doc 1 loses l20, wiki 0, wiki 1 (not l19: too short); doc 2 loses wiki 1
    assert_int_equal(keep[0], 1);
    assert_string_equal(out.t[1], "nineteen characters\none two three four five\n");
    assert_string_equal(out.t[2], "x\n");
    texts_free(&out);
    // min_docs 3: only wiki line 1 (in three documents) goes
    p.min_docs = 3;
    line_core(&x, &p, &out, keep, NULL);
    assert_int_equal(keep[0], 1);
    assert_true(strstr(out.t[1], l20) && strstr(out.t[1], "one two"));
    assert_null(strstr(out.t[1], s.t[1]));
    assert_string_equal(out.t[2], "x\n");
    texts_free(&out);
    // min_words: doc 1 keeps 7 words; doc 2 keeps 1
    p.min_docs = 2;
    p.min_words = 7;
    line_core(&x, &p, &out, keep, NULL);
    assert_int_equal(keep[1], 2);
    assert_int_equal(keep[2], 0);
    texts_free(&out);
    p.min_words = 8;
    line_core(&x, &p, &out, keep, NULL);
    assert_int_equal(keep[0], 1);  // unchanged documents are never dropped, whatever their length
    assert_int_equal(keep[1], 0);
    texts_free(&out);
    texts_free(&x);
    texts_free(&s);
}

// Paragraph mode: real wiki paragraphs separated by blank lines.
static void test_line_paragraphs(void **state) {
    Texts s = {0};
    load_wiki(&s, 6, 40);
    Texts x = {0};
    KilnBuf b = {0};
    int layout[3][3] = {{0, 1, 2}, {3, 1, 4}, {5, 2, 1}};
    for (int d = 0; d < 3; d++) {
        kbuf_clear(&b);
        for (int k = 0; k < 3; k++) {
            kbuf_append(&b, s.t[layout[d][k]], s.len[layout[d][k]]);
            kbuf_puts(&b, k < 2 ? "\n\n" : "\n");
        }
        texts_add(&x, b.data, b.len);
    }
    KilnLineParams p = {.unit = LINE_UNIT_PARAGRAPH, .min_docs = 2, .min_chars = 20, .min_words = 0, .mem_bytes = 1 << 20};
    unsigned char keep[3];
    Texts out = {0};
    KilnLineStats st;
    line_core(&x, &p, &out, keep, &st);
    assert_int_equal(keep[0], 1);
    kbuf_clear(&b);
    kbuf_append(&b, s.t[3], s.len[3]), kbuf_puts(&b, "\n\n");
    kbuf_append(&b, s.t[4], s.len[4]), kbuf_puts(&b, "\n");
    assert_string_equal(out.t[1], b.data);
    kbuf_clear(&b);
    kbuf_append(&b, s.t[5], s.len[5]), kbuf_puts(&b, "\n\n");
    assert_string_equal(out.t[2], b.data);
    assert_int_equal(st.units, 9);
    assert_int_equal(st.units_removed, 3);
    kbuf_free(&b);
    texts_free(&out);
    texts_free(&x);
    texts_free(&s);
}

// ---------------------------------------------------------------- the stages
static void write_jsonl(const char *path, const Texts *x, int bad_lines) {
    KilnDocWriter *w;
    KilnErr err;
    if (docwriter_open(&w, path, &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < x->n; i++) {
        char id[32];
        snprintf(id, sizeof id, "doc%d", i);
        KilnDoc d = {0};
        kbuf_puts(&d.source, "test");
        kbuf_puts(&d.id, id);
        kbuf_set(&d.text, x->t[i], x->len[i]);
        if (docwriter_put(w, &d, NULL, &err)) fail_msg("%s", err.msg);
        doc_free(&d);
    }
    if (docwriter_commit(w, &err)) fail_msg("%s", err.msg);
    if (bad_lines) {  // four skips (not JSON, text not a string, no text, cut short) and a repaired text
        FILE *f = fopen(path, "ab");
        fputs("not json at all\n{\"text\": 5}\n{\"id\": \"x\"}\n\n{\"text\": \"bad \xff utf8 here\"}\n{\"text\": \"cut", f);
        fclose(f);
    }
}

typedef struct {
    long docs_in, docs_out, dropped;
    char *json;
} StageResult;

static int run_stage(const char *name, const char *const *kv, const char *in, const char *out, StageResult *res,
                     KilnErr *err) {
    const KilnStageDef *def = stage_find(name);
    assert_non_null(def);
    assert_non_null(def->run_corpus);
    void *state = test_stage_new(def, kv, 99, err);
    if (!state) return -1;
    int rc;
    KilnDocWriter *w;
    assert_int_equal(docwriter_open(&w, out, err), 0);
    KilnStageReport rep;
    stage_report_init(&rep, name);
    rc = def->run_corpus(state, in, w, NULL, test_tmpdir(), &rep, err);
    if (rc) docwriter_abort(w);
    else assert_int_equal(docwriter_commit(w, err), 0);
    if (res) {
        res->docs_in = rep.docs_in;
        res->docs_out = rep.docs_out;
        res->dropped = 0;
        for (int i = 0; i < rep.nreasons; i++) res->dropped += rep.reasons[i].docs;
        res->json = rc ? NULL : def->report_json(state);
        if (!rc) assert_int_equal(rep.docs_in, rep.docs_out + res->dropped);
    }
    stage_report_free(&rep);
    def->destroy(state);
    return rc;
}

static char *slurp(const char *path, size_t *len) {
    char *d;
    KilnErr err;
    if (kiln_read_file(path, &d, len, &err)) fail_msg("%s", err.msg);
    return d;
}

static void assert_same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(x);
    free(y);
}

static void test_stage_minhash(void **state) {
    Planted pl;
    build_planted(&pl);
    write_jsonl(tmp("near.jsonl"), &pl.docs, 1);
    long *reps = malloc(sizeof(long) * (size_t)pl.docs.n);
    KilnNearParams p = near_defaults();
    p.seed = 99;  // the pipeline seed run_stage passes
    near_run_core(&pl.docs, &p, reps, NULL);
    long kept = 0;
    for (int i = 0; i < pl.docs.n; i++) kept += reps[i] == i;
    StageResult r1, r2, r3;
    KilnErr err;
    if (run_stage("minhash_dedup", NULL, tmp("near.jsonl"), tmp("near.out1"), &r1, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r1.docs_in, pl.docs.n + 1);  // the repaired text counts as a document
    assert_int_equal(r1.docs_out, kept + 1);
    assert_non_null(strstr(r1.json, "\"input_skipped\":4"));
    assert_non_null(strstr(r1.json, "\"clusters\":"));
    print_message("minhash_dedup report: %s\n", r1.json);
    const char *tiny[] = {"mem_mb", "0.01", NULL};
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    if (run_stage("minhash_dedup", tiny, tmp("near.jsonl"), tmp("near.out2"), &r2, &err)) fail_msg("%s", err.msg);
    omp_set_num_threads(2);
    if (run_stage("minhash_dedup", NULL, tmp("near.jsonl"), tmp("near.out3"), &r3, &err)) fail_msg("%s", err.msg);
    omp_set_num_threads(saved);
    assert_non_null(strstr(r1.json, "\"spilled_runs\":0,"));
    assert_null(strstr(r2.json, "\"spilled_runs\":0,"));
    assert_same_file(tmp("near.out1"), tmp("near.out2"));
    assert_same_file(tmp("near.out1"), tmp("near.out3"));
    free(r1.json);
    free(r2.json);
    free(r3.json);
    // parameters are checked
    const char *badp[] = {"bands", "10", NULL};
    assert_int_equal(run_stage("minhash_dedup", badp, tmp("near.jsonl"), tmp("near.out4"), NULL, &err), -1);
    assert_non_null(strstr(err.msg, "bands"));
    const char *typo[] = {"treshold", "0.7", NULL};
    assert_int_equal(run_stage("minhash_dedup", typo, tmp("near.jsonl"), tmp("near.out4"), NULL, &err), -1);
    assert_non_null(strstr(err.msg, "treshold"));
    assert_int_equal(run_stage("minhash_dedup", NULL, tmp("missing.jsonl"), tmp("near.out4"), NULL, &err), -1);
    assert_non_null(strstr(err.msg, "missing.jsonl"));
    free(reps);
    planted_free(&pl);
}

static void test_stage_exact_and_lines(void **state) {
    Texts x = {0};
    load_copyrights(&x, 150);
    if (x.n < 50) skip();
    for (int i = 0; i < 20; i++) texts_add(&x, x.t[i * 3], x.len[i * 3]);  // 20 exact repeats
    write_jsonl(tmp("lic.jsonl"), &x, 1);
    StageResult r1, r2;
    KilnErr err;
    if (run_stage("exact_dedup", NULL, tmp("lic.jsonl"), tmp("lic.exact1"), &r1, &err)) fail_msg("%s", err.msg);
    const char *tiny[] = {"mem_mb", "0.001", NULL};  // 21 records a run
    if (run_stage("exact_dedup", tiny, tmp("lic.jsonl"), tmp("lic.exact2"), &r2, &err)) fail_msg("%s", err.msg);
    assert_same_file(tmp("lic.exact1"), tmp("lic.exact2"));
    assert_null(strstr(r2.json, "\"spilled_runs\":0,"));
    assert_int_equal(r1.docs_in, x.n + 1);
    assert_true(r1.dropped >= 20);  // distinct files may still normalise alike (years differ, say)
    assert_non_null(strstr(r1.json, "\"input_skipped\":4"));
    print_message("exact_dedup report: %s\n", r1.json);
    free(r1.json);
    free(r2.json);
    const char *lp[] = {"min_words", "0", NULL}, *lp2[] = {"min_words", "0", "mem_mb", "0.01", NULL};
    if (run_stage("line_dedup", lp, tmp("lic.jsonl"), tmp("lic.line1"), &r1, &err)) fail_msg("%s", err.msg);
    int saved = omp_get_max_threads();
    omp_set_num_threads(saved > 1 ? 1 : 2);  // and on another thread count
    if (run_stage("line_dedup", lp2, tmp("lic.jsonl"), tmp("lic.line2"), &r2, &err)) fail_msg("%s", err.msg);
    omp_set_num_threads(saved);
    assert_same_file(tmp("lic.line1"), tmp("lic.line2"));
    assert_null(strstr(r2.json, "\"spilled_runs\":0,"));
    assert_int_equal(r1.dropped, 0);
    assert_non_null(strstr(r1.json, "\"units_removed\":"));
    print_message("line_dedup report: %s\n", r1.json);
    free(r1.json);
    free(r2.json);
    // with the default min_words (50) the exact repeats lose every line and are dropped
    if (run_stage("line_dedup", NULL, tmp("lic.jsonl"), tmp("lic.line3"), &r1, &err)) fail_msg("%s", err.msg);
    assert_true(r1.dropped >= 20);
    free(r1.json);
    const char *badu[] = {"unit", "sentence", NULL};
    assert_int_equal(run_stage("line_dedup", badu, tmp("lic.jsonl"), tmp("lic.line4"), NULL, &err), -1);
    // an empty input is fine
    write_bytes(tmp("empty.jsonl"), "", 0);
    const char *names[] = {"exact_dedup", "minhash_dedup", "line_dedup"};
    for (int k = 0; k < 3; k++) {
        if (run_stage(names[k], NULL, tmp("empty.jsonl"), tmp("empty.out"), &r1, &err)) fail_msg("%s", err.msg);
        assert_int_equal(r1.docs_in, 0);
        assert_int_equal(r1.docs_out, 0);
        free(r1.json);
    }
    texts_free(&x);
}

// Runs the three stages on a mutant; ctx counts the input lines they skipped
// (run_stage checks that documents in = out + dropped every time).
static int run_all_stages(const char *path, void *ctx) {
    const char *names[] = {"exact_dedup", "minhash_dedup", "line_dedup"};
    const char *lp[] = {"min_words", "5", "mem_mb", "0.01", NULL};
    int refused = 0;
    for (int k = 0; k < 3; k++) {
        KilnErr err;
        StageResult r;
        if (run_stage(names[k], k == 2 ? lp : lp + 2, path, tmp("fuzz.out"), &r, &err)) {
            refused++;
            continue;
        }
        const char *sk = strstr(r.json, "\"input_skipped\":");
        assert_non_null(sk);
        *(long *)ctx += atol(sk + strlen("\"input_skipped\":"));
        free(r.json);
    }
    return refused;
}

// Mutated JSONL (flipped bytes, cuts, garbage) through all three stages: a
// counted skip or an error, never a crash.
static void test_stage_fuzz(void **state) {
    Texts x = {0};
    load_stories(&x, 30, 20);
    for (int i = 0; i < 10; i++) texts_add(&x, x.t[i], x.len[i]);
    write_jsonl(tmp("fuzz.jsonl"), &x, 0);
    size_t len;
    char *d = slurp(tmp("fuzz.jsonl"), &len);
    long skipped = 0;
    int refused = fuzz_mutants(d, len, 200, tmp("mutant.jsonl"), 50, 5, run_all_stages, &skipped);
    print_message("fuzzed dedup stages: 50 mutants, %d stage runs refused, %ld input lines skipped\n", refused, skipped);
    assert_true(skipped > 0);
    free(d);
    texts_free(&x);
}

int main(int argc, char **argv) {
    if (test_data_dir(argc, argv, NULL, data_dir, sizeof data_dir, "pretrain/tinystories/TinyStories-train.head-part1.txt",
                      NULL))
        return TEST_SKIP;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_sorter),
        cmocka_unit_test(test_exact_rules),
        cmocka_unit_test(test_exact_real),
        cmocka_unit_test(test_near_planted),
        cmocka_unit_test(test_near_deterministic),
        cmocka_unit_test(test_near_threshold),
        cmocka_unit_test(test_near_params),
        cmocka_unit_test(test_line_copyrights),
        cmocka_unit_test(test_line_rules),
        cmocka_unit_test(test_line_paragraphs),
        cmocka_unit_test(test_stage_minhash),
        cmocka_unit_test(test_stage_exact_and_lines),
        cmocka_unit_test(test_stage_fuzz),
    };
    if (getenv("KILN_TEST_FILTER")) cmocka_set_test_filter(getenv("KILN_TEST_FILTER"));  // e.g. "test_near_*"
    return TEST_RUN("dedup", tests);
}
