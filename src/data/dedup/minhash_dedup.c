// minhash_dedup.c: the `minhash_dedup` corpus stage, near-duplicate removal by
// MinHash LSH (datatrove's MinhashDedup, with verification).
//   pass 1  signatures on all threads -> signature file (num_perm x 4 bytes per
//           document) and, per band, (XXH3 of the band's rows, index) records
//           to that band's file
//   pass 2  per band: external sort of its records; in each run of equal
//           hashes, members are checked against the run's first documents by
//           estimated Jaccard (signatures read through mmap) and unions made
//           when it reaches the threshold; union by smaller index, so each
//           cluster's root is its first document
//   pass 3  re-read the input, keep each cluster's first document
// Memory: the sort budget, 4 bytes per document (union-find), two batches of
// documents, and the mapped signature file (page cache).
// Files in work_dir are unlinked as soon as they are created.
#include "data/dedup/dedup.h"
#include "data/dedup/minhash.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

// A run member is compared with at most this many earlier members that matched
// nothing before them; keeps a huge bucket linear and still finds a cluster
// whose first member is an unrelated document that shares one band.
#define MAX_ANCHORS 4

struct KilnNearDedup {
    KilnNearParams p;
    KilnMinHash mh;
    char *work_dir;
    int sig_fd, *band_fd;
    uint64_t sig_bytes, *band_bytes;
    long n;
    uint32_t *parent;  // union-find over document indices, after near_cluster
    uint32_t *sigs;    // one batch of signatures
    uint64_t *brecs;   // one batch of band records, band-major
    size_t batch_cap;
    KilnNearStats st;
};

static int temp_file(const char *dir, const char *name, KilnErr *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.XXXXXX", dir, name);
    int fd = mkstemp(path);
    if (fd < 0) return kiln_fail(err, "%s: cannot create temporary file: %s", path, strerror(errno));
    unlink(path);  // the descriptor keeps it alive; nothing stays behind
    return fd;
}

static int append(int fd, uint64_t *end, const void *p, size_t n, KilnErr *err) {
    const char *c = p;
    while (n) {
        ssize_t k = pwrite(fd, c, n, (off_t)*end);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return kiln_fail(err, "writing a minhash_dedup temporary file: %s", strerror(errno));
        c += k;
        n -= (size_t)k;
        *end += (uint64_t)k;
    }
    return 0;
}

int near_open(KilnNearDedup **ndp, const KilnNearParams *p, const char *work_dir, KilnErr *err) {
    if (p->bands < 1 || p->rows < 1 || p->bands * p->rows != p->num_perm)
        return kiln_fail(err, "minhash_dedup: bands (%d) x rows (%d) must equal num_perm (%d)", p->bands, p->rows,
                         p->num_perm);
    if (p->ngram < 1) return kiln_fail(err, "minhash_dedup: ngram must be >= 1 (got %d)", p->ngram);
    if (!(p->threshold >= 0 && p->threshold <= 1) || !(p->verify_z >= 0 && p->verify_z <= 10))
        return kiln_fail(err, "minhash_dedup: need threshold in [0, 1] (got %g) and verify_z in [0, 10] (got %g)",
                         p->threshold, p->verify_z);
    KilnNearDedup *nd = calloc(1, sizeof *nd);
    if (!nd) return kiln_fail(err, "out of memory");
    nd->p = *p;
    nd->sig_fd = -1;
    nd->work_dir = strdup(work_dir ? work_dir : "/tmp");
    nd->band_fd = malloc(sizeof(int) * (size_t)p->bands);
    nd->band_bytes = calloc((size_t)p->bands, sizeof(uint64_t));
    if (!nd->work_dir || !nd->band_fd || !nd->band_bytes || minhash_init(&nd->mh, p->num_perm, p->ngram, p->seed)) {
        near_close(nd);
        return kiln_fail(err, "out of memory");
    }
    for (int b = 0; b < p->bands; b++) nd->band_fd[b] = -1;
    if ((nd->sig_fd = temp_file(nd->work_dir, "kiln-minhash-sigs", err)) < 0) goto fail;
    for (int b = 0; b < p->bands; b++)
        if ((nd->band_fd[b] = temp_file(nd->work_dir, "kiln-minhash-band", err)) < 0) goto fail;
    *ndp = nd;
    return 0;
fail:
    near_close(nd);
    return -1;
}

static int batch_reserve(KilnNearDedup *nd, int n, KilnErr *err) {
    if ((size_t)n <= nd->batch_cap) return 0;
    free(nd->sigs);
    free(nd->brecs);
    nd->sigs = malloc(sizeof(uint32_t) * (size_t)nd->p.num_perm * (size_t)n);
    nd->brecs = malloc(sizeof(uint64_t) * 2 * (size_t)nd->p.bands * (size_t)n);
    nd->batch_cap = nd->sigs && nd->brecs ? (size_t)n : 0;
    return nd->batch_cap ? 0 : kiln_fail(err, "out of memory for a batch of %d signatures", n);
}

// A document without a single word has the all-ones signature; such documents
// are not near-duplicates of each other, so they stay out of the buckets.
static int sig_empty(const uint32_t *sig, int P) {
    for (int i = 0; i < P; i++)
        if (sig[i] != UINT32_MAX) return 0;
    return 1;
}

typedef struct {
    KilnNearDedup *nd;
    const char *const *texts;
    const size_t *lens;
    int n, oom;
    long empty;
} SignJob;

// Signature and band records of document i of the batch.
static void sign_one(void *ctx, int i, int thread) {
    SignJob *j = ctx;
    KilnNearDedup *nd = j->nd;
    const int P = nd->p.num_perm, B = nd->p.bands, R = nd->p.rows;
    uint32_t *sig = nd->sigs + (size_t)i * P;
    if (minhash_signature(&nd->mh, j->texts[i], j->lens[i], sig)) {
#pragma omp atomic write
        j->oom = 1;
    }
    int skip = sig_empty(sig, P);
    if (skip) {
#pragma omp atomic
        j->empty++;
    }
    for (int b = 0; b < B; b++) {
        uint64_t *rec = nd->brecs + 2 * ((size_t)b * j->n + i);
        // an empty document's records are marked with an index past the end
        rec[0] = XXH3_64bits_withSeed(sig + b * R, sizeof(uint32_t) * R, (uint64_t)b);
        rec[1] = skip ? UINT64_MAX : (uint64_t)(nd->n + i);
    }
}

int near_add(KilnNearDedup *nd, const char *const *texts, const size_t *lens, int n, KilnErr *err) {
    if (n <= 0) return 0;
    if ((uint64_t)nd->n + (uint64_t)n >= UINT32_MAX)
        return kiln_fail(err, "minhash_dedup: more than %u documents", UINT32_MAX - 1);
    if (batch_reserve(nd, n, err)) return -1;
    const int P = nd->p.num_perm, B = nd->p.bands;
    SignJob j = {nd, texts, lens, n, 0, 0};
    dedup_parallel_for(n, sign_one, &j);
    if (j.oom) return kiln_fail(err, "out of memory computing signatures");
    nd->st.skipped_empty += j.empty;
    if (append(nd->sig_fd, &nd->sig_bytes, nd->sigs, sizeof(uint32_t) * P * (size_t)n, err)) return -1;
    for (int b = 0; b < B; b++) {
        uint64_t *recs = nd->brecs + 2 * (size_t)b * n;
        int k = 0;
        for (int i = 0; i < n; i++)  // compact away the empty documents
            if (recs[2 * i + 1] != UINT64_MAX) {
                recs[2 * k] = recs[2 * i];
                recs[2 * k + 1] = recs[2 * i + 1];
                k++;
            }
        if (append(nd->band_fd[b], &nd->band_bytes[b], recs, sizeof(uint64_t) * 2 * (size_t)k, err)) return -1;
    }
    nd->n += n;
    return 0;
}

static uint32_t uf_find(uint32_t *parent, uint32_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];  // path halving keeps parent[x] <= x
        x = parent[x];
    }
    return x;
}

// Union by smaller index: a root is always its cluster's first document.
static void uf_union(uint32_t *parent, uint32_t a, uint32_t b) {
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a < b) parent[b] = a;
    else if (b < a) parent[a] = b;
}

// Equal positions (of num_perm) a candidate pair needs. The estimate of a pair
// with true Jaccard J has standard deviation sqrt(J(1-J)/num_perm) (0.038 at
// 0.8 and 112): accepting estimates down to verify_z deviations below the
// threshold keeps a pair exactly at the threshold with probability Phi(z) (95%
// at 1.645) instead of a coin flip, while a pair at J = 0.5 stays 5 deviations
// away. verify_z = 0: the estimate itself must reach the threshold.
static int near_need(const KilnNearParams *p) {
    double t = p->threshold, P = p->num_perm;
    double min_est = t - p->verify_z * sqrt(t * (1 - t) / P);
    double need = (min_est > 0 ? min_est : 0) * P;
    int k = (int)need;
    if (k < need - 1e-9) k++;  // ceil, without rounding 0.8 * 112 up past 90
    return k;
}

typedef struct {
    KilnNearDedup *nd;
    const uint32_t *sigs;
    int need;  // equal positions a verified pair needs
    uint32_t anchors[MAX_ANCHORS];
    int nanchors;
} Bucket;

static void bucket_member(Bucket *k, uint32_t doc) {
    KilnNearDedup *nd = k->nd;
    const int P = nd->p.num_perm;
    if (k->nanchors) nd->st.candidate_pairs++;
    const uint32_t *s = k->sigs + (size_t)doc * P;
    for (int a = 0; a < k->nanchors; a++) {
        uint32_t other = k->anchors[a];
        if (uf_find(nd->parent, other) == uf_find(nd->parent, doc)) return;  // joined through another band
        const uint32_t *t = k->sigs + (size_t)other * P;
        int eq = 0;
        for (int i = 0; i < P; i++) eq += s[i] == t[i];
        if (eq >= k->need) {
            nd->st.verified_pairs++;
            uf_union(nd->parent, other, doc);
            return;
        }
    }
    if (k->nanchors < MAX_ANCHORS) k->anchors[k->nanchors++] = doc;
}

// Sorts one band's records and walks its runs of equal hashes.
static int cluster_band(KilnNearDedup *nd, int b, const uint32_t *sigs, uint64_t *chunk, size_t chunk_recs,
                        KilnErr *err) {
    KilnSorter *s;
    if (sorter_open(&s, 2, nd->p.mem_bytes, nd->work_dir, "kiln-minhash-sort", err)) return -1;
    int rc = -1, got;
    for (uint64_t off = 0; off < nd->band_bytes[b];) {
        size_t want = chunk_recs * 16;
        if (nd->band_bytes[b] - off < want) want = (size_t)(nd->band_bytes[b] - off);
        ssize_t k = pread(nd->band_fd[b], chunk, want, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0 || k % 16) {
            kiln_fail(err, "minhash_dedup: reading band %d records: %s", b, k < 0 ? strerror(errno) : "short read");
            goto done;
        }
        if (sorter_push(s, chunk, (size_t)k / 16, err)) goto done;
        off += (uint64_t)k;
    }
    if (sorter_finish(s, err)) goto done;
    Bucket k = {.nd = nd, .sigs = sigs, .need = near_need(&nd->p)};
    const uint64_t *r;
    uint64_t prev = 0;
    int first = 1;
    while ((got = sorter_next(s, &r, err)) > 0) {
        if (first || r[0] != prev) k.nanchors = 0;
        prev = r[0];
        first = 0;
        bucket_member(&k, (uint32_t)r[1]);
    }
    if (got < 0) goto done;
    nd->st.spilled_runs += sorter_runs(s);
    rc = 0;
done:
    sorter_close(s);
    return rc;
}

// Roots after all unions, and the cluster counts.
static int flatten(KilnNearDedup *nd, KilnErr *err) {
    uint32_t *parent = nd->parent;
    uint64_t *has = calloc((size_t)nd->n / 64 + 1, sizeof(uint64_t));
    if (!has) return kiln_fail(err, "out of memory");
    for (long i = 0; i < nd->n; i++) {
        parent[i] = parent[parent[i]];  // parent[i] < i is already a root
        if (parent[i] != (uint32_t)i) {
            nd->st.docs_in_clusters++;
            uint32_t r = parent[i];
            if (!(has[r / 64] >> (r % 64) & 1)) {
                has[r / 64] |= 1ull << (r % 64);
                nd->st.clusters++;
                nd->st.docs_in_clusters++;  // the root itself
            }
        }
    }
    free(has);
    return 0;
}

int near_cluster(KilnNearDedup *nd, KilnErr *err) {
    double t0 = kiln_now();
    nd->st.docs = nd->n;
    nd->parent = malloc(sizeof(uint32_t) * ((size_t)nd->n + 1));
    size_t chunk_recs = 1 << 16;
    uint64_t *chunk = malloc(chunk_recs * 16);
    if (!nd->parent || !chunk) {
        free(chunk);
        return kiln_fail(err, "out of memory for %ld documents' clusters", nd->n);
    }
    for (long i = 0; i < nd->n; i++) nd->parent[i] = (uint32_t)i;
    int rc = 0;
    const uint32_t *sigs = NULL;
    if (nd->sig_bytes) {
        void *m = mmap(NULL, nd->sig_bytes, PROT_READ, MAP_SHARED, nd->sig_fd, 0);
        if (m == MAP_FAILED) rc = kiln_fail(err, "minhash_dedup: mmap of the signature file: %s", strerror(errno));
        else sigs = m;
    }
    for (int b = 0; b < nd->p.bands && !rc; b++) rc = cluster_band(nd, b, sigs, chunk, chunk_recs, err);
    if (sigs) munmap((void *)sigs, nd->sig_bytes);
    free(chunk);
    if (!rc) rc = flatten(nd, err);
    nd->st.seconds_cluster = kiln_now() - t0;
    return rc;
}

long near_rep(const KilnNearDedup *nd, long idx) {
    return nd->parent && idx >= 0 && idx < nd->n ? (long)nd->parent[idx] : idx;
}
const KilnNearStats *near_stats(const KilnNearDedup *nd) { return &nd->st; }

void near_close(KilnNearDedup *nd) {
    if (!nd) return;
    if (nd->sig_fd >= 0) close(nd->sig_fd);
    if (nd->band_fd)
        for (int b = 0; b < nd->p.bands; b++)
            if (nd->band_fd[b] >= 0) close(nd->band_fd[b]);
    free(nd->band_fd);
    free(nd->band_bytes);
    free(nd->work_dir);
    free(nd->parent);
    free(nd->sigs);
    free(nd->brecs);
    minhash_free(&nd->mh);
    free(nd);
}

// ---------------------------------------------------------------- the stage
typedef struct {
    KilnNearParams p;
    char *json;
} NearStage;

static int near_create(KilnParams *ps, uint64_t seed, void **state, KilnErr *err) {
    NearStage *s = calloc(1, sizeof *s);
    if (!s) return kiln_fail(err, "out of memory");
    long ngram = 5, num_perm = 112, bands = 14, rows = 8, sd = (long)(seed & 0x7fffffffffffffff);
    double mem_mb = 256;
    s->p.threshold = 0.8;
    s->p.verify_z = 1.645;
    if (params_int(ps, "ngram", &ngram, err) || params_int(ps, "num_perm", &num_perm, err) ||
        params_int(ps, "bands", &bands, err) || params_int(ps, "rows", &rows, err) ||
        params_double(ps, "threshold", &s->p.threshold, err) || params_double(ps, "verify_z", &s->p.verify_z, err) ||
        params_double(ps, "mem_mb", &mem_mb, err) ||
        params_int(ps, "seed", &sd, err))
        goto fail;
    if (ngram < 1 || ngram > 1000 || num_perm < 1 || num_perm > 100000 || bands < 1 || rows < 1 ||
        bands * rows != num_perm) {
        kiln_fail(err, "minhash_dedup: need 1 <= ngram <= 1000 and bands (%ld) x rows (%ld) == num_perm (%ld) <= 100000",
                  bands, rows, num_perm);
        goto fail;
    }
    if (!(s->p.threshold >= 0 && s->p.threshold <= 1) || !(s->p.verify_z >= 0 && s->p.verify_z <= 10)) {
        kiln_fail(err, "minhash_dedup: need threshold in [0, 1] (got %g) and verify_z in [0, 10] (got %g)",
                  s->p.threshold, s->p.verify_z);
        goto fail;
    }
    if (!(mem_mb >= 0.001)) {
        kiln_fail(err, "minhash_dedup: mem_mb must be >= 0.001 (got %g)", mem_mb);
        goto fail;
    }
    s->p.ngram = (int)ngram;
    s->p.num_perm = (int)num_perm;
    s->p.bands = (int)bands;
    s->p.rows = (int)rows;
    s->p.mem_bytes = (size_t)(mem_mb * 1048576.0);
    s->p.seed = (uint64_t)sd;
    *state = s;
    return 0;
fail:
    free(s);
    return -1;
}

static void near_destroy(void *state) {
    NearStage *s = state;
    if (!s) return;
    free(s->json);
    free(s);
}

static int near_report_set(NearStage *s, const KilnNearStats *st, const KilnSkips *skips, double pass3) {
    char line[768];
    snprintf(line, sizeof line,
             "{\"docs\":%ld,\"clusters\":%ld,\"docs_in_clusters\":%ld,\"dropped\":%ld,\"candidate_pairs\":%ld,"
             "\"verified_pairs\":%ld,\"empty_docs\":%ld,\"spilled_runs\":%ld,\"num_perm\":%d,\"bands\":%d,"
             "\"rows\":%d,\"ngram\":%d,\"threshold\":%g,\"verify_z\":%g,\"verify_min_equal\":%d,"
             "\"seconds_signatures\":%.3f,\"seconds_cluster\":%.3f,"
             "\"seconds_write\":%.3f,",
             st->docs, st->clusters, st->docs_in_clusters, st->docs_in_clusters - st->clusters, st->candidate_pairs,
             st->verified_pairs, st->skipped_empty, st->spilled_runs, s->p.num_perm, s->p.bands, s->p.rows,
             s->p.ngram, s->p.threshold, s->p.verify_z, near_need(&s->p), st->seconds_signatures, st->seconds_cluster, pass3);
    return dedup_report_json(&s->json, line, skips);
}

typedef struct {
    KilnNearDedup *nd;
    KilnDocWriter *out, *rejects;
    KilnStageReport *rep;
} NearRun;

static int near_pass1(void *ctx, DedupBatch *b, long first, KilnErr *err) {
    NearRun *e = ctx;
    for (int i = 0; i < b->n; i++) e->rep->bytes_in += (long)b->lens[i];
    e->rep->docs_in += b->n;
    return near_add(e->nd, b->texts, b->lens, b->n, err);
}

static int near_pass3(void *ctx, DedupBatch *b, long first, KilnErr *err) {
    NearRun *e = ctx;
    for (int i = 0; i < b->n; i++) {
        long idx = first + i;
        if (idx >= e->nd->n)
            return kiln_fail(err, "minhash_dedup: the input grew between passes (%ld documents first)", e->nd->n);
        if (near_rep(e->nd, idx) != idx) {
            if (stage_reject(e->rejects, e->rep, "minhash_dedup:near_duplicate", &b->docs[i], err)) return -1;
            continue;
        }
        if (dedup_keep(e->out, e->rep, &b->docs[i], err)) return -1;
    }
    return 0;
}

static int near_run(void *state, const char *in_path, KilnDocWriter *out, KilnDocWriter *rejects,
                    const char *work_dir, KilnStageReport *rep, KilnErr *err) {
    NearStage *s = state;
    double cpu0 = dedup_cpu_seconds(), t0 = kiln_now();
    NearRun e = {NULL, out, rejects, rep};
    KilnSkips skips = {0};
    int rc = -1;
    if (near_open(&e.nd, &s->p, work_dir, err)) goto done;
    // pass 1: signatures and band records; pass 2: clusters; pass 3: each cluster's first document
    if (dedup_pass(in_path, near_pass1, &e, &skips, err)) goto done;
    skips_merge(&rep->skips, &skips);
    e.nd->st.seconds_signatures = kiln_now() - t0;
    if (near_cluster(e.nd, err)) goto done;
    double t3 = kiln_now();
    long in = rep->docs_in;
    if (dedup_pass(in_path, near_pass3, &e, NULL, err)) goto done;
    if (dedup_check_seen(rep, in, "minhash_dedup", in_path, err)) goto done;
    if (near_report_set(s, near_stats(e.nd), &skips, kiln_now() - t3)) {
        kiln_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    rep->seconds += dedup_cpu_seconds() - cpu0;
    near_close(e.nd);
    return rc;
}

static char *near_report(void *state) {
    NearStage *s = state;
    return s->json ? strdup(s->json) : NULL;
}

const KilnStageDef STAGE_MINHASH_DEDUP = {
    .name = "minhash_dedup",
    .summary = "drop near-duplicates: MinHash LSH over word n-grams, verified by estimated Jaccard, one kept per cluster",
    .params_help = "  ngram (5): words per shingle\n"
                   "  num_perm (112): MinHash permutations (signature length)\n"
                   "  bands (14), rows (8): LSH bands x rows per band; bands * rows must equal num_perm\n"
                   "  threshold (0.8): Jaccard similarity (of shingle sets) that makes two documents near-duplicates\n"
                   "  verify_z (1.645): a candidate pair is merged when its estimated Jaccard is at least threshold\n"
                   "      - verify_z standard deviations of the estimate (0: at least threshold itself)\n"
                   "  mem_mb (256): memory for sorting band records; beyond it, runs spill to the work directory\n"
                   "  seed (pipeline seed): permutation seed\n",
    .create = near_create,
    .destroy = near_destroy,
    .run_corpus = near_run,
    .report_json = near_report,
};
