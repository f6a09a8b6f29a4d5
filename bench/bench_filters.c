// bench_filters.c: single-thread throughput (MB/s of input text) of the
// per-document quality filters on real text: WikiText-2 raw test articles and
// the Linux kernel source in 200-line pieces, from ../shared/data. Time is the
// thread's CPU time, so other processes on a shared machine disturb it little.
//   bench_filters SHARED_DATA_DIR [CPU seconds per measurement, default 1]
#include "kiln/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    KilnDoc *d;
    int n;
    size_t bytes;
} Corpus;

static void add(Corpus *c, const char *s, size_t n) {
    c->d = realloc(c->d, (size_t)(c->n + 1) * sizeof *c->d);
    memset(&c->d[c->n], 0, sizeof c->d[0]);
    kbuf_set(&c->d[c->n].text, s, n);
    c->n++;
    c->bytes += n;
}

// wiki: split at " = Title = " lines; code: every 200 lines
static int load(Corpus *c, const char *path, int wiki) {
    char *data;
    size_t len;
    KilnErr err;
    if (kiln_read_file(path, &data, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    size_t start = 0;
    int lines = 0;
    for (size_t i = 0; i <= len; i++) {
        int cut = wiki ? i < len && (i == 0 || data[i - 1] == '\n') && !strncmp(data + i, " = ", 3) && data[i + 3] != '='
                       : i > 0 && data[i - 1] == '\n' && ++lines % 200 == 0;
        if ((cut || i == len) && i > start) {
            add(c, data + start, i - start);
            start = i;
        }
    }
    free(data);
    return 0;
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double measure(const KilnStageDef *def, void *st, const Corpus *c, double secs, KilnScratch *s) {
    KilnDoc d = {0};
    double t0 = cpu_now(), t;
    size_t bytes = 0;
    do {
        for (int i = 0; i < c->n; i++) {
            doc_copy(&d, &c->d[i]);  // stages may rewrite the text
            def->apply(st, &d, s);
            bytes += c->d[i].text.len;
        }
        t = cpu_now() - t0;
    } while (t < secs);
    doc_free(&d);
    return (double)bytes / t / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SHARED_DATA_DIR [seconds]\n", argv[0]);
        return 2;
    }
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    char path[4096], words[4096];
    Corpus wiki = {0}, code = {0};
    snprintf(path, sizeof path, "%s/pretrain/wikitext-2-raw/wiki.test.raw", argv[1]);
    if (load(&wiki, path, 1)) return 1;
    snprintf(path, sizeof path, "%s/pretrain/code/linux-kernel.txt", argv[1]);
    if (load(&code, path, 0)) return 1;
    snprintf(words, sizeof words, "%s/toxicity/ldnoobw/en", argv[1]);
    const char *names[] = {"gopher_quality", "gopher_repetition", "c4", "wordlist"};
    printf("stage              wiki MB/s  kernel MB/s  (1 thread, CPU time; %.1f MB and %.1f MB of text)\n", wiki.bytes / 1e6,
           code.bytes / 1e6);
    KilnScratch s = {0};
    for (int k = 0; k < 4; k++) {
        const KilnStageDef *def = stage_find(names[k]);
        KilnParams ps = {0};
        KilnErr err;
        void *st;
        if (k == 3 && params_add(&ps, "words", words, "bench", &err)) return 1;
        if (!def || def->create(&ps, 1, &st, &err)) {
            fprintf(stderr, "%s: %s\n", names[k], def ? err.msg : "unknown stage");
            return 1;
        }
        params_free(&ps);
        double a = measure(def, st, &wiki, secs, &s), b = measure(def, st, &code, secs, &s);
        printf("%-18s %9.1f  %11.1f\n", names[k], a, b);
        def->destroy(st);
    }
    scratch_free(&s);
    for (int i = 0; i < wiki.n; i++) doc_free(&wiki.d[i]);
    for (int i = 0; i < code.n; i++) doc_free(&code.d[i]);
    free(wiki.d);
    free(code.d);
    return 0;
}
