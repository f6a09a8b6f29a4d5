// bench_data_dedup: end-to-end throughput (JSONL in, JSONL out) of the dedup
// stages, on one and on two threads, with each run's peak RSS, on a corpus of
// real text: WikiText-2 paragraphs, TinyStories stories, Linux kernel source
// (60-line pieces) and Shakespeare (speeches), about 6.5 MB. Documents are
// pieces of it: each piece as it is the first time it is drawn, and with 30% of
// its words replaced by words from elsewhere each later time (a new document,
// Jaccard ~0.1 to the others, so the corpus is not one big duplicate cluster);
// plus 8% planted near-duplicates of earlier documents (1-3% of words replaced)
// and 3% exact copies.
// usage: bench_data_dedup DATA_DIR [MB [REPEATS]]   (DATA_DIR: ../shared/data; each
//        measurement REPEATS times: take the best on a shared machine)
//        bench_data_dedup --make DATA_DIR OUT.jsonl [MB]        (the corpus alone)
//        bench_data_dedup --run STAGE THREADS IN.jsonl WORK_DIR  (one measurement)
// Each measurement runs in a fresh process (so its peak RSS is its own) and
// prints one JSON line; the MinHash signature core and the JSONL reader alone
// are measured first. "seconds" is the stage's run (read, work, write);
// "commit_seconds" the output's fsync and rename after it; "mb_per_cpu_s" the
// text MB per CPU-second of the process (all threads).
#include "kiln/data.h"
#include "data/dedup/dedup.h"
#include "data/dedup/minhash.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
    char **t;
    size_t *len;
    long n, cap;
} Pool;

static void pool_add(Pool *p, const char *s, size_t n) {
    if (n == 0) return;
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->t = realloc(p->t, sizeof(char *) * (size_t)p->cap);
        p->len = realloc(p->len, sizeof(size_t) * (size_t)p->cap);
    }
    p->t[p->n] = malloc(n + 1);
    memcpy(p->t[p->n], s, n);
    p->t[p->n][n] = 0;
    p->len[p->n++] = n;
}

static char *load(const char *dir, const char *rel, size_t *len) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *d;
    KilnErr err;
    if (kiln_read_file(path, &d, len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    return d;
}

// Pieces of text: pieces end at a separator string (or every `lines` lines when sep is NULL).
static void split_into(Pool *p, const char *d, size_t len, const char *sep, int lines) {
    size_t at = 0;
    while (at < len) {
        size_t end;
        if (sep) {
            const char *q = strstr(d + at, sep);
            end = q ? (size_t)(q - d) : len;
            pool_add(p, d + at, end - at);
            at = q ? end + strlen(sep) : len;
        } else {
            end = at;
            for (int k = 0; k < lines && end < len; k++) {
                const char *nl = memchr(d + end, '\n', len - end);
                end = nl ? (size_t)(nl - d) + 1 : len;
            }
            pool_add(p, d + at, end - at);
            at = end;
        }
    }
}

// A word (up to a space or newline) at a random place in a random piece.
static void random_word(const Pool *pools, KilnRng *r, const char **w, size_t *n) {
    const Pool *p = &pools[kiln_rng_u64(r) % 4];
    long k = (long)(kiln_rng_u64(r) % (uint64_t)p->n);
    const char *t = p->t[k];
    size_t len = p->len[k], i = kiln_rng_u64(r) % len;
    while (i > 0 && t[i - 1] != ' ' && t[i - 1] != '\n') i--;
    size_t e = i;
    while (e < len && t[e] != ' ' && t[e] != '\n') e++;
    *w = t + i;
    *n = e - i;
}

// Copies s replacing each space-separated word with probability `rate`.
static void substitute(const char *s, size_t n, double rate, const Pool *pools, KilnRng *r, KilnBuf *out) {
    kbuf_clear(out);
    for (size_t i = 0; i < n;) {
        size_t st = i;
        while (i < n && s[i] != ' ' && s[i] != '\n') i++;
        if (i > st && kiln_rng_uniform(r) < rate) {
            const char *w;
            size_t wl;
            random_word(pools, r, &w, &wl);
            kbuf_append(out, w, wl);
        } else {
            kbuf_append(out, s + st, i - st);
        }
        if (i < n) kbuf_putc(out, s[i++]);
    }
}

static int make_corpus(const char *dir, const char *path, double mb) {
    Pool pools[4] = {{0}};
    size_t len;
    char *d = load(dir, "pretrain/wikitext-2-raw/wiki.test.raw", &len);
    split_into(&pools[0], d, len, "\r\n", 0);
    free(d);
    d = load(dir, "pretrain/tinystories/TinyStories-train.head-part1.txt", &len);
    split_into(&pools[1], d, len, "<|endoftext|>\n", 0);
    free(d);
    d = load(dir, "pretrain/code/linux-kernel.txt", &len);
    split_into(&pools[2], d, len, NULL, 60);
    free(d);
    d = load(dir, "pretrain/tinyshakespeare/input.txt", &len);
    split_into(&pools[3], d, len, "\n\n", 0);
    free(d);
    KilnRng r;
    kiln_rng_seed(&r, 1);
    Pool docs = {0};
    KilnBuf b = {0};
    unsigned char *used[4];
    for (int k = 0; k < 4; k++) used[k] = calloc((size_t)pools[k].n, 1);
    double total = 0;
    long near = 0, exact = 0;
    while (total < mb * 1e6) {
        double u = kiln_rng_uniform(&r);
        if (docs.n > 100 && u < 0.08) {
            long k = (long)(kiln_rng_u64(&r) % (uint64_t)docs.n);
            substitute(docs.t[k], docs.len[k], 0.01 + 0.02 * kiln_rng_uniform(&r), pools, &r, &b);
            near++;
        } else if (docs.n > 100 && u < 0.11) {
            long k = (long)(kiln_rng_u64(&r) % (uint64_t)docs.n);
            kbuf_set(&b, docs.t[k], docs.len[k]);
            exact++;
        } else {
            int c = (int)(kiln_rng_u64(&r) % 4);
            long i = (long)(kiln_rng_u64(&r) % (uint64_t)pools[c].n);
            if (used[c][i]) substitute(pools[c].t[i], pools[c].len[i], 0.3, pools, &r, &b);
            else kbuf_set(&b, pools[c].t[i], pools[c].len[i]);
            used[c][i] = 1;
        }
        if (!b.len) continue;
        pool_add(&docs, b.data, b.len);
        total += (double)b.len;
    }
    for (int k = 0; k < 4; k++) free(used[k]);
    KilnDocWriter *w;
    KilnErr err;
    if (docwriter_open(&w, path, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    for (long i = 0; i < docs.n; i++) {
        char id[32];
        snprintf(id, sizeof id, "bench:%ld", i);
        KilnDoc doc = {0};
        kbuf_puts(&doc.source, "bench");
        kbuf_puts(&doc.id, id);
        kbuf_set(&doc.text, docs.t[i], docs.len[i]);
        if (docwriter_put(w, &doc, NULL, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        doc_free(&doc);
    }
    if (docwriter_commit(w, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    printf("{\"corpus\": \"%s\", \"docs\": %ld, \"text_mb\": %.1f, \"planted_near\": %ld, \"planted_exact\": %ld}\n",
           path, docs.n, total / 1e6, near, exact);
    // the signature core alone, one thread, over the same texts
    KilnMinHash m;
    minhash_init(&m, 112, 5, 1);
    uint32_t sig[112];
    double t0 = kiln_now(), c0 = dedup_cpu_seconds(), bytes = 0;
    for (long i = 0; i < docs.n && bytes < 20e6; i++) {
        minhash_signature(&m, docs.t[i], docs.len[i], sig);
        bytes += (double)docs.len[i];
    }
    printf("{\"minhash_signature_core\": {\"threads\": 1, \"num_perm\": 112, \"mb_per_s\": %.1f, "
           "\"mb_per_cpu_s\": %.1f}}\n",
           bytes / 1e6 / (kiln_now() - t0), bytes / 1e6 / (dedup_cpu_seconds() - c0));
    // the JSONL reader alone: each stage reads the input twice
    KilnDocReader *rd;
    KilnDoc doc = {0};
    if (docreader_open(&rd, path, NULL, NULL, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    double t_read = kiln_now(), c_read = dedup_cpu_seconds();
    while (docreader_next(rd, &doc, &err) > 0) {}
    t_read = kiln_now() - t_read;
    c_read = dedup_cpu_seconds() - c_read;
    docreader_close(rd);
    doc_free(&doc);
    printf("{\"jsonl_read\": {\"mb_per_s\": %.1f, \"mb_per_cpu_s\": %.1f}}\n", total / 1e6 / t_read,
           total / 1e6 / c_read);
    minhash_free(&m);
    fflush(stdout);
    for (long i = 0; i < docs.n; i++) free(docs.t[i]);
    for (int k = 0; k < 4; k++) {
        for (long i = 0; i < pools[k].n; i++) free(pools[k].t[i]);
        free(pools[k].t);
        free(pools[k].len);
    }
    free(docs.t);
    free(docs.len);
    kbuf_free(&b);
    return 0;
}

// One stage over the corpus in this (fresh) process.
static int run_one(const char *stage, int threads, const char *in, const char *work) {
    omp_set_num_threads(threads);
    const KilnStageDef *def = stage_find(stage);
    if (!def || !def->run_corpus) return fprintf(stderr, "no corpus stage %s\n", stage), 1;
    KilnParams ps = {0};
    KilnErr err;
    void *state;
    if (def->create(&ps, 1, &state, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    char out[2048];
    snprintf(out, sizeof out, "%s/out-%s-%d.jsonl", work, stage, threads);
    KilnDocWriter *w;
    if (docwriter_open(&w, out, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    KilnStageReport rep;
    stage_report_init(&rep, stage);
    double t0 = kiln_now();
    if (def->run_corpus(state, in, w, NULL, work, &rep, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    double secs = kiln_now() - t0;
    if (docwriter_commit(w, &err)) return fprintf(stderr, "%s\n", err.msg), 1;  // fsync: the disk's time, not ours
    double commit = kiln_now() - t0 - secs;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char *json = def->report_json ? def->report_json(state) : NULL;
    printf("{\"stage\": \"%s\", \"threads\": %d, \"text_mb\": %.1f, \"seconds\": %.2f, \"mb_per_s\": %.1f, "
           "\"cpu_seconds\": %.2f, \"mb_per_cpu_s\": %.1f, \"commit_seconds\": %.2f, \"peak_rss_mb\": %.0f, \"docs_in\": %ld, \"docs_out\": %ld, "
           "\"report\": %s}\n",
           stage, threads, (double)rep.bytes_in / 1e6, secs, (double)rep.bytes_in / 1e6 / secs, rep.seconds,
           (double)rep.bytes_in / 1e6 / rep.seconds, commit,
           (double)ru.ru_maxrss / 1024.0, rep.docs_in, rep.docs_out, json ? json : "null");
    free(json);
    stage_report_free(&rep);
    def->destroy(state);
    unlink(out);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "--run")) return run_one(argv[2], atoi(argv[3]), argv[4], argv[5]);
    if (argc >= 4 && !strcmp(argv[1], "--make")) return make_corpus(argv[2], argv[3], argc > 4 ? atof(argv[4]) : 50);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_data_dedup DATA_DIR [MB [REPEATS]]\n");
        return 2;
    }
    double mb = argc > 2 ? atof(argv[2]) : 50;
    int repeats = argc > 3 ? atoi(argv[3]) : 1;
    char work[] = "/tmp/kiln_bench_dedup_XXXXXX";
    if (!mkdtemp(work)) return perror("mkdtemp"), 1;
    char corpus[256];
    snprintf(corpus, sizeof corpus, "%s/corpus.jsonl", work);
    if (make_corpus(argv[1], corpus, mb)) return 1;
    char self[1024];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) return perror("readlink /proc/self/exe"), 1;
    self[k] = 0;
    const char *stages[] = {"minhash_dedup", "exact_dedup", "line_dedup"};
    int rc = 0;
    for (int s = 0; s < 3; s++)
        for (int t = 1; t <= 2; t++)
            for (int rep = 0; rep < repeats; rep++) {
                char cmd[2048];
                snprintf(cmd, sizeof cmd, "'%s' --run %s %d %s %s", self, stages[s], t, corpus, work);
                fflush(stdout);
                if (system(cmd) != 0) rc = 1;
            }
    unlink(corpus);
    rmdir(work);
    return rc;
}
